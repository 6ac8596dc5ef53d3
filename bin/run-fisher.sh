#!/usr/bin/env bash
# Train on Fisher English (see importers/fisher.py), with run-ted.sh's values (batches
# 16/8/8, learning rate 0.0001, 150 epochs, validation every 20), as the original's run-fisher.sh
# was alike. The audio is 8 kHz telephone speech, so the filterbank stops at 4 kHz.
# The corpus is read from ds_dataset_path (default ./data/fisher); nothing is downloaded.
# Any ds_* variable set in the environment overrides the values below.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash bin/setup-venv.sh

export ds_importer="${ds_importer:-fisher}"
export ds_train_batch_size="${ds_train_batch_size:-16}"
export ds_dev_batch_size="${ds_dev_batch_size:-8}"
export ds_test_batch_size="${ds_test_batch_size:-8}"
export ds_epochs="${ds_epochs:-150}"
export ds_learning_rate="${ds_learning_rate:-0.0001}"
export ds_checkpoint_step="${ds_checkpoint_step:-5}"
export ds_validation_step="${ds_validation_step:-20}"
export ds_feature_max_hz="${ds_feature_max_hz:-4000}"
export ds_checkpoint_dir="${ds_checkpoint_dir:-$root/checkpoints/fisher}"

exec .venv/bin/python -u DeepSpeech.py "$@"
