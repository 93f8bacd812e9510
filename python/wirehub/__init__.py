"""wirehub: asyncio WebSockets on a native engine, with python-websockets' API.

Server::

    import asyncio, wirehub

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        async with wirehub.serve(echo, "127.0.0.1", 8765) as server:
            await server.serve_forever()

    asyncio.run(main())

Client::

    async with wirehub.connect("ws://127.0.0.1:8765/") as ws:
        await ws.send("hello")
        print(await ws.recv())

Callback style, without a task per connection (the fastest)::

    class Echo(wirehub.Listener):
        def on_message(self, ws, message):
            ws.send_nowait(message)

    server = await wirehub.serve(Echo(), "127.0.0.1", 8765)

The engine (WebSocket protocol, TLS, compression) runs on the event loop's
own thread, and its events reach Python there in batches.
"""
from __future__ import annotations

from . import _wirehub
from ._tls import SSLContext
from .broker import BrokerStats
from .client import ClientConnection, connect
from .connection import Connection, Data, State
from .exceptions import (BrokerError, ConcurrencyError, ConnectionClosed, ConnectionClosedError, ConnectionClosedOK,
                         InvalidHandshake, InvalidStatus, InvalidURI, PayloadTooBig, WebSocketException)
from .frames import CloseCode
from .http import Headers, Request, Response
from .server import Listener, Server, ServerConnection, broadcast, serve
from .uri import parse_uri

__version__ = "0.1.0"
engine_version: str = _wirehub.version()
"""Version of the native engine linked into the extension."""

__all__ = [
    "serve", "Server", "ServerConnection", "Listener", "connect", "ClientConnection", "Connection", "State", "Data",
    "broadcast", "Headers", "Request", "Response", "SSLContext", "parse_uri", "CloseCode",
    "WebSocketException", "ConnectionClosed", "ConnectionClosedOK", "ConnectionClosedError",
    "InvalidURI", "InvalidHandshake", "InvalidStatus", "PayloadTooBig", "ConcurrencyError",
    "BrokerError", "BrokerStats",
]
