#!/usr/bin/env bash
# bench/cluster: wirehub nodes on one Redis (the broker of issue 13) against
# Socket.IO 4.8 with @socket.io/redis-adapter 8.3, on this machine.
#
#   bench/cluster/run.sh
#
# Starts its own redis-server and, in turn, K=2 nodes of each system
# (node_server.c, socketio_node.js); cluster_load.cpp opens SUBS subscribers
# spread over the nodes, all in TOPICS topics (rooms), and one publisher per
# node; the publishers send 64-byte messages at a fixed total rate. For each
# system: a short ramp finds the highest rate delivered with p99 <= 50 ms and
# no loss; then both run at one fixed rate that both sustained, measured over
# FIXED_SECONDS (>= 10 s), with the CPU of every process from /proc. Then the
# local mode: one wirehub node with the broker set (every subscriber local)
# against the same node without one. Prints a markdown table and, last,
# `wirehub/socketio per-cpu = X.XX` (deliveries per CPU-second of the
# server-side processes, nodes + Redis, at the fixed rate), after the kernel
# floor under that figure (write_floor.c).
#
# Environment (all optional):
#   WIREHUB_BUILD_DIR  CMake build tree with libwirehub.so (default: build/)
#   SUBS=200 TOPICS=1 FIXED_RATE=600 FIXED_SECONDS=12 LOCAL_FIXED_RATE=3000
#   CLUSTER_OUT        where binaries and logs go (default: a fresh /tmp dir)
# It never builds the engine: run scripts/build.sh (or ninja) first.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${WIREHUB_BUILD_DIR:-$root/build}"
SUBS="${SUBS:-200}"
TOPICS="${TOPICS:-1}"
FIXED_RATE="${FIXED_RATE:-600}"
FIXED_SECONDS="${FIXED_SECONDS:-12}"
LOCAL_FIXED_RATE="${LOCAL_FIXED_RATE:-3000}"
out="${CLUSTER_OUT:-$(mktemp -d /tmp/wirehub-cluster.XXXXXX)}"
mkdir -p "$out"
steps="$out/steps.txt"
: > "$steps"
say() { echo "cluster: $*" >&2; }

# ---------------------------------------------------------------- build
if ! nm -D "$build/libwirehub.so" 2>/dev/null | grep -q ' T wh_server_set_broker'; then
  say "$build/libwirehub.so is missing or has no broker (wh_server_set_broker): build the engine first"
  exit 1
fi
cc -O2 -Wall -o "$out/node_server" "$here/node_server.c" -I "$root/capi" -L "$build" -lwirehub \
  -Wl,-rpath,"$build"
g++ -O2 -std=c++17 -pthread -Wall -o "$out/cluster_load" "$here/cluster_load.cpp"
cc -O2 -Wall -o "$out/write_floor" "$here/write_floor.c"
if [ ! -d "$here/node_modules/@socket.io/redis-adapter" ]; then
  say "npm ci (socket.io, @socket.io/redis-adapter, redis)"
  (cd "$here" && npm ci --no-audit --no-fund >&2)
fi
if ! command -v redis-server >/dev/null; then
  say "installing redis-server"
  apt-get install -y redis-server >&2
fi

# ---------------------------------------------------------------- processes
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

read -r redis_port p0 p1 < <(python3 - <<'EOF'
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])
EOF
)
ports=("$p0" "$p1")

wait_log() {  # FILE PATTERN PID: up to 10 s for PATTERN in FILE
  local i
  for i in $(seq 100); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || break
    sleep 0.1
  done
  say "no '$2' in $1:"; cat "$1" >&2; exit 1
}

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  > "$out/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
wait_log "$out/redis.log" "Ready to accept connections" "$redis_pid"
redis_url="redis://127.0.0.1:$redis_port/0"
say "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on port $redis_port (pid $redis_pid); logs in $out"

node_pids=()
start_nodes() {  # SYSTEM K BROKER(0/1) LABEL
  local sys=$1 k=$2 broker=$3 label=$4 i log
  node_pids=()
  for ((i = 0; i < k; i++)); do
    log="$out/$label-node$i.log"
    if [ "$sys" = socketio ]; then
      if [ "$broker" = 1 ]; then
        node "$here/socketio_node.js" --port "${ports[$i]}" --redis "$redis_url" --prefix "bench-$label" > "$log" 2>&1 &
      else
        node "$here/socketio_node.js" --port "${ports[$i]}" > "$log" 2>&1 &
      fi
    else
      if [ "$broker" = 1 ]; then
        "$out/node_server" --port "${ports[$i]}" --broker "$redis_url" --prefix "bench-$label:" > "$log" 2>&1 &
      else
        "$out/node_server" --port "${ports[$i]}" > "$log" 2>&1 &
      fi
    fi
    node_pids+=("$!")
    pids+=("$!")
    wait_log "$log" "listening on" "$!"
  done
}
stop_nodes() {
  local p
  for p in "${node_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${node_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  node_pids=()
}

