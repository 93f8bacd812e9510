"""serve(): options, process_request, errors, pub/sub, broadcast, lifecycle."""
import asyncio
import logging
import urllib.error
import urllib.request

import pytest

import wirehub
from wirehub import ConnectionClosedError, InvalidStatus, PayloadTooBig, Response

from conftest import HOST, echo, uri


def http_get(port, path="/"):
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


async def test_port_connections_and_await_serve():
    server = await wirehub.serve(echo, HOST, 0)
    try:
        assert server.port > 0 and server.is_serving
        assert server.connections == set()
        async with wirehub.connect(uri(server)) as ws:
            await ws.send("x")
            await ws.recv()
            assert len(server.connections) == 1
            (conn,) = server.connections
            assert isinstance(conn, wirehub.ServerConnection) and conn.open
    finally:
        server.close()
        await server.wait_closed()
    assert not server.is_serving


async def test_serve_forever_returns_after_close_and_cancel_closes():
    server = await wirehub.serve(echo, HOST, 0)
    task = asyncio.ensure_future(server.serve_forever())
    await asyncio.sleep(0.01)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not server.is_serving
    with pytest.raises(OSError):
        await wirehub.connect(f"ws://{HOST}:{server.port}/", open_timeout=2)


async def test_address_in_use_is_an_os_error():
    async with wirehub.serve(echo, HOST, 0) as server:
        with pytest.raises(OSError, match="address already in use"):
            await wirehub.serve(echo, HOST, server.port)


