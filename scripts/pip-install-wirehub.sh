#!/usr/bin/env bash
# pip-installs wirehub from this repository into $PYTHON (default python3),
# reusing the CMake tree in $WIREHUB_BUILD_DIR/python-build, without build
# isolation when the build tools are already there (no network needed).
#   scripts/pip-install-wirehub.sh [EXTRAS]      e.g. "redis" for wirehub[redis]
# Used by run-chat.sh and run-chat-cluster.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
bdir="${WIREHUB_BUILD_DIR:-$root/build}"
mkdir -p "$bdir/python-build"
target="$root"
if [ -n "${1:-}" ]; then target="$root[$1]"; fi
args=(install -q "-Cbuild-dir=$bdir/python-build" "$target")
if "$PY" -c "import scikit_build_core, pybind11" 2>/dev/null; then args=(install --no-build-isolation "${args[@]:1}"); fi
echo "$(basename "$0"): $PY -m pip ${args[*]}"
err="$(mktemp -t wirehub-pip.XXXXXX)"
trap 'rm -f "$err"' EXIT
if ! "$PY" -m pip "${args[@]}" 2>"$err"; then
  # Debian's own python3 is "externally managed" (PEP 668).
  if grep -q externally-managed "$err"; then
    "$PY" -m pip "${args[@]}" --break-system-packages
  else
    cat "$err" >&2
    exit 1
  fi
fi
