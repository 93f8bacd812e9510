#!/usr/bin/env bash
# What the Python part (pyproject.toml, tests/python, examples/python) needs on
# Debian bookworm, installing only what is missing; no network call when
# everything is present.
#   apt:  the build toolchain and -dev packages come from install-deps.sh;
#         here: openssl (test certificates), chromium (browser test),
#         redis-server (broker tests, the chat cluster), nodejs/npm if there
#         is no node at all.
#   pip:  scikit-build-core + pybind11 (so test-python.sh can build without
#         build isolation, offline), websockets + uvloop (test peers), pytest,
#         redis (the chat example's shared state on several instances).
#   npm:  playwright-core into tests/python/browser (npm ci, from its lock file).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"

SUDO=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo -E); fi

missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for pkg in openssl chromium redis-server; do have_pkg "$pkg" || missing+=("$pkg"); done
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps-python: apt-get install ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "deps-python: Debian packages already present"
fi

pip_missing=()
py_has() {  # py_has IMPORT_NAME
  "$PY" -c "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('$1') else 1)" 2>/dev/null
}
py_has scikit_build_core || pip_missing+=("scikit-build-core>=0.8")
py_has pybind11 || pip_missing+=("pybind11>=2.11")
py_has websockets || pip_missing+=(websockets)
py_has uvloop || pip_missing+=(uvloop)
py_has pytest || pip_missing+=(pytest)
py_has redis || pip_missing+=("redis>=5.0.1")
if [ "${#pip_missing[@]}" -gt 0 ]; then
  echo "deps-python: pip install ${pip_missing[*]}"
  # Debian's own python3 is "externally managed" (PEP 668): fall back to
  # --break-system-packages for these build and test tools.
  if ! "${SUDO[@]}" "$PY" -m pip install -q "${pip_missing[@]}" 2>/tmp/wirehub-pip-python.err; then
    if grep -q externally-managed /tmp/wirehub-pip-python.err; then
      "${SUDO[@]}" "$PY" -m pip install -q --break-system-packages "${pip_missing[@]}"
    else
      cat /tmp/wirehub-pip-python.err >&2
      exit 1
    fi
  fi
else
  echo "deps-python: PyPI packages already present"
fi

browser="$root/tests/python/browser"
if [ ! -f "$browser/node_modules/playwright-core/package.json" ]; then
  echo "deps-python: npm ci in tests/python/browser (playwright-core)"
  (cd "$browser" && npm ci --no-audit --no-fund --silent)
else
  echo "deps-python: playwright-core already present"
fi
