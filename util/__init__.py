"""Building blocks of the DeepSpeech-TF trainer, one package per concern (DeepSpeech.py tells
the story of a run with them; the dashboard's data is dashboard/runs.py).

model/      the BiRNN and its geometry (birnn.py: ModelGeometry, ModelOps), towers, the
            compiled LSTM ops (kernels.py, cc/), bfloat16 (precision.py), export
data/       the input pipeline: audio and features (the 26, 9, 494), transcripts and the
            alphabet (text.py), sample checks (samples.py), the queue (feeding.py:
            DataOptions, DataSet), augmentation, the feature cache, importer helpers
decoding/   the dev/test pass and validation (evaluate.py), logits to text for reports and
            users (decoder.py), spelling correction, word timings, WER reports
transcriber.py  the Python API over an export (bin/transcribe.py)
run/        settings (config.py), execution contexts and the step hook (contexts.py),
            checkpoints, the run folder (logs.py; run_files.py names its files and keys),
            devices (gpu.py), several machines (distributed.py, cluster.py), venv.py
"""
