#!/usr/bin/env bash
# Node.js part: node + npm (Debian's if missing) and the npm devDependencies
# from package-lock.json (ws, express, socket.io, node-addon-api, node-gyp...).
# Idempotent: no network call when node_modules matches the lock file.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -E "$@"; fi; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm
fi
# node-gyp builds against the installed headers (it cannot download them here)
if [ ! -f /usr/include/node/node_api.h ]; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libnode-dev || true
fi

# Reinstall only when package-lock.json changed since the last `npm ci` here
# (its hash is kept in node_modules/), so a current tree costs no network call.
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp=node_modules/.wirehub-lock.sha256
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d node_modules/node-addon-api ] && [ -d node_modules/ws ]; then
  exit 0
fi
npm ci --no-audit --no-fund
echo "$want" > "$stamp"
