#!/usr/bin/env python3
"""The well-behaved client: echo round trips against a server under attack.

    probe.py PORT [INTERVAL_MS]

Connects to ws://127.0.0.1:PORT/, then until its stdin closes sends a text
message "probe:N" every INTERVAL_MS (default 10) and waits for its echo. A
reader thread reads everything the server sends as it comes (broadcasts,
counted; pings, answered). Prints one JSON line: round trips, their
latencies (ms), broadcasts received, and errors (a lost, wrong or late
echo, a close). It runs in its own process so the attacker's Python
threads cannot delay it through the GIL.
"""
import json
import os
import queue
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
    rtts, errors, counts = [], [], {"broadcasts": 0}
    try:
        sock, reader = rawws.connect(port, "/")
    except Exception as e:  # noqa: BLE001 -- reported, not raised
        print(json.dumps({"rtts": [], "errors": [f"connect: {e!r}"], "broadcasts": 0}), flush=True)
        return
    echoes = queue.Queue()
    send_lock = threading.Lock()

    def read():
        # Reads all the time, so the probe is never the slow consumer of
        # anything the server sends it (broadcasts included).
        def pong(payload):
            with send_lock:
                sock.sendall(rawws.frame(rawws.OP_PONG, payload))
        try:
            while True:
                op, data = reader.read_message(timeout=3600, on_ping=pong)
                if data.startswith(b"broadcast:"):
                    counts["broadcasts"] += 1
                else:
                    echoes.put((op, data))
        except rawws.Closed as c:
            echoes.put(("closed", f"closed by the server: {c.code} {c.reason[:60]!r}"))
        except OSError as e:
            echoes.put(("closed", f"read: {e!r}"))

    threading.Thread(target=read, daemon=True).start()
    print("ready", flush=True)
    i = 0
    while not stop.is_set() and len(errors) < 5:
        msg = f"probe:{i}".encode()
        t0 = time.monotonic()
        try:
            with send_lock:
                sock.sendall(rawws.frame(rawws.OP_TEXT, msg))
            while True:  # skip echoes that came too late for their own turn
                op, data = echoes.get(timeout=max(0.001, t0 + ECHO_TIMEOUT - time.monotonic()))
                if op == "closed":
                    errors.append(data)
                    break
                if data == msg and op == rawws.OP_TEXT:
                    rtts.append((time.monotonic() - t0) * 1000)
                    break
                if not (data.startswith(b"probe:") and int(data[6:]) < i):
                    errors.append(f"expected {msg!r}, got {data[:40]!r}")
                    break
            if errors and errors[-1].startswith(("closed", "read")):
                break
        except queue.Empty:
            errors.append(f"round trip {i}: no echo within {ECHO_TIMEOUT:.0f} s")
        except OSError as e:
            errors.append(f"round trip {i}: {e!r}")
            break
        i += 1
        stop.wait(interval)
    try:
        with send_lock:
            sock.sendall(rawws.close_frame(1000))
    except OSError:
        pass
    time.sleep(0.1)
    sock.close()
    print(json.dumps({"rtts": rtts, "errors": errors, "broadcasts": counts["broadcasts"]}), flush=True)


if __name__ == "__main__":
    main()
