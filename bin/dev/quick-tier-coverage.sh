#!/usr/bin/env bash
# Which of the project's modules the quick test tier exercises: runs it under coverage.py (in
# this process only; what the tests run in child processes is not counted, so the figures are
# a lower bound) and lists every module of util/, dashboard/, importers/ and DeepSpeech.py with
# the share of its lines run. Fails when a module is not touched at all.
#   bin/dev/quick-tier-coverage.sh [pytest arguments]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bash bin/setup-venv.sh
data="$(mktemp -t deepspeech-coverage.XXXXXX)"
trap 'rm -f "$data"' EXIT
.venv/bin/python -m coverage run --data-file="$data" \
  --include='util/*,dashboard/*,importers/*,DeepSpeech.py' -m pytest -q -m "not slow" "$@"
.venv/bin/python -m coverage report --data-file="$data" --sort=cover
.venv/bin/python - "$data" <<'PY'
import glob
import os
import sys

import coverage

data = coverage.CoverageData(sys.argv[1])
data.read()
measured = {f for f in data.measured_files() if data.lines(f)}
modules = [*glob.glob("util/**/*.py", recursive=True), *glob.glob("dashboard/*.py"),
           *glob.glob("importers/*.py"), "DeepSpeech.py"]
untouched = sorted(m for m in modules if os.path.abspath(m) not in measured)
if untouched:
    print("not touched by the quick tier:", ", ".join(untouched))
    sys.exit(1)
print(f"all {len(modules)} modules touched by the quick tier")
PY
