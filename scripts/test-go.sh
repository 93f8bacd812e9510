#!/usr/bin/env bash
# The Go binding's tests: against the Release build in $WIREHUB_BUILD_DIR
# (default build/), `go vet` and `go test -race` in bindings/go, builds the
# examples (examples/go) and the benchmark server (bench/go), and runs the
# examples once end to end (echo_server + chat_client over loopback).
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
trap 'rm -f "$log"; [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null' EXIT
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

cd "$root/bindings/go"
step "go vet (bindings/go)" go vet "${tags[@]}" ./...

echo "== go test -race (bindings/go)"
go test "${tags[@]}" -race -count=1 -timeout 300s -v ./... 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
p=$(grep -cE '^--- PASS' "$log")
f=$(grep -cE '^--- FAIL' "$log")
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

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
