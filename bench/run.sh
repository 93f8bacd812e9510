#!/usr/bin/env bash
# Builds the benchmark server, measures it against the ws anchor with the
# shared wsbench.py, and writes bench/RESULTS.md.
#
#   bench/run.sh [wsbench args...]      e.g. --scenarios echo-100c-p16 --rounds 1 --seconds 2
#
# Extra arguments go to wsbench.py unchanged. WIREHUB_BENCH_NO_BUILD=1 skips
# the build. RESULTS.md is only replaced after a run that finished.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/.." && pwd))"
shared="$root/../shared"
cd "$root"
if [ ! -f "$shared/bench/wsbench.py" ]; then
  echo "bench/run.sh: $shared/bench/wsbench.py not found (shared/ must sit beside the repository)" >&2
  exit 1
fi

# The build command lives in servers.txt, the file wsbench's contract names,
# so the two cannot drift apart.
if [ "${WIREHUB_BENCH_NO_BUILD:-0}" != 1 ]; then
  build="$(sed -n 's/^build:[[:space:]]*//p' bench/servers.txt | head -n 1)"
  echo "bench/run.sh: building: $build" >&2
  bash -c "$build"
fi

# Other work on the machine skews the figures: note how busy it was.
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
cmd=(python3 "$shared/bench/wsbench.py" --anchor ws --servers-file bench/servers.txt "$@")
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
"${cmd[@]}" | tee "$out"

cpu="$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)"
# The cluster section is bench/cluster/run.sh's: kept as it is.
cluster=""
if [ -f bench/RESULTS.md ]; then cluster="$(sed -n '/^## Cluster:/,$p' bench/RESULTS.md)"; fi
{
  echo "# Benchmark results"
  echo
  echo "Measured by \`bench/run.sh\` with shared/bench/wsbench.py: the wirehub C server"
  echo "(\`bench/bench_server.c\`, C ABI, one I/O thread) against the \`ws\` anchor, the server"
  echo "pinned to one core and the load generator on the others. Ratios are c/ws; compare only"
  echo "figures from one run."
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(uname -sr); load average before the run: $load_before"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
  echo "- command: \`bench/run.sh $*\` (wsbench: \`python3 ../shared/bench/wsbench.py --anchor ws --servers-file bench/servers.txt $*\`)"
  echo
  grep '^|' "$out" || echo "(no table: see the run's output)"
  echo
  echo "Against the anchor each issue names (from the same medians; \`bench/ratios.py\`):"
  echo
  tail -n 1 "$out" | python3 bench/ratios.py || echo "(no ratios: see the run's output)"
  if grep -q '^note:' "$out"; then
    echo
    grep '^note:' "$out" | sed 's/^/- /'
  fi
  echo
  echo "Raw summary (wsbench's JSON line):"
  echo
  echo '```json'
  tail -n 1 "$out"
  echo '```'
  if [ -n "$cluster" ]; then
    echo
    printf '%s\n' "$cluster"
  fi
} > bench/RESULTS.md
echo "bench/run.sh: wrote bench/RESULTS.md" >&2
