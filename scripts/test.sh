#!/usr/bin/env bash
# THE test command (CI runs it through .ci/run):
#   1. install missing dependencies            (scripts/install-deps.sh)
#   2. Release build in build/ + ctest          (GoogleTest suite, example tests)
#   3. ASan+UBSan build of the tests in build-asan/ + ctest
#   4. TSan build in build-tsan/ + ctest -L tsan (the multi-threaded tests)
#   5. each language part: scripts/test-{python,node,rust,go,interop}.sh
#   6. Autobahn|Testsuite, server and client roles, against the Release build
# Every stage runs even if an earlier one failed (unless it needs that one's
# build); the script exits non-zero if anything failed and ends with the line
# "N passed, M failed" summed over the suites (a stage that fails without a
# count, e.g. a build, adds 1 to M).
#
# For quick local runs: WIREHUB_SKIP="asan tsan autobahn python node rust go interop" skips stages;
# WIREHUB_AUTOBAHN_ARGS="--role server -i 1.*" is passed to run_autobahn.py.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
jobs="${WIREHUB_JOBS:-2}"
skip=" ${WIREHUB_SKIP:-} "
# WIREHUB_BUILD_DIR moves all three trees (DIR, DIR-asan, DIR-tsan).
bdir="${WIREHUB_BUILD_DIR:-$root/build}"
logdir="$bdir-logs"
mkdir -p "$logdir"

total_pass=0
total_fail=0
summary=()
t_all=$(date +%s)

stage() {  # stage NAME
  stage_name="$1"
  stage_t0=$(date +%s)
  echo
  echo "================================================================ $1"
}

# end_stage STATUS [PASSED FAILED]: STATUS is ok/FAILED/skipped; with no
# counts a FAILED stage counts as one failure.
end_stage() {
  local status="$1" p="${2:-}" f="${3:-}"
  local dt=$(( $(date +%s) - stage_t0 ))
  local counts=""
  if [ -n "$p" ]; then
    total_pass=$(( total_pass + p ))
    total_fail=$(( total_fail + f ))
    counts=" ($p passed, $f failed)"
  elif [ "$status" = FAILED ]; then
    total_fail=$(( total_fail + 1 ))
  fi
  summary+=("$(printf '%-34s %-8s %5ds%s' "$stage_name" "$status" "$dt" "$counts")")
  echo "---- $stage_name: $status in ${dt}s$counts"
}

skipped() { case "$skip" in *" $1 "*) return 0 ;; esac; return 1; }

configure_build() {  # configure_build DIR [cmake args...]
  local dir="$1"; shift
  if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
    rm -rf "$dir"
  fi
  cmake -S "$root" -B "$dir" -G Ninja "$@" && ninja -C "$dir" -j"$jobs"
}

# run_ctest LOGNAME DIR [ctest args...]: runs ctest, then ends the stage with
# the counts from ctest's "N% tests passed, F tests failed out of T" line.
run_ctest() {
  local log="$logdir/$1.log" dir="$2"; shift 2
  ctest --test-dir "$dir" --output-on-failure --no-tests=error --timeout 600 "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line fail all
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1)
  if [ -n "$line" ]; then
    fail=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    all=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
    if [ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]; then
      end_stage ok $(( all - fail )) "$fail"
    else
      # a non-zero exit with no failed test (e.g. ctest itself erred) still fails
      [ "$fail" -eq 0 ] && fail=1
      end_stage FAILED $(( all - fail )) "$fail"
    fi
  else
    echo "test.sh: ctest ran no test in $dir" >&2
    end_stage FAILED
  fi
}

# ---------------------------------------------------------------- 1. deps
stage "install dependencies"
if ./scripts/install-deps.sh; then end_stage ok; else end_stage FAILED; fi

# ------------------------------------------------------- 2. Release + ctest
stage "build Release ($(basename "$bdir")/)"
if WIREHUB_JOBS="$jobs" WIREHUB_BUILD_DIR="$bdir" ./scripts/build.sh; then
  release_ok=1; end_stage ok
