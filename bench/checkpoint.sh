#!/usr/bin/env bash
# bench/checkpoint.sh -- checkpoint duration and size as RocksDB keyed state
# grows to about 1 GB, and recovery time after a task manager is killed
# with SIGKILL, with small and with ~1 GB state. No Kafka.
#
#   bench/checkpoint.sh [--state-mb N] [--trials N] [--restart-delay DUR]
#                       [--interval DUR] [--stop-trial] [--keep]
#
# Starts a private cluster (2 task managers x 2 slots) and runs one job,
# parallelism 2, checkpointing every --interval (2s):
#
#   rows   (datagen: a unique int key k and a 200-character random string)  --\
#                                                                              join on k -> print
#   probes (datagen, 1000 rows/s: key k = 0, 1, 2, ..., ts = the wall clock) --/
#
# A regular join keeps every row of both inputs in RocksDB list state, so
# the state grows by about 240 bytes per row before compression; each probe
# meets the row of its key, which `rows` made long before, and comes out on
# the task manager's stdout (its log) carrying the time it was generated.
#
#   1. growth: rows as fast as they go. When the task managers' state
#      directories (du of RUN/state) pass 10 %, 50 % and 100 % of --state-mb
#      (default 1000), the next three checkpoints are recorded: duration
#      (trigger -> last acknowledgement, at the job manager), sync (the
#      longest synchronous snapshot of a subtask: RocksDB checkpoint = flush
#      of the memtables + a hard link per SST file), size (the sum of every
#      file of the checkpoint, hard-linked SSTs counted in full), and how
#      many SST files it shares (same inode) with the checkpoint before it
#      and the bytes it does not share. Then one recovery (below) while rows
#      still go as fast as they can.
#   2. quiet, ~1 GB: the growth job is canceled and the same graph is
#      resubmitted from its latest checkpoint (--from-savepoint) with rows at
#      2000/s, so a checkpoint has almost nothing to flush: submit -> first
#      output is timed, three checkpoints are recorded, then --trials
#      recoveries.
#   3. quiet, small: a fresh job with rows at 2000/s; three checkpoints, then
#      --trials recoveries (and the --stop-trial one).
#
# A recovery: once the job is RUNNING with two more checkpoints completed,
# the task manager running subtask 1 of every vertex gets SIGKILL. The
# interval reported runs from just before kill(2) to the moment this script
# sees the first output line of the new attempt in a surviving task
# manager's log (the first line after its "deployed ... (attempt K)"),
# polled every ~5 ms; the line's own ts (when its probe was generated) is a
# lower bound. The job's restart block is `fixed_delay` with --restart-delay
# (default 1s, the delay Flink and weir use when a checkpointed job has no
# restart block). The job manager runs with its default --heartbeat-timeout
# (5s, or $WEIR_HEARTBEAT_TIMEOUT), which a SIGKILL never waits for: the
# task manager's connection closes with the process. The breakdown comes
# from the job manager's and task managers' log lines (millisecond
# timestamps). The killed task manager is started again after each trial
# (as a supervisor would), outside the measured interval. --stop-trial adds
# one recovery with SIGSTOP instead (a hung or partitioned task manager,
# found only by the heartbeat timeout).
#
# Prints markdown tables. Removes everything it made unless --keep.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
state_mb=1000 trials=3 delay=1s interval=2s stop_trial=false keep=false
usage() {
    echo "usage: bench/checkpoint.sh [--state-mb N] [--trials N] [--restart-delay DUR] [--interval DUR] [--stop-trial] [--keep]"
}
while [ $# -gt 0 ]; do
    case "$1" in
    --state-mb) state_mb=$2; shift 2 ;;
    --trials) trials=$2; shift 2 ;;
    --restart-delay) delay=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --stop-trial) stop_trial=true; shift ;;
    --keep) keep=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
build="${WEIR_BUILD_DIR:-$root/build}"
[ -x "$build/runtime/cli/jobctl" ] || { meson setup "$build" "$root" >/dev/null; ninja -C "$build" >/dev/null; }
export WEIR_BUILD_DIR="$build"
command -v curl >/dev/null || { echo "checkpoint.sh: curl is missing" >&2; exit 1; }

