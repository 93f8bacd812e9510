"""Every implementation in one chat room (see README.md).

    run_interop.py --build-dir build [--only c,ws,...] [--require c,python,...] [--cluster]

--cluster: the room spans two servers, relay_server.c and relay_server.py, on
one redis-server, with every client once on each.

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
    """relay_server.c (or, for --cluster, relay_server.py), with its STATS lines
    collected as they come. `fragments`: whether it re-sends kinds 1 and 4
    fragmented (relay_server.py publishes everything whole)."""

    def __init__(self, argv, fragments=True):
        self.fragments = fragments
        self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline().split()
        if len(first) != 2 or first[0] != "PORT":
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"{argv[-1] if len(argv) < 3 else Path(str(argv[0])).name} did not start "
                               f"(exit {self.proc.returncode})")
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


class RedisServer:
    """Debian's redis-server on a free loopback port, without persistence."""

    def __init__(self):
        import socket
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            self.port = sk.getsockname()[1]
        exe = shutil.which("redis-server")
        if not exe:
            raise RuntimeError("redis-server not found (scripts/install-deps.sh installs it)")
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--loglevel", "warning"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


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


def run_round(members, offers, cluster=False):
    """members: {client: (argv, env, url, relay)}; offers: {client: offers
    permessage-deflate}. Returns {client: (error or None, its relay's STATS)}.
    In a cluster (several relays on one Redis) there is no single order to
    compare: each client must still get every message exactly once, and
    each sender's in the order sent."""
    relays = list({id(m[3]): m[3] for m in members.values()}.values())
    for relay in relays:
        relay.drain()  # STATS of an earlier round's stragglers
    running = {n: Client(n, argv, env, url, offers[n]) for n, (argv, env, url, _) in members.items()}
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
    stats = {}
    for relay in relays:
        stats.update(relay.collect([n for n in running if members[n][3] is relay], STATS_TIMEOUT))
    # What a relay fragments goes to the clients of that relay only.
    on_relay = collections.Counter(id(m[3]) for m in members.values())

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
            # -1: the relay cannot tell (relay_server.py).
            if compressed >= 0 and compress and compressed < COMPRESSIBLE_PER_SENDER:
                problems.append(f"deflate negotiated, yet only {compressed} of its messages arrived compressed "
                                f"(its two 1 MiB messages at least should)")
            if compressed >= 0 and not compress and compressed:
                problems.append(f"{compressed} compressed messages on an uncompressed connection")
            relay = members[n][3]
            want = FRAGMENTED_PER_SENDER * on_relay[id(relay)] if relay.fragments else 0
            if frag_out != want:
                problems.append(f"relay sent it {frag_out} fragmented messages, expected {want}")
            if send_errors:
                problems.append(f"{send_errors} relay send errors")
        if cluster:
            pass
        elif reference is None and not problems:
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
    ap.add_argument("--cluster", action="store_true",
                    help="one room on two servers in two languages (relay_server.c and relay_server.py) "
                         "on one redis-server, every client on both")
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
    redis = None
    relays = []
    try:
        if not relay_exe.exists():
            raise RuntimeError(f"{relay_exe} not built (ninja interop_relay_server)")
        if args.cluster:
            redis = RedisServer()
            relays = [Relay([relay_exe, "0", redis.url, "a", "b"]),
                      Relay([sys.executable, HERE / "relay_server.py", "0", redis.url, "b", "a"], fragments=False)]
        else:
            relays = [Relay([relay_exe, "0"])]
    except (OSError, RuntimeError) as e:
        print(f"  FAIL relay: {e}")
        for r in relays:
            r.stop()
        if redis:
            redis.stop()
        print(f"{passed} passed, {failed + 1} failed")
        return 1
    # Every client on every relay: "<client>" alone, "<client>-a"/"-b" in a cluster.
    members = {}
    for n, (argv, env) in found.items():
        for relay, tag in zip(relays, ("a", "b")):
            name = f"{n}-{tag}" if args.cluster else n
            members[name] = (argv, env, f"ws://127.0.0.1:{relay.port}/room", relay)
    names = list(members)
    # A cluster runs one round: on each server half the clients compress.
    rounds = [("mixed (on each server every other client compresses)", lambda i: i % 4 in (0, 3))] \
        if args.cluster else ROUNDS
    rcs = []
    try:
        for label, offer in rounds:
            offers = {n: offer(i) for i, n in enumerate(names)}
            t0 = time.monotonic()
            results = run_round(members, offers, cluster=args.cluster)
            deflating = [n for n in names if offers[n]]
            where = " on 2 servers (C and Python) and one Redis" if args.cluster else ""
            print(f"== round {label} ({len(members)} clients{where}, {len(deflating)} offering deflate"
                  f"{': ' + ', '.join(deflating) if 0 < len(deflating) < len(names) else ''}; "
                  f"{time.monotonic() - t0:.1f} s)")
            n_total = MESSAGES_PER_CLIENT * len(members)
            order = "each sender's in order" if args.cluster else "in the room's order"
            for n, res in results.items():
                err, st = res
                if err:
                    failed += 1
                    print(f"  FAIL {n}: {err}")
                else:
                    passed += 1
                    compressed = "?" if st[1] < 0 else st[1]
                    print(f"  ok   {n}: sent {MESSAGES_PER_CLIENT} ({compressed} arrived compressed), received all "
                          f"{n_total} ({st[2]} fragmented by the relay) {order}")
    finally:
        rcs = [r.stop() for r in relays]
        if redis:
            redis.stop()
    for rc in rcs:
        if rc != 0:
            print(f"  FAIL relay: a relay exited with {rc}")
            failed += 1
    if len(found) < 2:
        print("interop: fewer than two clients available", file=sys.stderr)
        failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
