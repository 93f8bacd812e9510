#!/usr/bin/env bash
# The Rust binding's tests: builds bindings/rust against the Release build in
# $WIREHUB_BUILD_DIR (default build/), runs `cargo test` (unit, integration
# and doc tests), builds the examples and the benchmark server (release), and
# runs the examples once end to end (echo_server + chat_client over loopback).
# Then build.rs's pkg-config route: `cmake --install` of that build into a
# scratch prefix, the examples built from it alone (no WIREHUB_BUILD_DIR, own
# CARGO_TARGET_DIR) and run end to end again.
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
skip=0  # #[ignore]d tests and doc examples marked ignore
log="$(mktemp /tmp/wirehub-rust-test.XXXXXX)"
pc_tmp=""
trap 'rm -f "$log"; [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null; [ -n "$pc_tmp" ] && rm -rf "$pc_tmp"' EXIT
# shellcheck source=examples-e2e.sh
. "$root/scripts/examples-e2e.sh"

if [ ! -f "$WIREHUB_BUILD_DIR/libwirehub.a" ]; then
  echo "test-rust: $WIREHUB_BUILD_DIR/libwirehub.a is missing; building it"
  "$root/scripts/build.sh" || { echo "0 passed, 1 failed"; exit 1; }
fi

echo "== cargo test"
cargo test --locked 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
while read -r p f i; do
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + i))
done < <(sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored.*/\1 \2 \3/p' "$log")
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

echo "== pkg-config route: the examples built against an installed libwirehub"
# As tests/install/check_install.sh does for C consumers. build.rs would fall
# back to ../../build if pkg-config failed, so its output must name the prefix.
pc_route() {
  local prefix libdir
  pc_tmp="$(mktemp -d /tmp/wirehub-rust-pc.XXXXXX)"
  prefix="$pc_tmp/prefix"
  if ! cmake --install "$WIREHUB_BUILD_DIR" --prefix "$prefix" >/dev/null; then
    echo "FAILED: pkg-config route: cmake --install $WIREHUB_BUILD_DIR --prefix $prefix failed"
    return 1
  fi
  libdir="$(ls -d "$prefix"/lib*/ 2>/dev/null | head -n 1)"
  libdir="${libdir%/}"
  if [ ! -f "$libdir/pkgconfig/wirehub.pc" ]; then
    echo "FAILED: pkg-config route: no wirehub.pc under $prefix"
    return 1
  fi
  if ! (unset WIREHUB_BUILD_DIR
        export PKG_CONFIG_PATH="$libdir/pkgconfig" CARGO_TARGET_DIR="$pc_tmp/target"
        timeout 60 cargo build --locked --example echo_server --example chat_client); then
    echo "FAILED: pkg-config route: cargo build against $prefix failed or took over 60 s"
    return 1
  fi
  if ! grep -qsF "rustc-link-search=native=$libdir" "$pc_tmp"/target/debug/build/wirehub-*/output; then
    echo "FAILED: pkg-config route: build.rs did not link from $libdir (fell back to another libwirehub)"
    return 1
  fi
  echo "ok: build.rs found the installed libwirehub with pkg-config ($libdir)"
}
if pc_route; then
  pass=$((pass + 1))
  examples_e2e "$pc_tmp/target/debug/examples" --port
else
  fail=$((fail + 1))
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
