#!/usr/bin/env bash
# Create .venv from the lock file the first time (and again when the lock changes); afterwards
# .venv/bin/python is ready. Every package is installed at the lock's exact version, without
# resolving anything (pip install --no-deps); bin/dev/lock-requirements.sh refreshes the locks.
#   bin/setup-venv.sh         the CPU build (requirements.lock), or the build .venv already has
#   bin/setup-venv.sh --gpu   TensorFlow's CUDA build (requirements-gpu.lock), for NVIDIA GPUs
#   bin/setup-venv.sh --cpu   back to the CPU build
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
variant_file="$venv/.deepspeech-build"

variant=""
for argument in "$@"; do
  case "$argument" in
    --gpu) variant=gpu ;;
    --cpu) variant=cpu ;;
    *)
      echo "usage: bin/setup-venv.sh [--gpu | --cpu]" >&2
      exit 2
      ;;
  esac
done
if [ -z "$variant" ]; then  # keep the build this .venv was made with
  variant="$(cat "$variant_file" 2>/dev/null || echo cpu)"
fi
lock="$root/requirements.lock"
[ "$variant" = gpu ] && lock="$root/requirements-gpu.lock"
want="$variant $(cat "$lock" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"  # the commands too

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python="$candidate"
      break
    fi
  done
fi
if [ -z "$python" ]; then
  echo "error: Python 3.11 is needed (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

echo "Setting up $venv from $(basename "$lock") (once; about a minute) ..."
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
if [ "$variant" = gpu ]; then  # one TensorFlow at a time
  "$venv/bin/python" -m pip uninstall --quiet --yes tensorflow-cpu >/dev/null 2>&1 || true
else
  "$venv/bin/python" -m pip uninstall --quiet --yes tensorflow >/dev/null 2>&1 || true
fi
# --no-deps: the lock lists every package; pyctcdecode's declared numpy<2 is not enforced
# (it runs on numpy 2, which TensorFlow needs; README, "Dependencies").
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$lock"
# The commands deepspeech-train, deepspeech-transcribe and deepspeech-dashboard (pyproject.toml),
# offline: setuptools is in the lock.
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
  --no-build-isolation --editable "$root" >"$venv/.editable-install.log" 2>&1; then
  cat "$venv/.editable-install.log" >&2
  exit 1
fi
echo "$variant" >"$variant_file"
echo "$want" >"$stamp"
echo "Environment ready: $venv ($variant build)"
