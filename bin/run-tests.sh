#!/usr/bin/env bash
# The project's test command: lint, format check and the whole test suite.
# Extra arguments go to pytest (e.g. bin/run-tests.sh -k towers).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash bin/setup-venv.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
