"""Building blocks of the DeepSpeech-TF trainer, by concern (DeepSpeech.py tells the story of a
run with them; the dashboard's data is dashboard/runs.py).

The model:
    model.py        the BiRNN and its LSTM; ModelGeometry (widths, dropout, clip) and ModelOps
    towers.py       one model copy per device, CTC loss, averaged gradients
    kernels.py      the compiled LSTM ops (cc/); precision.py: bfloat16; gpu.py: devices
    export.py       the frozen graph and SavedModel

The input pipeline:
    audio.py        audio loading and the MFCC features (the feature geometry: 26, 9, 494)
    samples.py      candidates checked into samples, and why the others are skipped
    feeding.py      DataOptions, and the DataSet queue fed by threads
    augment.py, feature_cache.py, corpus.py (helpers of importers/), text.py (the alphabet)

Decoding and scoring:
    evaluate.py     the dev/test pass: decode, score, report; validation during training
    decoder.py      beam search with a language model; arpa.py builds one
    spell.py        spelling correction; report.py: WER reports

The run:
    config.py       every ds_* setting, declared once with its default, parser and help
    contexts.py     execution contexts, their sessions and the training step's hook
    checkpoints.py  checkpoint names, safe saving, resume
    logs.py         the run folder and the files in it; run_files.py names them and their keys
    distributed.py  a process's part in a cluster (cluster.py: TensorFlow's distributed runtime)
    venv.py         entry points re-run inside .venv
"""
