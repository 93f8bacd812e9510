#!/usr/bin/env bash
# The Rust binding's tests: builds bindings/rust against the Release build in
# $WIREHUB_BUILD_DIR (default build/), runs `cargo test` (unit, integration
# and doc tests), builds the examples and the benchmark server (release), and
# runs the examples once end to end (echo_server + chat_client over loopback).
# Last line: "N passed, M failed" over all of it; a build failure counts as 1.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export WIREHUB_BUILD_DIR="${WIREHUB_BUILD_DIR:-$root/build}"
export CARGO_BUILD_JOBS="${WIREHUB_JOBS:-2}"
export CARGO_TERM_COLOR=never
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
cd "$root/bindings/rust"

pass=0
fail=0
log="$(mktemp /tmp/wirehub-rust-test.XXXXXX)"
trap 'rm -f "$log"; [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null' EXIT
# shellcheck source=examples-e2e.sh
. "$root/scripts/examples-e2e.sh"

if [ ! -f "$WIREHUB_BUILD_DIR/libwirehub.a" ]; then
  echo "test-rust: $WIREHUB_BUILD_DIR/libwirehub.a is missing; building it"
  "$root/scripts/build.sh" || { echo "0 passed, 1 failed"; exit 1; }
fi

echo "== cargo test"
cargo test --locked 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
while read -r p f; do
  pass=$((pass + p)); fail=$((fail + f))
done < <(sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p' "$log")
if [ "$rc" -ne 0 ] && ! grep -q '^test result: FAILED' "$log"; then
  fail=$((fail + 1))  # did not build, or crashed without a summary
fi

echo "== cargo build --release --examples (examples/rust, bench/rust)"
if cargo build --locked --release --examples; then
  pass=$((pass + 1))
  examples_e2e "$root/bindings/rust/target/release/examples" --port
else
  fail=$((fail + 1))
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
