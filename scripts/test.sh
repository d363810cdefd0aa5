#!/usr/bin/env bash
# scripts/test.sh -- install what is missing, build, and run every test twice:
# once in build/ and once in build-asan/ under AddressSanitizer and
# UndefinedBehaviorSanitizer (with leak detection).
#
#   ./scripts/test.sh
#
# Runs from any directory, needs no terminal and no input (CI=true works),
# and as root or with sudo for the packages. Each configuration is set up
# (or reconfigured, which also enforces its options), built with ninja, and
# tested with `meson test` over every suite; a failed test's log is printed.
# The last line is the total over both runs, "N passed, N failed"; the exit
# status is 0 only when everything built and every test passed.
#
#   WEIR_TEST_JOBS=N      tests run in parallel (default 2; cluster tests
#                         always run alone)
#   WEIR_TEST_ASAN=0      skip the sanitizer run
#   MESON_TEST_ARGS="..." extra `meson test` arguments, e.g. "--suite core"
set -euo pipefail

cd "$(dirname "$0")/.."
jobs="${WEIR_TEST_JOBS:-2}"
total_passed=0
total_failed=0
status=0

say() { printf '\n==> %s\n' "$*"; }

# setup DIR OPTION... : configure DIR fresh, or reconfigure it with OPTIONs.
setup() {
    local dir=$1
    shift
    local log
    log=$(mktemp)
    if [ -f "$dir/meson-private/coredata.dat" ]; then
        meson setup --reconfigure "$dir" "$@" >"$log" 2>&1 ||
            meson setup --wipe "$dir" "$@" >"$log" 2>&1 || { cat "$log"; rm -f "$log"; return 1; }
    else
        meson setup "$dir" "$@" >"$log" 2>&1 || { cat "$log"; rm -f "$log"; return 1; }
    fi
    rm -f "$log"
}

# count DIR : adds DIR's test results (meson-logs/testlog.json) to the totals.
count() {
    local log="$1/meson-logs/testlog.json" ok bad
    if [ ! -f "$log" ]; then
        echo "test.sh: $log is missing" >&2
        return
    fi
    ok=$(grep -Eco '"result": *"(OK|EXPECTEDFAIL)"' "$log" || true)
    bad=$(grep -Eco '"result": *"(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS|INTERRUPT)"' "$log" || true)
    echo "$1: $ok passed, $bad failed"
    total_passed=$((total_passed + ok))
    total_failed=$((total_failed + bad))
}

# run NAME DIR OPTION... : set up, build and test one configuration.
run() {
    local name=$1 dir=$2
    shift 2
    say "$name: configure $dir"
    setup "$dir" "$@"
    say "$name: build"
    if ! ninja -C "$dir" </dev/null; then
        echo "test.sh: the $name build failed" >&2
        status=1
        return
    fi
    say "$name: test"
    rm -f "$dir/meson-logs/testlog.json"
    # shellcheck disable=SC2086
    if ! meson test -C "$dir" --print-errorlogs --num-processes "$jobs" \
            ${MESON_TEST_ARGS:-} "${extra_test_args[@]}" </dev/null; then
        status=1
    fi
    count "$dir"
}

say "dependencies"
./scripts/deps.sh </dev/null

extra_test_args=()
run "plain" build -Db_sanitize=none

if [ "${WEIR_TEST_ASAN:-1}" != 0 ]; then
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
    # sanitized binaries are several times slower
    extra_test_args=(--timeout-multiplier 3)
    run "asan+ubsan" build-asan -Db_sanitize=address,undefined -Db_lundef=false
fi

if [ "$total_failed" -ne 0 ]; then
    status=1
fi
echo
echo "$total_passed passed, $total_failed failed"
exit "$status"
