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
  echo "== examples end to end: echo_server + chat_client"
  bin="$root/bindings/rust/target/release/examples"
  out="$(mktemp /tmp/wirehub-rust-echo.XXXXXX)"
  "$bin/echo_server" --port 0 >"$out" &
  srv=$!
  url=""
  for _ in $(seq 100); do
    url="$(sed -nE 's/^listening on (ws:\/\/[^ ]+).*/\1/p' "$out")"
    [ -n "$url" ] && break
    sleep 0.05
  done
  got="$(printf 'one\ntwo words\nthree\n' | timeout 20 "$bin/chat_client" "$url/")"
  crc=$?
  kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; srv=""
  rm -f "$out"
  if [ "$crc" -eq 0 ] && [ "$got" = "$(printf 'one\ntwo words\nthree')" ]; then
    echo "ok: chat_client got its three lines back and exited 0"
    pass=$((pass + 1))
  else
    echo "FAILED: chat_client exited $crc with output: $got"
    fail=$((fail + 1))
  fi
  # A refused connection is a clear error and exit status 1, not a crash.
  timeout 20 "$bin/chat_client" "ws://127.0.0.1:1/" </dev/null 2>/dev/null
  crc=$?
  if [ "$crc" -eq 1 ]; then pass=$((pass + 1)); echo "ok: chat_client to a closed port exits 1"
  else fail=$((fail + 1)); echo "FAILED: chat_client to a closed port exited $crc"; fi
else
  fail=$((fail + 1))
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
