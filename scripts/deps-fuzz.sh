#!/usr/bin/env bash
# What the libFuzzer targets (tests/fuzz, scripts/fuzz.sh, test-fuzz.sh,
# fuzz-coverage.sh) need on Debian bookworm, installing only what is missing;
# no network call when everything is present.
#   apt:  clang (the compiler, clang 14 on bookworm), libclang-rt-14-dev (the
#         libFuzzer, ASan and UBSan runtimes), llvm-14 (llvm-profdata-14 and
#         llvm-cov-14 for fuzz-coverage.sh, llvm-symbolizer for stack traces).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

APT_PACKAGES=(clang libclang-rt-14-dev llvm-14)

SUDO=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo -E); fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps-fuzz: apt-get install ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "deps-fuzz: clang and libFuzzer already present"
fi
