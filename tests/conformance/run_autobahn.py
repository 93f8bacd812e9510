#!/usr/bin/env python3
"""Run the Autobahn|Testsuite (through kosoku) against wirehub, both roles.

server role: `kosoku -m fuzzingclient` drives autobahn_server: one kosoku run
             per case group (timed), except 12 and 13 (permessage-deflate,
             1000 echoes per case), which share one run with -p cases at once.
client role: `kosoku -m fuzzingserver` is driven by autobahn_client. A client
             runs its cases one at a time, so the suite is split into shards
             (case-id prefixes), each its own fuzzingserver + client pair, all
             run at once. Every case still runs and is checked.
The roles run one after the other: both are CPU-bound on 2 cores, so running
them at once saves little and starves the 60-second 12.x cases.

A case passes only when behavior and behaviorClose are both OK, NON-STRICT or
INFORMATIONAL. A full run must report all 517 cases per role; missing cases
count as failed. Prints the failing cases, timings per run and per group, and
a last line "N passed, M failed"; exits non-zero on any failure.

Quick local runs:  run_autobahn.py --role server -i '1.*' -i '13.2.*'
"""
from __future__ import annotations

import argparse
import collections
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

PASS = {"OK", "NON-STRICT", "INFORMATIONAL"}
FULL_SUITE_CASES = 517
# Server role: one kosoku run per entry. 12 and 13 share a run so its -p slots
# stay busy to the end instead of idling behind 12.2.15, the longest case.
SERVER_RUNS = [["1"], ["2"], ["3"], ["4"], ["5"], ["6"], ["7"], ["9"], ["10"], ["12", "13"]]
PARALLEL_GROUPS = {"12", "13"}
# Client role: 12.2 and 12.3 are the longest subgroups (minutes each), so they
# get shards of their own; the whole non-deflate suite takes seconds.
DEFAULT_CLIENT_SHARDS = "1,2,3,4,5,6,7,9,10/12.1,12.4,12.5/12.2/12.3/13.1,13.2,13.3,13.4/13.5,13.6,13.7"
# Wall-clock bound of one kosoku run, per group it covers (seconds): several
# times the measured timings (README, "Conformance"), so only a hang trips it.
GROUP_TIMEOUT = {"9": 300, "12": 1200, "13": 1200}
DEFAULT_GROUP_TIMEOUT = 120

REPO = Path(__file__).resolve().parents[2]
_print_lock = threading.Lock()


def log(role: str, msg: str) -> None:
    with _print_lock:
        print(f"[{role}] {msg}", flush=True)


def kosoku_cmd() -> list[str]:
    # Same interpreter as this script, so the patched kosoku install is used
    # even when its console script is not on PATH.
    return [sys.executable, "-c", "from kosoku._cli import main; main()"]


def includes_for(prefixes: list[str], user_includes: list[str]) -> list[str]:
    """The -i globs selecting these case-id prefixes ("6", "12.2"), within the
    user's selection. kosoku ORs its -i globs, so intersect here: a user glob
    inside a prefix is passed on as is, one covering a prefix selects it whole."""
    if not user_includes:
        return [f"{p}.*" for p in prefixes]
    out: set[str] = set()
    for glob in user_includes:
        for p in prefixes:
            if glob.startswith(p + "."):
                out.add(glob)
            elif fnmatch.fnmatchcase(f"{p}.0.0", glob):
                out.add(f"{p}.*")
    return sorted(out)


def run_timeout(prefixes: list[str], scale: float) -> float:
    groups = {p.split(".")[0] for p in prefixes}
    return scale * sum(GROUP_TIMEOUT.get(g, DEFAULT_GROUP_TIMEOUT) for g in groups)


def read_index(outdir: Path) -> dict[str, dict]:
    index = outdir / "index.json"
    if not index.exists():
        return {}
    cases: dict[str, dict] = {}
    for per_agent in json.loads(index.read_text()).values():
        cases.update(per_agent)
    return cases


def case_key(case_id: str) -> list[int]:
    return [int(p) for p in case_id.split(".")]


