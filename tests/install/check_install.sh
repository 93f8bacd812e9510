#!/usr/bin/env bash
# Installs a finished build into a scratch prefix, then builds the consumer
# program twice from the installed files only: with pkg-config, and with
# CMake's find_package(wirehub). Both must run and echo.
#   check_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$1"
src="$2"
prefix="$(mktemp -d /tmp/wirehub-install-XXXXXX)"
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir="$(ls -d "$prefix"/lib*/ | head -n 1)"
libdir="${libdir%/}"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
export LD_LIBRARY_PATH="$libdir"

echo "== pkg-config: $(pkg-config --modversion wirehub)"
cc -o "$prefix/consumer-pc" "$src/tests/install/consumer/main.c" $(pkg-config --cflags --libs wirehub)
"$prefix/consumer-pc"

echo "== find_package(wirehub)"
cmake -S "$src/tests/install/consumer" -B "$prefix/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer-build" >/dev/null
"$prefix/consumer-build/consumer"
echo "install: 2 passed, 0 failed"
