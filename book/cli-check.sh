#!/usr/bin/env bash
# Runs every command of book/generated.txt with the real ctsim binary and compares what it prints
# (stdout and stderr, as a terminal shows them) and its exit status with the committed files.
# tests/book.rs makes the same outputs through the library; this script checks that the two agree
# with the binary. Usage, from anywhere: bash book/cli-check.sh [PATH-TO-CTSIM]
set -uo pipefail
cd "$(dirname "$0")/.."
ctsim=${1:-}
if [ -z "$ctsim" ]; then
    cargo build -q -p ctsim || exit 2
    ctsim="${CARGO_TARGET_DIR:-target}/debug/ctsim"
fi
failed=0
while read -r file exit command; do
    case "$file" in ''|'#'*) continue ;; esac
    args=${command#ctsim }
    # shellcheck disable=SC2086 # the manifest's words are the arguments
    out=$(NO_COLOR=1 "$ctsim" $args 2>&1; echo "exit $?")
    want=$(cat "book/src/generated/$file"; echo "exit $exit")
    if [ "$out" != "$want" ]; then
        echo "DIFFERS: $command (book/src/generated/$file)"
        diff <(echo "$want") <(echo "$out") | head -10
        failed=1
    fi
done < book/generated.txt
[ "$failed" = 0 ] && echo "every generated output matches the ctsim binary"
exit "$failed"
