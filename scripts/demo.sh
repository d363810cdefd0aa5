#!/usr/bin/env bash
# scripts/demo.sh -- weir end to end, from a fresh checkout: the
# fraud-detection job on Kafka.
#
#   1. installs the Debian packages that are missing (scripts/deps.sh),
#   2. builds everything in build/ (or $WEIR_BUILD_DIR),
#   3. starts a local cluster in run/demo (scripts/start-cluster.sh): the
#      embedded Kafka broker weir-kafka, a private PostgreSQL server, one job
#      manager and two task managers with two slots each,
#   4. produces 300 flagged accounts (of 1,000) and 100,000 transactions
#      into Kafka with weir-gen, a few of them malformed on purpose,
#   5. submits jobs/fraud-detection.yaml (transactions joined with flagged
#      accounts on account_id, dated after the flag; state in RocksDB),
#   6. waits until the job has caught up, then shows how many flagged
#      transactions it wrote to the topic flagged-transactions, a few of
#      them, the malformed records it set aside in transactions-dead-letter,
#      and a query on the PostgreSQL table flagged_transactions,
#   7. prints the dashboard URL and leaves the cluster and the job running:
#      produce more with weir-gen and watch them arrive.
#
# Stop everything with: scripts/stop-cluster.sh --dir run/demo
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
echo "built: weir-jobmanager, weir-taskmanager, jobctl, weir-kafka, weir-gen, weir-topic"

step "starting a local cluster in $run_dir (Kafka, PostgreSQL, 2 task managers x 2 slots)"
./scripts/stop-cluster.sh --dir "$run_dir" >/dev/null
rest_port=${WEIR_REST_PORT:-8081}
if (exec 3<>"/dev/tcp/127.0.0.1/$rest_port") 2>/dev/null; then
    echo "port $rest_port is in use; the job manager will pick a free port"
    rest_port=0
fi
./scripts/start-cluster.sh --taskmanagers 2 --slots 2 --rest-port "$rest_port" --dir "$run_dir" \
    --postgres
set -a
# shellcheck disable=SC1091
. "$run_dir/cluster.env"
set +a
gen="$build_dir/runtime/kafka/weir-gen"
topic="$build_dir/runtime/kafka/weir-topic"
psql=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | tail -n 1)

step "producing flagged accounts and transactions into Kafka ($KAFKA_BOOTSTRAP)"
# flags are dated from 2024-01-01 00:00:00, one every 60 s; transactions from
# the same time, one every 2 s: about half of a flagged account's
# transactions come after its flag
"$gen" flagged-accounts --bootstrap "$KAFKA_BOOTSTRAP" --accounts 1000 --flagged-share 0.3 \
    --step 60s
"$gen" transactions --bootstrap "$KAFKA_BOOTSTRAP" --accounts 1000 --count 100000 \
    --step 2s --malformed 5000

step "submitting jobs/fraud-detection.yaml"
id=$("$jobctl" submit jobs/fraud-detection.yaml)
echo "job id: $id"

step "waiting for the job to catch up"
deadline=$((SECONDS + 180))
last=-1 stable=0
while :; do
    state=$("$jobctl" status "$id" | sed -n 's/^State:[[:space:]]*//p')
    case "$state" in
        FAILED|CANCELED|FINISHED)
            "$jobctl" status "$id" >&2
            echo "demo.sh: the job is $state; logs are in $run_dir" >&2
            exit 1 ;;
    esac
    n=$("$topic" count --topic flagged-transactions)
    # PostgreSQL gets a checkpoint's rows when the checkpoint completes
    db=$("$psql" "$PG_DSN" -Atc "SELECT count(*) FROM flagged_transactions" 2>/dev/null || echo 0)
    if [ "$state" = RUNNING ] && [ "$n" -gt 0 ] && [ "$n" = "$last" ] && [ "$db" = "$n" ]; then
        stable=$((stable + 1))
        [ $stable -ge 4 ] && break
    else
        stable=0
    fi
    last=$n
    if [ $SECONDS -ge $deadline ]; then
        "$jobctl" status "$id" >&2
        echo "demo.sh: the job has not caught up after 180 s; logs are in $run_dir" >&2
        exit 1
    fi
    sleep 0.5
done
"$jobctl" status "$id"

step "flagged transactions (topic flagged-transactions)"
echo "$n transactions of flagged accounts, dated after the flag; the first five:"
"$topic" read --topic flagged-transactions --limit 5 --keys | sed 's/^/  /'
dead=$("$topic" count --topic transactions-dead-letter)
echo
echo "$dead malformed records set aside in transactions-dead-letter, e.g.:"
"$topic" read --topic transactions-dead-letter --limit 2 --headers | sed 's/^/  /'

step "the same transactions in PostgreSQL (table flagged_transactions)"
query="SELECT account_id, count(*) AS flagged, round(sum(transaction_amount)::numeric, 2) AS amount
       FROM flagged_transactions GROUP BY account_id ORDER BY flagged DESC, account_id LIMIT 5"
echo "  $query" | tr -s ' '
"$psql" "$PG_DSN" -c "SELECT count(*) AS rows FROM flagged_transactions" -c "$query" | sed 's/^/  /'

step "done"
echo "dashboard: $WEIR_REST/"
echo "The cluster and the job keep running. Try:"
echo "  set -a; . $run_dir/cluster.env; set +a"
echo "  $jobctl list"
echo "  $gen transactions --count 1000 --seed 7     # more input"
echo "  $topic count --topic flagged-transactions"
echo "  $topic offsets --topic transactions --group weir-fraud-detection-transactions"
echo "  $psql \"\$PG_DSN\" -c 'SELECT count(*) FROM flagged_transactions'"
echo "Stop it with: scripts/stop-cluster.sh --dir $run_dir"
