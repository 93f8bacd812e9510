#!/usr/bin/env bash
# A soak: echo (plain and compressed), broadcast and connection churn against
# one server for MINUTES, one line per sample (every SOAK_SAMPLE_S seconds,
# default 60) with the server's RSS, descriptors and error counts
# (tests/abuse/soak.py). Exits non-zero on any error or if RSS or descriptors
# keep growing.
#   scripts/soak.sh MINUTES [c|python|node]      (default: c, the suite's C server)
# Builds what it needs against $WIREHUB_BUILD_DIR (default build/).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ $# -lt 1 ] || [ $# -gt 2 ]; then echo "usage: scripts/soak.sh MINUTES [c|python|node]" >&2; exit 2; fi
server="${2:-c}"
bdir="$(mkdir -p "${WIREHUB_BUILD_DIR:-$root/build}" && cd "${WIREHUB_BUILD_DIR:-$root/build}" && pwd)"
export WIREHUB_BUILD_DIR="$bdir"
tests/abuse/prepare.sh "$server" >/dev/null || exit 1
# From a neutral directory, so `import wirehub` is the installed package.
cd /tmp && exec "${PYTHON:-python3}" "$root/tests/abuse/soak.py" "$1" "$server"
