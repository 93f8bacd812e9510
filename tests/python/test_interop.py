"""Interop with the PyPI `websockets` library, both directions, with and without compression."""
import asyncio

import pytest
import websockets

import wirehub

from conftest import HOST, echo, uri

MESSAGES = ["hello", "é" * 3000, b"\x00\x01" * 5000, "", b""]


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_websockets_client_against_our_server(compression):
    async with wirehub.serve(echo, HOST, 0, compression=compression, subprotocols=["chat"]) as server:
        async with websockets.connect(uri(server, "/interop"), compression=compression,
                                      subprotocols=["chat"], max_size=None) as ws:
            assert ws.subprotocol == "chat"
            for m in MESSAGES:
                await ws.send(m)
                assert await ws.recv() == m
            await ws.send(["frag", "mented"])
            assert await ws.recv() == "fragmented"
            pong = await ws.ping(b"hi")
            await asyncio.wait_for(pong, 5)
            ext = ws.response.headers.get("Sec-WebSocket-Extensions")
            if compression:
                assert "permessage-deflate" in ext
            else:
                assert ext is None
            await ws.close(4001, "interop done")
            assert ws.close_code == 4001


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_our_client_against_websockets_server(compression):
    async def ws_echo(ws):
        async for m in ws:
            await ws.send(m)

    async with websockets.serve(ws_echo, HOST, 0, compression=compression, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with wirehub.connect(f"ws://{HOST}:{port}/", compression=compression) as ws:
            if compression:
                assert "permessage-deflate" in ws.extensions
            else:
                assert ws.extensions == ""
            for m in MESSAGES:
                await ws.send(m)
                assert await ws.recv() == m
            await ws.send([b"a", b"b"])
            assert await ws.recv() == b"ab"
            latency = await (await ws.ping())
            assert latency >= 0
        assert ws.close_code == 1000


async def test_websockets_server_refusal_is_invalid_status():
    async def handler(ws):
        pass

    def process_request(connection, request):
        return connection.respond(403, "nope")

    async with websockets.serve(handler, HOST, 0, process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(wirehub.InvalidStatus) as info:
            await wirehub.connect(f"ws://{HOST}:{port}/")
        assert info.value.response.status_code == 403


async def test_websockets_client_sees_our_handler_error_as_1011():
    async def handler(ws):
        raise RuntimeError("boom")

    async with wirehub.serve(handler, HOST, 0) as server:
        async with websockets.connect(uri(server)) as ws:
            with pytest.raises(websockets.ConnectionClosedError):
                await ws.recv()
            assert ws.close_code == 1011
