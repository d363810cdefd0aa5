#!/usr/bin/env bash
# bench/fraud.sh -- the fraud-detection job over Kafka, against a plain
# librdkafka pipe doing the same reads and writes.
#
#   bench/fraud.sh [--count N] [--accounts A] [--flagged-share F] [--parallelism P]
#                  [--partitions K] [--rate R] [--seed S] [--state-backend rocksdb|memory]
#                  [--fetch-wait-ms MS] [-D KEY=VALUE]... [--perf FILE] [--keep]
#
# Everything runs on this machine, on loopback, and is stopped at exit:
#
#   1. its own weir-kafka (K partitions per topic, default 16; in memory;
#      keeps ~5 MB per partition, so N is checked against that, about
#      15000*K transactions at most, and no record may be lost)
#   2. weir-gen: the flagged accounts (round(F*A) of A accounts), then N
#      transactions over A accounts
#   3. a private weir cluster (2 task managers x 2 slots)
#   4. jobs/fraud-detection.yaml with -D STOP_AT=latest (bounded: each source
#      reads to the end offsets seen when it opens, then the job finishes);
#      timed from `jobctl submit` to the state FINISHED (polled every 50 ms)
#   5. checks: output records == the expected count (the join computed here
#      with awk from `weir-gen --print`), no duplicates, no dead letters
#   6. latency (weir-kpipe latency): output CreateTime - input CreateTime
#      per transaction_id. Here the input is produced before the job starts,
#      so this is mostly the time a record waited in the topic for the job
#      to start and reach it: a drain time, not a latency. --rate R gives
#      the meaningful figure (below).
#   7. the baseline, weir-kpipe pipe over the same topic: once copying every
#      transaction to pipe-out, once forwarding only the flagged ones
#      (--join flagged-accounts, weir's output exactly); each timed from
#      process start to the last delivery; a table of transactions/s, the
#      ratio weir/kpipe and CPU microseconds per transaction
#
# With --rate R the job is started first, unbounded (STOP_AT=none); once all
# its subtasks run, weir-gen produces the N transactions at R per second
# while the job runs; the script waits until every expected output record is
# in flagged-transactions, cancels the job and reports the latency
# percentiles, which then measure weir-gen's producer (linger 5 ms) -> the
# broker -> weir's source -> the keyed shuffle -> the join -> weir's sink
# handing the record to its producer. No pipe run in this mode.
#
# --state-backend memory runs a copy of the job with `config: {state.backend:
# memory}` (the join keeps every transaction in keyed list state; RocksDB is
# the default).
#
# --fetch-wait-ms MS runs a copy of the job whose sources set librdkafka's
# fetch.wait.max.ms (default 500) to MS. The embedded broker (librdkafka's
# mock cluster) answers a Fetch that finds no new data only after that
# wait, even if records arrive meanwhile (a real broker answers as soon as
# fetch.min.bytes are there), so at low rates it, not weir, sets the latency.
#
# -D KEY=VALUE is passed to `jobctl submit` (e.g. -D CHECKPOINT_INTERVAL=1s;
# the job checkpoints every 5 s by default).
#
# --perf FILE runs `perf record -g -p` on the task managers, the job manager
# and weir-kafka during the weir job and writes a summary per thread name,
# library and symbol to FILE.
#
# The "cpu:" lines are user + system CPU seconds from /proc (task managers,
# job manager, broker) and from `time` (weir-kpipe) over each run; CPU per
# transaction moves much less than wall-clock time on a shared machine.
#
# Uses the binaries of $WEIR_BUILD_DIR (default build/), building them when
# missing. The broker, the job manager, the task managers, weir-gen and
# weir-kpipe all share this machine's CPUs: on a small machine the figures
# are those of the whole system, the broker included (see
# bench/fraud-results.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
count=200000 accounts=10000 share=0.1 parallelism=2 partitions=16 rate=0 seed=1 perf_out="" keep=0 fetch_wait="" backend=""
defines=()