# run LABEL SYSTEM K BROKER -- cluster_load args...
run() {
  local label=$1 sys=$2 k=$3 broker=$4 i
  shift 5
  start_nodes "$sys" "$k" "$broker" "$label"
  local pidargs=(--pid "redis=$redis_pid")
  for ((i = 0; i < k; i++)); do pidargs+=(--pid "node$i=${node_pids[$i]}"); done
  local portlist
  portlist="$(IFS=,; echo "${ports[*]:0:$k}")"
  say "$label: $sys, $k node(s), broker=$broker, $*"
  "$out/cluster_load" --proto "$sys" --ports "$portlist" --subs "$SUBS" --topics "$TOPICS" \
    "${pidargs[@]}" "$@" > "$out/$label-load.log" 2> "$out/$label-load.err" || {
    say "$label: cluster_load failed:"; cat "$out/$label-load.err" >&2
  }
  stop_nodes
  sed -n "s/^step /step run=$label broker=$broker /p" "$out/$label-load.log" | tee -a "$steps" |
    sed 's/^/  /' | cut -c1-220 >&2
  grep -h '^broker ' "$out/$label"-node*.log 2>/dev/null | sed "s/^/brokerstats run=$label /" >> "$steps" || true
}

ramp=(--warmup 1.5 --duration 2.5 --stop-p99-ms 50)
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

# Each system's highest delivered rate with p99 <= 50 ms (publishes/s; x SUBS = deliveries/s).
run sio-ramp socketio 2 1 -- "${ramp[@]}" --rates 200,300,400,500,600,800,1000,1300,1600,2000,2500
run wh-ramp wirehub 2 1 -- "${ramp[@]}" --rates 1000,2000,4000,6000,8000,10000,13000,16000,20000,25000,32000

# The fixed rate: FIXED_RATE, or less if Socket.IO did not sustain it.
sio_max="$(python3 "$here/report.py" --max-rate sio-ramp < "$steps")"
rate="$FIXED_RATE"
if [ "${sio_max%.*}" -gt 0 ] && [ "${sio_max%.*}" -lt "$rate" ]; then rate="${sio_max%.*}"; fi
say "fixed rate: $rate publishes/s ($((rate * SUBS / TOPICS)) deliveries/s)"
fixed=(--warmup 2 --duration "$FIXED_SECONDS" --rates "$rate")
run sio-fixed socketio 2 1 -- "${fixed[@]}"
run wh-fixed wirehub 2 1 -- "${fixed[@]}"
# The kernel's share alone: a node's writes at the fixed rate (each node
# sends every message, its own and the other's, to its SUBS/2 subscribers),
# one write() per delivery, with nothing else to do.
say "write floor: $((SUBS / 2)) sockets, $rate rounds/s"
"$out/write_floor" "$((SUBS / 2))" "$rate" "$FIXED_SECONDS" | grep '^floor ' | tee -a "$steps" >&2

# Local mode: the broker set but every subscriber on the publishing node,
# against the same node without a broker.
local_fixed=(--warmup 2 --duration 10 --rates "$LOCAL_FIXED_RATE")
run local-nobroker-fixed wirehub 1 0 -- "${local_fixed[@]}"
run local-broker-fixed wirehub 1 1 -- "${local_fixed[@]}"
run local-nobroker-ramp wirehub 1 0 -- "${ramp[@]}" --rates 4000,8000,12000,16000,20000,24000,28000,32000,40000
run local-broker-ramp wirehub 1 1 -- "${ramp[@]}" --rates 4000,8000,12000,16000,20000,24000,28000,32000,40000

say "done; raw steps in $steps"
python3 "$here/report.py" --subs "$SUBS" --topics "$TOPICS" --load-before "$load_before" \
  --redis-version "$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')" \
  --socketio-version "$(cd "$here" && node -p 'require("socket.io/package.json").version + " / redis-adapter " + require("@socket.io/redis-adapter/package.json").version')" \
  < "$steps" > "$out/report.md"

# bench/RESULTS.md keeps one cluster section (bench/run.sh leaves it as it
# is): this run's replaces the last one's.
results="$root/bench/RESULTS.md"
if [ "${CLUSTER_NO_RESULTS:-0}" != 1 ] && [ -f "$results" ]; then
  {
    sed '/^## Cluster:/,$d' "$results"
    echo "## Cluster: wirehub broker against Socket.IO + Redis adapter (\`bench/cluster/run.sh\`)"
    echo
    echo "K=2 nodes per system and one \`redis-server\` on this machine, $SUBS subscribers spread"
    echo "over the nodes in $TOPICS topic(s)/room(s), one publisher per node, 64-byte messages; the CPU"
    echo "of every process from /proc over the measured window (\`bench/cluster/README.md\`)."
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo none)"
    echo "- machine: $(nproc) CPUs; load average before the run: $load_before"
    echo "- command: \`bench/cluster/run.sh\`"
    echo
    cat "$out/report.md"
  } > "$results.new" && mv "$results.new" "$results"
  say "wrote the cluster section of bench/RESULTS.md"
fi
cat "$out/report.md"
