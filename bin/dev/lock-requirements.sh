#!/usr/bin/env bash
# Refresh the lock files from requirements.txt and requirements-nodeps.txt (needs the package
# registry): every package, direct and transitive, at one exact version, for Python 3.11 on
# x86-64 Linux.
#   requirements.lock      the CPU build (tensorflow-cpu), what bin/setup-venv.sh installs
#   requirements-gpu.lock  the same with TensorFlow's CUDA build (tensorflow[and-cuda]) in place
#                          of tensorflow-cpu: bin/setup-venv.sh --gpu
# pyctcdecode declares numpy<2 but runs on the numpy 2 that TensorFlow needs (see
# requirements-nodeps.txt): the resolver is told to keep requirements.txt's numpy.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

uv="$(command -v uv || true)"
if [ -z "$uv" ]; then
  python3.11 -m venv "$work/uv" && "$work/uv/bin/python" -m pip install --quiet uv
  uv="$work/uv/bin/uv"
fi
grep -E '^numpy==' requirements.txt >"$work/overrides.txt"
sed -E 's/^tensorflow-cpu==/tensorflow[and-cuda]==/' requirements.txt >"$work/requirements-gpu.txt"

lock() {  # lock OUTPUT REQUIREMENTS: resolve and write OUTPUT with its header
  local output="$1" requirements="$2"
  {
    echo "# Every package at an exact version, for Python 3.11 on x86-64 Linux; installed with"
    echo "# pip install --no-deps by bin/setup-venv.sh. Made by bin/dev/lock-requirements.sh from"
    echo "# requirements.txt and requirements-nodeps.txt: edit those, then run it again."
    "$uv" pip compile "$requirements" requirements-nodeps.txt --override "$work/overrides.txt" \
      --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header --no-annotate \
      --quiet
  } >"$work/out"
  mv "$work/out" "$output"
  echo "Wrote $output ($(grep -c '==' "$output") packages)"
}
lock requirements.lock requirements.txt
lock requirements-gpu.lock "$work/requirements-gpu.txt"
