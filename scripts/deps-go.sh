#!/usr/bin/env bash
# What the Go binding (bindings/go, examples/go, bench/go) needs on Debian
# bookworm, installing only what is missing; no network call when everything
# is present.
#   apt:  golang-go (1.19 on bookworm; cgo and -race included) if there is no
#         go at all; gcc comes from install-deps.sh (build-essential).
#   modules: none (the standard library only; examples and bench point at
#         bindings/go through a replace directive). `go mod download` runs only
#         if a go.sum appears with modules missing from the module cache.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

SUDO=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo -E); fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null 2>&1; then
  echo "deps-go: apt-get install golang-go"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends golang-go
else
  echo "deps-go: go already present ($(go version))"
fi

for mod in bindings/go examples/go bench/go; do
  if [ -s "$root/$mod/go.sum" ]; then
    if ! (cd "$root/$mod" && GOFLAGS=-mod=mod GOPROXY=off go mod download >/dev/null 2>&1); then
      echo "deps-go: go mod download in $mod"
      (cd "$root/$mod" && go mod download)
    fi
  fi
done
echo "deps-go: Go modules ready"
