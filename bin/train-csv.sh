#!/usr/bin/env bash
# Train on your own small corpus with the settings that worked best for one on a CPU:
#
#   bin/train-csv.sh TRAIN.csv DEV.csv TEST.csv
#
# CSV files as for ds_importer=csv (wav_filename,wav_filesize,transcript). The recipe: width
# 256, learning rate 0.002 falling linearly to a twentieth of it by the end of the time budget
# or of the epochs (ds_lr_decay=linear), batches of 16 utterances of similar length (shuffled
# from the second epoch on), augmentation (ds_augment=on), each MFCC coefficient normalised on
# its own over the frames that are not silence (ds_feature_norm=speech), validation every
# epoch with the best-dev checkpoint kept and tested (its dev WER from the beam search alone,
# so that more of a time budget trains), early stopping, and decoding into words:
# sentence-level spelling correction and a language-model beam search with ds_lm_path or,
# without it, with a model of
# general English plus the training transcripts (bin/make-arpa.py --english; with another
# alphabet, a trigram model of the transcripts; TRAIN_LM=0 leaves it out), its alpha and beta
# chosen on the dev set after training (ds_lm_tune=1); matrix products in bfloat16 where the
# CPU has it (ds_bfloat16=auto: more epochs in the same time).
#
# Any ds_* variable set in the environment, or --NAME=VALUE flag after the CSV files, overrides
# the recipe, e.g.
#   ds_max_train_seconds=1500 ds_lm_path=my.arpa bin/train-csv.sh train.csv dev.csv test.csv
#   bin/train-csv.sh train.csv dev.csv test.csv --epochs 20
# Checkpoints go to checkpoints/train-csv (ds_checkpoint_dir), a later run resumes there; logs
# to logs/ (ds_logs_dir). See docs/training.md, "The recipe for a small corpus".
#
# Fine-tuning a trained model on your corpus (your voices, your words):
#   bin/train-csv.sh train.csv dev.csv test.csv --load_checkpoint_dir BASE_CHECKPOINTS
# takes the model in BASE_CHECKPOINTS (only read) with the fine-tuning defaults: learning rate
# 0.0005, a budget of 600 s, the new model in checkpoints/fine-tune. Add
# --drop_source_layers 1 when your alphabet differs from the base model's.
set -euo pipefail
if [ "$#" -lt 3 ] || [[ "$1" == --* ]] || [[ "$2" == --* ]] || [[ "$3" == --* ]]; then
  echo "usage: bin/train-csv.sh TRAIN.csv DEV.csv TEST.csv [--NAME=VALUE ...]" >&2
  exit 2
fi
for csv_file in "$1" "$2" "$3"; do
  if [ ! -f "$csv_file" ]; then
    echo "error: no such CSV file: $csv_file" >&2
    exit 2
  fi
done
absolute() { (cd "$(dirname "$1")" && echo "$(pwd)/$(basename "$1")"); }
train="$(absolute "$1")"
dev="$(absolute "$2")"
test="$(absolute "$3")"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash bin/setup-venv.sh

export ds_importer=csv
export ds_train_files="$train" ds_dev_files="$dev" ds_test_files="$test"
# shellcheck source=bin/recipe.sh
source "$root/bin/recipe.sh" "${@:4}"
if [ -n "$RECIPE_SOURCE_MODEL" ]; then  # fine-tuning: the new model in a folder of its own
  export ds_checkpoint_dir="${ds_checkpoint_dir:-$root/checkpoints/fine-tune}"
fi
export ds_checkpoint_dir="${ds_checkpoint_dir:-$root/checkpoints/train-csv}"

if [ -z "${ds_lm_path:-}" ] && [ "${TRAIN_LM:-1}" != "0" ]; then
  mkdir -p "$ds_checkpoint_dir"
  if [ -n "${ds_alphabet_config_path:-}" ]; then
    lm="$ds_checkpoint_dir/train-transcripts.arpa"
    .venv/bin/python bin/make-arpa.py "$train" -o "$lm" --order 3 \
      --alphabet "$ds_alphabet_config_path"
  else
    lm="$ds_checkpoint_dir/english-and-transcripts.arpa"
    .venv/bin/python bin/make-arpa.py --english "$train" -o "$lm"
  fi
  export ds_lm_path="$lm"
fi

shift 3
exec .venv/bin/python -u DeepSpeech.py "$@"  # flags after the CSV files override the recipe
