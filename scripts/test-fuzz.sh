#!/usr/bin/env bash
# The test command's fuzz stage: every libFuzzer target of tests/fuzz runs for
# a short time (FUZZ_SECONDS, default 10) from its seeds and every crash kept
# in crashes/<target>/; any crash fails the stage. Closes with
# "N passed, M failed" counting targets.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$("$root/scripts/fuzz.sh" "${FUZZ_SECONDS:-10}" 2>&1)"
rc=$?
printf '%s\n' "$out"
passed="$(printf '%s\n' "$out" | grep -cE '^[a-z_]+ +ok ')"
failed="$(printf '%s\n' "$out" | grep -cE '^[a-z_]+ +CRASH ')"
# A build or setup failure crashed no target but ran none either.
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
