#!/usr/bin/env bash
# Train on LibriSpeech (see importers/librivox.py) with the original's values: batches of 32,
# 50 epochs, a checkpoint every epoch. The original's validation interval is not known: the
# dev set (dev-clean) is evaluated every epoch here.
# The corpus is read from ds_dataset_path (default ./data/librivox); nothing is downloaded.
# Any ds_* variable set in the environment overrides the values below.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash bin/setup-venv.sh

export ds_importer="${ds_importer:-librivox}"
export ds_train_batch_size="${ds_train_batch_size:-32}"
export ds_dev_batch_size="${ds_dev_batch_size:-32}"
export ds_test_batch_size="${ds_test_batch_size:-32}"
export ds_epochs="${ds_epochs:-50}"
export ds_checkpoint_step="${ds_checkpoint_step:-1}"
export ds_validation_step="${ds_validation_step:-1}"
export ds_checkpoint_dir="${ds_checkpoint_dir:-$root/checkpoints/librivox}"

exec .venv/bin/python -u DeepSpeech.py "$@"
