#!/bin/sh
# Static checks that a compiler does not make: banned functions, the
# one-way dependency rule between components, and formatting.
cd "$(dirname "$0")/.." || exit 2
fail=0

# Unbounded or stateful string functions (curl's list, STYLE.md 2.10).
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|strtok)[[:space:]]*\('
if grep -nE "$banned" src/*/*.c src/*/*.h; then
    echo "lint: banned function used (see above)" >&2
    fail=1
fi

# The dependency rule: base <- event <- smtp/queue/config <- delivery/inbound <- cmd.
check_layer() {
    dir=$1
    allowed=$2
    bad=$(grep -hoE '#include "[a-z]+/' src/"$dir"/*.[ch] | sed 's/#include "//; s|/||' |
        sort -u | grep -vxE "$allowed")
    if [ -n "$bad" ]; then
        echo "lint: src/$dir may not include from: $bad" >&2
        fail=1
    fi
}
check_layer base 'base'
check_layer event 'base|event'
check_layer smtp 'base|smtp'
check_layer queue 'base|event|queue'
check_layer config 'base|config|smtp'
check_layer net 'base|net'
check_layer delivery 'base|event|smtp|queue|config|net|delivery'
check_layer control 'base|event|queue|config|delivery|control'
check_layer submit 'base|smtp|queue|config|delivery|control|submit'
check_layer auth 'base|smtp|config|event|auth'

if command -v clang-format >/dev/null 2>&1; then
    if ! clang-format --dry-run -Werror $(git ls-files '*.c' '*.h') 2>/dev/null; then
        echo "lint: not formatted with .clang-format (run: make format)" >&2
        fail=1
    fi
fi
[ $fail = 0 ] && echo "lint: ok"
exit $fail
