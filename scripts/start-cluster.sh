#!/usr/bin/env bash
# scripts/start-cluster.sh -- start a local weir cluster: one job manager and
# N task managers with S slots each, on this machine.
#
#   scripts/start-cluster.sh [--taskmanagers N] [--slots S] [--rest-port P] [--dir RUN_DIR]
#
# Uses the binaries in $WEIR_BUILD_DIR (default: build/ of this checkout) and
# builds them first when they are missing. Everything about the cluster
# lives in RUN_DIR (default run/cluster):
#
#   jobmanager.pid  taskmanager-1.pid ...   one pid per process
#   jobmanager.log  taskmanager-1.log ...   their logs (appended)
#   ports                                   the job manager's bound ports
#   state/tm-1 ...                          each task manager's keyed state
#   cluster.env                             WEIR_REST=..., WEIR_RUN_DIR=..., WEIR_JOBMANAGER=...
#
# The job manager listens on 127.0.0.1: REST on P (default 8081, 0 = any
# free port), RPC on a free port. The script returns once every task manager
# is registered (GET /overview), printing the dashboard URL; if anything
# fails to come up it shows the logs, stops what it started and exits 1.
# scripts/stop-cluster.sh --dir RUN_DIR stops exactly these processes.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
taskmanagers=2
slots=2
rest_port=8081
run_dir=run/cluster
startup_timeout=30

usage() {
    echo "usage: scripts/start-cluster.sh [--taskmanagers N] [--slots S] [--rest-port P] [--dir RUN_DIR]"
    echo "Starts one job manager and N task managers on this machine (see docs/operations.md)."
    echo
    echo "  --taskmanagers N   task managers to start (default 2)"
    echo "  --slots S          slots per task manager (default 2)"
    echo "  --rest-port P      REST/dashboard port (default 8081; 0 = any free port)"
    echo "  --dir RUN_DIR      pid files, logs and cluster.env (default run/cluster)"
}

die() {
    echo "start-cluster.sh: $*" >&2
    exit 1
}

need_value() {
    [ $# -ge 2 ] || { echo "start-cluster.sh: $1 needs a value" >&2; usage >&2; exit 2; }
}

while [ $# -gt 0 ]; do
    case "$1" in
        --taskmanagers) need_value "$@"; taskmanagers=$2; shift 2 ;;
        --taskmanagers=*) taskmanagers=${1#*=}; shift ;;
        --slots) need_value "$@"; slots=$2; shift 2 ;;
        --slots=*) slots=${1#*=}; shift ;;
        --rest-port) need_value "$@"; rest_port=$2; shift 2 ;;
        --rest-port=*) rest_port=${1#*=}; shift ;;
        --dir) need_value "$@"; run_dir=$2; shift 2 ;;
        --dir=*) run_dir=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "start-cluster.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

