#!/usr/bin/env python3
"""A soak: well-behaved traffic of every kind against one server for a while.

    soak.py MINUTES [c|python|node]     (SOAK_SAMPLE_S: seconds per sample, 60)

Starts the server (servers/, with permessage-deflate on) and runs, until the
time is up: 6 echo clients (3 of them compressing) with messages of 1 B to
64 KiB, each checked byte for byte; a publisher broadcasting a numbered
message every 50 ms that every echo client must receive in order; and churn,
connections that open, echo once and go (half with a close handshake, half
with a reset). Each sample prints one line: time, the server's VmRSS and
open descriptors, and the counts of echoes, broadcasts, churned connections
and errors. Exits non-zero on any error, if the server died, or if RSS or
descriptors keep growing: every sample above the one before it (monotonic)
and the last above the first x 1.2 + slack (4 MiB, 8 descriptors).
"""
import os
import random
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rawws  # noqa: E402
from conftest import MiB, Server  # noqa: E402

RSS_SLACK, FD_SLACK, GROWTH = 4 * MiB, 8, 1.2


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.echoes = self.broadcasts = self.churn = 0
        self.errors = []

    def add(self, field, n=1):
        with self.lock:
            setattr(self, field, getattr(self, field) + n)

    def error(self, what):
        with self.lock:
            self.errors.append(what)
            print(f"  error: {what}", flush=True)


def echo_client(port, k, deflate, stop, stats):
    rnd = random.Random(k)
    offer = "permessage-deflate; client_no_context_takeover; server_no_context_takeover" if deflate else None
    try:
        sock, r = rawws.connect(port, extensions=offer)
        next_bc = None
        while not stop.is_set():
            n = rnd.choice((1, 100, 1000, 5000, 20000, 65536))
            msg = bytes(rnd.getrandbits(8) for _ in range(16)) * (n // 16) + b"e" * (n % 16)
            if deflate:
                sock.sendall(rawws.frame(rawws.OP_BINARY, rawws.deflate_message(msg, level=1), rsv1=True))
            else:
                sock.sendall(rawws.frame(rawws.OP_BINARY, msg))
            while True:
                op, data = r.read_message(timeout=10)
                if r.last_rsv1:
                    data = rawws.inflate_message(data)
                if data.startswith(b"broadcast:"):
                    seq = int(data[10:20])
                    if next_bc is not None and seq != next_bc:
                        stats.error(f"echo client {k}: broadcast {seq}, expected {next_bc}")
                    next_bc = seq + 1
                    stats.add("broadcasts")
                    continue
                if data != msg:
                    stats.error(f"echo client {k}: wrong echo of {n} bytes ({len(data)} back)")
                stats.add("echoes")
                break
            stop.wait(0.005)
        sock.sendall(rawws.close_frame(1000))
        r.expect_close(5)
        sock.close()
    except Exception as e:  # noqa: BLE001 -- counted, then reported
        stats.error(f"echo client {k}: {e!r}")


def publisher(port, stop, stats):
    try:
        sock, r = rawws.connect(port)
        i = 0
        while not stop.is_set():
            sock.sendall(rawws.frame(rawws.OP_TEXT, b"broadcast:%010d" % i + b"." * (i % 2000)))
            op, data = r.read_message(timeout=10)  # its own copy: it reads too
            i += 1
            stop.wait(0.05)
        sock.close()
    except Exception as e:  # noqa: BLE001
        stats.error(f"publisher: {e!r}")


def churner(port, stop, stats):
    i = 0
    while not stop.is_set():
        try:
            sock, r = rawws.connect(port)
            sock.sendall(rawws.frame(rawws.OP_TEXT, b"churn"))
            while True:
                op, data = r.read_message(timeout=10)
                if not data.startswith(b"broadcast:"):
                    break
            if data != b"churn":
                stats.error(f"churn: echo {data[:20]!r}")
            if i % 2:
                sock.sendall(rawws.close_frame(1000))
                r.expect_close(5)
                sock.close()
            else:
                rawws.hard_close(sock)
            stats.add("churn")
        except Exception as e:  # noqa: BLE001
            stats.error(f"churn: {e!r}")
        i += 1
        stop.wait(0.01)


def growing(values, slack):
    """Kept growing: every sample above the one before, and the last above
    the first by more than 20 % + slack."""
    return (len(values) >= 2 and all(b > a for a, b in zip(values, values[1:]))
            and values[-1] > values[0] * GROWTH + slack)


def main():
    if len(sys.argv) not in (2, 3) or sys.argv[2:] not in ([], ["c"], ["python"], ["node"]):
        sys.exit("usage: soak.py MINUTES [c|python|node]")
    minutes = float(sys.argv[1])
    kind = sys.argv[2] if len(sys.argv) > 2 else "c"
    sample = float(os.environ.get("SOAK_SAMPLE_S", "60"))
    server = Server(kind, ["--deflate"])
    stats, stop = Stats(), threading.Event()
    threads = [threading.Thread(target=echo_client, args=(server.port, k, k % 2 == 1, stop, stats))
               for k in range(6)]
    threads += [threading.Thread(target=publisher, args=(server.port, stop, stats)),
                threading.Thread(target=churner, args=(server.port, stop, stats))]
    for t in threads:
        t.start()
    print(f"soak: {kind} server (pid {server.pid}) for {minutes:g} min, a sample every {sample:g} s", flush=True)
    print(f"{'t s':>6} {'RSS MB':>8} {'fds':>5} {'echoes':>8} {'bcasts':>8} {'churn':>7} {'errors':>6}", flush=True)
    rss, fds = [], []
    t0 = time.monotonic()
    ok = True
    try:
        for k in range(1, max(1, round(minutes * 60 / sample)) + 1):
            time.sleep(max(0.0, t0 + k * sample - time.monotonic()))
            if not server.alive():
                print(f"soak: the server died (exit {server.proc.poll()})", flush=True)
                ok = False
                break
            rss.append(server.rss())
            fds.append(server.fds())
            print(f"{time.monotonic() - t0:6.0f} {rss[-1] / MiB:8.1f} {fds[-1]:5d} {stats.echoes:8d} "
                  f"{stats.broadcasts:8d} {stats.churn:7d} {len(stats.errors):6d}", flush=True)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
        alive = server.alive()
        server.stop()
    if not alive:
        ok = False
    if stats.errors:
        print(f"soak: {len(stats.errors)} errors, first: {stats.errors[0]}")
        ok = False
    if min(stats.echoes, stats.broadcasts, stats.churn) == 0:
        print("soak: some traffic never happened", flush=True)
        ok = False
    if growing(rss, RSS_SLACK):
        print(f"soak: RSS kept growing: {[round(v / MiB, 1) for v in rss]} MB")
        ok = False
    if growing(fds, FD_SLACK):
        print(f"soak: descriptors kept growing: {fds}")
        ok = False
    print(f"soak: {kind}: {'ok' if ok else 'FAILED'}", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
