#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan, the
# engine instrumented too) in build-fuzz/, and runs each for SECONDS
# (default 60), one at a time, from its seed corpus (corpus/<target>/; new
# inputs go to build-fuzz/corpus/<target>/, the repo's seeds stay as they
# are). Prints the executions per target. A crash's input is copied to
# tests/fuzz/crashes/<target>/ to be kept as a regression input.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# FUZZ_TIMEOUT (seconds, default 10): the wall-clock time one input may
# take; raise it on a machine that is busy with other work, where a niced
# fuzzer can sit 10 s without the CPU and report a timeout that is none.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
shift || true
"$root/scripts/deps-fuzz.sh" >/dev/null

build="$root/build-fuzz"
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
  -DWIREHUB_FUZZ=ON -DWIREHUB_BUILD_TESTS=ON -DWIREHUB_BUILD_EXAMPLES=OFF -DWIREHUB_BUILD_BENCH=OFF >/dev/null

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  for f in "$root"/tests/fuzz/fuzz_*.cpp; do
    t="$(basename "$f" .cpp)"
    targets+=("${t#fuzz_}")
  done
  # The protocol core target is built once core/src/protocol.cpp exists.
  [ -f "$root/core/src/protocol.cpp" ] || targets=("${targets[@]/protocol}")
fi
ninja -C "$build" -j2 $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=0
summary=()
for t in "${targets[@]}"; do
  [ -n "$t" ] || continue
  exe="$build/tests/fuzz/fuzz_$t"
  work="$build/corpus/$t"
  crashes="$root/tests/fuzz/crashes/$t"
  mkdir -p "$work" "$build/artifacts/$t"
  log="$build/fuzz_$t.log"
  seeds=("$root/tests/fuzz/corpus/$t")
  [ -d "$crashes" ] && seeds+=("$crashes")
  # -rss_limit_mb: a target whose memory follows its input's claims fails.
  # From the target's own folder: libFuzzer writes fuzz-N.log to the
  # current directory, which would otherwise be the repository (and be
  # shared by two runs at once).
  if (cd "$build/artifacts/$t" &&
      "$exe" -jobs=1 -workers=1 -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$t/" "$work" "${seeds[@]}") >"$log" 2>&1; then
    status=ok
  else
    status=CRASH
    failed=$((failed + 1))
    mkdir -p "$crashes"
    # The inputs only: libFuzzer's own fuzz-N.log lands in that folder too.
    for a in "$build/artifacts/$t"/*; do
      case "$(basename "$a")" in fuzz-*.log) continue ;; esac
      [ -f "$a" ] && cp "$a" "$crashes/"
    done
    grep -m1 -A12 -E 'ERROR: |invariant failed|runtime error' "$log" || tail -20 "$log"
  fi
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)"
  summary+=("$(printf '%-20s %-6s %12s execs  %s' "$t" "$status" "${execs:-?}" "$cov")")
done
printf '%s\n' "${summary[@]}"
exit $((failed > 0))
