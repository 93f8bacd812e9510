#!/usr/bin/env bash
# Installs what is missing, pip-installs wirehub from this repository and runs
# the Python chat example on 127.0.0.1:8080 (page and WebSocket on one port;
# Ctrl-C stops it). Arguments replace the default ones (--host H --port P).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
"$root/scripts/install-deps.sh"
"$root/scripts/pip-install-wirehub.sh"
if [ "$#" -eq 0 ]; then set -- --host 127.0.0.1 --port 8080; fi
echo "run-chat: open the page URL printed below in two browser tabs"
exec "$PY" "$root/examples/python/chat/server.py" "$@"
