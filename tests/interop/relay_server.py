"""The interop room's second node, in Python (run_interop.py --cluster).

    relay_server.py PORT REDIS_URL NODE PEERS

One node of a room that spans servers written in different languages on one
Redis: relay_server.c is the other. This node's connections subscribe to
"room@NODE"; every message one of them sends is published whole to
"room@NODE" (this node) and to "room@PEER" for every other node, which only
Redis carries there. Prints "PORT <n>" once listening and, as each
connection closes, "STATS <name> <received> -1 0 0": the Python API does not
say whether a message arrived compressed (-1: unknown), and this relay sends
nothing fragmented. Runs until stdin closes.
"""
import asyncio
import sys

import wirehub


async def main(port: int, url: str, node: str, peers: list) -> None:
    room = f"room@{node}"
    remote = [f"room@{p}" for p in peers]
    server = None

    async def handler(ws):
        ws.subscribe(room)
        name, received = "?", 0
        try:
            async for message in ws:
                if received == 0:
                    head = message[:64] if isinstance(message, str) else message[:64].decode("utf-8", "replace")
                    if "|" in head:
                        name = head.split("|", 1)[0]
                received += 1
                server.publish(room, message)
                for topic in remote:
                    server.publish(topic, message)
        finally:
            print(f"STATS {name} {received} -1 0 0", flush=True)

    # 1 MiB messages from every client at once, as relay_server.c allows.
    async with wirehub.serve(handler, "127.0.0.1", port, max_size=4 << 20,
                             compression="deflate", broker=url, broker_prefix="interop:",
                             broker_max_pending=256 << 20) as server:
        print(f"PORT {server.port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: relay_server.py PORT REDIS_URL NODE PEERS")
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3], [p for p in sys.argv[4].split(",") if p]))