usage() {
    echo "usage: bench/fraud.sh [--count N] [--accounts A] [--flagged-share F] [--parallelism P] [--partitions K]"
    echo "                      [--rate R] [--seed S] [--state-backend rocksdb|memory] [--fetch-wait-ms MS]"
    echo "                      [-D KEY=VALUE]... [--perf FILE] [--keep]"
    echo "defaults: --count $count --accounts $accounts --flagged-share $share --parallelism $parallelism --partitions $partitions"
    echo "          --rate 0 (produce everything first, then run the job bounded)"
}
need() { [ $# -ge 2 ] || { echo "fraud.sh: $1 needs a value" >&2; usage >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
    --count) need "$@"; count=$2; shift 2 ;;
    --accounts) need "$@"; accounts=$2; shift 2 ;;
    --flagged-share) need "$@"; share=$2; shift 2 ;;
    --parallelism) need "$@"; parallelism=$2; shift 2 ;;
    --partitions) need "$@"; partitions=$2; shift 2 ;;
    --rate) need "$@"; rate=$2; shift 2 ;;
    --seed) need "$@"; seed=$2; shift 2 ;;
    --perf) need "$@"; perf_out=$2; shift 2 ;;
    --fetch-wait-ms) need "$@"; fetch_wait=$2; shift 2 ;;
    --state-backend) need "$@"; backend=$2; shift 2 ;;
    -D) need "$@"; defines+=(-D "$2"); shift 2 ;;
    -D*) defines+=(-D "${1#-D}"); shift ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fraud.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
[[ $count =~ ^[1-9][0-9]*$ ]] || { echo "fraud.sh: --count must be a positive integer" >&2; exit 2; }
[[ $accounts =~ ^[1-9][0-9]*$ ]] || { echo "fraud.sh: --accounts must be a positive integer" >&2; exit 2; }
[[ $parallelism =~ ^[1-9][0-9]*$ ]] || { echo "fraud.sh: --parallelism must be a positive integer" >&2; exit 2; }
[[ $partitions =~ ^[1-9][0-9]{0,3}$ ]] || { echo "fraud.sh: --partitions must be 1..9999" >&2; exit 2; }
[[ $rate =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "fraud.sh: --rate must be a number >= 0" >&2; exit 2; }
[ -z "$fetch_wait" ] || [[ $fetch_wait =~ ^[0-9]+$ ]] || { echo "fraud.sh: --fetch-wait-ms must be an integer" >&2; exit 2; }
case "$backend" in ""|rocksdb|memory) ;; *) echo "fraud.sh: --state-backend is rocksdb or memory" >&2; exit 2 ;; esac
[[ $share =~ ^(0([.][0-9]+)?|1([.]0+)?)$ ]] || { echo "fraud.sh: --flagged-share must be in 0..1" >&2; exit 2; }
# Transactions are partitioned by account: with too few accounts the 16
# partitions fill unevenly and the fullest passes the broker's ~5 MB first.
if [ "$accounts" -lt $((partitions * 16)) ]; then
    echo "fraud.sh: warning: $accounts accounts spread unevenly over $partitions partitions;" \
         "the fullest partition may pass the broker's ~5 MB" >&2
fi
# ~300 bytes per transaction in a record batch (value ~225, key ~62, framing)
if [ $((count * 300 / partitions)) -gt 4500000 ]; then
    echo "fraud.sh: --count $count is ~$((count * 300 / partitions / 100000))00 kB per partition;" \
         "the embedded broker keeps ~5 MB: use --count <= $((15000 * partitions)) or more --partitions" >&2
    exit 2
fi

build="${WEIR_BUILD_DIR:-$root/build}"
jobctl="$build/runtime/cli/jobctl"
gen="$build/runtime/kafka/weir-gen"
kafka="$build/runtime/kafka/weir-kafka"
kpipe="$build/bench/weir-kpipe"
if [ ! -x "$jobctl" ] || [ ! -x "$gen" ] || [ ! -x "$kafka" ] || [ ! -x "$kpipe" ]; then
    [ -f "$build/build.ninja" ] || meson setup "$build" "$root" >/dev/null
    ninja -C "$build" >/dev/null
fi

