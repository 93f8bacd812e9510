#!/usr/bin/env bash
# The Python chat example as one chat on several instances: starts Debian's
# redis-server on a free loopback port (no persistence, its files in a
# temporary directory) and two chat instances attached to it, on ports 8080
# and 8081 (WIREHUB_CHAT_PORTS="8080 8081 8082" for more), and prints their
# URLs: open one in each browser, they chat as on one server. Ctrl-C stops
# everything. Installs what is missing and pip-installs wirehub[redis] from
# this repository first, as run-chat.sh does.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
HOST="${WIREHUB_CHAT_HOST:-127.0.0.1}"
read -r -a ports <<<"${WIREHUB_CHAT_PORTS:-8080 8081}"

"$root/scripts/install-deps.sh"
"$root/scripts/pip-install-wirehub.sh" redis

chats=()
redis_pid=
tmp="$(mktemp -d)"
cleanup() {
  trap - INT TERM EXIT
  # The instances first: leaving, their members say goodbye through Redis.
  for pid in "${chats[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${chats[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
  echo "run-chat-cluster: stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

redis_port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# In its own session: Ctrl-C reaches the instances, which say goodbye
# through Redis before cleanup stops it.
setsid redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
  --loglevel warning &
redis_pid=$!
for _ in $(seq 100); do
  if redis-cli -p "$redis_port" ping >/dev/null 2>&1; then break; fi
  sleep 0.05
done
redis-cli -p "$redis_port" ping >/dev/null || { echo "run-chat-cluster: redis-server did not start" >&2; exit 1; }
url="redis://127.0.0.1:$redis_port/0"
echo "run-chat-cluster: Redis at $url"

n=0
for port in "${ports[@]}"; do
  n=$((n + 1))
  "$PY" "$root/examples/python/chat/server.py" --host "$HOST" --port "$port" --redis "$url" --name "$n" &
  chats+=($!)
done
sleep 1
echo "run-chat-cluster: one chat on ${#ports[@]} instances, open each in its own browser:"
for port in "${ports[@]}"; do echo "  http://$HOST:$port/"; done
echo "run-chat-cluster: Ctrl-C stops them and Redis"
# Until Ctrl-C, or until any of them exits on its own.
wait -n "$redis_pid" "${chats[@]}" || true
