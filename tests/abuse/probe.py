#!/usr/bin/env python3
"""The well-behaved client: echo round trips against a server under attack.

    probe.py PORT [INTERVAL_MS]

Connects to ws://127.0.0.1:PORT/, then until its stdin closes sends a text
message "probe:N" every INTERVAL_MS (default 10) and waits for its echo,
reading whatever else comes (broadcasts, pings, which it answers). Prints one
JSON line: round trips, their latencies (ms), and errors (a lost, reordered
or late echo, a close). It runs in its own process so the attacker's Python
threads cannot delay it through the GIL.
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawws  # noqa: E402

ECHO_TIMEOUT = 5.0  # an echo later than this counts as lost


def main():
    port = int(sys.argv[1])
    interval = (int(sys.argv[2]) if len(sys.argv) > 2 else 10) / 1000
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    rtts, errors, broadcasts = [], [], 0
    try:
        sock, reader = rawws.connect(port, "/")
    except Exception as e:  # noqa: BLE001 -- reported, not raised
        print(json.dumps({"rtts": [], "errors": [f"connect: {e!r}"], "broadcasts": 0}), flush=True)
        return
    print("ready", flush=True)
    i = 0
    while not stop.is_set() and len(errors) < 5:
        msg = f"probe:{i}".encode()
        t0 = time.monotonic()
        try:
            sock.sendall(rawws.frame(rawws.OP_TEXT, msg))
            while True:
                op, data = reader.read_message(timeout=max(0.001, t0 + ECHO_TIMEOUT - time.monotonic()))
                if data.startswith(b"broadcast:"):
                    broadcasts += 1
                    continue
                if data != msg or op != rawws.OP_TEXT:
                    errors.append(f"expected {msg!r}, got {data[:40]!r}")
                break
            rtts.append((time.monotonic() - t0) * 1000)
        except rawws.Closed as c:
            errors.append(f"closed by the server: {c.code} {c.reason[:60]!r}")
            break
        except OSError as e:
            errors.append(f"round trip {i}: {e!r}")
            if not isinstance(e, TimeoutError):
                break
        i += 1
        stop.wait(interval)
    try:
        sock.sendall(rawws.close_frame(1000))
        reader.expect_close(1.0)
    except (OSError, rawws.Closed):
        pass
    sock.close()
    print(json.dumps({"rtts": rtts, "errors": errors, "broadcasts": broadcasts}), flush=True)


if __name__ == "__main__":
    main()
