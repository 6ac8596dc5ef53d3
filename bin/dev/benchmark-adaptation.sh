#!/usr/bin/env bash
# How much a trained model gains from minutes of a new voice's speech (fine-tuning):
#
#   bin/dev/benchmark-adaptation.sh OUT [--test-engine flite] [--base-budget 1500]
#                             [--adapt-budget 600] [--train 9000 --dev 300 --test 400]
#                             [--adapt 300 --adapt-dev 50] [--tag NAME --tune "FLAGS"]
#                             [--rehearse N]
#
# Builds the corpus kit in OUT/kit with adaptation sets (bin/dev/make-corpus-kit.py --adapt:
# other sentences spoken by the test engine's voices, which no other set hears), or reuses it.
# Then three models, each with bin/train-csv.sh:
#   base        the recipe on the kit's training set (the other engines), --base-budget seconds;
#   scratch     the recipe on the adaptation set alone, --adapt-budget seconds;
#   fine-tuned  the base fine-tuned on the adaptation set (--load_checkpoint_dir, train-csv.sh's
#               fine-tuning defaults), --adapt-budget seconds.
# Each is tested on the kit's test set (unseen sentences, the held-out engine) with greedy
# decoding, the beam search and the language model (one model for all three: general English
# plus the training and adaptation transcripts; its weights chosen on the adaptation dev set),
# by bin/dev/accuracy-table.py (the runs themselves skip their own test pass). Prints one table
# (OUT/adaptation.md); a model already exported in OUT is reused, so a rerun only redoes what is
# missing. --tag NAME --tune "FLAGS" adds a fine-tuning variant in OUT/fine-tuned-NAME (e.g.
# --tag lr1e-3 --tune "--learning_rate 0.001"); the table lists every variant made so far.
# --rehearse N (with --tag): that variant trains on the adaptation set plus N sentences of the
# base's training set (a fixed draw), so that it keeps hearing the words and voices it had.
# The language model is built once (OUT/lm.arpa) and reused.
set -euo pipefail
usage="usage: bin/dev/benchmark-adaptation.sh OUT [--test-engine ENGINE] [--base-budget S] [--adapt-budget S] [--train N --dev N --test N --adapt N --adapt-dev N]"
if [ "$#" -lt 1 ] || [[ "$1" == --* ]]; then
  echo "$usage" >&2
  exit 2
fi
mkdir -p "$1"
out="$(cd "$1" && pwd)"
shift
engine=flite base_budget=1500 adapt_budget=600 train=9000 dev=300 test=400 adapt=300 adapt_dev=50
tag="" tune="" rehearse=0
# The LM weights are chosen on the adaptation dev set; a fine-tuned model wants a lighter LM
# than the recipe's (alpha 0.3, the lowest of bin/dev/accuracy-table.py's grid, won for every
# model), so the grid goes lower here.
alphas=0.1,0.2,0.3,0.5,0.8,1.2
while [ "$#" -gt 0 ]; do
  case "$1" in
    --test-engine) engine="$2" ;;
    --base-budget) base_budget="$2" ;;
    --adapt-budget) adapt_budget="$2" ;;
    --train) train="$2" ;;
    --dev) dev="$2" ;;
    --test) test="$2" ;;
    --adapt) adapt="$2" ;;
    --adapt-dev) adapt_dev="$2" ;;
    --tag) tag="$2" ;;
    --tune) tune="$2" ;;
    --rehearse) rehearse="$2" ;;
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
  echo "Building the corpus kit in $kit (test engine $engine, adaptation sets) ..."
  .venv/bin/python bin/dev/make-corpus-kit.py "$kit" --test-engine "$engine" --train "$train" \
    --dev "$dev" --test "$test" --adapt "$adapt" --adapt-dev "$adapt_dev"
fi
if [ ! -f "$kit/adapt.csv" ] || [ ! -f "$kit/adapt_dev.csv" ]; then
  echo "error: $kit has no adaptation sets (adapt.csv, adapt_dev.csv): build the kit with --adapt and --adapt-dev, or use another OUT" >&2
  exit 1
fi
if [ ! -f "$out/lm.arpa" ]; then
  .venv/bin/python bin/make-arpa.py --english "$kit/train.csv" "$kit/adapt.csv" -o "$out/lm.arpa"
fi

