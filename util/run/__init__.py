"""The run: its settings (config.py), execution contexts and sessions (contexts.py),
checkpoints, the log folder and its files (logs.py; run_files.py names them), devices
(gpu.py), several machines (distributed.py, cluster.py) and the project's .venv (venv.py).

Nothing is imported here: the dashboard reads run_files.py and the entry points import
venv.py without TensorFlow."""
