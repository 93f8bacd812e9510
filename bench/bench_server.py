#!/usr/bin/env python3
"""wirehub Python benchmark server, written the way a user would.

    python3 bench/bench_server.py echo|broadcast PORT [listener]

echo: every message goes back to its sender (``async for`` + ``await send``).
broadcast: every message goes to every open connection, sender included
(``wirehub.broadcast(server.connections, message)``).
listener: the same with the fastest style the API offers, a
``wirehub.Listener`` (callbacks, no task per connection, ``send_nowait``).
Listens on 127.0.0.1:PORT until SIGINT/SIGTERM (contract: shared/bench/README.md).
"""
import asyncio
import resource
import signal
import sys

import wirehub


async def echo(ws):
    async for message in ws:
        await ws.send(message)


class Echo(wirehub.Listener):
    def on_message(self, ws, message):
        ws.send_nowait(message)


class Fanout(wirehub.Listener):
    def on_message(self, ws, message):
        wirehub.broadcast(ws.server.connections, message)


async def main(mode: str, port: int, style: str) -> None:
    server = None

    async def fanout(ws):
        async for message in ws:
            wirehub.broadcast(server.connections, message)

    if style == "listener":
        handler = Echo() if mode == "echo" else Fanout()
    else:
        handler = echo if mode == "echo" else fanout
    # The anchors neither compress nor ping; neither do we.
    server = await wirehub.serve(handler, "127.0.0.1", port,
                                 compression=None, ping_interval=None, max_size=16 * 2 ** 20,
                                 backlog=4096)
    print(f"listening on ws://127.0.0.1:{server.port} ({mode})", flush=True)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    await stop
    server.close()


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in ("echo", "broadcast") or sys.argv[3:] not in ([], ["listener"]):
        sys.exit("usage: bench_server.py echo|broadcast PORT [listener]")
    # memory-5k holds 5000 sockets.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "async"))