train_model() { # NAME BUDGET TRAIN DEV [FLAGS...]: bin/train-csv.sh into OUT/NAME, unless exported
  local name="$1" budget="$2" train_csv="$3" dev_csv="$4"
  shift 4
  if [ -f "$out/$name/export/output_graph.pb" ]; then
    echo "Reusing $out/$name/export"
    return
  fi
  local started
  started=$(date +%s)
  ds_max_train_seconds="$budget" ds_checkpoint_dir="$out/$name/checkpoints" \
    ds_logs_dir="$out/logs" ds_export_dir="$out/$name/export" ds_remove_export=1 \
    ds_lm_path="$out/lm.arpa" ds_test=0 ds_lm_tune=0 \
    bin/train-csv.sh "$train_csv" "$dev_csv" "$kit/test.csv" "$@" | tee "$out/$name.log"
  echo "$name: training, tuning and testing took $(($(date +%s) - started)) s"
}
train_model base "$base_budget" "$kit/train.csv" "$kit/dev.csv"
train_model scratch "$adapt_budget" "$kit/adapt.csv" "$kit/adapt_dev.csv"
tuned="fine-tuned${tag:+-$tag}"
adapt_train="$kit/adapt.csv"
if [ "$rehearse" != 0 ]; then
  if [ -z "$tag" ]; then
    echo "error: --rehearse makes a variant: give it a --tag" >&2
    exit 2
  fi
  adapt_train="$out/adapt-rehearse-$rehearse.csv"
  .venv/bin/python - "$kit" "$rehearse" "$adapt_train" <<'EOF'
import csv
import os
import random
import sys

kit, count, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def rows(name):
    with open(os.path.join(kit, name), encoding="utf-8") as csv_file:
        return list(csv.DictReader(csv_file))


train = rows("train.csv")
random.Random(0).shuffle(train)
chosen = rows("adapt.csv") + train[:count]
with open(path, "w", newline="", encoding="utf-8") as csv_file:
    writer = csv.DictWriter(csv_file, fieldnames=list(chosen[0]))
    writer.writeheader()
    for row in chosen:
        writer.writerow({**row, "wav_filename": os.path.join(kit, row["wav_filename"])})
print(f"{path}: the adaptation set and {min(count, len(train))} training sentences")
EOF
fi
# shellcheck disable=SC2086 # --tune holds several flags
train_model "$tuned" "$adapt_budget" "$adapt_train" "$kit/adapt_dev.csv" \
  --load_checkpoint_dir "$out/base/checkpoints" $tune
if [ -n "$tune" ] || [ "$rehearse" != 0 ]; then
  flags="$tune"
  if [ "$rehearse" != 0 ]; then flags="${flags:+$flags }--rehearse $rehearse"; fi
  echo "$flags" >"$out/$tuned.flags"
fi

for name in base scratch "$tuned"; do
  if [ -f "$out/$name.json" ] && [ "$out/$name.json" -nt "$out/$name/export/output_graph.pb" ]; then
    continue
  fi
  .venv/bin/python bin/dev/accuracy-table.py --model "$out/$name/export" --dev "$kit/adapt_dev.csv" \
    --test "$kit/test.csv" --lm "$out/lm.arpa" --pocketsphinx off --alphas "$alphas" --save-json "$out/$name.json" \
    >"$out/$name.md"
done
.venv/bin/python - "$out" "$base_budget" "$adapt_budget" >"$out/adaptation.md" <<'EOF'
import csv
import json
import os
import sys

import soundfile

out, base_budget, adapt_budget = sys.argv[1:]
kit = json.load(open(os.path.join(out, "kit", "kit.json")))


def minutes(csv_name):
    with open(os.path.join(out, "kit", csv_name), encoding="utf-8") as csv_file:
        rows = list(csv.DictReader(csv_file))
    seconds = sum(soundfile.info(os.path.join(out, "kit", r["wav_filename"])).duration for r in rows)
    return len(rows), seconds / 60


adapt_n, adapt_min = minutes("adapt.csv")
adapt_dev_n, adapt_dev_min = minutes("adapt_dev.csv")
voices = kit["voices"]
print(
    f"Kit: test engine {kit['test_engine']} ({', '.join(voices['test'])}); base trained on "
    f"{', '.join(voices['train'])} for {base_budget} s. Adaptation data: {adapt_n} utterances, "
    f"{adapt_min:.1f} min (dev {adapt_dev_n}, {adapt_dev_min:.1f} min) of the test voices, other "
    f"sentences; scratch and fine-tuned trained {adapt_budget} s on it."
)
print()
print("| model | greedy WER | greedy CER | beam WER | beam CER | +LM WER | +LM CER |")
print("|---|---|---|---|---|---|---|")
tuned = sorted(n[:-5] for n in os.listdir(out) if n.startswith("fine-tuned") and n.endswith(".json"))
for name in ("base", "scratch", *tuned):
    rows = {r["decoding"]: r for r in json.load(open(os.path.join(out, f"{name}.json")))["rows"]}
    flags_path = os.path.join(out, f"{name}.flags")
    if os.path.exists(flags_path):
        name += f" (`{open(flags_path).read().strip()}`)"
    cells = []
    for stage in ("greedy", "beam", "beam + LM"):
        row = rows.get(stage, {})
        cells += [f"{row[k]:.3f}" if row.get(k) is not None else "" for k in ("test_wer", "test_cer")]
    print(f"| {name} | {' | '.join(cells)} |")
EOF
cat "$out/adaptation.md"
