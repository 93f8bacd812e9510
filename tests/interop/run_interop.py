"""Every implementation in one chat room (see README.md).

    run_interop.py --build-dir build [--only c,ws,...] [--require c,python,...]

Prints one line per client and round, then "N passed, M failed"; exits 1 on
any failure. Clients whose implementation is not available here are listed
as absent; an absent client named in --require is a failure (test-interop.sh
requires all of them), and so is one that is present but fails.
"""
import argparse
import collections
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ALL_CLIENTS = ("c", "python", "node", "rust", "go", "ws", "websockets")
MESSAGES_PER_CLIENT = 5
# The relay forwards kinds 1 and 4 of every sender fragmented (relay_server.c).
FRAGMENTED_PER_SENDER = 2
# Kinds 3 and 4 (1 MiB each) are above every client's compression threshold.
COMPRESSIBLE_PER_SENDER = 2
READY_TIMEOUT = 20
RUN_TIMEOUT = 30
STATS_TIMEOUT = 10
# (label, does the client at index i offer permessage-deflate)
ROUNDS = (
    ("compressed", lambda i: True),
    ("uncompressed", lambda i: False),
    ("mixed (even clients compress)", lambda i: i % 2 == 0),
    ("mixed (odd clients compress)", lambda i: i % 2 == 1),
)


