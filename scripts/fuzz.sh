#!/bin/sh
# shellcheck disable=SC2086,SC2016 # flag lists are split on purpose
# Smoke-fuzzes every fuzz/fuzz_*.c: builds it as a libFuzzer binary in
# build/fuzz/ (ASan+UBSan, linked with all of src/ except src/cmd/) and runs
# it for SECONDS (default 10) over a temporary copy of
# fuzz/corpus/<target>/, so runs never grow the checked-in corpus.
#
#   scripts/fuzz.sh [SECONDS [TARGET...]]     TARGET: "address" = fuzz/fuzz_address.c
#
# FUZZ_SEED=N fixes libFuzzer's seed: make test sets it so that a run there
# replays the corpus and explores the same way every time (a regression, not
# luck, turns it red); `make fuzz` leaves it unset to explore anew.
#
# Prints "fuzz TARGET: ok (N runs)" per target. Exits 1 if any target crashes,
# leaks, times out or fails to build (the crash input stays in
# build/fuzz/artifacts/), 2 on usage or library build errors.
set -u
cd "$(dirname "$0")/.." || exit 2

secs=${1:-10}
[ $# -gt 0 ] && shift
case $secs in
'' | *[!0-9]* | 0)
    echo "usage: scripts/fuzz.sh [SECONDS [TARGET...]]" >&2
    exit 2
    ;;
esac

CC=${FUZZ_CC:-clang}
OUT=build/fuzz
PKGS="libevent libevent_pthreads libevent_openssl libssl libcrypto"
BASE_FLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -Isrc -fno-sanitize-recover=all"
PKG_CFLAGS=$(pkg-config --cflags $PKGS) || exit 2
LIBS="$(pkg-config --libs $PKGS) -lcrypt -lpthread"
JOBS=$(nproc 2>/dev/null || echo 2)

# Compiles every src/*/*.c but src/cmd/* once into an archive that each
# target links, so only the objects a target needs are pulled in.
build_library() {
    rm -rf "$OUT/obj" && mkdir -p "$OUT/obj" || return 1
    find src -mindepth 2 -maxdepth 2 -name '*.c' ! -path 'src/cmd/*' | sort |
        FUZZ_CMD="$CC $BASE_FLAGS $PKG_CFLAGS -fsanitize=fuzzer-no-link,address,undefined" \
            OBJ="$OUT/obj" xargs -P "$JOBS" -n 1 sh -c \
            '$FUZZ_CMD -c "$1" -o "$OBJ/$(printf %s "$1" | tr / _).o"' sh || return 1
    rm -f "$OUT/libpetrel-fuzz.a"
    ar rcs "$OUT/libpetrel-fuzz.a" "$OUT"/obj/*.o
}

# True when TARGET was asked for (or no targets were named).
wanted() {
    [ -z "$targets" ] && return 0
    for t in $targets; do
        [ "$t" = "$1" ] && return 0
    done
    return 1
}

# Runs one built target; prints the verdict; returns libFuzzer's status.
run_target() {
    name=$1 bin=$OUT/fuzz_$1
    corpus=$tmp/corpus-$name log=$tmp/$name.log art=$OUT/artifacts/$name/
    mkdir -p "$corpus" "$art" || return 1
    if [ -d "fuzz/corpus/$name" ]; then
        cp -R "fuzz/corpus/$name/." "$corpus/" || return 1
    fi
    dict=
    if [ -f "fuzz/$name.dict" ]; then
        dict=-dict=fuzz/$name.dict
    elif [ -f fuzz/smtp.dict ]; then
        dict=-dict=fuzz/smtp.dict
    fi
    seed=
    [ -n "${FUZZ_SEED:-}" ] && seed=-seed=$FUZZ_SEED
    "$bin" $seed -max_total_time="$secs" -timeout=10 -artifact_prefix="$art" $dict "$corpus" \
        >"$log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
        echo "fuzz $name: ok (${runs:-?} runs)"
        return 0
    fi
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    echo "fuzz $name: FAILED (exit $rc)" >&2
    tail -n 60 "$log" >&2
    echo "fuzz $name: crash input: ${crash:-none written, see log above}" >&2
    [ -n "$crash" ] && echo "fuzz $name: reproduce with: $bin $crash" >&2
    return 1
}

targets=$*
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

if ! build_library; then
    echo "fuzz: building the library for fuzzing failed" >&2
    exit 2
fi

status=0 found=0
for src in fuzz/fuzz_*.c; do
    [ -f "$src" ] || continue
    name=$(basename "$src" .c)
    name=${name#fuzz_}
    wanted "$name" || continue
    found=1
    if ! $CC $BASE_FLAGS $PKG_CFLAGS -fsanitize=fuzzer,address,undefined "$src" \
        "$OUT/libpetrel-fuzz.a" $LIBS -o "$OUT/fuzz_$name"; then
        echo "fuzz $name: FAILED to build" >&2
        status=1
        continue
    fi
    run_target "$name" || status=1
done
if [ $found -eq 0 ]; then
    echo "fuzz: no target matched: ${targets:-fuzz/fuzz_*.c}" >&2
    exit 2
fi
exit $status
