#!/usr/bin/env bash
# The package's prebuilt addon, as `npm pack` must ship it (the "prepack"
# script of package.json runs this, so a tarball always carries it, whatever
# was run before):
#   1. the engine: $WIREHUB_BUILD_DIR (default build/); built with
#      scripts/build.sh only if it has no libwirehub.a yet;
#   2. the addon, bindings/node/build/Release/wirehub.node: rebuilt with
#      node-gyp if it is missing or older than any of its sources (the
#      binding, binding.gyp, capi/wirehub.h, the symbol map, libwirehub.a);
#   3. copied, stripped, to prebuilds/<platform>-<arch>/wirehub.node.
# Progress goes to stderr (npm pack --json keeps stdout for its JSON).
# WIREHUB_JOBS (default 2) bounds the build jobs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bdir="$(mkdir -p "${WIREHUB_BUILD_DIR:-$root/build}" && cd "${WIREHUB_BUILD_DIR:-$root/build}" && pwd)"
jobs="${WIREHUB_JOBS:-2}"
say() { echo "prebuild-node.sh: $*" >&2; }

if [ ! -f "$bdir/libwirehub.a" ]; then
  say "no engine in $bdir: building it (scripts/build.sh)"
  WIREHUB_BUILD_DIR="$bdir" WIREHUB_JOBS="$jobs" ./scripts/build.sh >&2
fi

addon=bindings/node/build/Release/wirehub.node
sources=(bindings/node/wirehub_node.cc bindings/node/binding.gyp capi/wirehub.h cmake/node_addon.map "$bdir/libwirehub.a")
stale=""
if [ ! -f "$addon" ]; then
  stale="missing"
else
  for s in "${sources[@]}"; do
    if [ "$s" -nt "$addon" ]; then stale="older than $s"; break; fi
  done
fi
if [ -n "$stale" ]; then
  say "addon $stale: building it (node-gyp, engine from $bdir)"
  if [ ! -d node_modules/node-addon-api ] || [ ! -d node_modules/node-gyp ]; then
    ./scripts/deps-node.sh >&2
  fi
  WIREHUB_BUILD_DIR="$bdir" npx --no-install node-gyp rebuild --nodedir=/usr --directory=bindings/node -j "$jobs" >&2
fi

plat="$(node -p 'process.platform + "-" + process.arch')"
dest="prebuilds/$plat/wirehub.node"
mkdir -p "prebuilds/$plat"
# Copy, strip, then rename: a reader never sees a half-written addon.
tmp="$dest.tmp.$$"
cp "$addon" "$tmp"
strip --strip-unneeded "$tmp" 2>/dev/null || say "strip failed: shipping the addon unstripped"
mv -f "$tmp" "$dest"
say "$dest ($(wc -c <"$dest") bytes) from $addon"
