#!/usr/bin/env bash
# scripts/start-cluster.sh -- start a local weir cluster: one job manager and
# N task managers with S slots each, on this machine.
#
#   scripts/start-cluster.sh [--taskmanagers N] [--slots S] [--rest-port P] [--dir RUN_DIR]
#                            [--kafka BOOTSTRAP | --kafka-port P | --no-kafka] [--postgres]
#
# PostgreSQL: --postgres starts a private server for the cluster
# (scripts/postgres.sh: initdb into RUN_DIR/postgres, a free loopback port;
# stopped by stop-cluster.sh) and puts PG_DSN into cluster.env, which makes
# jobs/fraud-detection.yaml also write the flagged_transactions table.
#
# Kafka: by default the cluster gets its own development broker, weir-kafka
# (librdkafka's mock cluster: real protocol, in memory, about 5 MB kept per
# partition), on port 9092 or, when that is taken, a free port, with the
# example jobs' topics created (16 partitions each). --kafka BOOTSTRAP uses
# an existing Kafka cluster instead; --no-kafka starts none. The bootstrap
# address goes into cluster.env as KAFKA_BOOTSTRAP.
#
# Uses the binaries in $WEIR_BUILD_DIR (default: build/ of this checkout) and
# builds them first when they are missing. Everything about the cluster
# lives in RUN_DIR (default run/cluster):
#
#   jobmanager.pid  taskmanager-1.pid ...   one pid per process
#   jobmanager.log  taskmanager-1.log ...   their logs (appended)
#   ports                                   the job manager's bound ports
#   state/tm-1 ...                          each task manager's keyed state
#   checkpoints/<job id>/chk-<n>/           completed checkpoints ($WEIR_CHECKPOINT_DIR
#                                           elsewhere, e.g. a shared filesystem)
#   kafka.pid kafka.log                     the embedded broker, when started
#   cluster.env                             WEIR_REST=..., WEIR_RUN_DIR=..., WEIR_JOBMANAGER=...,
#                                           KAFKA_BOOTSTRAP=...
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
kafka=embedded
kafka_port=9092
postgres=false
kafka_topics=transactions,flagged-accounts,flagged-transactions,transactions-dead-letter,stocks-in,stocks-out

usage() {
    echo "usage: scripts/start-cluster.sh [--taskmanagers N] [--slots S] [--rest-port P] [--dir RUN_DIR]"
    echo "                                  [--kafka BOOTSTRAP | --kafka-port P | --no-kafka] [--postgres]"
    echo "Starts one job manager and N task managers on this machine (see docs/operations.md)."
    echo
    echo "  --taskmanagers N   task managers to start (default 2)"
    echo "  --slots S          slots per task manager (default 2)"
    echo "  --rest-port P      REST/dashboard port (default 8081; 0 = any free port)"
    echo "  --dir RUN_DIR      pid files, logs and cluster.env (default run/cluster)"
    echo "  --kafka BOOTSTRAP  use this Kafka cluster instead of starting weir-kafka"
    echo "  --kafka-port P     port of the embedded broker (default 9092, else a free one;"
    echo "                     0 = any free port)"
    echo "  --no-kafka         start no broker"
    echo "  --postgres         start a private PostgreSQL server too (PG_DSN in cluster.env)"
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
        --kafka) need_value "$@"; kafka=$2; shift 2 ;;
        --kafka=*) kafka=${1#*=}; shift ;;
        --kafka-port) need_value "$@"; kafka_port=$2; shift 2 ;;
        --kafka-port=*) kafka_port=${1#*=}; shift ;;
        --no-kafka) kafka=none; shift ;;
        --postgres) postgres=true; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "start-cluster.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