# the state and the checkpoints share one filesystem (hard links); mind it
need=$((state_mb * 3 + 500))
avail=$(df -Pm "${TMPDIR:-/tmp}" | awk 'NR == 2 { print $4 }')
if [ "$avail" -lt "$need" ]; then
    echo "checkpoint.sh: ${TMPDIR:-/tmp} has $avail MB free; about $need MB are needed" >&2
    exit 1
fi

run=$(mktemp -d "${TMPDIR:-/tmp}/weir-ckbench.XXXXXX")
cleanup() {
    "$root/scripts/stop-cluster.sh" --dir "$run" >/dev/null 2>&1 || true
    if [ "$keep" = true ]; then echo "kept $run" >&2; else rm -rf "$run"; fi
}
trap cleanup EXIT
"$root/scripts/start-cluster.sh" --taskmanagers 2 --slots 2 --rest-port 0 --no-kafka --dir "$run" >/dev/null
# shellcheck disable=SC1091
. "$run/cluster.env"
export WEIR_REST
jobctl() { "$build/runtime/cli/jobctl" "$@"; }
get() { curl -fsS --noproxy '*' --max-time 5 "$WEIR_REST$1"; }

cat > "$run/ckbench.yaml" <<'YAML'
name: ckbench
parallelism: 2
checkpoint:
  interval: ${INTERVAL}
  retained: 3
restart:
  strategy: fixed_delay
  attempts: -1
  delay: ${DELAY}
sources:
  - name: rows
    kind: datagen
    rate: ${ROWS_RATE}
    fields:
      - {name: k, type: int, gen: sequence}
      - {name: payload, type: string, gen: random, length: 200}
  - name: probes
    kind: datagen
    rate: 1000
    fields:
      - {name: k, type: int, gen: sequence}
      - {name: ts, type: timestamp, gen: now}
operators:
  - name: j
    kind: join
    inputs: [{from: rows, as: r}, {from: probes, as: p}]
    key_by: k
    fields: [{name: k, expr: p.k}, {name: ts, expr: p.ts}]
sinks:
  - {name: out, kind: print, input: j}
YAML

# ---- helpers ---------------------------------------------------------------

job_json() { get "/jobs/$1"; }
jstate() { sed -n 's/.*"state":"\([A-Z]*\)".*/\1/p' | head -1; }
jint() { { grep -o "\"$1\":[0-9-]*" || true; } | head -1 | sed 's/.*://'; }
latest_id() { job_json "$1" | grep -o '"latest":{"id":[0-9]*' | sed 's/.*://' || true; }
latest_path() { job_json "$1" | sed -n 's/.*"latest":{[^}]*"path":"\([^"]*\)".*/\1/p'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
state_bytes() { du -sb "$run/state" 2>/dev/null | cut -f1; }
# epoch seconds (ms) of a log line's leading timestamp
log_epoch() { [ -n "$1" ] && date -u -d "${1%% *}" +%s.%3N || echo ""; }
ms_between() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }' || echo "-"; }

submit() { # FILE VARS... -> job id
    local f=$1; shift
    jobctl submit "$f" -D INTERVAL="$interval" -D DELAY="$delay" "$@"
}

wait_state() { # ID STATE TIMEOUT_S
    local deadline=$((SECONDS + $3)) st
    while :; do
        st=$(job_json "$1" | jstate)
        [ "$st" = "$2" ] && return 0
        case "$st" in FAILED|CANCELED|FINISHED) [ "$st" != "$2" ] && { echo "job $1 is $st" >&2; exit 1; } ;; esac
        [ $SECONDS -lt $deadline ] || { echo "job $1 not $2 within $3 s (is $st)" >&2; exit 1; }
        sleep 0.1
    done
}

wait_ckpt() { # ID N: until checkpoint N (or later) completed
    local deadline=$((SECONDS + 120)) l
    while :; do
        l=$(latest_id "$1")
        [ -n "$l" ] && [ "$l" -ge "$2" ] && return 0
        [ $SECONDS -lt $deadline ] || { echo "checkpoint $2 of $1 not complete within 120 s" >&2; exit 1; }
        sleep 0.05
    done
}

