#!/usr/bin/env bash
# Distributed training on this machine: 1 parameter server and N workers (default 2), real
# processes talking gRPC on free localhost ports, as on several machines (docs/distributed.md).
# Trains LDC93S1 until it is recognised, or whatever the ds_* variables in the
# environment say (ds_importer=csv ds_train_files=... for a CSV set), then stops every process.
#   bin/run-cluster-local.sh        # 1 parameter server + 2 workers
#   bin/run-cluster-local.sh 1      # 1 parameter server + 1 worker
#   bin/run-cluster-local.sh 2 --epochs 5   # flags go to every process
# The chief's output (worker 0) is shown; each process's output is kept in
# <chief's run folder>/processes/{ps0,worker0,worker1,...}.log. Exit status: the chief's.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash bin/setup-venv.sh

workers=2
if [ "$#" -gt 0 ] && [[ "$1" != --* ]]; then
  workers="$1"
  shift
fi
if ! [[ "$workers" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [WORKERS] [--NAME=VALUE ...]   (WORKERS a whole number >= 1, default 2)" >&2
  exit 2
fi
flags=("$@")  # --NAME=VALUE flags, given to every process

export ds_importer="${ds_importer:-ldc93s1}"
export ds_n_hidden="${ds_n_hidden:-494}"
export ds_epochs="${ds_epochs:-50}"
export ds_checkpoint_dir="${ds_checkpoint_dir:-$root/checkpoints/cluster-$ds_importer}"
export ds_logs_dir="${ds_logs_dir:-logs}"
export PYTHONUNBUFFERED=1
py="$root/.venv/bin/python"

# Free ports: bind to port 0 and let the system choose (released just before the servers
# take them).
read -r -a ports <<<"$("$py" - "$((workers + 1))" <<'EOF'
import socket
import sys

sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))
EOF
)"
export ds_ps_hosts="127.0.0.1:${ports[0]}"
hosts=()
for port in "${ports[@]:1}"; do hosts+=("127.0.0.1:$port"); done
ds_worker_hosts="$(IFS=,; echo "${hosts[*]}")"
export ds_worker_hosts

staging="$ds_logs_dir/.cluster-$(date +%Y%m%d-%H%M%S)-$$"  # hidden: not a run folder
mkdir -p "$staging"
pids=()
names=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 2
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap 'stop_all' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() {  # start JOB INDEX: one process of the cluster, its output in the staging folder
  ds_job_name="$1" ds_task_index="$2" "$py" -u DeepSpeech.py "${flags[@]}" \
    >"$staging/$1$2.log" 2>&1 &
  pids+=("$!")
  names+=("$1$2")
}

echo "Cluster: parameter server $ds_ps_hosts; workers $ds_worker_hosts (worker 0 is the chief)"
start ps 0
for ((i = workers - 1; i >= 0; i--)); do start worker "$i"; done
chief="${pids[-1]}"
# Show the chief's output while it runs.
tail -n +1 -f --pid="$chief" "$staging/worker0.log" &
tailer=$!
status=0
wait "$chief" || status=$?
wait "$tailer" 2>/dev/null || true

# The others end by themselves once the chief has ended the run (a parameter server when the
# chief tells it, within ds_worker_timeout when the chief is gone); stop any that do not.
deadline=$((SECONDS + ${ds_worker_timeout:-60} + 30))
summary=()
for i in "${!pids[@]}"; do
  pid="${pids[$i]}"
  if [ "$pid" = "$chief" ]; then
    summary+=("${names[$i]} $status")
    continue
  fi
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "warning: ${names[$i]} did not stop by itself; stopping it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  code=0
  wait "$pid" 2>/dev/null || code=$?
  summary+=("${names[$i]} $code")
done
trap - EXIT
echo "Exit status: $(IFS=,; echo "${summary[*]}" | sed 's/,/, /g')"

run_dir="$(sed -n 's/^Towers: .*\. Logs: //p' "$staging/worker0.log" | head -n 1)"
if [ -n "$run_dir" ] && [ -d "$run_dir" ]; then
  mv "$staging" "$run_dir/processes"
  echo "The output of every process is in $run_dir/processes/"
else
  echo "The output of every process is in $staging/"
fi
exit "$status"
