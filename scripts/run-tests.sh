#!/bin/sh
# Every test, as `make test` runs it after building build/ and build/asan/:
#   1. unit tests of build and build/asan          (scripts/run-unit.sh)
#   2. the integration suite against build/petreld, then build/asan/petreld
#   3. scripts/fuzz.sh 5, when it exists
#   4. the benchmark's smoke mode (bench/run --smoke), one test
# Each stage is bounded with timeout(1). The last line is
# "N passed, N failed" (unit test cases + pytest tests + fuzz targets);
# the exit status is non-zero when anything failed.
cd "$(dirname "$0")/.." || exit 1

PY=/usr/bin/python3 # Debian's python3, which has pytest
UNIT_TIMEOUT=${UNIT_TIMEOUT:-600}
PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-900}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-900}
BENCH_SMOKE_TIMEOUT=${BENCH_SMOKE_TIMEOUT:-240}
SAN_ENV="ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1"

passed=0
failed=0
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT INT TERM

# add_counts FILE: adds the last "N passed, N failed" line of FILE; returns
# 1 when FILE has none.
add_counts() {
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -1)
    [ -n "$line" ] || return 1
    p=${line%% passed*}
    f=${line#*passed, }
    f=${f%% failed*}
    passed=$((passed + p))
    failed=$((failed + f))
    return 0
}

stage() {
    echo
    echo "=== $*"
}

# --- 1. unit tests -----------------------------------------------------------
for build in build build/asan; do
    stage "unit tests: $build"
    out="$work/unit.out"
    env $SAN_ENV timeout -k 10 "$UNIT_TIMEOUT" scripts/run-unit.sh "$build" >"$out" 2>&1
    rc=$?
    cat "$out"
    if ! add_counts "$out"; then
        echo "unit tests of $build: no result (exit $rc)"
        failed=$((failed + 1))
    elif [ "$rc" -ne 0 ] && ! grep -qE '^[0-9]+ passed, [1-9][0-9]* failed$' "$out"; then
        echo "unit tests of $build: exit $rc"
        failed=$((failed + 1))
    fi
done

# --- 2. integration tests ----------------------------------------------------
# count_junit XML: prints "P F S" (passed, failed-or-errored, skipped).
count_junit() {
    "$PY" - "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET
# a test that failed and also errored at teardown has two <testcase>s
tests = {}
for tc in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    key = (tc.get("classname"), tc.get("name"))
    tests.setdefault(key, set()).update(child.tag for child in tc)
p = f = s = 0
for tags in tests.values():
    if tags & {"failure", "error"}:
        f += 1
    elif "skipped" in tags:
        s += 1
    else:
        p += 1
print(p, f, s)
EOF
}

if ! "$PY" -c 'import pytest' 2>/dev/null; then
    echo "run-tests: $PY has no pytest (apt-get install python3-pytest)" >&2
    failed=$((failed + 2))
else
    for build in build build/asan; do
        stage "integration tests: PETREL_BUILD=$build"
        xml="$work/junit-$(echo "$build" | tr / -).xml"
        if [ "$build" = build/asan ]; then
            env $SAN_ENV PETREL_BUILD="$build" timeout -k 10 "$PYTEST_TIMEOUT" \
                "$PY" -m pytest tests/integration -q --tb=short -p no:cacheprovider --junitxml="$xml"
        else
            PETREL_BUILD="$build" timeout -k 10 "$PYTEST_TIMEOUT" \
                "$PY" -m pytest tests/integration -q --tb=short -p no:cacheprovider --junitxml="$xml"
        fi
        rc=$?
        if [ -s "$xml" ] && counts=$(count_junit "$xml"); then
            set -- $counts
            passed=$((passed + $1))
            failed=$((failed + $2))
            echo "integration ($build): $1 passed, $2 failed, $3 skipped"
            if [ "$rc" -ne 0 ] && [ "$2" -eq 0 ]; then
                echo "integration ($build): pytest exited $rc"
                failed=$((failed + 1))
            fi
        else
            [ "$rc" -eq 124 ] && echo "integration ($build): timed out after ${PYTEST_TIMEOUT}s"
            echo "integration ($build): no result (exit $rc)"
            failed=$((failed + 1))
        fi
    done
fi

# --- 3. fuzzing --------------------------------------------------------------
stage "fuzz targets: scripts/fuzz.sh 5"
if [ -f scripts/fuzz.sh ]; then
    out="$work/fuzz.out"
    FUZZ_SEED=1 timeout -k 10 "$FUZZ_TIMEOUT" sh scripts/fuzz.sh 5 >"$out" 2>&1
    rc=$?
    cat "$out"
    # one "fuzz TARGET: ok ..." or "fuzz TARGET: FAILED ..." line per target
    ok=$(grep -cE '^fuzz [^ :]+: ok' "$out")
    bad=$(grep -cE '^fuzz [^ :]+: FAILED' "$out")
    passed=$((passed + ok))
    failed=$((failed + bad))
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        echo "fuzz: exit $rc without a failed target"
        failed=$((failed + 1))
    elif [ "$rc" -eq 0 ] && [ "$ok" -eq 0 ]; then
        passed=$((passed + 1)) # succeeded without per-target lines
    fi
    [ "$rc" -eq 124 ] && echo "fuzz: timed out after ${FUZZ_TIMEOUT}s"
else
    echo "scripts/fuzz.sh is absent: fuzzing skipped"
fi

# --- 4. benchmark smoke ------------------------------------------------------
# smoke NAME OUT SHOW OK CMD...: runs CMD (bounded), prints the lines of its
# output matching SHOW, and counts one test: passed if it exits 0 and prints
# a line matching OK. No timing is asserted in either.
smoke() {
    local name=$1 out=$2 show=$3 ok=$4 rc
    shift 4
    timeout -k 10 "$BENCH_SMOKE_TIMEOUT" "$@" >"$out" 2>&1
    rc=$?
    grep -E "$show" "$out"
    if [ "$rc" -eq 0 ] && grep -q "$ok" "$out"; then
        passed=$((passed + 1))
    else
        [ "$rc" -eq 124 ] && echo "$name: timed out after ${BENCH_SMOKE_TIMEOUT}s"
        echo "$name: FAILED (exit $rc)"
        tail -40 "$out"
        failed=$((failed + 1))
    fi
}

# One tiny scenario per server kind (petrel, Postfix, Haraka when npm can
# install it): checks that the benchmark runs and produces its table. Haraka
# missing is reported, not a failure.
stage "benchmark smoke: bench/run --smoke"
if [ -x bench/run ]; then
    BENCH_OUT="$work/bench-results.md" smoke "bench smoke" "$work/bench.out" \
        '^(smoke|bench): ' '^smoke: ok' "$PY" bench/run --smoke
else
    echo "bench/run is absent: benchmark smoke skipped"
fi

# The disk's share of the rate (bench/flush-ceiling): petreld as built and
# with its directory syncs or all syncs stubbed out by a preloaded library of
# the script's own; it fails if strace shows a variant not doing what its
# name says.
stage "flush ceiling smoke: bench/flush-ceiling --smoke"
if [ -x bench/flush-ceiling ]; then
    smoke "flush ceiling smoke" "$work/ceiling.out" '^(\| |flush-ceiling: )' \
        '^flush-ceiling: ok' "$PY" bench/flush-ceiling --smoke --out "$work/ceiling.md"
else
    echo "bench/flush-ceiling is absent: skipped"
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