# SST files of checkpoint N of job ID that checkpoint N-1 also links (same
# inode), and the bytes of those it does not: what N cost on disk.
inc_stats() { # ID N -> "ssts shared new_MB"
    local base="$run/checkpoints/$1" cur prev
    cur="$base/chk-$2" prev="$base/chk-$(($2 - 1))"
    if [ ! -d "$prev" ] || [ ! -d "$cur" ]; then echo "- - -"; return; fi
    find "$prev" -name '*.sst' -printf '%i\n' > "$run/prev.inodes" 2>/dev/null || true
    find "$cur" -name '*.sst' -printf '%i %s\n' > "$run/cur.inodes" 2>/dev/null || true
    awk 'NR == FNR { p[$1] = 1; next }
         { n++; if ($1 in p) s++; else nb += $2 }
         END { printf "%d %d %.1f\n", n, s, nb / 1048576 }' "$run/prev.inodes" "$run/cur.inodes"
}

# One row per checkpoint: the job manager's history entry of checkpoint N.
ckpt_row() { # LABEL ID N
    local h dur sync bytes
    h=$(get "/jobs/$2/checkpoints" | grep -o '{[^{}]*}' | grep '"end_to_end_duration"' |
        grep "\"id\":$3[,}]" | head -1 || true)
    dur=$(printf '%s' "$h" | jint end_to_end_duration)
    sync=$(printf '%s' "$h" | jint sync_duration)
    bytes=$(printf '%s' "$h" | jint state_size)
    read -r n s nb < <(inc_stats "$2" "$3")
    printf '| %s | %s | %d | %s | %s | %s | %s | %s | %s |\n' "$1" "$(mb "$(state_bytes)")" "$3" \
        "$dur" "$sync" "$(mb "${bytes:-0}")" "$n" "$s" "$nb"
}

ckpt_header() {
    echo "| phase | state dirs (MB, du) | checkpoint | duration (ms) | sync (ms) | size (MB) | SST files | shared with previous | new (MB) |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
}

record_ckpts() { # LABEL ID COUNT: the next COUNT checkpoints
    local l n
    l=$(latest_id "$2"); l=${l:-0}
    for n in $(seq $((l + 1)) $((l + $3))); do
        wait_ckpt "$2" "$n"
        ckpt_row "$1" "$2" "$n" >> "$run/ckpts.md"
    done
}

tm_pid() { cat "$run/$1.pid" 2>/dev/null || true; }

