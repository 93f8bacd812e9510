#!/usr/bin/env bash
# tests/interop: one wirehub server, a client per language and the reference
# libraries in one room (tests/interop/README.md); then the same room on two
# servers (C and Python) sharing one redis-server. Runs after the language
# suites, so the Python package and the Node addon are already built; builds
# the relay, the C client and the Rust and Go clients here.
#
# Every client is required: a setup step that fails (the reference peers'
# install, a build) or a client that is absent fails the stage. The last line
# is "N passed, M failed" (scripts/test.sh reads it); a setup failure prints
# "0 passed, 1 failed" after saying which step failed.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${WIREHUB_BUILD_DIR:-$root/build}"
required="c,python,node,rust,go,ws,websockets"
log="$(mktemp -t wirehub-interop.XXXXXX)"
trap 'rm -f "$log"' EXIT

setup_failed() {  # setup_failed WHAT: the step's output, then the verdict
  cat "$log" >&2
  echo "test-interop: setup failed: $1" >&2
  echo "0 passed, 1 failed"
  exit 1
}

t0=$(date +%s)
"$root/scripts/deps-interop.sh" >"$log" 2>&1 ||
  setup_failed "scripts/deps-interop.sh (npm ws in tests/interop/node_modules, PyPI websockets)"
cat "$log"
ninja -C "$build" interop_relay_server interop_c_client >"$log" 2>&1 ||
  setup_failed "ninja -C $build interop_relay_server interop_c_client"
[ -x "$root/tests/interop/clients/build-native.sh" ] ||
  { : >"$log"; setup_failed "tests/interop/clients/build-native.sh is missing"; }
"$root/tests/interop/clients/build-native.sh" "$build" >"$log" 2>&1 ||
  setup_failed "tests/interop/clients/build-native.sh (the Rust and Go clients)"
echo "test-interop: setup done in $(( $(date +%s) - t0 ))s"
rm -f "$log"
# One room on one server, then one room on two servers in two languages
# (C and Python) on one redis-server, every client on both.
# The last line sums both runs' "N passed, M failed".
passed=0 failed=0
for mode in "" --cluster; do
  out="$(mktemp -t wirehub-interop-run.XXXXXX)"
  python3 "$root/tests/interop/run_interop.py" --build-dir "$build" --require "$required" $mode | tee "$out"
  last="$(tail -n 1 "$out")"
  rm -f "$out"
  if [[ "$last" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
  else
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
