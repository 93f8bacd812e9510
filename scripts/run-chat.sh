#!/usr/bin/env bash
# Installs what is missing, pip-installs wirehub from this repository and runs
# the Python chat example on 127.0.0.1:8080 (page and WebSocket on one port;
# Ctrl-C stops it). Arguments replace the default ones (--host H --port P).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
"$root/scripts/install-deps.sh"
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
bdir="${WIREHUB_BUILD_DIR:-$root/build}"
mkdir -p "$bdir/python-build"
args=(install -q "-Cbuild-dir=$bdir/python-build" "$root")
if "$PY" -c "import scikit_build_core, pybind11" 2>/dev/null; then args=(install --no-build-isolation "${args[@]:1}"); fi
echo "run-chat: $PY -m pip ${args[*]}"
if ! "$PY" -m pip "${args[@]}" 2>/tmp/wirehub-run-chat-pip.err; then
  if grep -q externally-managed /tmp/wirehub-run-chat-pip.err; then
    "$PY" -m pip "${args[@]}" --break-system-packages
  else
    cat /tmp/wirehub-run-chat-pip.err >&2
    exit 1
  fi
fi
if [ "$#" -eq 0 ]; then set -- --host 127.0.0.1 --port 8080; fi
echo "run-chat: open the page URL printed below in two browser tabs"
exec "$PY" "$root/examples/python/chat/server.py" "$@"
