#!/usr/bin/env bash
# The C chat server (examples/c): installs what is missing, builds, and runs it on
# 127.0.0.1:8080 (Ctrl-C stops it). Arguments replace the default ones.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"

build="${WIREHUB_BUILD_DIR:-$root/build}"
bin="$build/examples/c/wirehub-chat-server"
if [ ! -x "$bin" ]; then
  bin="$(find "$build" -type f -name wirehub-chat-server -perm -u+x 2>/dev/null | head -n1)"
fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "run-chat-c.sh: wirehub-chat-server was not built (examples/c)" >&2
  exit 1
fi
if [ "$#" -eq 0 ]; then
  set -- --host 127.0.0.1 --port 8080
fi
echo "run-chat-c.sh: $bin $*"
exec "$bin" "$@"
