#!/usr/bin/env python3
"""Tables of bench/cluster/run.sh from cluster_load's step lines (stdin).

  report.py --max-rate LABEL      the highest passing rate of run LABEL (0: none)
  report.py [--subs M] ...        the markdown report; its last line is
                                  `wirehub/socketio per-cpu = X.XX`

A step passes when p99 <= 50 ms, nothing was lost, the load generator's
publishers skipped at most 0.1 % of their sends (they skip when more than
20 ms behind), and at least 98 % of the expected deliveries arrived in the
window.
"""
import argparse
import os
import sys

P99_LIMIT_US = 50000


def parse(lines):
    steps, broker, floor = [], {}, None
    for line in lines:
        kind, _, rest = line.strip().partition(" ")
        kv = dict(f.split("=", 1) for f in rest.split() if "=" in f)
        if kind == "floor":
            floor = {k: float(v) for k, v in kv.items()}
        elif kind == "step":
            for k, v in kv.items():
                if k not in ("run", "proto"):
                    kv[k] = float(v)
            steps.append(kv)
        elif kind == "brokerstats":
            broker.setdefault(kv["run"], []).append(kv)
    return steps, broker, floor


def passes(s):
    return (0 <= s["p99_us"] <= P99_LIMIT_US and s["lost"] == 0
            and s["skipped"] <= 0.001 * s["pub_per_s"] * s["window_s"]
            and s["delivered_per_s"] >= 0.98 * s["expected_per_s"])


def best(steps, run):
    ok = [s for s in steps if s["run"] == run and passes(s)]
    return max(ok, key=lambda s: s["delivered_per_s"]) if ok else None


def one(steps, run):
    got = [s for s in steps if s["run"] == run]
    return got[-1] if got else None


def nodes_cpu(s):
    return sum(v for k, v in s.items() if k.startswith("cpu_node"))


def server_cpu(s):
    """CPU-seconds per second of the server side: nodes, plus Redis when a broker is set."""
    return nodes_cpu(s) + (s.get("cpu_redis", 0) if s["broker"] == 1 else 0)


def nodes_each(s):
    return "+".join(f"{s[k]:.2f}" for k in sorted(s) if k.startswith("cpu_node"))


def per_cpu(s):
    c = server_cpu(s)
    return s["delivered_per_s"] / c if c > 0 else 0.0


def others(s):
    """Cores busy with processes other than ours (the shared machine)."""
    ours = nodes_cpu(s) + s.get("cpu_redis", 0) + s["cpu_load"]
    return max(0.0, s["busy_pct"] / 100 * (os.cpu_count() or 1) - ours)


def ms(us):
    return "–" if us < 0 else f"{us / 1000:.2f}"


def k(x):
    return f"{x / 1000:.0f}k" if x < 1e6 else f"{x / 1e6:.2f}M"


NAMES = {
    "sio": "Socket.IO 4.8 + redis-adapter, 2 nodes",
    "wh": "wirehub + broker, 2 nodes",
    "local-nobroker": "wirehub, 1 node, no broker",
    "local-broker": "wirehub, 1 node, broker set (all local)",
}


def name(run):
    return NAMES.get(run.rsplit("-", 1)[0], run)


