#!/usr/bin/env bash
# Train on your own CSV data sets (columns wav_filename,wav_filesize,transcript; see
# importers/csv.py), e.g.
#   ds_train_files=my/train.csv ds_dev_files=my/dev.csv ds_test_files=my/test.csv bin/run-csv.sh
# Relative wav_filename paths are resolved against each CSV's folder. The values below are the
# program's defaults except the checkpoint folder; any ds_* variable set in the environment
# overrides them (ds_validation_step=1 to evaluate the dev set every epoch, for example).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash bin/setup-venv.sh

export ds_importer="${ds_importer:-csv}"
export ds_checkpoint_dir="${ds_checkpoint_dir:-$root/checkpoints/csv}"

exec .venv/bin/python -u DeepSpeech.py "$@"