def passed(case: dict) -> bool:
    return case.get("behavior") in PASS and case.get("behaviorClose") in PASS


class Deadline:
    """One bound for the whole run, so a hang cannot eat CI's time budget."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self, want: float) -> float:
        return max(0.0, min(want, self.end - time.monotonic()))


class Proc:
    """A child process writing to a log file; stopped by terminate then kill."""

    def __init__(self, args: list[str], logfile: Path, stdout=None):
        self.logfile = logfile
        self.fh = open(logfile, "wb")
        self.p = subprocess.Popen(args, stdout=stdout or self.fh, stderr=self.fh,
                                  stdin=subprocess.DEVNULL, start_new_session=True)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.p.wait(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 5.0) -> int:
        if self.p.poll() is None:
            self.p.terminate()
            if self.wait(grace) is None:
                self.p.kill()
                self.p.wait()
        self.fh.close()
        return self.p.returncode

    def tail(self, n: int = 15) -> str:
        try:
            lines = self.logfile.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in lines[-n:])


class Result:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cases: dict[str, dict] = {}
        self.runs: list[tuple[str, int, int, float]] = []  # label, cases, passed, seconds
        self.errors: list[str] = []

    def add(self, label: str, cases: dict[str, dict], seconds: float) -> None:
        with self.lock:
            self.cases.update(cases)
            self.runs.append((label, len(cases), sum(map(passed, cases.values())), seconds))

    def error(self, msg: str) -> None:
        with self.lock:
            self.errors.append(msg)


def start_server(args, outdir: Path) -> tuple[Proc, int]:
    proc = Proc([str(args.server_bin), "--host", "127.0.0.1", "--port", "0",
                 "--threads", str(args.server_threads)],
                outdir / "autobahn_server.stderr", stdout=subprocess.PIPE)
    # readline() blocks: a watchdog kills a server that never says it listens.
    watchdog = threading.Timer(15, lambda: proc.p.poll() is None and proc.p.kill())
    watchdog.start()
    try:
        line = proc.p.stdout.readline()
    finally:
        watchdog.cancel()
    m = re.match(rb"listening (\d+)", line)
    if not m:
        rc = proc.stop()
        raise RuntimeError(f"autobahn_server did not start (rc={rc}, printed {line!r}):\n{proc.tail()}")
    return proc, int(m.group(1))


def run_server_role(args, res: Result, deadline: Deadline) -> None:
    role = "server"
    outroot = args.out / "server"
    shutil.rmtree(outroot, ignore_errors=True)
    outroot.mkdir(parents=True)
    try:
        server, port = start_server(args, outroot)
    except RuntimeError as e:
        res.error(str(e))
        log(role, str(e))
        return
    log(role, f"autobahn_server listening on 127.0.0.1:{port}")
    try:
        for groups in SERVER_RUNS:
            inc = includes_for(groups, args.include)
            if not inc:
                continue
            label = "group " + "+".join(groups)
            outdir = outroot / ("group" + "_".join(groups))
            cmd = kosoku_cmd() + ["-m", "fuzzingclient", f"127.0.0.1:{port}", "-o", str(outdir)]
            cmd += [a for x in inc for a in ("-i", x)] + [a for x in args.exclude for a in ("-x", x)]
            if PARALLEL_GROUPS & set(groups):
                cmd += ["-p", str(args.parallel)]
            t0 = time.monotonic()
            k = Proc(cmd, outroot / f"kosoku-{outdir.name}.log")
            if k.wait(deadline.left(run_timeout(groups, args.timeout_scale))) is None:
                res.error(f"server role: kosoku timed out on {label}")
                log(role, f"{label}: kosoku TIMED OUT, killed")
            k.stop()
            dt = time.monotonic() - t0
            cases = read_index(outdir)
            res.add(label, cases, dt)
            log(role, f"{label}: {sum(map(passed, cases.values()))}/{len(cases)} passed in {dt:.1f} s")
            if not cases:
                res.error(f"server role: no report for {label}")
                log(role, f"{label}: no report written; kosoku said:\n{k.tail()}")
            if server.p.poll() is not None:
                res.error(f"autobahn_server exited with {server.p.returncode} during {label}")
                log(role, f"autobahn_server EXITED rc={server.p.returncode}:\n{server.tail()}")
                break
    finally:
        rc = server.stop()
        # SIGTERM is how we stop it; anything else (a crash, a sanitizer) is news.
        if rc not in (0, -15):
            res.error(f"autobahn_server ended with {rc}")
            log(role, f"autobahn_server ended with {rc}:\n{server.tail()}")


def run_client_shard(args, prefixes: list[str], idx: int, res: Result, deadline: Deadline) -> None:
    role = "client"
    label = "cases " + ",".join(prefixes)
    inc = includes_for(prefixes, args.include)
    if not inc:
        return
    outroot = args.out / "client"
    outdir = outroot / f"shard{idx}"
    cmd = kosoku_cmd() + ["-m", "fuzzingserver", "127.0.0.1:0", "-o", str(outdir)]
    cmd += [a for x in inc for a in ("-i", x)] + [a for x in args.exclude for a in ("-x", x)]
    t0 = time.monotonic()
    k = Proc(cmd, outroot / f"kosoku-shard{idx}.log")
    port = None
    start_by = time.monotonic() + 30
    while time.monotonic() < start_by and k.p.poll() is None:
        m = re.search(r"listening on ws://[^\s]+:(\d+)", k.logfile.read_text(errors="replace"))
        if m:
            port = int(m.group(1))
            break
        time.sleep(0.1)
    if port is None:
        k.stop()
        res.error(f"client role: kosoku fuzzingserver did not start for {label}")
        log(role, f"{label}: fuzzingserver did not start:\n{k.tail()}")
        return
    c = Proc([str(args.client_bin), "--port", str(port), "--agent", "wirehub"],
             outroot / f"autobahn_client-shard{idx}.log")
    crc = c.wait(deadline.left(run_timeout(prefixes, args.timeout_scale)))
    if crc is None:
        res.error(f"client role: autobahn_client timed out on {label}")
        log(role, f"{label}: autobahn_client TIMED OUT, killed")
    c.stop()
    if crc not in (0, None):
        res.error(f"client role: autobahn_client exited {crc} on {label}")
        log(role, f"{label}: autobahn_client exited {crc}:\n{c.tail()}")
    # The suite writes its reports after /updateReports; give it a moment.
    if k.wait(deadline.left(60)) is None:
        log(role, f"{label}: fuzzingserver still running after the client ended; killed")
    k.stop()
    dt = time.monotonic() - t0
    cases = read_index(outdir)
    res.add(label, cases, dt)
    log(role, f"{label}: {sum(map(passed, cases.values()))}/{len(cases)} passed in {dt:.1f} s")
    if not cases:
        res.error(f"client role: no report for {label}")
        log(role, f"{label}: kosoku said:\n{k.tail()}")


def run_client_role(args, res: Result, deadline: Deadline) -> None:
    outroot = args.out / "client"
    shutil.rmtree(outroot, ignore_errors=True)
    outroot.mkdir(parents=True)
    shards = [s.split(",") for s in args.client_shards.split("/") if s]
    threads = [threading.Thread(target=run_client_shard, args=(args, s, i, res, deadline))
               for i, s in enumerate(shards)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def report(role: str, res: Result, full_run: bool) -> tuple[int, int]:
    failing = sorted((cid for cid, c in res.cases.items() if not passed(c)), key=case_key)
    npass = len(res.cases) - len(failing)
    missing = max(FULL_SUITE_CASES - len(res.cases), 0) if full_run else 0
    if not res.cases:
        missing = max(missing, 1)  # nothing reported fails even a selection
    print(f"\n== {role} role: {npass} passed, {len(failing)} failed, {len(res.cases)} reported"
          + (f", {missing} MISSING" if missing else ""))
    print("   kosoku runs (wall time):")
    for label, n, p, dt in res.runs:
        print(f"     {label:<44} {p:4d}/{n:<4d} passed {dt:8.1f} s")
    # Case durations summed per group: the time each group costs, even when
    # several groups share a run or run side by side.
    per_group: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    for cid, c in res.cases.items():
        g = per_group[cid.split(".")[0]]
        g[0] += 1
        g[1] += c.get("duration", 0) / 1000.0
    print("   per group (sum of case durations):")
    for g in sorted(per_group, key=int):
        n, secs = per_group[g]
        print(f"     group {g:<3} {n:4d} cases {secs:8.1f} s")
    for cid in failing:
        c = res.cases[cid]
        print(f"   FAIL {cid}: behavior={c.get('behavior')} behaviorClose={c.get('behaviorClose')}"
              f" remoteCloseCode={c.get('remoteCloseCode')}")
    for e in res.errors:
        print(f"   ERROR {e}")
    nfail = len(failing) + missing
    if res.errors and not nfail:
        nfail = 1  # e.g. the server crashed at exit: every case passed, the run did not
    return npass, nfail


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", type=Path, default=REPO / "build")
    ap.add_argument("--server-bin", type=Path, help="default: BUILD/tests/conformance/autobahn_server")
    ap.add_argument("--client-bin", type=Path, help="default: BUILD/tests/conformance/autobahn_client")
    ap.add_argument("--role", choices=["server", "client", "both"], default="both")
    ap.add_argument("-i", "--include", action="append", default=[], metavar="GLOB",
                    help="case id or `*` glob, repeatable (e.g. 1.* or 13.2.1)")
    ap.add_argument("-x", "--exclude", action="append", default=[], metavar="GLOB")
    ap.add_argument("-p", "--parallel", type=int, default=8,
                    help="server role: cases of groups 12 and 13 run at once (default 8)")
    ap.add_argument("--client-shards", default=DEFAULT_CLIENT_SHARDS,
                    help="client role: case-id prefixes per concurrent shard, shards split by '/' "
                         f"(default {DEFAULT_CLIENT_SHARDS})")
    ap.add_argument("--server-threads", type=int, default=1, help="autobahn_server --threads")
    ap.add_argument("--concurrent-roles", action="store_true",
                    help="run both roles at once (default: server role, then client role)")
    ap.add_argument("--timeout-scale", type=float, default=1.0,
                    help="multiply every per-run bound (e.g. 3 for a sanitizer build)")
    ap.add_argument("--deadline", type=float, default=1500,
                    help="seconds after which everything still running is killed (default 1500)")
    ap.add_argument("--out", type=Path, help="report directory (default: BUILD/autobahn)")
    args = ap.parse_args()
    args.server_bin = args.server_bin or args.build_dir / "tests/conformance/autobahn_server"
    args.client_bin = args.client_bin or args.build_dir / "tests/conformance/autobahn_client"
    args.out = (args.out or args.build_dir / "autobahn").resolve()
    args.out.mkdir(parents=True, exist_ok=True)

    roles = ["server", "client"] if args.role == "both" else [args.role]
    for r in roles:
        binary = args.server_bin if r == "server" else args.client_bin
        if not os.access(binary, os.X_OK):
            print(f"run_autobahn: {binary} is not built", file=sys.stderr)
            print("0 passed, 1 failed")
            return 1
    try:
        import kosoku  # noqa: F401
    except ImportError:
        print("run_autobahn: kosoku is not installed (scripts/install-deps.sh)", file=sys.stderr)
        print("0 passed, 1 failed")
        return 1

    results = {r: Result() for r in roles}
    runners = {"server": run_server_role, "client": run_client_role}
    deadline = Deadline(args.deadline)
    t0 = time.monotonic()
    if not args.concurrent_roles:
        for r in roles:
            runners[r](args, results[r], deadline)
    else:
        threads = [threading.Thread(target=runners[r], args=(args, results[r], deadline)) for r in roles]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elapsed = time.monotonic() - t0

    full_run = not args.include and not args.exclude
    total_pass = total_fail = 0
    for r in roles:
        p, f = report(r, results[r], full_run)
        total_pass += p
        total_fail += f
    print(f"\nautobahn: {elapsed:.0f} s; reports in {args.out}/{{server,client}}/*/index.html")
    print(f"{total_pass} passed, {total_fail} failed")
    return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main())
