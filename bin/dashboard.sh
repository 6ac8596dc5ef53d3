#!/usr/bin/env bash
# The experiment dashboard on http://127.0.0.1:8501 (this machine only). Shows the runs under
# ds_logs_dir (default logs); extra arguments go to `streamlit run`, e.g. --server.port 8600.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash bin/setup-venv.sh
exec .venv/bin/deepspeech-dashboard "$@"  # dashboard/launch.py: streamlit run dashboard/app.py
