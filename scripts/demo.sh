#!/usr/bin/env bash
# scripts/demo.sh -- weir end to end, from a fresh checkout:
#
#   1. installs the Debian packages that are missing (scripts/deps.sh),
#   2. builds everything in build/ (or $WEIR_BUILD_DIR),
#   3. starts a local cluster in run/demo: one job manager and two task
#      managers with two slots each (scripts/start-cluster.sh),
#   4. submits jobs/demo-datagen.yaml with jobctl (made-up card transactions
#      -> keep the large ones -> count them per merchant type -> files),
#   5. waits until the job is FINISHED and prints the per-key counts it wrote,
#   6. prints the dashboard URL and leaves the cluster running for you.
#
# Stop the cluster with: scripts/stop-cluster.sh --dir run/demo
# Running the demo again restarts that cluster.
#
#   WEIR_REST_PORT=P   the REST/dashboard port (default 8081; a free port is
#                      used when 8081 is taken)
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
run_dir=run/demo
out="$root/$run_dir/out"
build_dir=${WEIR_BUILD_DIR:-build}
case "$build_dir" in /*) ;; *) build_dir="$root/$build_dir" ;; esac
export WEIR_BUILD_DIR="$build_dir"
jobctl="$build_dir/runtime/cli/jobctl"

step() { printf '\n==> %s\n' "$*"; }

step "installing missing packages (scripts/deps.sh)"
./scripts/deps.sh </dev/null

step "building in $build_dir"
if [ ! -f "$build_dir/build.ninja" ]; then
    meson setup "$build_dir" >/dev/null
fi
ninja -C "$build_dir" >/dev/null
echo "built: weir-jobmanager, weir-taskmanager, jobctl"

step "starting a local cluster in $run_dir (2 task managers x 2 slots)"
./scripts/stop-cluster.sh --dir "$run_dir" >/dev/null
rest_port=${WEIR_REST_PORT:-8081}
if (exec 3<>"/dev/tcp/127.0.0.1/$rest_port") 2>/dev/null; then
    echo "port $rest_port is in use; the job manager will pick a free port"
    rest_port=0
fi
./scripts/start-cluster.sh --taskmanagers 2 --slots 2 --rest-port "$rest_port" --dir "$run_dir"
WEIR_REST=$(sed -n 's/^WEIR_REST=//p' "$run_dir/cluster.env")
export WEIR_REST

step "submitting jobs/demo-datagen.yaml"
rm -rf "$out"
id=$("$jobctl" submit jobs/demo-datagen.yaml -D OUT="$out")
echo "job id: $id"

step "waiting for the job to finish"
state=""
deadline=$((SECONDS + 120))
while :; do
    state=$("$jobctl" status "$id" | sed -n 's/^State:[[:space:]]*//p')
    case "$state" in
        FINISHED) break ;;
        FAILED|CANCELED)
            "$jobctl" status "$id" >&2
            echo "demo.sh: the job is $state; logs are in $run_dir" >&2
            exit 1 ;;
    esac
    if [ $SECONDS -ge $deadline ]; then
        "$jobctl" status "$id" >&2
        echo "demo.sh: the job is still $state after 120 s; logs are in $run_dir" >&2
        exit 1
    fi
    sleep 0.5
done
"$jobctl" status "$id"

step "large transactions (amount > 1500) per merchant type, from $out/"
total=0
printf '  %-12s %s\n' MERCHANT COUNT
while IFS=$'\t' read -r merchant count; do
    printf '  %-12s %s\n' "$merchant" "$count"
    total=$((total + count))
done < <(cat "$out"/part-*.jsonl |
    sed -n 's/.*"merchant_type": *"\([^"]*\)".*"large_transactions": *\([0-9][0-9]*\).*/\1\t\2/p' |
    sort)
printf '  %-12s %s\n' total "$total"

step "done"
echo "dashboard: $WEIR_REST/"
echo "The cluster keeps running. Try:"
echo "  export WEIR_REST=$WEIR_REST"
echo "  $jobctl list"
echo "  $jobctl taskmanagers"
echo "Stop it with: scripts/stop-cluster.sh --dir $run_dir"
