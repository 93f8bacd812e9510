#!/usr/bin/env bash
# Configures and builds wirehub (Release) in build/ with Ninja.
#   scripts/build.sh [extra cmake -D options...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${WIREHUB_BUILD_DIR:-$root/build}"
jobs="${WIREHUB_JOBS:-2}"

# A build dir configured with another generator cannot be reused by Ninja.
if [ -f "$build/CMakeCache.txt" ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$build/CMakeCache.txt"; then
  echo "build.sh: $build was configured with another generator; starting it afresh"
  rm -rf "$build"
fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
ninja -C "$build" -j"$jobs"
