"""Decoding and scoring: the dev/test pass (evaluate.py), logits to text for the reports and
the transcriber alike (decoder.py: beam search, the language-model beam search, spelling
correction; arpa.py builds language models), spelling correction (spell.py), word timings
(alignment.py) and WER reports (report.py)."""
