"""Interop with the PyPI `websockets` library, both directions, with and without compression."""
import asyncio

import pytest
import websockets
import websockets.exceptions

import wirehub
from wirehub.sync.client import connect as wirehub_sync_connect

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


@pytest.mark.parametrize("status_line", ["403 Go Away", "403 ", "499 Client Closed Request"])
async def test_a_refusals_reason_phrase_is_the_servers_as_websockets_gives_it(status_line):
    # A raw server answers each upgrade with `status_line`; python-websockets'
    # client and wirehub's (both APIs) must show the same Response.
    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status_line}\r\nContent-Length: 2\r\n\r\nno".encode())
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(answer, HOST, 0)
    url = f"ws://{HOST}:{srv.sockets[0].getsockname()[1]}/"
    seen = []
    try:
        with pytest.raises(websockets.exceptions.InvalidStatus) as theirs:
            await websockets.connect(url)
        seen.append(theirs.value.response)
        with pytest.raises(wirehub.InvalidStatus) as ours:
            await wirehub.connect(url)
        seen.append(ours.value.response)
        with pytest.raises(wirehub.InvalidStatus) as ours_sync:
            await asyncio.to_thread(wirehub_sync_connect, url)
        seen.append(ours_sync.value.response)
    finally:
        srv.close()
    shapes = [(r.status_code, r.reason_phrase, bytes(r.body)) for r in seen]
    assert shapes[1:] == [shapes[0], shapes[0]], shapes
    assert shapes[0][1] == status_line[4:]


async def test_the_101s_reason_phrase_is_the_servers_as_websockets_gives_it():
    # python-websockets' server answers "101 Switching Protocols"; a raw one
    # something else: the client's response shows what was sent.
    import base64
    import hashlib

    async def answer(reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        key = [l.split(":", 1)[1].strip() for l in head.split("\r\n") if l.lower().startswith("sec-websocket-key:")][0]
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        writer.write(f"HTTP/1.1 101 Go Ahead\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n".encode())
        await writer.drain()
        await reader.read(1)  # the client's close frame: drop the connection, no wait for a close timeout
        writer.close()

    srv = await asyncio.start_server(answer, HOST, 0)
    url = f"ws://{HOST}:{srv.sockets[0].getsockname()[1]}/"
    try:
        async with websockets.connect(url) as theirs:
            want = theirs.response.reason_phrase
        async with wirehub.connect(url) as ours:
            got = ours.response.reason_phrase
        sync = await asyncio.to_thread(wirehub_sync_connect, url)
        got_sync = sync.response.reason_phrase
        await asyncio.to_thread(sync.close)  # off the loop: the raw server runs on it
    finally:
        srv.close()
    assert (want, got, got_sync) == ("Go Ahead", "Go Ahead", "Go Ahead")