async def test_process_request_rejects_with_status_and_body():
    def process_request(connection, request):
        if request.headers.get("Authorization") != "Bearer good":
            return connection.respond(403, "forbidden: bad token\n")
        return None

    async with wirehub.serve(echo, HOST, 0, process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as info:
            await wirehub.connect(uri(server), additional_headers={"Authorization": "Bearer bad"})
        assert info.value.response.status_code == 403
        assert info.value.response.body == b"forbidden: bad token\n"
        assert "403" in str(info.value)
        async with wirehub.connect(uri(server), additional_headers={"Authorization": "Bearer good"}) as ws:
            await ws.send("in")
            assert await ws.recv() == "in"


async def test_async_process_request_and_custom_headers():
    async def process_request(connection, request):
        await asyncio.sleep(0.01)
        if request.path == "/teapot":
            return Response(418, "", {"X-Why": "short and stout"}, b"tea")
        return None

    async with wirehub.serve(echo, HOST, 0, process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as info:
            await wirehub.connect(uri(server, "/teapot"))
        assert info.value.response.status_code == 418
        assert info.value.response.headers["x-why"] == "short and stout"
        async with wirehub.connect(uri(server, "/ok")):
            pass


async def test_a_client_that_leaves_while_process_request_waits_is_dropped():
    # The engine keeps reading while the handshake is decided; a client that
    # sent its FIN meanwhile is closed with nothing written (as ws does) and
    # its request counts as answered: no 500 is attempted on a dropped socket.
    decided = asyncio.Event()

    async def process_request(connection, request):
        await asyncio.sleep(0.2)
        decided.set()
        return None

    async with wirehub.serve(echo, HOST, 0, process_request=process_request) as server:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        await writer.drain()
        writer.write_eof()
        await asyncio.wait_for(decided.wait(), 5)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        assert len(server.connections) == 0
        async with wirehub.connect(uri(server)) as ws:
            await ws.send("still serving")
            assert await ws.recv() == "still serving"


async def test_process_request_serves_plain_http():
    page = "<html><body>hello page</body></html>"

    def process_request(connection, request):
        if request.path == "/":
            return Response(200, "OK", {"Content-Type": "text/html"}, page)
        return None

    async with wirehub.serve(echo, HOST, 0, process_request=process_request) as server:
        status, headers, body = await asyncio.to_thread(http_get, server.port, "/")
        assert status == 200 and body.decode() == page
        assert headers["Content-Type"] == "text/html"
        status, _, _ = await asyncio.to_thread(http_get, server.port, "/other")
        assert status == 426  # not a WebSocket upgrade and not answered
        async with wirehub.connect(uri(server, "/ws")) as ws:  # upgrades still work
            await ws.send("x")
            assert await ws.recv() == "x"


async def test_process_request_that_raises_gives_500_and_a_log_line(caplog):
    def process_request(connection, request):
        raise RuntimeError("boom in process_request")

    with caplog.at_level(logging.ERROR, logger="wirehub.server"):
        async with wirehub.serve(echo, HOST, 0, process_request=process_request) as server:
            with pytest.raises(InvalidStatus) as info:
                await wirehub.connect(uri(server))
            assert info.value.response.status_code == 500
    assert "process_request failed" in caplog.text


async def test_plain_http_without_process_request_gets_426():
    async with wirehub.serve(echo, HOST, 0) as server:
        status, _, _ = await asyncio.to_thread(http_get, server.port, "/")
        assert status == 426


async def test_handler_exception_closes_only_its_connection_with_1011(caplog):
    async def handler(ws):
        message = await ws.recv()
        if message == "crash":
            raise ValueError("handler bug")
        await ws.send("fine")
        await ws.wait_closed()

    with caplog.at_level(logging.ERROR, logger="wirehub.server"):
        async with wirehub.serve(handler, HOST, 0) as server:
            good = await wirehub.connect(uri(server))
            bad = await wirehub.connect(uri(server))
            await bad.send("crash")
            with pytest.raises(ConnectionClosedError) as info:
                await bad.recv()
            assert info.value.code == 1011
            await good.send("hello")
            assert await good.recv() == "fine"
            async with wirehub.connect(uri(server)) as third:  # still serving
                await third.send("x")
                assert await third.recv() == "fine"
            await good.close()
    assert "connection handler failed" in caplog.text
    assert "handler bug" in caplog.text


async def test_message_over_max_size_raises_payload_too_big():
    got = {}

    async def handler(ws):
        try:
            await ws.recv()
        except PayloadTooBig as exc:
            got["server"] = exc

    async with wirehub.serve(handler, HOST, 0, max_size=1000) as server:
        async with wirehub.connect(uri(server)) as ws:
            await ws.send(b"x" * 1001)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1009
        await asyncio.sleep(0.05)
    assert isinstance(got["server"], ConnectionClosedError)
    assert got["server"].code == 1009
    assert "message" in str(got["server"])


async def test_client_max_size_applies_to_received_messages():
    async def handler(ws):
        await ws.send("y" * 5000)
        await ws.wait_closed()

    async with wirehub.serve(handler, HOST, 0) as server:
        async with wirehub.connect(uri(server), max_size=100) as ws:
            with pytest.raises(PayloadTooBig):
                await ws.recv()


async def test_ping_timeout_closes_a_silent_peer_with_1011():
    closed = asyncio.get_running_loop().create_future()

    async def handler(ws):
        try:
            await ws.recv()
        except ConnectionClosedError as exc:
            closed.set_result(exc)

    async with wirehub.serve(handler, HOST, 0, ping_interval=0.1, ping_timeout=0.1) as server:
        # A raw client that completes the handshake, then never reads (so never pongs).
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        await writer.drain()
        assert b"101" in await reader.readuntil(b"\r\n\r\n")
        exc = await asyncio.wait_for(closed, 5)
        assert exc.code == 1011
        writer.close()


async def test_ping_interval_keeps_a_healthy_connection_open():
    async with wirehub.serve(echo, HOST, 0, ping_interval=0.05, ping_timeout=0.5) as server:
        async with wirehub.connect(uri(server), ping_interval=0.05, ping_timeout=0.5) as ws:
            await asyncio.sleep(0.3)
            await ws.send("still here")
            assert await ws.recv() == "still here"


async def test_max_connections_refuses_with_503():
    async with wirehub.serve(echo, HOST, 0, max_connections=1) as server:
        async with wirehub.connect(uri(server)):
            with pytest.raises(InvalidStatus) as info:
                await wirehub.connect(uri(server))
            assert info.value.response.status_code == 503


async def test_topics_subscribe_publish_unsubscribe():
    async def handler(ws):
        async for message in ws:
            verb, _, topic = message.partition(" ")
            if verb == "sub":
                ws.subscribe(topic)
            elif verb == "unsub":
                ws.unsubscribe(topic)
            await ws.send("ok")

    async with wirehub.serve(handler, HOST, 0) as server:
        a = await wirehub.connect(uri(server))
        b = await wirehub.connect(uri(server))
        for ws, cmd in ((a, "sub news"), (b, "sub news"), (b, "sub other")):
            await ws.send(cmd)
            assert await ws.recv() == "ok"
        assert server.publish("news", "headline") == 2
        assert await a.recv() == "headline" and await b.recv() == "headline"
        assert server.publish("other", b"\x01") == 1
        assert await b.recv() == b"\x01"
        await b.send("unsub news")
        assert await b.recv() == "ok"
        assert server.publish("news", "second") == 1
        assert await a.recv() == "second"
        assert server.publish("nobody", "x") == 0
        await a.close()
        await b.close()


async def test_broadcast_to_a_set_a_list_and_server_broadcast():
    by_name = {}

    async def handler(ws):
        by_name[await ws.recv()] = ws
        await ws.wait_closed()

    async with wirehub.serve(handler, HOST, 0) as server:
        clients = {}
        for name in "abc":
            clients[name] = await wirehub.connect(uri(server))
            await clients[name].send(name)
        while len(by_name) < 3:
            await asyncio.sleep(0.01)
        wirehub.broadcast(server.connections, "to all")
        for c in clients.values():
            assert await c.recv() == "to all"
        wirehub.broadcast([by_name["a"], by_name["b"]], b"to two")
        assert await clients["a"].recv() == b"to two"
        assert await clients["b"].recv() == b"to two"
        assert server.broadcast("server-wide") == 3
        for c in clients.values():
            assert await c.recv() == "server-wide"  # c got nothing in between
        with pytest.raises(TypeError):
            wirehub.broadcast(server.connections, 42)
        for c in clients.values():
            await c.close()


async def test_broadcast_skips_closed_connections():
    async def handler(ws):
        await ws.wait_closed()

    async with wirehub.serve(handler, HOST, 0) as server:
        a = await wirehub.connect(uri(server))
        b = await wirehub.connect(uri(server))
        while len(server.connections) < 2:
            await asyncio.sleep(0.01)
        conns = list(server.connections)
        await a.close()
        await asyncio.sleep(0.05)
        wirehub.broadcast(conns, "left over")  # one of them is closed: no error
        assert await b.recv() == "left over"
        await b.close()


async def test_invalid_answers_become_500_and_a_log_line(caplog):
    def process_request(connection, request):
        if request.path == "/bad-header":
            return Response(200, "", {"X-Bad": "line\r\nbreak"}, b"")
        return None

    def select(conn, offered):
        return "never-offered"

    with caplog.at_level(logging.ERROR, logger="wirehub.server"):
        async with wirehub.serve(echo, HOST, 0, process_request=process_request) as server:
            with pytest.raises(InvalidStatus) as info:
                await wirehub.connect(uri(server, "/bad-header"))
            assert info.value.response.status_code == 500
        async with wirehub.serve(echo, HOST, 0, select_subprotocol=select) as server:
            with pytest.raises(InvalidStatus) as info:
                await wirehub.connect(uri(server), subprotocols=["a"])
            assert info.value.response.status_code == 500
    assert "invalid response" in caplog.text
    assert "never-offered" in caplog.text


async def test_slow_process_request_survives_server_close():
    started = asyncio.Event()

    async def process_request(connection, request):
        started.set()
        await asyncio.sleep(0.2)
        return None

    server = await wirehub.serve(echo, HOST, 0, process_request=process_request)
    attempt = asyncio.ensure_future(wirehub.connect(uri(server)))
    await started.wait()
    server.close()
    await server.wait_closed()
    with pytest.raises((wirehub.InvalidHandshake, OSError)):
        await attempt


async def test_reuse_port_lets_two_servers_share_a_port():
    async with wirehub.serve(echo, HOST, 0, reuse_port=True) as first:
        async with wirehub.serve(echo, HOST, first.port, reuse_port=True) as second:
            assert second.port == first.port
            async with wirehub.connect(uri(first)) as ws:
                await ws.send("shared")
                assert await ws.recv() == "shared"


async def test_close_timeout_drops_a_peer_that_never_answers_the_close():
    async def handler(ws):
        await ws.close(1000, "bye")  # returns once the close_timeout expired

    async with wirehub.serve(handler, HOST, 0, close_timeout=0.2) as server:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        # never answer the close frame: the server gives up after close_timeout
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while server.connections or loop.time() - t0 < 0.05:
            await asyncio.sleep(0.02)
        assert loop.time() - t0 < 3
        writer.close()
