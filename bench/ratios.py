#!/usr/bin/env python3
"""Ratios of each wirehub server against the anchor its issue names, from
wsbench's JSON summary line (stdin): a markdown table for bench/RESULTS.md.

    tail -n 1 wsbench-output | python3 bench/ratios.py

For lower-better figures (latency, memory) a ratio below 1 is better.
"""
import json
import sys

# server -> the anchors (or server) its targets are stated against
AGAINST = {
    "c": ["ws"],
    "python": ["picows", "websockets"],
    "python-listener": ["picows", "websockets"],
    "node": ["ws"],
    "rust": ["c"],
    "go": ["c"],
}


def main() -> None:
    summary = json.loads(sys.stdin.read().strip().splitlines()[-1])
    pairs = [(s, a) for s, anchors in AGAINST.items() for a in anchors]
    scenarios = list(summary)
    present = [(s, a) for s, a in pairs
               if any(s in summary[sc]["median"] and a in summary[sc]["median"] for sc in scenarios)]
    print("| scenario | " + " | ".join(f"{s}/{a}" for s, a in present) + " |")
    print("|---|" + "---|" * len(present))
    for sc in scenarios:
        med = summary[sc]["median"]
        cells = []
        for s, a in present:
            cells.append(f"{med[s] / med[a]:.2f}" if med.get(a) and s in med else "")
        better = summary[sc].get("better", "")
        print(f"| {sc} ({better} is better) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