HEADER = ("| system | publishes/s | delivered/s | p50 ms | p99 ms | p99 cross-node ms | nodes CPU-s/s "
          "| Redis CPU-s/s | deliveries per server CPU-s | load gen CPU-s/s | machine busy % | others' cores |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


def row(s):
    redis = f"{s.get('cpu_redis', 0):.2f}" if s["broker"] == 1 else "–"
    return (f"| {name(s['run'])} | {s['pub_per_s']:.0f} | {k(s['delivered_per_s'])} | {ms(s['p50_us'])} "
            f"| {ms(s['p99_us'])} | {ms(s['p99_remote_us'])} | {nodes_each(s)} | {redis} "
            f"| {k(per_cpu(s))} | {s['cpu_load']:.2f} | {s['busy_pct']:.0f} | {others(s):.2f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-rate")
    ap.add_argument("--subs", type=int, default=200)
    ap.add_argument("--topics", type=int, default=1)
    ap.add_argument("--load-before", default="?")
    ap.add_argument("--redis-version", default="?")
    ap.add_argument("--socketio-version", default="?")
    a = ap.parse_args()
    steps, broker, floor = parse(sys.stdin)
    if a.max_rate:
        b = best(steps, a.max_rate)
        print(f"{b['rate']:.0f}" if b else "0")
        return

    print(f"{a.subs} subscribers in {a.topics} topic(s), 64-byte messages, one publisher per node; "
          f"{os.cpu_count()} CPUs shared by everything; Redis {a.redis_version}; "
          f"socket.io {a.socketio_version}; load average before: {a.load_before}.")
    print()
    print("Highest delivered rate with p99 <= 50 ms and no loss (short ramp steps):")
    print()
    print(HEADER)
    for run in ("sio-ramp", "wh-ramp", "local-nobroker-ramp", "local-broker-ramp"):
        b = best(steps, run)
        if b:
            print(row(b))
        else:
            print(f"| {name(run)} | none passed | | | | | | | | | | |")
    sio, wh = one(steps, "sio-fixed"), one(steps, "wh-fixed")
    print()
    if sio and wh:
        print(f"At one fixed rate, {wh['window_s']:.0f} s window (server CPU = nodes + Redis):")
        print()
        print(HEADER)
        print(row(sio))
        print(row(wh))
    ln, lb = one(steps, "local-nobroker-fixed"), one(steps, "local-broker-fixed")
    if ln and lb:
        print()
        print(f"Local mode, {lb['window_s']:.0f} s window: every subscriber on the publishing node:")
        print()
        print(HEADER)
        print(row(ln))
        print(row(lb))
    for run, stats in sorted(broker.items()):
        for st in stats:
            if int(st.get("dropped", 0)) or int(st.get("malformed", 0)):
                print(f"\nnote: {run}: broker dropped={st['dropped']} malformed={st['malformed']}")
    print()
    bn, bb = best(steps, "local-nobroker-ramp"), best(steps, "local-broker-ramp")
    if ln and lb:
        print(f"- local, broker set / no broker: deliveries per CPU-s of the node alone "
              f"{lb['delivered_per_s'] / nodes_cpu(lb) / (ln['delivered_per_s'] / nodes_cpu(ln)):.3f}, "
              f"of node + Redis {per_cpu(lb) / per_cpu(ln):.3f}"
              + (f"; highest delivered rate {bb['delivered_per_s'] / bn['delivered_per_s']:.3f}"
                 if bn and bb else "") + " (target >= 0.95)")
    if wh:
        print(f"- cross-node p99 at the fixed rate: {ms(wh['p99_remote_us'])} ms (target <= 2 ms); "
              f"p50 {ms(wh['p50_remote_us'])} ms")
    ratio = per_cpu(wh) / per_cpu(sio) if sio and wh and per_cpu(sio) > 0 else 0.0
    if floor and floor["deliveries_per_cpu_s"] > 0:
        f = floor["deliveries_per_cpu_s"]
        print(f"- kernel floor (`write_floor.c`: one 66-byte write() per delivery to {floor['sockets']:.0f} "
              f"loopback sockets, {floor['rate']:.0f} rounds/s, the reader in epoll as the load generator): "
              f"{floor['us_per_write']:.2f} µs of CPU per write, so at most {k(f)} deliveries per CPU-s "
              f"for a server that writes each message as it comes")
        if sio and wh and per_cpu(sio) > 0:
            print(f"- at the fixed rate, wirehub's server side (nodes + Redis) reaches {per_cpu(wh) / f:.0%} of "
                  f"that floor and Socket.IO's {per_cpu(sio) / f:.0%}; 10x Socket.IO would be "
                  f"{k(10 * per_cpu(sio))} deliveries per CPU-s, {10 * per_cpu(sio) / f:.1f}x the floor")
    print()
    print(f"wirehub/socketio per-cpu = {ratio:.2f}")


if __name__ == "__main__":
    main()