def why_not(argv: list, env=None) -> str:
    """'' if argv runs cleanly, else the last line of what it printed."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if r.returncode == 0:
        return ""
    lines = [l.strip() for l in (r.stderr + r.stdout).splitlines() if l.strip()]
    return lines[-1] if lines else f"exit {r.returncode}"


def python_lacks(module: str) -> str:
    return why_not([sys.executable, "-c", f"import {module}"])


def node_lacks(module: str, paths: list) -> str:
    if not shutil.which("node"):
        return "no node on PATH"
    env = dict(os.environ, NODE_PATH=os.pathsep.join(str(p) for p in paths))
    return why_not(["node", "-e", f"require({module!r})"], env)


def clients(build: Path):
    """({name: (argv prefix, extra env)} of every client available here,
    {name: why it is absent} of the others)."""
    node_path = [HERE / "node_modules"]
    found = {}
    absent = {}
    c = build / "tests" / "interop" / "interop_c_client"
    if c.exists():
        found["c"] = ([str(c)], {})
    else:
        absent["c"] = f"{c} not built (ninja interop_c_client)"
    err = python_lacks("wirehub")
    if not err:
        found["python"] = ([sys.executable, str(HERE / "clients" / "websockets_client.py")],
                           {"WIREHUB_INTEROP_PY": "wirehub"})
    else:
        absent["python"] = f"wirehub not importable by {sys.executable}: {err}"
    err = node_lacks(str(ROOT), node_path) if (ROOT / "package.json").exists() else "no package.json"
    if not err:
        found["node"] = (["node", str(HERE / "clients" / "ws_client.js")],
                         {"WIREHUB_INTEROP_WS": str(ROOT), "NODE_PATH": str(node_path[0])})
    else:
        absent["node"] = f"the wirehub Node package at {ROOT} does not load: {err}"
    for lang, exe in (("rust", build / "interop" / "rust_client"), ("go", build / "interop" / "go_client")):
        if exe.exists():
            found[lang] = ([str(exe)], {})
        else:
            absent[lang] = f"{exe} not built (tests/interop/clients/build-native.sh)"
    err = node_lacks("ws", node_path)
    if not err:
        found["ws"] = (["node", str(HERE / "clients" / "ws_client.js")], {"NODE_PATH": str(node_path[0])})
    else:
        absent["ws"] = f"npm ws does not load from {node_path[0]} (scripts/deps-interop.sh): {err}"
    err = python_lacks("websockets")
    if not err:
        found["websockets"] = ([sys.executable, str(HERE / "clients" / "websockets_client.py")], {})
    else:
        absent["websockets"] = f"PyPI websockets not importable (scripts/deps-interop.sh): {err}"
    return found, absent


class Relay:
    """relay_server.c, with its STATS lines collected as they come."""

    def __init__(self, exe: Path):
        self.proc = subprocess.Popen([str(exe), "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline().split()
        if len(first) != 2 or first[0] != "PORT":
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"relay_server did not start (exit {self.proc.returncode})")
        self.port = int(first[1])
        self.stats = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            f = line.split()
            if len(f) == 6 and f[0] == "STATS":
                self.stats.put((f[1], tuple(int(x) for x in f[2:])))

    def drain(self):
        while True:
            try:
                self.stats.get_nowait()
            except queue.Empty:
                return

    def collect(self, names, timeout):
        """{name: (received, compressed, fragmented out, send errors)} for the
        connections of `names` that closed within the timeout."""
        got = {}
        deadline = time.monotonic() + timeout
        while set(names) - set(got):
            try:
                name, st = self.stats.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if name in names:
                got[name] = st
        return got

    def stop(self) -> int:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(5)
        return self.proc.returncode


class Client:
    def __init__(self, name, argv, env, url, compress):
        self.name = name
        self.proc = subprocess.Popen(argv + [url, name, "1" if compress else "0"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=dict(os.environ, **env))
        self.lines = []
        self.err = []
        self.ready = threading.Event()
        self.t_out = threading.Thread(target=self._read_out, daemon=True)
        self.t_err = threading.Thread(target=self._read_err, daemon=True)
        self.t_out.start()
        self.t_err.start()

    def _read_out(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if line == "READY":
                self.ready.set()
        self.ready.set()

    def _read_err(self):
        for line in self.proc.stderr:
            self.err.append(line.rstrip("\n"))

    def go(self, total):
        self.proc.stdin.write(f"GO {total}\n")
        self.proc.stdin.flush()

    def wait(self, deadline):
        try:
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.err.append("killed: did not finish in time")
        self.t_out.join(5)
        self.t_err.join(5)

    def records(self, kind):
        return [tuple(l.split()[1:]) for l in self.lines if l.startswith(kind + " ")]


def run_round(found, url, offers, relay):
    """offers: {client: offers permessage-deflate}. Returns {client: (error or None,
    the relay's STATS for it)}."""
    relay.drain()  # STATS of an earlier round's stragglers
    running = {n: Client(n, argv, env, url, offers[n]) for n, (argv, env) in found.items()}
    results = {}
    deadline = time.monotonic() + READY_TIMEOUT
    for c in running.values():
        c.ready.wait(max(0.1, deadline - time.monotonic()))
    n_clients = len(running)
    total = MESSAGES_PER_CLIENT * n_clients
    not_ready = [n for n, c in running.items() if "READY" not in c.lines]
    for c in running.values():
        if not not_ready:
            c.go(total)
        else:
            c.proc.kill()  # the room cannot start: nobody waits for GO
    deadline = time.monotonic() + RUN_TIMEOUT
    for c in running.values():
        c.wait(deadline)
    if not_ready:
        for n, c in running.items():
            err = "never READY: " + " | ".join(c.err[-3:]) if n in not_ready else "room never started"
            results[n] = (err, None)
        return results
    stats = relay.collect(list(running), STATS_TIMEOUT)

    sent_by = {n: c.records("SENT") for n, c in running.items()}
    origin = {}
    for n, recs in sent_by.items():
        for i, r in enumerate(recs):
            origin[r] = (n, i)
    all_sent = collections.Counter(r for recs in sent_by.values() for r in recs)
    reference = None
    for n, c in running.items():
        recv = c.records("RECV")
        problems = []
        if c.proc.returncode != 0 or "DONE" not in c.lines:
            problems.append(f"exit {c.proc.returncode}: " + " | ".join(c.err[-3:]))
        ext = next((l.split(" ", 1)[1] for l in c.lines if l.startswith("EXTENSIONS ")), "")
        compress = offers[n]
        if compress != ("permessage-deflate" in ext):
            problems.append(f"compression {'not ' if compress else ''}negotiated (extensions: {ext or 'none'})")
        if len(sent_by[n]) != MESSAGES_PER_CLIENT:
            problems.append(f"sent {len(sent_by[n])} of {MESSAGES_PER_CLIENT}")
        if len(recv) != total:
            problems.append(f"received {len(recv)} of {total}")
        if collections.Counter(recv) != all_sent:
            missing = all_sent - collections.Counter(recv)
            extra = collections.Counter(recv) - all_sent
            problems.append(f"not every message exactly once (missing {sum(missing.values())}, "
                            f"unexpected {sum(extra.values())})")
        for sender in sent_by:
            seq = [origin[r][1] for r in recv if r in origin and origin[r][0] == sender]
            if seq != sorted(seq):
                problems.append(f"{sender}'s messages out of order")
        # What the relay saw of this connection.
        st = stats.get(n)
        if st is None:
            problems.append(f"relay_server reported nothing for it within {STATS_TIMEOUT} s of the round")
        else:
            got, compressed, frag_out, send_errors = st
            if got != MESSAGES_PER_CLIENT:
                problems.append(f"relay received {got} of its {MESSAGES_PER_CLIENT} messages")
            if compress and compressed < COMPRESSIBLE_PER_SENDER:
                problems.append(f"deflate negotiated, yet only {compressed} of its messages arrived compressed "
                                f"(its two 1 MiB messages at least should)")
            if not compress and compressed:
                problems.append(f"{compressed} compressed messages on an uncompressed connection")
            if frag_out != FRAGMENTED_PER_SENDER * n_clients:
                problems.append(f"relay sent it {frag_out} fragmented messages, "
                                f"expected {FRAGMENTED_PER_SENDER * n_clients}")
            if send_errors:
                problems.append(f"{send_errors} relay send errors")
        if reference is None and not problems:
            reference = recv
        elif reference is not None and recv != reference:
            problems.append("a different order than the other clients")
        results[n] = ("; ".join(problems) or None, stats.get(n))
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=str(ROOT / "build"))
    ap.add_argument("--only", default="", help="run only these clients (comma-separated)")
    ap.add_argument("--require", default="",
                    help="comma-separated clients that must be present; an absent one is a failure "
                         f"(all: {','.join(ALL_CLIENTS)})")
    args = ap.parse_args()
    build = Path(args.build_dir).resolve()
    only = [x for x in args.only.split(",") if x]
    required = [x for x in args.require.split(",") if x]
    unknown = [x for x in only + required if x not in ALL_CLIENTS]
    if unknown:
        ap.error(f"unknown client(s) {', '.join(unknown)}; known: {', '.join(ALL_CLIENTS)}")
    found, absent = clients(build)
    if only:
        for n in list(found):
            if n not in only:
                del found[n]
                absent[n] = "left out by --only"
    print("interop clients: " + (", ".join(found) or "none"))
    passed = failed = 0
    for n, why in absent.items():
        if n in required:
            failed += 1
            print(f"  FAIL {n}: required client absent: {why}")
        else:
            print(f"  absent: {n} ({why})")

    relay_exe = build / "tests" / "interop" / "interop_relay_server"
    try:
        if not relay_exe.exists():
            raise RuntimeError(f"{relay_exe} not built (ninja interop_relay_server)")
        relay = Relay(relay_exe)
    except (OSError, RuntimeError) as e:
        print(f"  FAIL relay: {e}")
        print(f"{passed} passed, {failed + 1} failed")
        return 1
    url = f"ws://127.0.0.1:{relay.port}/room"
    names = list(found)
    try:
        for label, offer in ROUNDS:
            offers = {n: offer(i) for i, n in enumerate(names)}
            t0 = time.monotonic()
            results = run_round(found, url, offers, relay)
            deflating = [n for n in names if offers[n]]
            print(f"== round {label} ({len(found)} clients, {len(deflating)} offering deflate"
                  f"{': ' + ', '.join(deflating) if 0 < len(deflating) < len(names) else ''}; "
                  f"{time.monotonic() - t0:.1f} s)")
            n_total = MESSAGES_PER_CLIENT * len(found)
            for n, res in results.items():
                err, st = res
                if err:
                    failed += 1
                    print(f"  FAIL {n}: {err}")
                else:
                    passed += 1
                    print(f"  ok   {n}: sent {MESSAGES_PER_CLIENT} ({st[1]} arrived compressed), received all "
                          f"{n_total} ({st[2]} fragmented by the relay) in the room's order")
    finally:
        rc = relay.stop()
    if rc != 0:
        print(f"  FAIL relay: relay_server exited with {rc}")
        failed += 1
    if len(found) < 2:
        print("interop: fewer than two clients available", file=sys.stderr)
        failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
