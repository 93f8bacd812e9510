#!/usr/bin/env python3
"""Every implementation in one chat room (see README.md).

    run_interop.py --build-dir build [--only c,ws,...]

Prints one line per client and round, then "N passed, M failed"; exits 1 on
any failure. Clients whose implementation is not available here are listed
as absent (a binding that has not landed); one that is present but fails is a
failure.
"""
import argparse
import collections
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MESSAGES_PER_CLIENT = 5
READY_TIMEOUT = 30
RUN_TIMEOUT = 120


def python_has(module: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def node_resolves(module: str, paths: list) -> bool:
    if not shutil.which("node"):
        return False
    env = dict(os.environ, NODE_PATH=os.pathsep.join(str(p) for p in paths))
    return subprocess.run(["node", "-e", f"require({module!r})"], capture_output=True, env=env).returncode == 0


def clients(build: Path) -> dict:
    """name -> (argv prefix, extra env), for every client available here."""
    node_path = [HERE / "node_modules"]
    found = {}
    absent = []
    c = build / "tests" / "interop" / "interop_c_client"
    if c.exists():
        found["c"] = ([str(c)], {})
    else:
        absent.append("c (build tests/interop)")
    if python_has("wirehub"):
        found["python"] = ([sys.executable, str(HERE / "clients" / "websockets_client.py")],
                           {"WIREHUB_INTEROP_PY": "wirehub"})
    else:
        absent.append("python (wirehub not importable)")
    if node_resolves(str(ROOT), node_path) and (ROOT / "package.json").exists():
        found["node"] = (["node", str(HERE / "clients" / "ws_client.js")],
                         {"WIREHUB_INTEROP_WS": str(ROOT), "NODE_PATH": str(node_path[0])})
    else:
        absent.append("node (wirehub package not built)")
    for lang, exe in (("rust", build / "interop" / "rust_client"), ("go", build / "interop" / "go_client")):
        if exe.exists():
            found[lang] = ([str(exe)], {})
        else:
            absent.append(f"{lang} ({exe} not built)")
    if node_resolves("ws", node_path):
        found["ws"] = (["node", str(HERE / "clients" / "ws_client.js")], {"NODE_PATH": str(node_path[0])})
    else:
        absent.append("ws (npm ws missing)")
    if python_has("websockets"):
        found["websockets"] = ([sys.executable, str(HERE / "clients" / "websockets_client.py")], {})
    else:
        absent.append("websockets (PyPI websockets missing)")
    return found, absent


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


def run_round(found, url, compress):
    """Returns {client: error or None}."""
    running = {n: Client(n, argv, env, url, compress) for n, (argv, env) in found.items()}
    results = {}
    deadline = time.monotonic() + READY_TIMEOUT
    for c in running.values():
        c.ready.wait(max(0.1, deadline - time.monotonic()))
    total = MESSAGES_PER_CLIENT * len(running)
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
            results[n] = "never READY: " + " | ".join(c.err[-3:]) if n in not_ready else "room never started"
        return results

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
        if reference is None and not problems:
            reference = recv
        elif reference is not None and recv != reference:
            problems.append("a different order than the other clients")
        results[n] = "; ".join(problems) or None
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=str(ROOT / "build"))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    build = Path(args.build_dir).resolve()
    found, absent = clients(build)
    if args.only:
        keep = set(args.only.split(","))
        found = {k: v for k, v in found.items() if k in keep}
    print("interop clients: " + ", ".join(found))
    for a in absent:
        print(f"  absent: {a}")
    relay = build / "tests" / "interop" / "interop_relay_server"
    server = subprocess.Popen([str(relay), "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline().split()[1])
    url = f"ws://127.0.0.1:{port}/room"
    passed = failed = 0
    try:
        for compress in (True, False):
            t0 = time.monotonic()
            results = run_round(found, url, compress)
            label = "compressed" if compress else "uncompressed"
            print(f"== round {label} ({len(found)} clients, {time.monotonic() - t0:.1f} s)")
            for n, err in results.items():
                if err:
                    failed += 1
                    print(f"  FAIL {n}: {err}")
                else:
                    passed += 1
                    print(f"  ok   {n}: sent {MESSAGES_PER_CLIENT}, received all {MESSAGES_PER_CLIENT * len(found)} "
                          "in the room's order")
    finally:
        server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    if len(found) < 2:
        print("interop: fewer than two clients available", file=sys.stderr)
        failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
