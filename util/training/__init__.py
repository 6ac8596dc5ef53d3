"""The top layer: the training program that DeepSpeech.py tells the story of.

contexts.py (execution contexts, the training step, the step hook), evaluate.py (the dev and
test passes), validation.py (best-dev checkpoint, early stopping, the plateau, ds_lm_tune),
checkpoints.py, source.py (fine-tuning: the model a run starts from, its lineage), logs.py
(the run folder), export.py, and several machines (cluster.py,
distributed.py)."""
