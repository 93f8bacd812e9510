#!/usr/bin/env bash
# What the Rust binding (bindings/rust, examples/rust, bench/rust) needs on
# Debian bookworm, installing only what is missing; no network call when
# everything is present.
#   apt:   cargo + rustc if there is no cargo at all (Debian's 1.63 is enough:
#          the crate declares rust-version 1.63 and has no dependencies).
#   crates: none today; `cargo fetch` runs only if Cargo.lock gains registry
#          packages that are not in the local cache.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

SUDO=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo -E); fi

# rustup installs into ~/.cargo/bin, which a non-login shell may not have.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "deps-rust: apt-get install cargo rustc"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends cargo rustc
else
  echo "deps-rust: cargo already present ($(cargo --version))"
fi

lock="$root/bindings/rust/Cargo.lock"
if grep -q '^source = "registry' "$lock" 2>/dev/null; then
  if ! (cd "$root/bindings/rust" && cargo fetch --locked --offline >/dev/null 2>&1); then
    echo "deps-rust: cargo fetch"
    (cd "$root/bindings/rust" && cargo fetch --locked)
  else
    echo "deps-rust: crates already cached"
  fi
else
  echo "deps-rust: no crates to fetch"
fi
