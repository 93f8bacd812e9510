"""The interop client on PyPI's `websockets` (see ../README.md for the script).

    python websockets_client.py URL NAME COMPRESS

With WIREHUB_INTEROP_PY=wirehub the same script runs on wirehub's Python
package, whose asyncio API has the same shape.
"""
import asyncio
import hashlib
import os
import sys

if os.environ.get("WIREHUB_INTEROP_PY") == "wirehub":
    from wirehub import connect
else:
    from websockets.asyncio.client import connect

MIB = 1024 * 1024


def digest(what: str, text: bool, data: bytes) -> None:
    print(f"{what} {'T' if text else 'B'} {len(data)} {hashlib.sha256(data).hexdigest()}", flush=True)


def messages(name: str):
    yield f"{name}|1|hello from {name} \u2713"
    yield f"{name}|2|".encode() + bytes(range(64))
    p3 = f"{name}|3|"
    yield p3 + ("abcdefghijklmnopqrstuvwxyz" * (MIB // 26 + 1))[: MIB - len(p3.encode())]
    p4 = f"{name}|4|".encode()
    yield p4 + bytes((i * 31 + 7) & 255 for i in range(MIB - len(p4)))


async def main(url: str, name: str, compress: bool) -> int:
    async with connect(url, compression="deflate" if compress else None, max_size=4 * MIB) as ws:
        if hasattr(ws, "extensions"):  # wirehub: what the engine negotiated
            ext = ws.extensions or "-"
        else:
            ext = ws.response.headers.get("Sec-WebSocket-Extensions") or "-"
        print(f"EXTENSIONS {ext}\nREADY", flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if not line.startswith("GO "):
            print("websockets_client: expected GO <total>", file=sys.stderr)
            return 1
        total = int(line.split()[1])

        async def receive() -> None:
            for _ in range(total):
                m = await ws.recv()
                digest("RECV", isinstance(m, str), m.encode() if isinstance(m, str) else m)

        receiver = asyncio.create_task(receive())
        for m in messages(name):
            await ws.send(m)
            digest("SENT", isinstance(m, str), m.encode() if isinstance(m, str) else m)
        parts = [f"{name}|5|", "part two, ", "part three \u2713"]
        await ws.send(parts)  # an iterable is sent as fragments
        digest("SENT", True, "".join(parts).encode())
        await receiver
        await ws.close(1000, "done")
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] == "1")))
