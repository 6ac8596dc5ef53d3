#!/usr/bin/env bash
# Train a model for the language of a Common Voice release, as it is downloaded:
#
#   bin/run-commonvoice.sh DIR [--NAME=VALUE ...]
#
# DIR is the release's language folder (cv-corpus-<version>/<locale>/), a folder holding one,
# or the release's .tar.gz (unpacked once, next to it). The small-corpus recipe of
# bin/train-csv.sh (bin/recipe.sh), with an alphabet made from the training sentences
# (bin/make-alphabet.py; ds_alphabet_config_path to use your own) and a trigram language model
# of them (bin/make-arpa.py; ds_lm_path for your own, TRAIN_LM=0 for none). ds_cv_sets=validated
# trains on all of validated.tsv split by speaker instead of the release's train/dev/test.tsv.
# Any ds_* variable set in the environment, or --NAME=VALUE flag after DIR, overrides the
# recipe. Checkpoints go to checkpoints/commonvoice-<locale> (ds_checkpoint_dir), where a later
# run resumes; logs to logs/.
set -euo pipefail
if [ "$#" -lt 1 ] || [[ "$1" == --* ]]; then
  echo "usage: bin/run-commonvoice.sh DIR [--NAME=VALUE ...]" >&2
  exit 2
fi
if [ ! -e "$1" ]; then
  echo "error: no such folder or archive: $1" >&2
  exit 2
fi
dataset="$(cd "$(dirname "$1")" && echo "$(pwd)/$(basename "$1")")"
shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash bin/setup-venv.sh

export ds_importer=commonvoice
export ds_dataset_path="$dataset"
# The language folder (unpacking an archive once) and its training sentences, as the run
# will read them.
folder="$(.venv/bin/python -c 'import sys; from importers.commonvoice import language_folder
try:
    print(language_folder(sys.argv[1]))
except OSError as error:
    sys.exit(f"error: {error}")' "$dataset")"
locale="$(basename "$folder")"
export ds_checkpoint_dir="${ds_checkpoint_dir:-$root/checkpoints/commonvoice-$locale}"
mkdir -p "$ds_checkpoint_dir"
sentences="$ds_checkpoint_dir/train-sentences.txt"  # one a line
.venv/bin/python - "$dataset" "${ds_cv_sets:-release}" "$sentences" <<'PY'
import sys

from importers.commonvoice import find_candidates
from util.data.feeding import DataOptions

dataset, cv_sets, output = sys.argv[1:]
train = find_candidates(dataset, ("train",), DataOptions(cv_sets=cv_sets))["train"]
with open(output, "w", encoding="utf-8") as lines:
    for candidate in train:
        lines.write(" ".join(candidate.transcript.decode("utf-8", "replace").split()) + "\n")
PY
if [ -z "${ds_alphabet_config_path:-}" ]; then
  export ds_alphabet_config_path="$ds_checkpoint_dir/alphabet.txt"
  .venv/bin/python bin/make-alphabet.py "$sentences" -o "$ds_alphabet_config_path"
fi
# shellcheck source=bin/recipe.sh
source "$root/bin/recipe.sh" "$@"
if [ -z "${ds_lm_path:-}" ] && [ "${TRAIN_LM:-1}" != "0" ]; then
  export ds_lm_path="$ds_checkpoint_dir/train-sentences.arpa"
  .venv/bin/python bin/make-arpa.py "$sentences" -o "$ds_lm_path" --order 3 \
    --alphabet "$ds_alphabet_config_path"
fi

exec .venv/bin/python -u DeepSpeech.py "$@"  # flags after DIR override the recipe
