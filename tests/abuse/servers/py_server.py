#!/usr/bin/env python3
"""The Python server of the abuse suite: wirehub.serve with its defaults.

    py_server.py [--port P] [--deflate] [--hook] [--message-timeout-ms MS]

Every message goes back to its sender, except one whose payload starts with
"broadcast:", which goes to every open connection (sender included) through
wirehub.broadcast (the engine frames it once). --hook installs a
process_request that refuses the path /refuse with 403 (and lets the rest
through); --deflate forces permessage-deflate on (it is already the default
here); --message-timeout-ms is passed as ``message_timeout`` (seconds) if this
wirehub has that option. Prints "listening on ws://127.0.0.1:PORT".
"""
import argparse
import asyncio
import inspect
import signal

import wirehub

BROADCAST = b"broadcast:"
BROADCAST_TEXT = BROADCAST.decode()


async def main(args: argparse.Namespace) -> None:
    server = None

    async def handler(ws):
        async for message in ws:
            # No encoded copy of a text message: it would be one more
            # message-sized object per connection.
            if message.startswith(BROADCAST_TEXT if isinstance(message, str) else BROADCAST):
                wirehub.broadcast(server.connections, message)
            else:
                await ws.send(message)
            # A coroutine's locals live until it returns: without this, every
            # idle connection keeps its last message (the C server's handler
            # keeps nothing between messages).
            del message

    def refuse(conn, request):
        if request.path == "/refuse":
            return conn.respond(403, "refused\n")
        return None

    kwargs = {}
    if args.hook:
        kwargs["process_request"] = refuse
    if args.deflate:
        kwargs["compression"] = "deflate"
    if args.message_timeout_ms is not None:
        # serve() forwards **kwargs to the Server, which names the option.
        if "message_timeout" in inspect.signature(wirehub.Server.__init__).parameters:
            kwargs["message_timeout"] = args.message_timeout_ms / 1000
        else:
            print("py_server: this wirehub has no message_timeout option; using its default", flush=True)
    server = await wirehub.serve(handler, "127.0.0.1", args.port, **kwargs)
    print(f"listening on ws://127.0.0.1:{server.port}", flush=True)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    await stop
    server.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--deflate", action="store_true")
    p.add_argument("--hook", action="store_true")
    p.add_argument("--message-timeout-ms", type=int)
    asyncio.run(main(p.parse_args()))