start_tm() { # taskmanager-N: again, as start-cluster.sh does
    local i=${1#taskmanager-} rpc
    rpc=$(sed -n 's/^rpc=\([0-9]*\)$/\1/p' "$run/ports")
    echo "---- $(date '+%Y-%m-%d %H:%M:%S') checkpoint.sh: starting tm-$i again" >> "$run/$1.log"
    "$build/runtime/taskmanager/weir-taskmanager" --jobmanager "127.0.0.1:$rpc" --slots 2 --id "tm-$i" \
        --state-dir "$run/state/tm-$i" </dev/null >> "$run/$1.log" 2>&1 &
    echo "$!" > "$run/$1.pid"
    disown "$!"                  # no "Killed" notice when a trial kills it
}

wait_tms() { # N registered task managers
    local deadline=$((SECONDS + 30))
    until [ "$(get /overview | grep -o '"taskmanagers":[0-9]*' | sed 's/.*://')" = "$1" ]; do
        [ $SECONDS -lt $deadline ] || { echo "task managers did not register" >&2; exit 1; }
        sleep 0.1
    done
}

# The first output line of attempt K in LOG past byte OFF: the first line
# with a "ts" after that attempt's "deployed" line.
first_out() { # LOG OFF K
    tail -c +"$(($2 + 1))" "$1" 2>/dev/null |
        awk -v k="$3" 'index($0, "subtasks (attempt " k ")") && /deployed/ { d = 1; next }
                       d && /"ts":"/ { print; exit }'
}

# First line matching PATTERN (ERE) in LOG past byte OFF.
log_line() { tail -c +"$(($2 + 1))" "$1" 2>/dev/null | grep -m1 -E -e "$3" || true; }
log_last() { tail -c +"$(($2 + 1))" "$1" 2>/dev/null | grep -E -e "$3" | tail -1 || true; }

# ---- a recovery ---------------------------------------------------------------

# recover LABEL ID SIGNAL: kills the task manager of subtask 1, waits for the
# first output of the next attempt, appends a row to recoveries.md.
recover() {
    local label=$1 id=$2 sig=$3 j attempt l victim vlog t0 k line seen tsgen
    local -A off
    wait_state "$id" RUNNING 120
    l=$(latest_id "$id"); l=${l:-0}
    wait_ckpt "$id" $((l + 2))
    j=$(job_json "$id")
    attempt=$(printf '%s' "$j" | jint attempt)
    k=$((attempt + 1))
    victim=$(printf '%s' "$j" | grep -o '"taskmanager-id":"[^"]*"' | head -1 | sed 's/.*:"\(tm-[0-9]*\)"/\1/')
    victim="taskmanager-${victim#tm-}"
    for f in "$run"/jobmanager.log "$run"/taskmanager-*.log; do off[$f]=$(stat -c %s "$f"); done
    vlog="$run/$victim.log"
    t0=$EPOCHREALTIME
    kill "-$sig" "$(tm_pid "$victim")"
    seen="" line=""
    while [ -z "$line" ]; do
        for f in "$run"/taskmanager-*.log; do
            [ "$f" = "$vlog" ] && continue
            line=$(first_out "$f" "${off[$f]}" "$k")
            [ -n "$line" ] && { seen=$EPOCHREALTIME; break; }
        done
        if [ -z "$line" ]; then
            awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a > 120) }' &&
                { echo "no output of attempt $k within 120 s" >&2; exit 1; }
            sleep 0.005
        fi
    done
    tsgen=$(printf '%s' "$line" | sed -n 's/.*"ts":"\([^"]*\)".*/\1/p')
    tsgen=$(date -u -d "$tsgen" +%s.%6N)
    sleep 0.5                                     # let the log lines land
    local jm="$run/jobmanager.log" jo=${off[$run/jobmanager.log]} sl so
    for f in "$run"/taskmanager-*.log; do [ "$f" != "$vlog" ] && { sl=$f; so=${off[$f]}; }; done
    local t_lost t_created t_sched t_rest1 t_restn t_depl t_start
    t_lost=$(log_epoch "$(log_line "$jm" "$jo" 'task manager tm-[0-9]+ .* lost')")
    t_created=$(log_epoch "$(log_line "$jm" "$jo" 'RESTARTING -> CREATED')")
    t_sched=$(log_epoch "$(log_line "$jm" "$jo" "scheduled on .*attempt $k")")
    t_rest1=$(log_epoch "$(log_line "$sl" "$so" 'restored keyed state of checkpoint')")
    t_restn=$(log_epoch "$(log_last "$sl" "$so" 'restored keyed state of checkpoint')")
    t_depl=$(log_epoch "$(log_line "$sl" "$so" "deployed [0-9]+ subtasks \\(attempt $k\\)")")
    t_start=$(log_epoch "$(log_line "$sl" "$so" "restored '[^']*' from checkpoint")")
    local rmb ck
    rmb=$(mb "$(state_bytes)")
    ck=$(job_json "$id" | grep -o '"restored_from":[0-9]*' | sed 's/.*://')
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | **%s** |\n' \
        "$label" "$sig" "$rmb" "$ck" \
        "$(ms_between "$t0" "$t_lost")" "$(ms_between "$t_lost" "$t_created")" \
        "$(ms_between "$t_created" "$t_sched")" "$(ms_between "$t_sched" "$t_rest1")" \
        "$(ms_between "$t_rest1" "$t_restn")" "$(ms_between "$t_restn" "$t_depl")" \
        "$(ms_between "$t_depl" "$t_start") / $(ms_between "$t_start" "$tsgen") / $(ms_between "$tsgen" "$seen")" \
        "$(ms_between "$t0" "$seen")" >> "$run/recoveries.md"
    # the killed task manager comes back (a stopped one is killed first)
    if [ "$sig" = STOP ]; then kill -KILL "$(tm_pid "$victim")"; sleep 0.2; fi
    start_tm "$victim"
    wait_tms 2
}

