#!/usr/bin/env bash
# bench/throughput.sh -- records per second through weir's runtime, no Kafka.
#
#   bench/throughput.sh [--count N] [--parallelism P] [--backend rocksdb|memory]
#
# Starts a private cluster (2 task managers x 2 slots) and runs two bounded
# jobs over N generated rows, timing submit -> FINISHED:
#   shuffle: datagen -> filter -> key_by -> count (emit final) -> file
#            (every row crosses a hash-partitioned channel, half of them
#            between task managers over TCP; keyed state per row)
#   chain:   datagen -> filter -> map -> file (fully chained, no network)
# Prints rows/s per job. Stops the cluster it started.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
count=10000000 parallelism=2 backend=rocksdb
while [ $# -gt 0 ]; do
    case "$1" in
    --count) count=$2; shift 2 ;;
    --parallelism) parallelism=$2; shift 2 ;;
    --backend) backend=$2; shift 2 ;;
    *) echo "usage: bench/throughput.sh [--count N] [--parallelism P] [--backend rocksdb|memory]" >&2; exit 2 ;;
    esac
done
build="${WEIR_BUILD_DIR:-$root/build}"
[ -x "$build/runtime/cli/jobctl" ] || { meson setup "$build" "$root" >/dev/null; ninja -C "$build" >/dev/null; }
run=$(mktemp -d /tmp/weir-bench.XXXXXX)
"$root/scripts/start-cluster.sh" --taskmanagers 2 --slots 2 --rest-port 0 --dir "$run" >/dev/null
trap '"$root/scripts/stop-cluster.sh" --dir "$run" >/dev/null 2>&1; rm -rf "$run"' EXIT
# shellcheck disable=SC1091
. "$run/cluster.env"
export WEIR_REST

cat > "$run/shuffle.yaml" <<YAML
name: bench-shuffle
parallelism: $parallelism
config: {state.backend: $backend}
sources:
  - name: gen
    kind: datagen
    count: $count
    seed: 1
    fields:
      - {name: id, type: int, gen: sequence}
      - {name: key, type: int, gen: random, min: 1, max: 10000}
      - {name: amount, type: double, gen: random, min: 0, max: 100}
operators:
  - {name: keep, kind: filter, input: gen, where: "amount >= 0"}
  - {name: counts, kind: count, input: keep, key_by: key, emit: final}
sinks:
  - {name: out, kind: file, input: counts, path: "$run/out-shuffle"}
YAML
cat > "$run/chain.yaml" <<YAML
name: bench-chain
parallelism: $parallelism
sources:
  - name: gen
    kind: datagen
    count: $count
    seed: 1
    fields:
      - {name: id, type: int, gen: sequence}
      - {name: amount, type: double, gen: random, min: 0, max: 100}
operators:
  - {name: keep, kind: filter, input: gen, where: "amount > 99.9"}
  - {name: cents, kind: map, input: keep, fields: [id, {name: cents, expr: "int(amount * 100)"}]}
sinks:
  - {name: out, kind: file, input: cents, path: "$run/out-chain"}
YAML

for job in shuffle chain; do
    t0=$(date +%s.%N)
    id=$("$build/runtime/cli/jobctl" submit "$run/$job.yaml")
    while :; do
        state=$("$build/runtime/cli/jobctl" status "$id" --json | sed -n 's/.*"state":"\([A-Z]*\)".*/\1/p' | head -1)
        case "$state" in FINISHED) break ;; FAILED|CANCELED) echo "$job: $state" >&2; exit 1 ;; esac
        sleep 0.05
    done
    t1=$(date +%s.%N)
    awk -v n="$count" -v a="$t0" -v b="$t1" -v j="$job" -v p="$parallelism" -v be="$backend" \
        'BEGIN { printf "%-8s %d rows, parallelism %d, state %s: %.2f s, %.2f M rows/s\n", j, n, p, be, b - a, n / (b - a) / 1e6 }'
done
