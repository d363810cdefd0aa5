#!/usr/bin/env bash
# scripts/stop-cluster.sh -- stop the cluster that scripts/start-cluster.sh
# started in RUN_DIR, and nothing else.
#
#   scripts/stop-cluster.sh [--dir RUN_DIR]          (default run/cluster)
#
# For each pid file in RUN_DIR (taskmanager-N.pid, jobmanager.pid, kafka.pid) whose
# process is still the weir binary of that role (checked in
# /proc/PID/cmdline, so a reused pid is never signalled), sends SIGTERM,
# waits up to 10 s for all of them to exit, then sends SIGKILL to the rest.
# Pid files of stopped processes and stale pid files are removed; logs stay.
set -euo pipefail

run_dir=run/cluster
grace=10

usage() {
    echo "usage: scripts/stop-cluster.sh [--dir RUN_DIR]      (default run/cluster)"
    echo "Stops the processes scripts/start-cluster.sh started in RUN_DIR: SIGTERM, then"
    echo "SIGKILL after 10 s."
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dir)
            [ $# -ge 2 ] || { echo "stop-cluster.sh: --dir needs a value" >&2; exit 2; }
            run_dir=$2; shift 2 ;;
        --dir=*) run_dir=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "stop-cluster.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

if [ ! -d "$run_dir" ]; then
    echo "stop-cluster.sh: no run directory $run_dir; nothing to stop"
    exit 0
fi

# running PID BINARY : true when PID is a live (not zombie) BINARY process
running() {
    local argv0
    IFS= read -r -d '' argv0 2>/dev/null <"/proc/$1/cmdline" || return 1
    [ "${argv0##*/}" = "$2" ] || return 1
    ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

pids=()
bins=()
files=()
for f in "$run_dir"/taskmanager-*.pid "$run_dir"/jobmanager.pid "$run_dir"/kafka.pid; do
    [ -e "$f" ] || continue
    case "${f##*/}" in
        jobmanager.pid) bin=weir-jobmanager ;;
        kafka.pid) bin=weir-kafka ;;
        *) bin=weir-taskmanager ;;
    esac
    pid=$(cat "$f" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]] && running "$pid" "$bin"; then
        pids+=("$pid")
        bins+=("$bin")
        files+=("$f")
    else
        echo "stop-cluster.sh: removing stale ${f##*/} (${pid:-empty} is not a running $bin)"
        rm -f "$f"
    fi
done

# a private PostgreSQL server (start-cluster.sh --postgres)
if [ -d "$run_dir/postgres" ] &&
    "$(dirname "$0")/postgres.sh" status --dir "$run_dir/postgres" >/dev/null 2>&1; then
    "$(dirname "$0")/postgres.sh" stop --dir "$run_dir/postgres" >/dev/null 2>&1 &&
        echo "stopped PostgreSQL in $run_dir/postgres"
fi

if [ ${#pids[@]} -eq 0 ]; then
    echo "stop-cluster.sh: no cluster running in $run_dir"
    exit 0
fi

for i in "${!pids[@]}"; do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
done

for _ in $(seq 1 $((grace * 10))); do
    left=0
    for i in "${!pids[@]}"; do
        running "${pids[$i]}" "${bins[$i]}" && left=$((left + 1))
    done
    [ "$left" -eq 0 ] && break
    sleep 0.1
done

killed=0
for i in "${!pids[@]}"; do
    if running "${pids[$i]}" "${bins[$i]}"; then
        echo "stop-cluster.sh: ${bins[$i]} ${pids[$i]} did not exit within ${grace}s; killing it" >&2
        kill -KILL "${pids[$i]}" 2>/dev/null || true
        killed=$((killed + 1))
    fi
done
# SIGKILL cannot be ignored; give the kernel a moment to tear them down
for _ in $(seq 1 20); do
    left=0
    for i in "${!pids[@]}"; do
        running "${pids[$i]}" "${bins[$i]}" && left=$((left + 1))
    done
    [ "$left" -eq 0 ] && break
    sleep 0.1
done
rm -f "${files[@]}"
if [ "$killed" -gt 0 ]; then
    echo "stopped ${#pids[@]} processes in $run_dir ($killed had to be killed)"
else
    echo "stopped ${#pids[@]} processes in $run_dir"
fi