in_range() { [[ $1 =~ ^[0-9]{1,5}$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
in_range "$taskmanagers" 1 64 || die "--taskmanagers must be 1..64, not '$taskmanagers'"
in_range "$slots" 1 1024 || die "--slots must be 1..1024, not '$slots'"
in_range "$rest_port" 0 65535 || die "--rest-port must be 0..65535, not '$rest_port'"
in_range "$kafka_port" 0 65535 || die "--kafka-port must be 0..65535, not '$kafka_port'"
[ -n "$kafka" ] || die "--kafka needs a bootstrap address (HOST:PORT[,...])"
command -v curl >/dev/null || die "curl is missing (scripts/deps.sh installs it)"

# ---- binaries ------------------------------------------------------------

build_dir="${WEIR_BUILD_DIR:-$root/build}"
jm_bin="$build_dir/runtime/jobmanager/weir-jobmanager"
tm_bin="$build_dir/runtime/taskmanager/weir-taskmanager"
kafka_bin="$build_dir/runtime/kafka/weir-kafka"
if [ ! -x "$jm_bin" ] || [ ! -x "$tm_bin" ] || { [ "$kafka" = embedded ] && [ ! -x "$kafka_bin" ]; }; then
    echo "start-cluster.sh: building the binaries in $build_dir" >&2
    if [ ! -f "$build_dir/build.ninja" ]; then
        meson setup "$build_dir" "$root" >/dev/null
    fi
    ninja -C "$build_dir" runtime/jobmanager/weir-jobmanager \
        runtime/taskmanager/weir-taskmanager runtime/cli/jobctl runtime/kafka/weir-kafka \
        runtime/kafka/weir-gen >/dev/null
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

if alive "$run_dir/kafka.pid" weir-kafka; then
    die "the broker of an earlier cluster is still running in $run_dir; stop it first: scripts/stop-cluster.sh --dir $run_dir"
fi
if alive "$run_dir/jobmanager.pid" weir-jobmanager; then
    die "a cluster is already running in $run_dir; stop it first: scripts/stop-cluster.sh --dir $run_dir"
fi
for f in "$run_dir"/taskmanager-*.pid; do
    [ -e "$f" ] || continue
    if alive "$f" weir-taskmanager; then
        die "a task manager of an earlier cluster is still running ($f); stop it first: scripts/stop-cluster.sh --dir $run_dir"
    fi
done
rm -f "$run_dir"/jobmanager.pid "$run_dir"/taskmanager-*.pid "$run_dir/ports" "$run_dir/cluster.env" \
    "$run_dir/kafka.pid" "$run_dir/kafka.bootstrap"

started=()
fail() {
    echo "start-cluster.sh: $*" >&2
    for log in "$run_dir/kafka.log" "$run_dir/jobmanager.log" "$run_dir"/taskmanager-*.log; do
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
    rm -f "$run_dir"/jobmanager.pid "$run_dir"/taskmanager-*.pid "$run_dir/kafka.pid"
    exit 1
}

stamp() { date '+%Y-%m-%d %H:%M:%S'; }

# ---- kafka ---------------------------------------------------------------

# start_broker PORT : starts weir-kafka and waits for its bootstrap line;
# returns 1 (broker gone) when the port could not be bound
start_broker() {
    local deadline=$((SECONDS + 10)) pid
    rm -f "$run_dir/kafka.bootstrap"
    echo "---- $(stamp) start-cluster.sh: starting weir-kafka on port $1" >>"$run_dir/kafka.log"
    "$kafka_bin" --port "$1" --topic "$kafka_topics" </dev/null \
        >"$run_dir/kafka.bootstrap" 2>>"$run_dir/kafka.log" &
    pid=$!
    until grep -q '^bootstrap: ' "$run_dir/kafka.bootstrap" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            return 1
        fi
        [ $SECONDS -lt $deadline ] || { kill -KILL "$pid" 2>/dev/null; return 1; }
        sleep 0.05
    done
    started+=("$pid")
    echo "$pid" >"$run_dir/kafka.pid"
    kafka_bootstrap=$(sed -n 's/^bootstrap: \([^ ]*\).*/\1/p' "$run_dir/kafka.bootstrap" | head -n 1)
}

kafka_bootstrap=""
case "$kafka" in
    none) ;;
    embedded)
        if ! start_broker "$kafka_port"; then
            [ "$kafka_port" != 0 ] || fail "weir-kafka did not start"
            echo "start-cluster.sh: port $kafka_port is taken; the broker takes a free port" >&2
            start_broker 0 || fail "weir-kafka did not start"
        fi ;;
    *) kafka_bootstrap=$kafka ;;
esac

# ---- postgres --------------------------------------------------------------

pg_dsn=""
if [ "$postgres" = true ]; then
    echo "---- $(stamp) start-cluster.sh: starting PostgreSQL" >>"$run_dir/postgres-start.log"
    pg_dsn=$("$root/scripts/postgres.sh" start --dir "$run_dir/postgres" 2>>"$run_dir/postgres-start.log" | tail -n 1) ||
        fail "PostgreSQL did not start (see $run_dir/postgres-start.log)"
    [ -n "$pg_dsn" ] || fail "PostgreSQL did not report its DSN (see $run_dir/postgres-start.log)"
fi

# ---- job manager ---------------------------------------------------------

echo "---- $(stamp) start-cluster.sh: starting the job manager" >>"$run_dir/jobmanager.log"
"$jm_bin" --host 127.0.0.1 --rpc-port 0 --rest-port "$rest_port" \
    --ports-file "$run_dir/ports" --checkpoint-dir "${WEIR_CHECKPOINT_DIR:-$run_dir/checkpoints}" \
    </dev/null >>"$run_dir/jobmanager.log" 2>&1 &
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
    printf 'KAFKA_BOOTSTRAP=%q\n' "$kafka_bootstrap"
    [ -z "$pg_dsn" ] || printf 'PG_DSN=%q\n' "$pg_dsn"
} >"$run_dir/cluster.env"

echo "weir cluster: 1 job manager, $taskmanagers task managers x $slots slots"
echo "  run dir:  $run_dir (logs, pid files, cluster.env)"
echo "  rest:     $rest   (export WEIR_REST=$rest for jobctl)"
case "$kafka" in
    none) echo "  kafka:    none (--no-kafka)" ;;
    embedded) echo "  kafka:    $kafka_bootstrap (weir-kafka, in memory; topics: $kafka_topics)" ;;
    *) echo "  kafka:    $kafka_bootstrap" ;;
esac
[ -z "$pg_dsn" ] || echo "  postgres: $pg_dsn"
echo "  stop:     scripts/stop-cluster.sh --dir $run_dir"
echo "dashboard: $rest/"
