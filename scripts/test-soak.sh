#!/usr/bin/env bash
# The short soak the test command runs: scripts/soak.sh for SOAK_MINUTES
# (default 1) with a sample every SOAK_SAMPLE_S seconds (default 10), once
# per server in SOAK_SERVERS (default "c"; "c python node" for all three).
# Each server's soak is one test. Last line: "N passed, M failed".
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SOAK_SAMPLE_S="${SOAK_SAMPLE_S:-10}"
passed=0 failed=0
for s in ${SOAK_SERVERS:-c}; do
  echo "== soak ${SOAK_MINUTES:-1} min: $s"
  if "$root/scripts/soak.sh" "${SOAK_MINUTES:-1}" "$s"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
