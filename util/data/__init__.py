"""The input pipeline: audio and its features (audio.py), transcripts and the alphabet
(text.py), the checks that turn an importer's candidates into samples (samples.py), the queue
that feeds them to the model (feeding.py), augmentation, the feature cache, and what the
importers share (corpus.py)."""