else
  release_ok=0; end_stage FAILED
fi

stage "ctest ($(basename "$bdir")/)"
if [ "$release_ok" = 1 ]; then
  run_ctest ctest-release "$bdir"
else
  end_stage skipped
fi

# Sanitizer trees build only the library and the tests: examples and bench
# are covered by the Release tree and would double the build time.
san_common=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWIREHUB_BUILD_TESTS=ON
            -DWIREHUB_BUILD_EXAMPLES=OFF -DWIREHUB_BUILD_BENCH=OFF)

# ------------------------------------------------------------ 3. ASan+UBSan
if skipped asan; then
  stage "ASan+UBSan"; end_stage skipped
else
  stage "build ASan+UBSan ($(basename "$bdir")-asan/)"
  if configure_build "$bdir-asan" "${san_common[@]}" -DWIREHUB_ASAN=ON -DWIREHUB_UBSAN=ON; then
    end_stage ok
    stage "ctest ASan+UBSan"
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
      run_ctest ctest-asan "$bdir-asan"
  else
    end_stage FAILED
  fi
fi

# ------------------------------------------------------------------ 4. TSan
if skipped tsan; then
  stage "TSan"; end_stage skipped
else
  stage "build TSan ($(basename "$bdir")-tsan/)"
  if configure_build "$bdir-tsan" "${san_common[@]}" -DWIREHUB_TSAN=ON; then
    end_stage ok
    stage "ctest -L tsan"
    TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
      run_ctest ctest-tsan "$bdir-tsan" -L tsan
  else
    end_stage FAILED
  fi
fi

# ------------------------------------------------- 5. language suites
# scripts/test-LANG.sh builds that part against the Release tree
# ($WIREHUB_BUILD_DIR) and runs its tests; its last line is "N passed, M failed".
for lang in python node rust go interop; do
  script="scripts/test-$lang.sh"
  [ -x "$script" ] || continue
  if skipped "$lang"; then
    stage "$lang"; end_stage skipped; continue
  fi
  stage "$lang tests"
  if [ "$release_ok" != 1 ]; then end_stage skipped; continue; fi
  WIREHUB_BUILD_DIR="$bdir" WIREHUB_JOBS="$jobs" "$script" 2>&1 | tee "$logdir/$lang.log"
  rc=${PIPESTATUS[0]}
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logdir/$lang.log" | tail -n1)
  if [ -n "$line" ]; then
    p=${line%% passed*}
    f=${line#*, }; f=${f%% failed*}
    if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then end_stage ok "$p" "$f"; else
      [ "$f" -eq 0 ] && f=1
      end_stage FAILED "$p" "$f"
    fi
  else
    end_stage FAILED
  fi
done

# ------------------------------------------------------------- 6. Autobahn
if skipped autobahn; then
  stage "Autobahn"; end_stage skipped
else
  stage "Autobahn conformance (both roles)"
  if [ "$release_ok" = 1 ]; then
    # shellcheck disable=SC2086 # word splitting of the optional args is wanted
    python3 tests/conformance/run_autobahn.py --build-dir "$bdir" ${WIREHUB_AUTOBAHN_ARGS:-} 2>&1 \
      | tee "$logdir/autobahn.log"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logdir/autobahn.log" | tail -n1)
    if [ -n "$line" ]; then
      p=${line%% passed*}
      f=${line#*, }; f=${f%% failed*}
      if [ "$rc" -eq 0 ]; then end_stage ok "$p" "$f"; else
        [ "$f" -eq 0 ] && f=1
        end_stage FAILED "$p" "$f"
      fi
    else
      end_stage FAILED
    fi
  else
    end_stage skipped
  fi
fi

# ---------------------------------------------------------------- summary
echo
echo "================================================================ summary"
for s in "${summary[@]}"; do echo "  $s"; done
echo "  total time: $(( $(date +%s) - t_all ))s; logs in $logdir/"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
