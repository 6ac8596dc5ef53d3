"""Building blocks of the DeepSpeech-TF trainer."""
