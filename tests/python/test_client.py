"""connect(): URIs, connection errors, timeouts, reconnection, the sync client."""
import asyncio
import logging
import socket
import threading

import pytest

import wirehub
from wirehub import ConnectionClosedOK, InvalidHandshake, InvalidStatus, InvalidURI
from wirehub.sync.client import connect as sync_connect

from conftest import HOST, echo, uri


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("bad", ["http://127.0.0.1/", "ws://", "ws://host:99999/", "ws://h/#frag",
                                 "not a uri", "ws://user@h/", "ws://127.0.0.1:0/"])
async def test_malformed_uri_raises_invalid_uri(bad):
    with pytest.raises(InvalidURI) as info:
        await wirehub.connect(bad)
    assert bad in str(info.value) or repr(bad) in str(info.value)


async def test_response_holds_the_servers_101_and_its_headers():
    async with wirehub.serve(echo, HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            assert ws.response.status_code == 101
            assert ws.response.headers["Upgrade"].lower() == "websocket"
            assert ws.response.headers["Server"].startswith("wirehub/")
            assert len(ws.response.headers["Sec-WebSocket-Accept"]) == 28


def test_parse_uri_defaults():
    u = wirehub.parse_uri("wss://Example.com/chat?room=1")
    assert (u.secure, u.host, u.port, u.resource_name) == (True, "example.com", 443, "/chat?room=1")
    u = wirehub.parse_uri("ws://[::1]:9000")
    assert (u.host, u.port, u.path, u.url()) == ("::1", 9000, "/", "ws://[::1]:9000/")


async def test_unreachable_host_raises_connection_refused(caplog):
    port = free_port()
    with pytest.raises(ConnectionRefusedError, match="connection refused"):
        await wirehub.connect(f"ws://{HOST}:{port}/")


async def test_refused_handshake_carries_its_status():
    def process_request(connection, request):
        return connection.respond(404, "no such room")

    async with wirehub.serve(echo, HOST, 0, process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as info:
            await wirehub.connect(uri(server))
    assert info.value.response.status_code == 404
    assert info.value.response.body == b"no such room"
    assert isinstance(info.value, InvalidHandshake)


async def test_open_timeout_against_a_server_that_never_answers():
    # A TCP listener that accepts and stays silent.
    srv = await asyncio.start_server(lambda r, w: None, HOST, 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TimeoutError, match="timed out"):
            await wirehub.connect(f"ws://{HOST}:{port}/", open_timeout=0.2)
    finally:
        srv.close()


async def test_not_a_websocket_server_is_an_invalid_handshake():
    async def garbage(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(garbage, HOST, 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        with pytest.raises(InvalidHandshake) as info:
            await wirehub.connect(f"ws://{HOST}:{port}/")
        assert "200" in str(info.value)
    finally:
        srv.close()


async def test_async_for_connect_reconnects_with_backoff():
    port = free_port()
    attempts = []

    async def start_later():
        await asyncio.sleep(0.3)
        return await wirehub.serve(echo, HOST, port)

    starter = asyncio.ensure_future(start_later())
    got = []
    async for ws in wirehub.connect(f"ws://{HOST}:{port}/", backoff_initial=0.05, backoff_min=0.05,
                                    backoff_max=0.2):
        attempts.append(ws)
        await ws.send(f"try {len(attempts)}")
        got.append(await ws.recv())
        if len(attempts) == 2:
            break
        await ws.close()
    server = await starter
    server.close()
    await server.wait_closed()
    assert got == ["try 1", "try 2"]


async def test_async_for_connect_backs_off_exponentially_up_to_backoff_max():
    # A server that answers every upgrade with 503 (a retryable refusal) and
    # notes when each attempt arrives: the gaps between attempts are the
    # delays. As documented (python-websockets' formula): the first delay is
    # random in [0, backoff_initial), then each is the previous times
    # backoff_factor, at least backoff_min and at most backoff_max.
    arrivals = []

    async def refuse(reader, writer):
        arrivals.append(asyncio.get_running_loop().time())
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    initial, low, factor, high = 0.1, 0.1, 2.0, 0.4

    async def keep_trying():
        async for _ in wirehub.connect(f"ws://{HOST}:{port}/", backoff_initial=initial, backoff_min=low,
                                       backoff_factor=factor, backoff_max=high):
            pytest.fail("a 503 must not open")

    task = asyncio.ensure_future(keep_trying())
    try:
        for _ in range(500):  # at most 5 s
            if len(arrivals) >= 7 or task.done():
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.close()
        await server.wait_closed()
    assert len(arrivals) >= 7, f"only {len(arrivals)} attempts in 5 s"
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    # Lower bounds are exact (a sleep never ends early); upper ones allow for
    # a loaded machine. d0 < 0.1; d1 in [0.1, 0.2); d2 in [0.2, 0.4); then 0.4.
    slack = 0.15
    bounds = [(0.0, initial), (low, 2 * initial), (2 * low, high), (high, high), (high, high), (high, high)]
    for k, (gap, (lo, hi)) in enumerate(zip(gaps, bounds)):
        assert lo <= gap <= hi + slack, f"delay {k} was {gap:.3f} s, documented [{lo}, {hi}]: {gaps}"


async def test_async_for_connect_does_not_retry_a_4xx():
    def process_request(connection, request):
        return connection.respond(401, "who are you")

    async with wirehub.serve(echo, HOST, 0, process_request=process_request) as server:
        with pytest.raises(InvalidStatus):
            async for ws in wirehub.connect(uri(server), backoff_initial=0.01):
                pytest.fail("must not connect")


async def test_basic_auth_from_the_uri():
    seen = {}

    async def handler(ws):
        seen["auth"] = ws.request.headers.get("Authorization")

    async with wirehub.serve(handler, HOST, 0) as server:
        async with wirehub.connect(f"ws://alice:s3cret@{HOST}:{server.port}/") as ws:
            await ws.wait_closed()
    assert seen["auth"] == "Basic YWxpY2U6czNjcmV0"


async def test_origin_and_user_agent_headers():
    seen = {}

    async def handler(ws):
        seen.update(ws.request.headers)

    async with wirehub.serve(handler, HOST, 0) as server:
        async with wirehub.connect(uri(server), origin="http://example.test", user_agent_header="tester/1") as ws:
            await ws.wait_closed()
    lower = {k.lower(): v for k, v in seen.items()}
    assert lower["origin"] == "http://example.test"
    assert lower["user-agent"] == "tester/1"


def test_sync_client_send_recv_iterate_close():
    ready = threading.Event()
    box = {}

    async def run_server():
        async with wirehub.serve(echo, HOST, 0) as server:
            box["port"] = server.port
            box["stop"] = asyncio.get_running_loop().create_future()
            ready.set()
            await box["stop"]

    t = threading.Thread(target=lambda: asyncio.run(run_server()))
    t.start()
    try:
        assert ready.wait(10)
        with sync_connect(f"ws://{HOST}:{box['port']}/") as ws:
            ws.send("sync hello")
            assert ws.recv(timeout=5) == "sync hello"
            ws.send(b"bytes")
            assert ws.recv(timeout=5) == b"bytes"
            ws.send(["frag", "ments"])
            assert ws.recv(timeout=5) == "fragments"
            assert ws.ping(b"p", timeout=5)
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.05)
            assert ws.remote_address == (HOST, box["port"])
            assert ws.local_address[0] == HOST
            assert ws.local_address[1] not in (0, box["port"])
            assert ws.response.status_code == 101
            assert ws.response.headers["Server"].startswith("wirehub/")
        assert ws.close_code == 1000
        with pytest.raises(ConnectionClosedOK):
            ws.send("after close")
        with pytest.raises(InvalidURI):
            sync_connect("http://nope/")
        with pytest.raises(ConnectionRefusedError):
            sync_connect(f"ws://{HOST}:{free_port()}/")
    finally:
        loop_stop = box.get("stop")
        if loop_stop is not None:
            loop_stop.get_loop().call_soon_threadsafe(loop_stop.set_result, None)
        t.join(10)


def test_sync_client_iteration_stops_on_normal_close():
    ready = threading.Event()
    box = {}

    async def handler(ws):
        for i in range(3):
            await ws.send(str(i))

    async def run_server():
        async with wirehub.serve(handler, HOST, 0) as server:
            box["port"] = server.port
            box["stop"] = asyncio.get_running_loop().create_future()
            ready.set()
            await box["stop"]

    t = threading.Thread(target=lambda: asyncio.run(run_server()))
    t.start()
    try:
        assert ready.wait(10)
        ws = sync_connect(f"ws://{HOST}:{box['port']}/")
        assert list(ws) == ["0", "1", "2"]
        ws.close()
    finally:
        box["stop"].get_loop().call_soon_threadsafe(box["stop"].set_result, None)
        t.join(10)


async def test_bad_input_leaves_a_log_line(caplog):
    caplog.set_level(logging.INFO, logger="wirehub")
    with pytest.raises(InvalidURI):
        await wirehub.connect("ftp://nope/")
    assert "isn't a valid WebSocket URI" in caplog.text
    caplog.clear()
    with pytest.raises(ConnectionRefusedError):
        await wirehub.connect(f"ws://{HOST}:{free_port()}/")
    assert "connection refused" in caplog.text
    caplog.clear()

    def process_request(connection, request):
        return connection.respond(403, "no")

    async with wirehub.serve(echo, HOST, 0, process_request=process_request) as server:
        with pytest.raises(InvalidStatus):
            await wirehub.connect(uri(server))
    assert "HTTP 403" in caplog.text and "rejected upgrade" in caplog.text
    caplog.clear()
    async with wirehub.serve(echo, HOST, 0, max_size=10) as server:
        ws = await wirehub.connect(uri(server))
        await ws.send("x" * 11)
        with pytest.raises(wirehub.PayloadTooBig):
            await ws.recv()
        assert "1009" in caplog.text
        caplog.clear()
        with pytest.raises(wirehub.ConnectionClosed):
            await ws.send("late")
        assert "cannot send" in caplog.text
