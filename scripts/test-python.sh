#!/usr/bin/env bash
# Builds and installs the Python package from this repository the way users do
# (pip install ., non-editable; the CMake tree is cached in
# $WIREHUB_BUILD_DIR/python-build so repeated runs are fast), then runs the
# pytest suite in tests/python. Last line: "N passed, M failed, K skipped".
#
# --asan: the same suite against an ASan+UBSan build of the extension (engine
# and binding), installed into its own venv ($WIREHUB_BUILD_DIR-pyasan/venv,
# with the system site-packages for pytest & co) so the normal install is
# untouched. Python itself is not instrumented, so the ASan runtime is
# preloaded (LD_PRELOAD), and leak checks are off (CPython keeps memory to exit).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PY="${PYTHON:-python3}"
bdir="${WIREHUB_BUILD_DIR:-$root/build}"
logdir="$bdir-logs"
asan=0
[ "${1:-}" = "--asan" ] && asan=1
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
export CMAKE_BUILD_PARALLEL_LEVEL="${WIREHUB_JOBS:-2}"
mkdir -p "$logdir"

pybuild="$bdir/python-build"
extra=()
tag=python
if [ "$asan" = 1 ]; then
  tag=python-asan
  pybuild="$bdir-pyasan/build"
  venv="$bdir-pyasan/venv"
  if [ ! -x "$venv/bin/python" ]; then
    "$PY" -m venv --system-site-packages "$venv" || { echo "test-python: venv failed"; echo "0 passed, 1 failed"; exit 1; }
  fi
  PY="$venv/bin/python"
  extra=(-Ccmake.build-type=RelWithDebInfo -Ccmake.define.WIREHUB_ASAN=ON -Ccmake.define.WIREHUB_UBSAN=ON)
fi
mkdir -p "$pybuild"

pip_args=(install --no-deps --force-reinstall -q "-Cbuild-dir=$pybuild" "${extra[@]}" .)
# With the build backend already installed (scripts/deps-python.sh) the build
# needs no network; otherwise pip's build isolation fetches it from PyPI.
if "$PY" -c "import scikit_build_core, pybind11" 2>/dev/null; then
  pip_args=(install --no-build-isolation "${pip_args[@]:1}")
fi
echo "test-python: $PY -m pip ${pip_args[*]}"
if ! "$PY" -m pip "${pip_args[@]}" 2>"$logdir/$tag-pip.err"; then
  if grep -q externally-managed "$logdir/$tag-pip.err" \
     && "$PY" -m pip "${pip_args[@]}" --break-system-packages 2>"$logdir/$tag-pip.err"; then
    :
  else
    cat "$logdir/$tag-pip.err" >&2
    echo "test-python: pip install of the package failed"
    echo "0 passed, 1 failed"
    exit 1
  fi
fi

junit="$logdir/$tag-junit.xml"
rm -f "$junit"
# The browser test must run here, not be skipped for a missing browser.
export WIREHUB_REQUIRE_BROWSER=1
# So must the broker tests, for a missing redis-server.
export WIREHUB_REQUIRE_REDIS=1
export WIREHUB_SCREENSHOT_DIR="$logdir"
# Run from a neutral directory so `import wirehub` is the installed package.
run_env=()
if [ "$asan" = 1 ]; then
  # libstdc++ is preloaded too: python does not link it, and ASan's
  # __cxa_throw interceptor, set up before the extension loads it, would
  # otherwise find no real __cxa_throw (CHECK failed at the first C++ throw).
  # Reports go to files as well: pytest captures stderr, and a process that
  # ASan ends takes its captured output with it.
  rm -f "$logdir"/python-asan.report.*
  run_env=(env "LD_PRELOAD=$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
           "ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:log_path=$logdir/python-asan.report"
           "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$logdir/python-asan.report")
fi
(cd /tmp && "${run_env[@]}" "$PY" -m pytest "$root/tests/python" -p no:cacheprovider -q -rfEs \
    --junitxml="$junit" -o junit_family=xunit2)
rc=$?

read -r passed failed skipped < <("$PY" - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1, 0)
    sys.exit()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - sk, f, sk)
PY
)
if [ "$asan" = 1 ] && ls "$logdir"/python-asan.report.* >/dev/null 2>&1; then
  echo "test-python: sanitizer reports:"
  cat "$logdir"/python-asan.report.*
  [ "$failed" -eq 0 ] && failed=1
fi
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