run=$(mktemp -d /tmp/weir-fraud.XXXXXX)
kafka_pid="" perf_pid=""
cleanup() {
    local rc=$?
    set +e
    [ -z "$perf_pid" ] || { kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null; }
    [ ! -d "$run/cluster" ] || "$root/scripts/stop-cluster.sh" --dir "$run/cluster" >/dev/null 2>&1
    if [ -n "$kafka_pid" ]; then
        kill "$kafka_pid" 2>/dev/null
        wait "$kafka_pid" 2>/dev/null
    fi
    if [ "$keep" = 1 ] || [ "$rc" != 0 ]; then
        echo "fraud.sh: logs kept in $run" >&2
    else
        rm -rf "$run"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "fraud.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
field() { sed -n "s/.*[ :]$1=\([^ ]*\).*/\1/p" | head -n 1; }     # KEY=VALUE from a kpipe line

# ---- the broker ----------------------------------------------------------

topics=transactions,flagged-accounts,flagged-transactions,transactions-dead-letter,pipe-out,pipe-join-out
"$kafka" --port 0 --partitions "$partitions" --topic "$topics" --exit-with-parent \
    </dev/null >"$run/kafka.out" 2>"$run/kafka.log" &
kafka_pid=$!
for _ in $(seq 1 200); do
    grep -q '^bootstrap: ' "$run/kafka.out" 2>/dev/null && break
    kill -0 "$kafka_pid" 2>/dev/null || die "weir-kafka exited: $(cat "$run/kafka.log")"
    sleep 0.05
done
bootstrap=$(sed -n 's/^bootstrap: \([^ ]*\).*/\1/p' "$run/kafka.out" | head -n 1)
[ -n "$bootstrap" ] || die "weir-kafka printed no bootstrap line"

# ---- the expected result ---------------------------------------------------

# The join, computed from the generator's own records: a transaction is
# expected when its account is flagged and it is dated after the flag (both
# dates are 'YYYY-MM-DD HH:MM:SS.ffffff', so string order is time order).
expected=$({ "$gen" flagged-accounts --print --accounts "$accounts" --flagged-share "$share" --seed "$seed"
             echo "----"
             "$gen" transactions --print --count "$count" --accounts "$accounts" --seed "$seed"; } |
    awk '/^----$/ { tx = 1; next }
         { match($0, /"account_id":[0-9]+/); a = substr($0, RSTART + 13, RLENGTH - 13)
           if (!tx) { match($0, /"flag_date":"[^"]*"/); f[a] = substr($0, RSTART + 13, RLENGTH - 14); next }
           if (a in f) { match($0, /"transaction_date":"[^"]*"/)
                         if (substr($0, RSTART + 20, RLENGTH - 21) > f[a]) n++ } }
         END { print n + 0 }')
flagged=$(awk -v a="$accounts" -v f="$share" 'BEGIN { printf "%d", a * f + 0.5 }')

echo "fraud-detection over Kafka: $count transactions, $accounts accounts, $flagged flagged" \
     "(share $share), seed $seed, parallelism $parallelism; expected output: $expected records"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "broker:  weir-kafka at $bootstrap ($partitions partitions per topic, in memory)"
[ -z "$fetch_wait" ] || echo "job:     jobs/fraud-detection.yaml with fetch.wait.max.ms $fetch_wait in its sources"
[ -z "$backend" ] || echo "job:     jobs/fraud-detection.yaml with config: {state.backend: $backend}"
[ ${#defines[@]} = 0 ] || echo "job:     jobctl submit ${defines[*]}"

"$gen" flagged-accounts --bootstrap "$bootstrap" --accounts "$accounts" --flagged-share "$share" \
    --seed "$seed" 2>"$run/gen-flagged.log" || die "weir-gen flagged-accounts: $(cat "$run/gen-flagged.log")"

# ---- the cluster -------------------------------------------------------------

WEIR_BUILD_DIR="$build" "$root/scripts/start-cluster.sh" --taskmanagers 2 --slots 2 --rest-port 0 \
    --dir "$run/cluster" --kafka "$bootstrap" >"$run/start-cluster.out"
# shellcheck disable=SC1091
. "$run/cluster/cluster.env"
export WEIR_REST

job_field() { "$jobctl" status "$1" --json | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" | head -n 1; }
job_state() { "$jobctl" status "$1" --json | sed -n 's/.*"state":"\([A-Z]*\)".*/\1/p' | head -n 1; }
running_tasks() { "$jobctl" status "$1" --json | sed -n 's/.*"running":\([0-9]*\).*/\1/p' | head -n 1; }
total_tasks() { "$jobctl" status "$1" --json | sed -n 's/.*"tasks":{"total":\([0-9]*\).*/\1/p' | head -n 1; }

# CPU seconds (user + system) a process has used so far, from /proc
clk_tck=$(getconf CLK_TCK)
cpu_of() { awk -v t="$clk_tck" '{ sub(/^.*\) /, ""); printf "%.3f", ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }
cluster_pids() { cat "$run/cluster/taskmanager-1.pid" "$run/cluster/taskmanager-2.pid" "$run/cluster/jobmanager.pid"; }
cpu_snapshot() { local p; for p in $(cluster_pids) "$kafka_pid"; do cpu_of "$p"; echo; done | paste -sd' '; }
cpu_report() {  # BEFORE AFTER WALL: CPU seconds per process between two snapshots
    awk -v a="$1" -v b="$2" -v w="$3" 'BEGIN {
        split(a, x, " "); split(b, y, " "); split("tm-1 tm-2 jobmanager weir-kafka", n, " ")
        s = ""; tot = 0
        for (i = 1; i <= 4; i++) { d = y[i] - x[i]; tot += d; s = s sprintf("%s %.2f s, ", n[i], d) }
        printf "cpu:     %stotal %.2f s in %.2f s wall (%.2f of the CPUs)\n", s, tot, w, tot / w }'
}

perf_start() {
    [ -n "$perf_out" ] || return 0
    # only this run's processes: other work on the machine stays out
    perf record -F 499 -g -p "$(cluster_pids | paste -sd,),$kafka_pid" -o "$run/perf.data" \
        >/dev/null 2>"$run/perf.log" &
    perf_pid=$!
    sleep 0.5
}
perf_stop() {
    [ -n "$perf_pid" ] || return 0
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf_pid=""
    (
        set +e +o pipefail       # head closes its pipe early: not an error
        echo "# perf record -p (task managers, job manager, weir-kafka) during the weir job:"
        echo "# share of the samples per thread name (rdk:mock is weir-kafka's broker thread)"
        perf report -i "$run/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null |
            grep '%' | head -n 20
        echo
        echo "# per thread name and library"
        perf report -i "$run/perf.data" --no-children --sort comm,dso --stdio -g none 2>/dev/null |
            grep '%' | head -n 40
        echo
        echo "# hottest symbols"
        perf report -i "$run/perf.data" --no-children --sort comm,dso,sym --stdio -g none 2>/dev/null |
            grep '%' | head -n 60
    ) >"$perf_out"
    echo "perf:    summary in $perf_out"
}

job="$root/jobs/fraud-detection.yaml"
unset PG_DSN            # the job's optional PostgreSQL sink stays out (when: ${PG_DSN:-})
if [ -n "$fetch_wait" ] || [ -n "$backend" ]; then
    # a copy of the job: each source with properties: {fetch.wait.max.ms: MS};
    # config: {state.backend: B} after the parallelism
    cp "$job" "$run/fraud-detection.yaml"
    job="$run/fraud-detection.yaml"
    if [ -n "$fetch_wait" ]; then
        sed -i "s/^\( *\)startup: earliest\$/&\n\1properties: {fetch.wait.max.ms: \"$fetch_wait\"}/" "$job"
        [ "$(grep -c 'fetch.wait.max.ms' "$job")" = 2 ] || die "cannot set fetch.wait.max.ms in $job"
    fi
    if [ -n "$backend" ]; then
        grep -q '^config:' "$job" && die "the job has a config: section already; cannot add one"
        sed -i "s/^parallelism: .*/&\nconfig: {state.backend: $backend}/" "$job"
        grep -q "^config: {state.backend: $backend}" "$job" || die "cannot set state.backend in $job"
    fi
fi

submit() {
    "$jobctl" submit "$job" -D KAFKA_BOOTSTRAP="$bootstrap" \
        -D PARALLELISM="$parallelism" -D STOP_AT="$1" "${defines[@]}"
}

wait_state() {         # JOB STATE... : polls until one of the states (or FAILED)
    local id=$1 s
    shift
    while :; do
        s=$(job_state "$id")
        for want in "$@"; do [ "$s" = "$want" ] && return 0; done
        case "$s" in FAILED|CANCELED)
            "$jobctl" status "$id" >&2 || true
            tail -n 20 "$run/cluster/taskmanager-1.log" "$run/cluster/taskmanager-2.log" >&2
            die "the job ended $s" ;;
        esac
        sleep 0.05
    done
}

out_records() { "$kpipe" offsets --bootstrap "$bootstrap" --topic "$1" | field records; }
check_output() {
    local got dl lost
    got=$(out_records flagged-transactions)
    dl=$(out_records transactions-dead-letter)
    lost=$("$kpipe" offsets --bootstrap "$bootstrap" --topic flagged-transactions | field deleted)
    echo "output:  $got records in flagged-transactions (expected $expected), $dl dead letters"
    [ "$lost" = 0 ] || die "the broker deleted $lost output records (retention): use a smaller --count"
    [ "$got" = "$expected" ] || die "weir wrote $got records, expected $expected"
    [ "$dl" = 0 ] || die "$dl records went to the dead-letter topic"
}

latency() {
    "$kpipe" latency --bootstrap "$bootstrap" --input transactions --output flagged-transactions \
        >"$run/latency.out" || { cat "$run/latency.out"; die "latency: unmatched or duplicate output records"; }
    echo "latency: (weir-kpipe latency)"
    sed 's/^/         /' "$run/latency.out"
}

if awk -v r="$rate" 'BEGIN { exit !(r == 0) }'; then
    # ---- produce first, then drain ----------------------------------------
    t0=$(now)
    "$gen" transactions --bootstrap "$bootstrap" --count "$count" --accounts "$accounts" \
        --seed "$seed" 2>"$run/gen.log" || die "weir-gen transactions: $(cat "$run/gen.log")"
    t1=$(now)
    echo "input:   $count transactions produced in $(elapsed "$t0" "$t1") s (weir-gen, idempotent, linger 5 ms)"
    lost=$("$kpipe" offsets --bootstrap "$bootstrap" --topic transactions | field deleted)
    [ "$lost" = 0 ] || die "the broker already deleted $lost input records (retention): use a smaller --count or more --accounts"

    perf_start
    c0=$(cpu_snapshot)
    t0=$(now)
    id=$(submit latest)
    wait_state "$id" FINISHED
    t1=$(now)
    c1=$(cpu_snapshot)
    perf_stop
    weir_s=$(elapsed "$t0" "$t1")
    cpu_report "$c0" "$c1" "$weir_s"
    weir_cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { split(a, x, " "); split(b, y, " ")
        printf "%.3f", y[1] + y[2] + y[3] - x[1] - x[2] - x[3] }')
    jm_ms=$(job_field "$id" duration)
    ckpts=$("$jobctl" status "$id" --json | sed -n 's/.*"checkpoints":{[^}]*"completed":\([0-9]*\).*/\1/p' | head -n 1)
    echo "weir:    FINISHED; ${ckpts:-0} checkpoint(s) completed during the run"
    check_output
    latency

    k0=$(cpu_of "$kafka_pid")
    TIMEFORMAT='%U %S'
    { time "$kpipe" pipe --bootstrap "$bootstrap" --from transactions --to pipe-out \
        >"$run/pipe.out"; } 2>"$run/pipe.time"
    k1=$(cpu_of "$kafka_pid")
    { time "$kpipe" pipe --bootstrap "$bootstrap" --from transactions --to pipe-join-out \
        --join flagged-accounts >"$run/pipe-join.out"; } 2>"$run/pipe-join.time"
    k2=$(cpu_of "$kafka_pid")
    pipe_s=$(field seconds <"$run/pipe.out")
    join_s=$(field seconds <"$run/pipe-join.out")
    join_out=$(field out <"$run/pipe-join.out")
    pipe_cpu=$(awk '{ printf "%.3f", $1 + $2 }' <(tail -n 1 "$run/pipe.time"))
    join_cpu=$(awk '{ printf "%.3f", $1 + $2 }' <(tail -n 1 "$run/pipe-join.time"))
    [ "$join_out" = "$expected" ] || die "weir-kpipe --join forwarded $join_out records, expected $expected"
    echo "pipe:    $(cat "$run/pipe.out")"
    awk -v t="$(tail -n 1 "$run/pipe.time")" -v a="$k0" -v b="$k1" -v w="$pipe_s" 'BEGIN {
        split(t, c, " "); printf "cpu:     weir-kpipe %.2f s, weir-kafka %.2f s in %.2f s wall\n", c[1] + c[2], b - a, w }'
    echo "pipe:    $(cat "$run/pipe-join.out")"
    awk -v t="$(tail -n 1 "$run/pipe-join.time")" -v a="$k1" -v b="$k2" -v w="$join_s" 'BEGIN {
        split(t, c, " "); printf "cpu:     weir-kpipe %.2f s, weir-kafka %.2f s in %.2f s wall\n", c[1] + c[2], b - a, w }'
    echo
    awk -v n="$count" -v w="$weir_s" -v jm="$jm_ms" -v p="$pipe_s" -v j="$join_s" \
        -v wc="$weir_cpu" -v pc="$pipe_cpu" -v jc="$join_cpu" \
        -v par="$parallelism" -v out="$expected" 'BEGIN {
        printf "%-42s %8s %14s %9s %8s %10s\n", "", "seconds", "transactions/s", "weir/this", "CPU s", "CPU us/tx"
        printf "%-42s %8.3f %14.0f %9s %8.2f %10.2f\n", "weir fraud-detection, submit -> FINISHED", w, n / w, "", wc, wc * 1e6 / n
        printf "%-42s %8.3f %14.0f\n", "  (job manager: scheduled -> finished)", jm / 1000, n / (jm / 1000)
        printf "%-42s %8.3f %14.0f %8.2fx %8.2f %10.2f\n", "kpipe pipe: copy all " n " to pipe-out", p, n / p, p / w, pc, pc * 1e6 / n
        printf "%-42s %8.3f %14.0f %8.2fx %8.2f %10.2f\n", "kpipe pipe --join: " out " flagged, as weir", j, n / j, j / w, jc, jc * 1e6 / n
        printf "(weir: parallelism %d on 2 task managers, CPU of the task managers and the job manager;\n", par
        printf " kpipe: 1 consumer + 1 producer in one process, its CPU; the broker'"'"'s CPU is not in either)\n"
    }'
else
    # ---- produce at a rate while the job runs ---------------------------------
    id=$(submit none)
    wait_state "$id" RUNNING
    total=$(total_tasks "$id")
    until [ "$(running_tasks "$id")" = "$total" ]; do
        [ "$(job_state "$id")" = RUNNING ] || wait_state "$id" RUNNING
        sleep 0.05
    done
    sleep 1       # the sources open and assign their partitions
    perf_start
    c0=$(cpu_snapshot)
    t0=$(now)
    "$gen" transactions --bootstrap "$bootstrap" --count "$count" --accounts "$accounts" \
        --seed "$seed" --rate "$rate" 2>"$run/gen.log" || die "weir-gen transactions: $(cat "$run/gen.log")"
    t1=$(now)
    echo "input:   $count transactions at $rate/s in $(elapsed "$t0" "$t1") s"
    deadline=$((SECONDS + 120))
    while :; do
        got=$(out_records flagged-transactions)
        [ "$got" -ge "$expected" ] && break
        [ $SECONDS -lt $deadline ] || die "after 120 s the output has $got of $expected records"
        [ "$(job_state "$id")" = RUNNING ] || wait_state "$id" RUNNING
        sleep 0.05
    done
    t2=$(now)
    c1=$(cpu_snapshot)
    perf_stop
    cpu_report "$c0" "$c1" "$(elapsed "$t0" "$t2")"
    echo "drain:   the last output record arrived $(elapsed "$t1" "$t2") s after the generator finished" \
         "(polled every 50 ms)"
    ckpts=$("$jobctl" status "$id" --json | sed -n 's/.*"checkpoints":{[^}]*"completed":\([0-9]*\).*/\1/p' | head -n 1)
    echo "weir:    ${ckpts:-0} checkpoint(s) completed while it ran; canceling it"
    "$jobctl" cancel "$id" >/dev/null
    wait_state "$id" CANCELED 2>/dev/null || true
    check_output
    latency
fi
