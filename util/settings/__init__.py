"""The bottom layer: what a run is configured with and the shapes every layer agrees on.

config.py (the ``ds_*`` settings, parsed once into a frozen Config), geometry.py (the feature
recipe's numbers), alphabet.py (the characters a model writes), augmentation.py (what
``ds_augment`` asks for), devices.py (towers, the session, bfloat16), locks.py (folder locks),
run_files.py (the names of a run's files and keys) and venv.py (the project's .venv).

Nothing is imported here: the dashboard reads run_files.py and the entry points import
venv.py without TensorFlow."""
