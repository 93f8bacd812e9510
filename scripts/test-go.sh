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
  echo "== examples end to end: echo_server + chat_client"
  out="$(mktemp /tmp/wirehub-go-echo.XXXXXX)"
  "$bin/echo_server" -port 0 >"$out" &
  srv=$!
  url=""
  for _ in $(seq 100); do
    url="$(sed -nE 's/^listening on (ws:\/\/[^ ]+).*/\1/p' "$out")"
    [ -n "$url" ] && break
    sleep 0.05
  done
  got="$(printf 'one\ntwo words\nthree\n' | timeout 20 "$bin/chat_client" "$url/")"
  crc=$?
  kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; srv=""
  rm -f "$out"
  if [ "$crc" -eq 0 ] && [ "$got" = "$(printf 'one\ntwo words\nthree')" ]; then
    echo "ok: chat_client got its three lines back and exited 0"
    pass=$((pass + 1))
  else
    echo "FAILED: chat_client exited $crc with output: $got"
    fail=$((fail + 1))
  fi
  timeout 20 "$bin/chat_client" "ws://127.0.0.1:1/" </dev/null 2>/dev/null
  crc=$?
  if [ "$crc" -eq 1 ]; then pass=$((pass + 1)); echo "ok: chat_client to a closed port exits 1"
  else fail=$((fail + 1)); echo "FAILED: chat_client to a closed port exited $crc"; fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
