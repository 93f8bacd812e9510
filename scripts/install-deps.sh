#!/usr/bin/env bash
# Installs what wirehub needs to build and test on Debian bookworm, and only
# what is missing: a machine that already has everything makes no network call.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# openssl: the tests make their self-signed certificates with it (a TLS test
# without one fails; it does not skip).
# Boost is not among them: the build uses Boost 1.85 from PyPI's boost-headers
# (below), for Boost.Redis, which Debian's Boost 1.81 predates.
# redis-server: the broker tests start their own on a free loopback port.
APT_PACKAGES=(build-essential cmake ninja-build pkg-config libssl-dev
              zlib1g-dev googletest libgtest-dev openssl redis-server)
BOOST_HEADERS_VERSION=1.85.0.post1
KOSOKU_VERSION=0.1.0

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
# Any python3 with pip will do (a pyenv one included); Debian's needs python3-pip.
if ! command -v python3 >/dev/null 2>&1; then
  missing+=(python3 python3-pip)
elif ! python3 -m pip --version >/dev/null 2>&1; then
  missing+=(python3-pip)
fi
# test-python.sh --asan installs the sanitizer build into a venv of its own.
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  missing+=(python3-venv)
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -E); fi
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: Debian packages already present"
fi

py_has() {  # py_has DIST VERSION-or-empty
  python3 - "$1" "${2:-}" <<'PY' 2>/dev/null
import sys, importlib.metadata as md
try:
    v = md.version(sys.argv[1])
except md.PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if not sys.argv[2] or v == sys.argv[2] else 1)
PY
}

pip_missing=()
py_has pytest "" || pip_missing+=(pytest)
py_has kosoku "$KOSOKU_VERSION" || pip_missing+=("kosoku==$KOSOKU_VERSION")
py_has boost-headers "$BOOST_HEADERS_VERSION" || pip_missing+=("boost-headers==$BOOST_HEADERS_VERSION")
if [ "${#pip_missing[@]}" -gt 0 ]; then
  echo "install-deps: pip install ${pip_missing[*]}"
  # Debian's own python3 is "externally managed" (PEP 668); these are test
  # tools only, so installing beside the system packages is acceptable there.
  if ! "${SUDO[@]}" python3 -m pip install -q "${pip_missing[@]}" 2>/tmp/wirehub-pip.err; then
    if grep -q externally-managed /tmp/wirehub-pip.err; then
      "${SUDO[@]}" python3 -m pip install -q --break-system-packages "${pip_missing[@]}"
    else
      cat /tmp/wirehub-pip.err >&2
      exit 1
    fi
  fi
else
  echo "install-deps: pytest, kosoku==$KOSOKU_VERSION and boost-headers==$BOOST_HEADERS_VERSION already present"
fi

# kosoku 0.1.0 hashes text messages given as str in cases 12/13 (see README,
# "Conformance"); fix the installed copy so those cases test the engine.
"${SUDO[@]}" python3 "$here/patch-kosoku.py"

# Each language part brings its own installer (scripts/deps-LANG.sh): PyPI,
# npm, crates and Go modules it needs, again only what is missing.
# (fuzz: clang and libFuzzer for the fuzzers that scripts/test-fuzz.sh runs)
for lang in python node rust go interop fuzz; do
  if [ -x "$here/deps-$lang.sh" ]; then
    echo "install-deps: $lang"
    "$here/deps-$lang.sh"
  fi
done
