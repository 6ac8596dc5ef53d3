"""Decoding and scoring: the dev/test pass (evaluate.py), the language-model beam search
(decoder.py, arpa.py builds models), spelling correction (spell.py) and WER reports
(report.py)."""
