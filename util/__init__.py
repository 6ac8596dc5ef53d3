"""Building blocks of the DeepSpeech-TF trainer, in layers: a package imports only from the
layers below it (tests/test_layers.py keeps it so).

settings/     bottom: the ds_* settings (config.py), the feature geometry, the alphabet, the
              augmentation spec, devices, folder locks, run-file names, the .venv launcher
data/         the input pipeline: audio and features, transcripts, sample checks, the queue
              (feeding.py), augmentation, the feature cache, importer helpers
model/        the BiRNN and its geometry (birnn.py), towers, the compiled LSTM ops
              (kernels.py, cc/), bfloat16 in a frozen graph, the export's file names
decoding/     logits to text (decoder.py), spelling correction, word timings, WER reports,
              ARPA language models
training/     top: contexts, evaluation and validation, checkpoints, logs, export, cluster
transcriber/  beside training: the Python API over an export and bin/transcribe.py's command

The importers (importers/) read corpora with data/; the dashboard (dashboard/) reads only
settings/run_files.py.
"""
