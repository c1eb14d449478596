#!/bin/sh
# The dwcp-delta CLI contract: round trips through files and pipes, a non-zero
# exit and no output file (nor temporary) on a wrong baseline, a corrupt or a
# truncated delta, and usage errors.
#   dwcp_delta_cli_test.sh PATH_TO_DWCP_DELTA
set -u
D="$1"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok - $1"; }
bad() { echo "FAIL - $1"; fails=$((fails + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

# Baseline with structure, new = baseline with some bytes changed and data appended.
head -c 3000000 /dev/urandom > "$T/rand"
{ head -c 1000000 "$T/rand"; head -c 2000000 /dev/zero; seq 1 200000; } > "$T/base"
cp "$T/base" "$T/new"
printf 'CHANGED' | dd of="$T/new" bs=1 seek=123456 conv=notrunc 2>/dev/null
seq 1 1000 >> "$T/new"

check "encode succeeds" '"$D" encode -s "$T/base" "$T/new" "$T/delta" 2>"$T/err"'
check "summary line has ratio" 'grep -q "ratio" "$T/err"'
check "delta is small" '[ $(wc -c < "$T/delta") -lt 20000 ]'
check "decode succeeds" '"$D" decode -q -s "$T/base" "$T/delta" "$T/out"'
check "decode is exact" 'cmp -s "$T/out" "$T/new"'
check "threads and tiers" '"$D" encode -q -T 2 --level zstd9 -s "$T/base" "$T/new" "$T/delta9" &&
	"$D" decode -q -T 2 -s "$T/base" "$T/delta9" "$T/out9" && cmp -s "$T/out9" "$T/new"'
check "igzip and none tiers" '"$D" encode -q -1 -s "$T/base" "$T/new" "$T/d1" && "$D" encode -q --level none -s "$T/base" "$T/new" "$T/d0" &&
	"$D" decode -q -s "$T/base" "$T/d1" "$T/o1" && "$D" decode -q -s "$T/base" "$T/d0" "$T/o0" && cmp -s "$T/o1" "$T/new" && cmp -s "$T/o0" "$T/new"'
check "stdin/stdout" 'cat "$T/new" | "$D" encode -q -s "$T/base" - - | "$D" decode -q -s "$T/base" - - | cmp -s - "$T/new"'
check "no baseline" '"$D" encode -q "$T/new" "$T/dfull" && "$D" decode -q "$T/dfull" "$T/ofull" && cmp -s "$T/ofull" "$T/new"'

# Errors: exit non-zero, and neither OUT nor a temporary is left behind.
no_output() { [ ! -e "$T/bad" ] && [ -z "$(ls -A "$T" | grep dwcp-delta)" ]; }
cp "$T/base" "$T/wrongbase"
printf 'X' | dd of="$T/wrongbase" bs=1 seek=5 conv=notrunc 2>/dev/null
check "wrong baseline refused" '! "$D" decode -q -s "$T/wrongbase" "$T/delta" "$T/bad" 2>"$T/err" && no_output && grep -q "wrong baseline" "$T/err"'
check "missing baseline refused" '! "$D" decode -q "$T/delta" "$T/bad" 2>/dev/null && no_output'
head -c $(( $(wc -c < "$T/delta") - 9 )) "$T/delta" > "$T/trunc"
check "truncated delta refused" '! "$D" decode -q -s "$T/base" "$T/trunc" "$T/bad" 2>/dev/null && no_output'
cp "$T/delta" "$T/corrupt"
printf '\377' | dd of="$T/corrupt" bs=1 seek=200 conv=notrunc 2>/dev/null
check "corrupt delta refused" '! "$D" decode -q -s "$T/base" "$T/corrupt" "$T/bad" 2>/dev/null && no_output'
check "not a delta refused" '! "$D" decode -q -s "$T/base" "$T/base" "$T/bad" 2>/dev/null && no_output'
check "missing input refused" '! "$D" encode -q -s "$T/base" "$T/nonexistent" "$T/bad" 2>/dev/null && no_output'
echo old > "$T/keep"
check "existing OUT untouched on error" '! "$D" decode -q -s "$T/wrongbase" "$T/delta" "$T/keep" 2>/dev/null && [ "$(cat "$T/keep")" = old ]'
check "stdout gets nothing on error" '[ $("$D" decode -q -s "$T/wrongbase" "$T/delta" - 2>/dev/null | wc -c) -eq 0 ]'
"$D" decode 2>/dev/null; check "usage error exits 1" '[ $? -eq 1 ]'
"$D" encode --level zstd7 a b 2>/dev/null; check "bad level exits 1" '[ $? -eq 1 ]'
"$D" encode -q -s "$T/base" "$T/nonexistent" "$T/bad" 2>/dev/null; check "runtime error exits 2" '[ $? -eq 2 ]'

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
