#!/usr/bin/env bash
# Builds and installs the Python package from this repository the way users do
# (pip install ., non-editable; the CMake tree is cached in
# $WIREHUB_BUILD_DIR/python-build so repeated runs are fast), then runs the
# pytest suite in tests/python. Last line: "N passed, M failed".
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PY="${PYTHON:-python3}"
bdir="${WIREHUB_BUILD_DIR:-$root/build}"
logdir="$bdir-logs"
mkdir -p "$logdir" "$bdir/python-build"
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
export CMAKE_BUILD_PARALLEL_LEVEL="${WIREHUB_JOBS:-2}"

pip_args=(install --no-deps --force-reinstall -q "-Cbuild-dir=$bdir/python-build" .)
# With the build backend already installed (scripts/deps-python.sh) the build
# needs no network; otherwise pip's build isolation fetches it from PyPI.
if "$PY" -c "import scikit_build_core, pybind11" 2>/dev/null; then
  pip_args=(install --no-build-isolation "${pip_args[@]:1}")
fi
echo "test-python: $PY -m pip ${pip_args[*]}"
if ! "$PY" -m pip "${pip_args[@]}" 2>"$logdir/python-pip.err"; then
  if grep -q externally-managed "$logdir/python-pip.err" \
     && "$PY" -m pip "${pip_args[@]}" --break-system-packages 2>"$logdir/python-pip.err"; then
    :
  else
    cat "$logdir/python-pip.err" >&2
    echo "test-python: pip install of the package failed"
    echo "0 passed, 1 failed"
    exit 1
  fi
fi

junit="$logdir/python-junit.xml"
rm -f "$junit"
# The browser test must run here, not be skipped for a missing browser.
export WIREHUB_REQUIRE_BROWSER=1
export WIREHUB_SCREENSHOT_DIR="$logdir"
# Run from a neutral directory so `import wirehub` is the installed package.
(cd /tmp && "$PY" -m pytest "$root/tests/python" -p no:cacheprovider -q -rfEs --junitxml="$junit" \
    -o junit_family=xunit2)
rc=$?

read -r passed failed < <("$PY" - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1)
    sys.exit()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - sk, f)
PY
)
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
