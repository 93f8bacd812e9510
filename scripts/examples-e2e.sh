# Sourced by scripts/test-{go,rust}.sh: the end-to-end check of a binding's
# examples, the same for every language. Adds to the caller's pass/fail.
#
#   examples_e2e BIN_DIR PORT_FLAG     (PORT_FLAG: how echo_server takes "0")
examples_e2e() {
  local bin="$1" port_flag="$2" out url got crc
  echo "== examples end to end: echo_server + chat_client"
  out="$(mktemp /tmp/wirehub-echo.XXXXXX)"
  "$bin/echo_server" "$port_flag" 0 >"$out" &
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
  # A refused connection is a clear error and exit status 1, not a crash.
  timeout 20 "$bin/chat_client" "ws://127.0.0.1:1/" </dev/null 2>/dev/null
  crc=$?
  if [ "$crc" -eq 1 ]; then pass=$((pass + 1)); echo "ok: chat_client to a closed port exits 1"
  else fail=$((fail + 1)); echo "FAILED: chat_client to a closed port exited $crc"; fi
}
