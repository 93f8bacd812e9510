#!/usr/bin/env bash
# Builds the Rust and Go interop clients (examples/rust/interop_client.rs,
# examples/go/interop_client) into BUILD/interop/{rust,go}_client, where
# run_interop.py looks for them. A binding that is not in the tree is skipped
# (and its old binary removed, so run_interop.py reports it absent); one that
# is present but fails to build fails this script.
#   build-native.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
build="$(cd "$1" && pwd)"
mkdir -p "$build/interop"
rm -f "$build/interop/rust_client" "$build/interop/go_client"
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
[ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"
export WIREHUB_BUILD_DIR="$build"

if [ -f "$root/examples/rust/interop_client.rs" ]; then
  (cd "$root/bindings/rust" && cargo build --locked --release --example interop_client -q)
  cp "$root/bindings/rust/target/release/examples/interop_client" "$build/interop/rust_client"
fi
if [ -d "$root/examples/go/interop_client" ]; then
  if [ "$build" = "$root/build" ]; then
    (cd "$root/examples/go" && go build -o "$build/interop/go_client" ./interop_client)
  else
    (cd "$root/examples/go" && CGO_LDFLAGS="$build/libwirehub.a -lssl -lcrypto -lz -lstdc++ -lpthread -lm" \
      go build -tags wirehub_external -o "$build/interop/go_client" ./interop_client)
  fi
fi
