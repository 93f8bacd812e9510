#!/usr/bin/env bash
# Node.js part: build the addon against $WIREHUB_BUILD_DIR/libwirehub.a, put
# it in prebuilds/ (what `npm pack` ships), run tests/node/*.test.js with
# node's test runner (the install check is one of them: npm pack, install
# into a fresh directory, require, echo). Last line: "N passed, M failed".
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bdir="$(cd "${WIREHUB_BUILD_DIR:-$root/build}" 2>/dev/null && pwd || echo "${WIREHUB_BUILD_DIR:-$root/build}")"
jobs="${WIREHUB_JOBS:-2}"

fail_build() { echo "test-node.sh: $1" >&2; echo "0 passed, 1 failed"; exit 1; }

if [ ! -f "$bdir/libwirehub.a" ]; then
  WIREHUB_BUILD_DIR="$bdir" WIREHUB_JOBS="$jobs" ./scripts/build.sh || fail_build "engine build failed"
fi
if [ ! -d node_modules/node-addon-api ] || [ ! -d node_modules/node-gyp ]; then
  ./scripts/deps-node.sh || fail_build "npm dependencies missing (scripts/deps-node.sh failed)"
fi

echo "== building the addon (node-gyp, engine from $bdir)"
WIREHUB_BUILD_DIR="$bdir" npx --no-install node-gyp rebuild --nodedir=/usr --directory=bindings/node -j "$jobs" \
  >"$bdir/node-gyp.log" 2>&1 || { tail -n 40 "$bdir/node-gyp.log"; fail_build "addon build failed"; }
# prebuilds/ as npm pack's prepack step makes it (the addon, stripped)
WIREHUB_BUILD_DIR="$bdir" WIREHUB_JOBS="$jobs" ./scripts/prebuild-node.sh || fail_build "prebuilds/ copy failed"

echo "== node --test tests/node"
log="$(mktemp)"
# A failed test can leave connections open; --test-force-exit (node >= 20.14)
# ends each file anyway, and --test-timeout bounds every test.
flags=(--test-reporter=spec --test-concurrency=1 --test-timeout=120000)
if node --help 2>/dev/null | grep -q -- --test-force-exit; then flags+=(--test-force-exit); fi
node --test "${flags[@]}" tests/node/*.test.js 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
pass=$(grep -E '^ℹ pass [0-9]+' "$log" | tail -n1 | awk '{print $3}')
fail=$(grep -E '^ℹ fail [0-9]+' "$log" | tail -n1 | awk '{print $3}')
cancelled=$(grep -E '^ℹ cancelled [0-9]+' "$log" | tail -n1 | awk '{print $3}')
skip=$(grep -E '^ℹ skipped [0-9]+' "$log" | tail -n1 | awk '{print $3}')
rm -f "$log"
pass=${pass:-0}
fail=$(( ${fail:-0} + ${cancelled:-0} ))
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
echo "$pass passed, $fail failed, ${skip:-0} skipped"
[ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]
