#!/usr/bin/env bash
# Line coverage of the parsers reached by the fuzz corpora: builds the
# replay programs of tests/fuzz with clang's source-based coverage in
# build-cov/, replays the repo's seeds and crashes plus what scripts/fuzz.sh
# found (build-fuzz/corpus/<target>/), and prints llvm-cov's line coverage of
# the files the fuzzers are for.
#   scripts/fuzz-coverage.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/deps-fuzz.sh" >/dev/null
build="$root/build-cov"
flags="-fprofile-instr-generate -fcoverage-mapping"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
  -DWIREHUB_BUILD_TESTS=ON -DWIREHUB_BUILD_EXAMPLES=OFF -DWIREHUB_BUILD_BENCH=OFF >/dev/null
targets=()
for f in "$root"/tests/fuzz/fuzz_*.cpp; do t="$(basename "$f" .cpp)"; targets+=("${t#fuzz_}"); done
ninja -C "$build" -j"${WIREHUB_JOBS:-2}" $(printf 'fuzz_%s_replay ' "${targets[@]}") >/dev/null
prof="$build/profiles"
rm -rf "$prof"
mkdir -p "$prof"
objs=()
for t in "${targets[@]}"; do
  exe="$build/tests/fuzz/fuzz_${t}_replay"
  LLVM_PROFILE_FILE="$prof/$t-%p.profraw" "$exe" "$root/tests/fuzz/corpus/$t" "$root/tests/fuzz/crashes/$t" \
    "$root/build-fuzz/corpus/$t" >/dev/null 2>&1 || echo "fuzz-coverage: $t replay failed" >&2
  if [ "${#objs[@]}" -eq 0 ]; then objs+=("$exe"); else objs+=(-object "$exe"); fi
done
llvm-profdata-14 merge -sparse "$prof"/*.profraw -o "$prof/all.profdata"
llvm-cov-14 report "${objs[@]}" -instr-profile="$prof/all.profdata" \
  "$root/core/src/protocol.cpp" "$root/core/src/handshake.cpp" "$root/core/src/permessage_deflate.cpp" \
  "$root/core/include/wirehub/frame_codec.hpp" "$root/core/src/client.cpp" "$root/core/src/server_upgrade.cpp" \
  "$root/core/src/connection.cpp"
