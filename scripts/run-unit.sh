#!/bin/sh
# Runs every BUILD/tests/test_* unit-test binary (cmocka), each in its own
# process and bounded in time, and counts the test cases. Ends with one
# line "N passed, N failed"; exits non-zero when anything failed.
# Usage: scripts/run-unit.sh BUILD        (e.g. build, build/asan)
BUILD=${1:-build}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-120}
passed=0
failed=0

if [ ! -d "$BUILD/tests" ]; then
    echo "run-unit: no $BUILD/tests (run make first)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT INT TERM

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)...".
count() {
    sed -n "s/^\[  $1  \] \([0-9][0-9]*\) test.*/\1/p" "$log" | tail -1
}

found=0
for t in "$BUILD"/tests/test_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    found=1
    CMOCKA_MESSAGE_OUTPUT=stdout timeout -k 5 "$UNIT_TIMEOUT" "$t" >"$log" 2>&1
    rc=$?
    p=$(count PASSED)
    f=$(count FAILED)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # crashed, timed out or exited non-zero without a cmocka summary
    fi
    if [ "$rc" -eq 0 ] && [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        p=1 # passed but printed no cmocka summary
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then
        echo "PASS $t ($p)"
    else
        [ "$rc" -eq 124 ] && echo "TIMEOUT after ${UNIT_TIMEOUT}s: $t"
        echo "FAIL $t (exit $rc; $p passed, $f failed)"
        sed 's/^/    /' "$log"
    fi
done
if [ "$found" -eq 0 ]; then
    echo "run-unit: no unit-test binaries in $BUILD/tests" >&2
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