rec_header() {
    echo "| state | signal | state dirs (MB, du) | restored checkpoint | kill -> lost (ms) | lost -> CREATED (cancel + delay) | CREATED -> deploy sent | deploy -> 1st keyed restore | -> last keyed restore | -> deployed | -> start / -> probe made / -> line seen (ms) | kill -> first output (ms) |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
: > "$run/ckpts.md"
: > "$run/recoveries.md"

# ---- 1. growth ---------------------------------------------------------------

id=$(submit "$run/ckbench.yaml" -D ROWS_RATE=0)
wait_state "$id" RUNNING 60
t_growth=$SECONDS
for pct in 10 50 100; do
    target=$((state_mb * 1048576 * pct / 100))
    while [ "$(state_bytes)" -lt "$target" ]; do
        st=$(job_json "$id" | jstate)
        [ "$st" = RUNNING ] || { echo "growth job is $st" >&2; exit 1; }
        sleep 0.5
    done
    record_ckpts "growth, ~$((state_mb * pct / 100)) MB" "$id" 3
done
# one recovery while rows still go as fast as they can
recover "~$state_mb MB, rows unthrottled" "$id" KILL
t_growth=$((SECONDS - t_growth))
# the third "write-records" is the rows vertex's total (after its two subtasks)
rows_made=$(job_json "$id" | grep -o '"write-records":[0-9]*' | sed -n '3s/.*://p')

# ---- 2. quiet, ~1 GB: resumed from the growth job's latest checkpoint -----------

chk=$(latest_path "$id")
jobctl cancel "$id" >/dev/null
wait_state "$id" CANCELED 60
declare -A off0
for f in "$run"/taskmanager-*.log; do off0[$f]=$(stat -c %s "$f"); done
t0=$EPOCHREALTIME
id=$(submit "$run/ckbench.yaml" -D ROWS_RATE=2000 --from-savepoint "$chk")
resume=""
while [ -z "$resume" ]; do
    for f in "$run"/taskmanager-*.log; do
        [ -n "$(first_out "$f" "${off0[$f]}" 0)" ] && { resume=$(ms_between "$t0" "$EPOCHREALTIME"); break; }
    done
    sleep 0.005
done
record_ckpts "quiet, ~$state_mb MB" "$id" 3
for _ in $(seq 1 "$trials"); do recover "~$state_mb MB" "$id" KILL; done
jobctl cancel "$id" >/dev/null
wait_state "$id" CANCELED 60

# ---- 3. quiet, small ------------------------------------------------------------

id=$(submit "$run/ckbench.yaml" -D ROWS_RATE=2000)
wait_state "$id" RUNNING 60
record_ckpts "quiet, small" "$id" 3
for _ in $(seq 1 "$trials"); do recover small "$id" KILL; done
[ "$stop_trial" = false ] || recover small "$id" STOP
jobctl cancel "$id" >/dev/null
wait_state "$id" CANCELED 60

# ---- report -------------------------------------------------------------------

echo "# bench/checkpoint.sh --state-mb $state_mb --trials $trials --restart-delay $delay --interval $interval"
echo "# job manager --heartbeat-timeout ${WEIR_HEARTBEAT_TIMEOUT:-5s} (WEIR_HEARTBEAT_TIMEOUT), task manager heartbeat every 1s"
echo "# $(nproc) cores, $(free -g | awk '/^Mem/ { print $2 }') GiB, load average before: $load0"
echo "# growth: $rows_made rows in ${t_growth} s"
echo
ckpt_header
cat "$run/ckpts.md"
echo
echo "Resumed by submit --from-savepoint (~$state_mb MB): submit -> first output line $resume ms"
echo
rec_header
cat "$run/recoveries.md"
