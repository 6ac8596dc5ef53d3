#!/usr/bin/env bash
# How well the small-corpus recipe carries over to a synthesiser it never heard:
#
#   bin/dev/benchmark-accuracy.sh OUT [--test-engine flite] [--budget 1500]
#                             [--train 9000 --dev 300 --test 400]
#
# Builds the corpus kit in OUT/kit (bin/dev/make-corpus-kit.py: open English sentences, the test
# set spoken only by --test-engine's voices; kept and reused when OUT/kit/kit.json exists),
# a language model of general English plus the training transcripts (OUT/lm.arpa), trains
# bin/train-csv.sh on the kit with a time budget of --budget seconds (its checkpoints, logs and
# export in OUT), then prints one table (OUT/table.md, OUT/table.json): WER and CER on dev and
# test with greedy decoding, the beam search, the language model (weights chosen on dev) and
# spelling correction (bin/dev/accuracy-table.py), and PocketSphinx on the same test set when
# POCKETSPHINX_PYTHON (default: .venv's Python) can import pocketsphinx.
# Needs the kit's engines and text (bin/dev/make-corpus-kit.py lists the festvox-* voice packages):
# apt-get install espeak-ng flite festival festvox-... fortunes (fortunes-min holds too few
# sentences); the piper voice comes with .venv.
set -euo pipefail
usage="usage: bin/dev/benchmark-accuracy.sh OUT [--test-engine ENGINE] [--budget SECONDS] [--train N --dev N --test N]"
if [ "$#" -lt 1 ] || [[ "$1" == --* ]]; then
  echo "$usage" >&2
  exit 2
fi
mkdir -p "$1"
out="$(cd "$1" && pwd)"
shift
engine=flite budget=1500 train=9000 dev=300 test=400
while [ "$#" -gt 0 ]; do
  case "$1" in
    --test-engine) engine="$2" ;;
    --budget) budget="$2" ;;
    --train) train="$2" ;;
    --dev) dev="$2" ;;
    --test) test="$2" ;;
    *)
      echo "$usage" >&2
      exit 2
      ;;
  esac
  shift 2
done
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bash bin/setup-venv.sh

kit="$out/kit"
if [ ! -f "$kit/kit.json" ]; then
  echo "Building the corpus kit in $kit (test engine $engine) ..."
  .venv/bin/python bin/dev/make-corpus-kit.py "$kit" --test-engine "$engine" --train "$train" \
    --dev "$dev" --test "$test"
fi
.venv/bin/python bin/make-arpa.py --english "$kit/train.csv" -o "$out/lm.arpa"

started=$(date +%s)
ds_max_train_seconds="$budget" ds_checkpoint_dir="$out/checkpoints" ds_logs_dir="$out/logs" \
  ds_export_dir="$out/export" ds_lm_path="$out/lm.arpa" \
  bin/train-csv.sh "$kit/train.csv" "$kit/dev.csv" "$kit/test.csv" | tee "$out/train.log"
echo "Training, tuning and testing took $(($(date +%s) - started)) s"

.venv/bin/python - "$kit/kit.json" "$budget" >"$out/table.md" <<'EOF'
import json
import sys

kit = json.load(open(sys.argv[1]))
voices = kit["voices"]
print(f"Kit: test engine {kit['test_engine']}; train {', '.join(voices['train'])}; dev "
      f"{', '.join(voices['dev'])}; test {', '.join(voices['test'])}; budget {sys.argv[2]} s.")
EOF
.venv/bin/python bin/dev/accuracy-table.py --model "$out/export" --dev "$kit/dev.csv" \
  --test "$kit/test.csv" --pocketsphinx "${POCKETSPHINX_PYTHON:-auto}" \
  --save-json "$out/table.json" >>"$out/table.md"
cat "$out/table.md"
