"""The acoustic model: the BiRNN and its geometry (birnn.py), one copy per device (towers.py),
the compiled LSTM ops (kernels.py, cc/), bfloat16 (precision.py), and the export of a trained
model (export.py)."""
