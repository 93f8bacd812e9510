#!/usr/bin/env bash
# tests/interop: one wirehub server, a client per language and the reference
# libraries in one room (tests/interop/README.md). Runs after the language
# suites, so the Python package and the Node addon are already built; builds
# the Rust and Go clients here if those bindings are in the tree.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${WIREHUB_BUILD_DIR:-$root/build}"
"$root/scripts/deps-interop.sh"
ninja -C "$build" interop_relay_server interop_c_client >/dev/null
if [ -x "$root/tests/interop/clients/build-native.sh" ]; then
  "$root/tests/interop/clients/build-native.sh" "$build"
fi
exec python3 "$root/tests/interop/run_interop.py" --build-dir "$build"
