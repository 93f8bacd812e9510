#!/usr/bin/env bash
# A shared object must export exactly the symbols its interface names, so
# that it cannot bind to (or be bound by) another copy of Boost, OpenSSL or
# libstdc++ templates in the same process.
#   check_symbols.sh FILE REGEX [REQUIRED...]
# Every dynamic symbol FILE defines must match REGEX (an extended regex over
# the whole name); each REQUIRED name must be among them. Version-node names
# (absolute symbols such as WIREHUB_0 that a version script adds) are not
# code and are not counted.
set -euo pipefail
file="$1"
allowed="$2"
shift 2
if [ ! -f "$file" ]; then
  echo "check_symbols: no such file: $file"
  exit 1
fi
syms="$(nm -D --defined-only "$file" | awk '$2 != "A" { print $NF }' | sed 's/@.*//' | sort -u)"
total="$(printf '%s\n' "$syms" | grep -c . || true)"
offenders="$(printf '%s\n' "$syms" | grep -Ev "^(${allowed})\$" | grep . || true)"
missing=""
for name in "$@"; do
  printf '%s\n' "$syms" | grep -qxF "$name" || missing+=" $name"
done
bad=0
if [ -n "$offenders" ]; then
  echo "check_symbols: $file exports $(printf '%s\n' "$offenders" | wc -l) symbol(s) outside /^(${allowed})\$/:"
  printf '%s\n' "$offenders" | c++filt | sed 's/^/  /' | head -n 60
  bad=1
fi
if [ -n "$missing" ]; then
  echo "check_symbols: $file does not export:$missing"
  bad=1
fi
if [ "$bad" -ne 0 ]; then
  exit 1
fi
echo "check_symbols: $file exports $total symbol(s), all matching /^(${allowed})\$/"
