#!/usr/bin/env bash
# The reference peers of tests/interop: npm's ws (tests/interop/package-lock.json)
# and PyPI's websockets. Only what is missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEBSOCKETS_VERSION=17.4

if [ ! -f "$root/tests/interop/node_modules/ws/package.json" ]; then
  echo "deps-interop: npm ci (tests/interop)"
  (cd "$root/tests/interop" && npm ci --no-audit --no-fund --silent)
fi
if ! python3 -c "import websockets, sys; sys.exit(websockets.__version__ != '$WEBSOCKETS_VERSION')" 2>/dev/null; then
  echo "deps-interop: pip install websockets==$WEBSOCKETS_VERSION"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q "websockets==$WEBSOCKETS_VERSION" 2>/dev/null ||
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --break-system-packages "websockets==$WEBSOCKETS_VERSION"
fi
