#!/usr/bin/env bash
# Create .venv from the pinned requirements the first time (and again when requirements.txt or
# requirements-nodeps.txt changes). Source it or run it; afterwards .venv/bin/python is ready.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
want="$(cat "$root/requirements.txt" "$root/requirements-nodeps.txt" | sha256sum | cut -d' ' -f1)"

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

echo "Setting up $venv from requirements.txt (once; about a minute) ..."
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/requirements.txt"
# pyctcdecode declares numpy<2 but works with numpy 2: without its declared dependencies.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
  -r "$root/requirements-nodeps.txt"
echo "$want" >"$stamp"
echo "Environment ready: $venv"
