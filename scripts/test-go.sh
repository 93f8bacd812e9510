#!/usr/bin/env bash
# The Go binding's tests: against the Release build in $WIREHUB_BUILD_DIR
# (default build/), `go vet` and `go test -race` in bindings/go, builds the
# examples (examples/go) and the benchmark server (bench/go), and runs the
# examples once end to end (echo_server + chat_client over loopback), and
# checks the pkg-config build: the build dir installed into a scratch prefix,
# echo_server built from it with -tags wirehub_pkgconfig and run once.
# Last line: "N passed, M failed" over all of it; a build failure counts as 1.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bdir="${WIREHUB_BUILD_DIR:-$root/build}"
[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
export GOMAXPROCS="${GOMAXPROCS:-${WIREHUB_JOBS:-2}}"
tags=()
# The package links ../../build/libwirehub.a by default; another build dir is
# passed through CGO_LDFLAGS (see bindings/go/cgo.go).
if [ "$(cd "$bdir" 2>/dev/null && pwd -P)" != "$(cd "$root/build" 2>/dev/null && pwd -P)" ]; then
  tags=(-tags wirehub_external)
  export CGO_LDFLAGS="$bdir/libwirehub.a -lssl -lcrypto -lz -lstdc++ -lpthread -lm"
fi

pass=0
fail=0
log="$(mktemp /tmp/wirehub-go-test.XXXXXX)"
pcprefix=""
trap 'rm -f "$log"; [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null; [ -n "$pcprefix" ] && rm -rf "$pcprefix"' EXIT
# shellcheck source=examples-e2e.sh
. "$root/scripts/examples-e2e.sh"

if [ ! -f "$bdir/libwirehub.a" ]; then
  echo "test-go: $bdir/libwirehub.a is missing; building it"
  WIREHUB_BUILD_DIR="$bdir" "$root/scripts/build.sh" || { echo "0 passed, 1 failed"; exit 1; }
fi

step() {  # step NAME CMD...: one counted check
  echo "== $1"; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED"; fi
}

# The package as a consumer of an installed wirehub builds it: `cmake
# --install` of $bdir (no rebuild) into a scratch prefix, then echo_server
# with -tags wirehub_pkgconfig and PKG_CONFIG_PATH pointing there (header
# and library from the prefix only), next to the chat_client built above,
# for examples_e2e. The installed libwirehub.so carries no rpath, so the
# binary runs with LD_LIBRARY_PATH (see bindings/go/README.md). Bounded.
pkgconfig_build() {
  local exe
  pcprefix="$(mktemp -d /tmp/wirehub-go-pc.XXXXXX)"
  if ! timeout 20 cmake --install "$bdir" --prefix "$pcprefix" >/dev/null; then
    echo "pkg-config check: cmake --install $bdir into $pcprefix failed"; return 1
  fi
  pclib="$(ls -d "$pcprefix"/lib*/ | head -n 1)"; pclib="${pclib%/}"
  if ! PKG_CONFIG_PATH="$pclib/pkgconfig" pkg-config --exists wirehub; then
    echo "pkg-config check: no wirehub.pc under $pclib/pkgconfig"; return 1
  fi
  exe="$pcprefix/echo_server"
  # go's build cache does not key on pkg-config's output: a package built
  # against an earlier (since removed) prefix would be reused. CGO_CFLAGS is
  # part of the key, so naming the prefix there rebuilds it for this one.
  if ! (cd "$root/examples/go" && env -u CGO_LDFLAGS PKG_CONFIG_PATH="$pclib/pkgconfig" \
        CGO_CFLAGS="-O2 -g -I$pcprefix/include" \
        timeout 40 go build -tags wirehub_pkgconfig -o "$exe" ./echo_server); then
    echo "pkg-config check: go build -tags wirehub_pkgconfig ./echo_server failed (or took > 40 s)"; return 1
  fi
  if ! LD_LIBRARY_PATH="$pclib" ldd "$exe" | grep -q "libwirehub\.so.* => $pclib/"; then
    echo "pkg-config check: $exe does not load libwirehub.so from $pclib:"
    LD_LIBRARY_PATH="$pclib" ldd "$exe"; return 1
  fi
  cp "$root/examples/go/bin/chat_client" "$pcprefix/" && pc_built=1 &&
    echo "ok: echo_server built with -tags wirehub_pkgconfig against $pcprefix"
}

cd "$root/bindings/go"
step "go vet (bindings/go)" go vet "${tags[@]}" ./...

echo "== go test -race (bindings/go)"
go test "${tags[@]}" -race -count=1 -timeout 300s -v ./... 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
p=$(grep -cE '^--- PASS' "$log")
f=$(grep -cE '^--- FAIL' "$log")
skip=$(grep -cE '^--- SKIP' "$log")  # t.Skip: neither passed nor failed
pass=$((pass + p)); fail=$((fail + f))
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then fail=$((fail + 1)); fi  # build error, panic, timeout

cd "$root/examples/go"
step "go vet + build (examples/go)" sh -c "go vet ${tags[*]} ./... && go build ${tags[*]} -o bin/ ./..."
cd "$root/bench/go"
step "go build (bench/go)" go build "${tags[@]}" -o bench_server .

bin="$root/examples/go/bin"
if [ -x "$bin/echo_server" ] && [ -x "$bin/chat_client" ]; then
  examples_e2e "$bin" -port
fi
pc_built=0
step "pkg-config build (-tags wirehub_pkgconfig, installed $bdir)" pkgconfig_build
if [ "$pc_built" = 1 ]; then
  LD_LIBRARY_PATH="$pclib" examples_e2e "$pcprefix" -port
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
