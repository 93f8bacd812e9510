#!/usr/bin/env bash
# Builds what the abuse suite and the soak run, against the Release tree in
# $WIREHUB_BUILD_DIR (default build/, built with scripts/build.sh if it has
# no engine yet):
#   tests/abuse/prepare.sh [c] [python] [node]
# c: the suite's C server, $WIREHUB_BUILD_DIR/abuse/c_server (always relinked:
#    a second). python: the wirehub package, installed as
#    scripts/test-python.sh installs it, unless the installed one is newer
#    than the tree's engine. node: the addon, built as scripts/test-node.sh
#    builds it, unless bindings/node/build has one newer than the engine.
# Prints what it did; exits non-zero (with the reason on stderr) if a build
# failed.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
PY="${PYTHON:-python3}"
bdir="$(mkdir -p "${WIREHUB_BUILD_DIR:-$root/build}" && cd "${WIREHUB_BUILD_DIR:-$root/build}" && pwd)"
jobs="${WIREHUB_JOBS:-2}"
logdir="$bdir-logs"
mkdir -p "$logdir" "$bdir/abuse"

fail_build() { echo "prepare.sh: $1" >&2; exit 1; }
newer() { [ -n "$(find "$1" -newer "$2" 2>/dev/null)" ]; }  # newer A B: A changed after B

if [ ! -f "$bdir/libwirehub.a" ]; then
  WIREHUB_BUILD_DIR="$bdir" WIREHUB_JOBS="$jobs" ./scripts/build.sh >"$logdir/abuse-build.log" 2>&1 \
    || { tail -n 30 "$logdir/abuse-build.log"; fail_build "engine build failed"; }
fi

want_c=0; want_py=0; want_node=0
for a in "$@"; do case "$a" in c) want_c=1 ;; python) want_py=1 ;; node) want_node=1 ;; *) fail_build "unknown part $a" ;; esac; done

if [ "$want_c" = 1 ]; then
  echo "== C server (tests/abuse/servers/c_server.c)"
  cc -O2 -Wall -Wextra -Werror -Icapi -Iexamples/c tests/abuse/servers/c_server.c -o "$bdir/abuse/c_server" \
    "$bdir/libwirehub.a" -lssl -lcrypto -lz -lstdc++ -lpthread -lm || fail_build "c_server build failed"
fi

if [ "$want_py" = 1 ]; then
  echo "== Python package"
  ext="$(cd /tmp && "$PY" -c 'import wirehub._wirehub as m; print(m.__file__)' 2>/dev/null)"
  if [ -z "$ext" ] || newer "$bdir/libwirehub.a" "$ext"; then
    export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 CMAKE_BUILD_PARALLEL_LEVEL="$jobs"
    pip_args=(install --no-deps --force-reinstall -q "-Cbuild-dir=$bdir/python-build" .)
    if "$PY" -c "import scikit_build_core, pybind11" 2>/dev/null; then
      pip_args=(install --no-build-isolation "${pip_args[@]:1}")
    fi
    echo "installing: $PY -m pip ${pip_args[*]}"
    if ! "$PY" -m pip "${pip_args[@]}" 2>"$logdir/abuse-pip.err"; then
      if ! grep -q externally-managed "$logdir/abuse-pip.err" \
         || ! "$PY" -m pip "${pip_args[@]}" --break-system-packages 2>"$logdir/abuse-pip.err"; then
        cat "$logdir/abuse-pip.err" >&2
        fail_build "pip install of the package failed"
      fi
    fi
  else
    echo "using the installed $ext"
  fi
fi

if [ "$want_node" = 1 ]; then
  echo "== Node addon"
  addon="bindings/node/build/Release/wirehub.node"
  if [ ! -f "$addon" ] || newer "$bdir/libwirehub.a" "$addon"; then
    if [ ! -d node_modules/node-addon-api ] || [ ! -d node_modules/node-gyp ]; then
      ./scripts/deps-node.sh || fail_build "npm dependencies missing (scripts/deps-node.sh failed)"
    fi
    WIREHUB_BUILD_DIR="$bdir" npx --no-install node-gyp rebuild --nodedir=/usr --directory=bindings/node -j "$jobs" \
      >"$logdir/abuse-node-gyp.log" 2>&1 || { tail -n 40 "$logdir/abuse-node-gyp.log"; fail_build "addon build failed"; }
  else
    echo "using $addon"
  fi
fi
