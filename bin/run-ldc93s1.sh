#!/usr/bin/env bash
# Overfit the single LDC93S1 sentence (the original's smoke test): the final test report
# should say WER 0.0. Any ds_* variable set in the environment overrides the values below.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash bin/setup-venv.sh

export ds_importer="${ds_importer:-ldc93s1}"
export ds_train_batch_size="${ds_train_batch_size:-1}"
export ds_dev_batch_size="${ds_dev_batch_size:-1}"
export ds_test_batch_size="${ds_test_batch_size:-1}"
export ds_n_hidden="${ds_n_hidden:-494}"
export ds_epochs="${ds_epochs:-50}"
export ds_checkpoint_dir="${ds_checkpoint_dir:-$root/checkpoints/ldc93s1}"

exec .venv/bin/python -u DeepSpeech.py "$@"