in_range() { [[ $1 =~ ^[0-9]{1,5}$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
in_range "$taskmanagers" 1 64 || die "--taskmanagers must be 1..64, not '$taskmanagers'"
in_range "$slots" 1 1024 || die "--slots must be 1..1024, not '$slots'"
in_range "$rest_port" 0 65535 || die "--rest-port must be 0..65535, not '$rest_port'"
command -v curl >/dev/null || die "curl is missing (scripts/deps.sh installs it)"

# ---- binaries ------------------------------------------------------------

build_dir="${WEIR_BUILD_DIR:-$root/build}"
jm_bin="$build_dir/runtime/jobmanager/weir-jobmanager"
tm_bin="$build_dir/runtime/taskmanager/weir-taskmanager"
if [ ! -x "$jm_bin" ] || [ ! -x "$tm_bin" ]; then
    echo "start-cluster.sh: building the binaries in $build_dir" >&2
    if [ ! -f "$build_dir/build.ninja" ]; then
        meson setup "$build_dir" "$root" >/dev/null
    fi
    ninja -C "$build_dir" runtime/jobmanager/weir-jobmanager \
        runtime/taskmanager/weir-taskmanager runtime/cli/jobctl >/dev/null
fi
if [ ! -x "$jm_bin" ] || [ ! -x "$tm_bin" ]; then
    die "no binaries in $build_dir"
fi

# ---- run directory -------------------------------------------------------

mkdir -p "$run_dir"
run_dir="$(cd "$run_dir" && pwd)"

# alive PIDFILE BINARY : true when PIDFILE names a running BINARY process
alive() {
    local pid argv0
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    IFS= read -r -d '' argv0 2>/dev/null <"/proc/$pid/cmdline" || return 1
    [ "${argv0##*/}" = "$2" ] || return 1
    ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

if alive "$run_dir/jobmanager.pid" weir-jobmanager; then
    die "a cluster is already running in $run_dir; stop it first: scripts/stop-cluster.sh --dir $run_dir"
fi
for f in "$run_dir"/taskmanager-*.pid; do
    [ -e "$f" ] || continue
    if alive "$f" weir-taskmanager; then
        die "a task manager of an earlier cluster is still running ($f); stop it first: scripts/stop-cluster.sh --dir $run_dir"
    fi
done
rm -f "$run_dir"/jobmanager.pid "$run_dir"/taskmanager-*.pid "$run_dir/ports" "$run_dir/cluster.env"

started=()
fail() {
    echo "start-cluster.sh: $*" >&2
    for log in "$run_dir/jobmanager.log" "$run_dir"/taskmanager-*.log; do
        [ -f "$log" ] || continue
        echo "---- last lines of $log" >&2
        tail -n 20 "$log" >&2
    done
    for pid in "${started[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 1
    for pid in "${started[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -f "$run_dir"/jobmanager.pid "$run_dir"/taskmanager-*.pid
    exit 1
}

# ---- job manager ---------------------------------------------------------

stamp() { date '+%Y-%m-%d %H:%M:%S'; }
echo "---- $(stamp) start-cluster.sh: starting the job manager" >>"$run_dir/jobmanager.log"
"$jm_bin" --host 127.0.0.1 --rpc-port 0 --rest-port "$rest_port" \
    --ports-file "$run_dir/ports" </dev/null >>"$run_dir/jobmanager.log" 2>&1 &
jm_pid=$!
started+=("$jm_pid")
echo "$jm_pid" >"$run_dir/jobmanager.pid"

deadline=$((SECONDS + startup_timeout))
until [ -s "$run_dir/ports" ] && grep -q '^rest=' "$run_dir/ports"; do
    kill -0 "$jm_pid" 2>/dev/null || fail "the job manager exited (is port $rest_port in use?)"
    [ $SECONDS -lt $deadline ] || fail "the job manager did not report its ports within ${startup_timeout}s"
    sleep 0.1
done
rpc_port=$(sed -n 's/^rpc=\([0-9]*\)$/\1/p' "$run_dir/ports")
rest_port=$(sed -n 's/^rest=\([0-9]*\)$/\1/p' "$run_dir/ports")
if [ -z "$rpc_port" ] || [ -z "$rest_port" ]; then
    fail "cannot read $run_dir/ports"
fi
rest="http://127.0.0.1:$rest_port"

# ---- task managers -------------------------------------------------------

for i in $(seq 1 "$taskmanagers"); do
    log="$run_dir/taskmanager-$i.log"
    echo "---- $(stamp) start-cluster.sh: starting tm-$i" >>"$log"
    "$tm_bin" --jobmanager "127.0.0.1:$rpc_port" --slots "$slots" --id "tm-$i" \
        --state-dir "${WEIR_STATE_DIR:-$run_dir/state}/tm-$i" </dev/null >>"$log" 2>&1 &
    started+=("$!")
    echo "$!" >"$run_dir/taskmanager-$i.pid"
done

# ---- wait for registration -----------------------------------------------

registered=-1
until [ "$registered" = "$taskmanagers" ]; do
    for pid in "${started[@]}"; do
        kill -0 "$pid" 2>/dev/null || fail "process $pid exited during startup"
    done
    [ $SECONDS -lt $deadline ] ||
        fail "only $registered of $taskmanagers task managers registered within ${startup_timeout}s"
    sleep 0.2
    overview=$(curl -fsS --noproxy '*' --max-time 2 "$rest/overview" 2>/dev/null || true)
    registered=$(printf '%s' "$overview" |
        sed -n 's/.*"taskmanagers"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p')
    registered=${registered:--1}
done

{
    printf 'WEIR_REST=%q\n' "$rest"
    printf 'WEIR_RUN_DIR=%q\n' "$run_dir"
    printf 'WEIR_JOBMANAGER=%q\n' "127.0.0.1:$rpc_port"
    printf 'WEIR_BUILD_DIR=%q\n' "$build_dir"
} >"$run_dir/cluster.env"

echo "weir cluster: 1 job manager, $taskmanagers task managers x $slots slots"
echo "  run dir:  $run_dir (logs, pid files, cluster.env)"
echo "  rest:     $rest   (export WEIR_REST=$rest for jobctl)"
echo "  stop:     scripts/stop-cluster.sh --dir $run_dir"
echo "dashboard: $rest/"
