"""Issue 11 in the Python package: a failing process_request refuses the
client (fail closed), the engine's hardening limits are options of serve()
and connect() (asyncio and sync) with invalid values refused at once, and
unread messages are bounded by max_queue on the server and in both clients.
Loopback only; every wait is bounded."""
import asyncio
import logging
import socket
import threading
import time

import pytest

import wirehub
import wirehub.server
import wirehub.sync.client
from conftest import HOST, echo, uri


def raw_upgrade(port: int) -> bytes:
    """The server's whole answer to an upgrade request, up to its close."""
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


# --------------------------------------------------------- fail closed (5)
def _raises(connection, request):
    raise RuntimeError("hook bug")


async def _raises_async(connection, request):
    await asyncio.sleep(0)
    raise RuntimeError("hook bug")


def _returns_garbage(connection, request):
    return "not a Response"


@pytest.mark.parametrize("hook", [_raises, _raises_async, _returns_garbage])
async def test_a_failing_process_request_refuses_the_client_with_500_and_logs(hook, caplog):
    opened = []

    async def handler(ws):
        opened.append(ws)

    caplog.set_level(logging.ERROR, logger="wirehub.server")
    async with wirehub.serve(handler, HOST, 0, process_request=hook) as server:
        with pytest.raises(wirehub.InvalidStatus) as info:
            async with wirehub.connect(uri(server)):
                pass
        assert info.value.response.status_code == 500
        answer = await asyncio.get_running_loop().run_in_executor(None, raw_upgrade, server.port)
        assert answer.startswith(b"HTTP/1.1 500 ")
        assert b" 101 " not in answer
        assert not server.connections and not opened
    assert any("process_request" in r.getMessage() for r in caplog.records)


async def test_a_failing_select_subprotocol_refuses_the_client_with_500():
    def select(connection, offered):
        raise RuntimeError("hook bug")

    async with wirehub.serve(echo, HOST, 0, select_subprotocol=select) as server:
        with pytest.raises(wirehub.InvalidStatus) as info:
            async with wirehub.connect(uri(server), subprotocols=["chat"]):
                pass
        assert info.value.response.status_code == 500
        assert not server.connections


# -------------------------------------------------------- limits (options)
# Needs the engine's idle timeout (issue 11).
async def test_idle_timeout_closes_a_silent_connection_with_1001():
    async with wirehub.serve(echo, HOST, 0, idle_timeout=0.3) as server:
        async with wirehub.connect(uri(server)) as ws:
            t0 = time.monotonic()
            with pytest.raises(wirehub.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1001
            assert 0.25 <= time.monotonic() - t0 < 5


# Needs the engine's idle timeout (issue 11).
async def test_a_client_idle_timeout_closes_with_1001():
    async def silent(ws):
        await ws.wait_closed()

    async with wirehub.serve(silent, HOST, 0) as server:
        async with wirehub.connect(uri(server), idle_timeout=0.3) as ws:
            with pytest.raises(wirehub.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1001


# Needs the engine's idle timeout (issue 11).
async def test_the_sync_client_idle_timeout_closes_with_1001():
    async def silent(ws):
        await ws.wait_closed()

    async with wirehub.serve(silent, HOST, 0) as server:
        def run():
            with wirehub.sync.client.connect(uri(server), idle_timeout=0.3) as ws:
                with pytest.raises(wirehub.ConnectionClosed):
                    ws.recv(timeout=5)
                return ws.close_code

        assert await asyncio.get_running_loop().run_in_executor(None, run) == 1001


UPGRADE = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def _handshakes_left_open(port: int, n: int) -> list:
    """Opens n sockets that never send a request: which are still open."""
    socks = [socket.create_connection((HOST, port), timeout=5) for _ in range(n)]
    try:
        time.sleep(0.3)
        states = []
        for s in socks:
            s.settimeout(0.3)
            try:
                states.append("closed" if s.recv(1) == b"" else "data")
            except socket.timeout:
                states.append("open")
            except ConnectionResetError:
                states.append("closed")
        return states
    finally:
        for s in socks:
            s.close()


async def test_max_handshakes_closes_sockets_past_the_cap_at_once():
    async with wirehub.serve(echo, HOST, 0, max_handshakes=2) as server:
        states = await asyncio.get_running_loop().run_in_executor(None, _handshakes_left_open, server.port, 3)
        assert states == ["open", "open", "closed"]
        # Handshakes that finish free their slots.
        async with wirehub.connect(uri(server)) as ws:
            await ws.send("x")
            assert await asyncio.wait_for(ws.recv(), 5) == "x"


def _unfinished_frame(port: int):
    """Opens a connection, sends 3 of a frame's 10 payload bytes and
    returns (seconds until the server answered, what it sent)."""
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(UPGRADE)
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101")
        t0 = time.monotonic()
        s.sendall(bytes([0x81, 0x80 | 10, 1, 2, 3, 4]) + b"abc")
        answer = s.recv(256)
        return time.monotonic() - t0, answer


async def test_message_timeout_closes_an_unfinished_message_with_1008():
    async def handler(ws):
        await ws.wait_closed()

    async with wirehub.serve(handler, HOST, 0, message_timeout=0.3, compression=None) as server:
        took, answer = await asyncio.get_running_loop().run_in_executor(None, _unfinished_frame, server.port)
    assert answer[:1] == b"\x88" and int.from_bytes(answer[2:4], "big") == 1008, answer
    assert 0.25 <= took < 5, took


async def test_valid_limits_are_accepted_and_0_turns_them_off():
    for limits in ({"max_handshakes": 8, "idle_timeout": 30, "message_timeout": 5.5, "max_memory": 64 << 20},
                   {"max_handshakes": 0, "idle_timeout": 0, "message_timeout": 0, "max_memory": 0}):
        async with wirehub.serve(echo, HOST, 0, **limits) as server:
            async with wirehub.connect(uri(server), idle_timeout=limits["idle_timeout"],
                                       message_timeout=limits["message_timeout"]) as ws:
                await ws.send("hi")
                assert await asyncio.wait_for(ws.recv(), 5) == "hi"


@pytest.mark.parametrize("option,value,error", [
    ("max_handshakes", -1, ValueError),
    ("max_handshakes", 2 ** 31, ValueError),
    ("max_handshakes", 1.5, TypeError),
    ("idle_timeout", -0.3, ValueError),
    ("idle_timeout", float("nan"), ValueError),
    ("idle_timeout", "1", TypeError),
    ("message_timeout", -1, ValueError),
    ("message_timeout", 1e12, ValueError),
    ("max_memory", -1, ValueError),
    ("max_queue", 0, ValueError),
    ("max_queue", -4, ValueError),
    ("max_queue", (4, 8), ValueError),
])
def test_invalid_server_limits_raise_at_once_naming_the_option(option, value, error):
    with pytest.raises(error, match=option):
        wirehub.serve(echo, HOST, 0, **{option: value})


@pytest.mark.parametrize("option,value", [("idle_timeout", -1), ("message_timeout", -0.5), ("max_queue", (1, 2))])
def test_invalid_client_limits_raise_at_once_naming_the_option(option, value):
    with pytest.raises(ValueError, match=option):
        wirehub.connect("ws://127.0.0.1:9/", **{option: value})
    with pytest.raises(ValueError, match=option):
        wirehub.sync.client.connect("ws://127.0.0.1:9/", **{option: value})


# ---------------------------------------------------- bounded readers (6)
# 40 MB: far more than loopback's socket buffers (a few MB each way) hold.
N = 10000
SIZE = 4000
# Until the engine stops a paused connection's delivery in the middle of a
# read turn, a reader holds max_queue plus what that turn had already parsed
# (measured with 1 KB and 4 KB messages: 27..153 at the first pause, up to
# 582 after a resume). python-websockets' own bound is max_queue plus one
# read.
async def _server_not_reading(monkeypatch):
    """A peer sends N messages to a handler that reads none of them for
    a second: how deep its unread queue got then and overall."""
    peak = {}
    real = wirehub.server.ServerConnection._on_message

    def recording(self, message):  # a test hook on the queue's depth
        real(self, message)
        peak[id(self)] = max(peak.get(id(self), 0), len(self._messages))

    monkeypatch.setattr(wirehub.server.ServerConnection, "_on_message", recording)
    start_reading = asyncio.Event()
    got = []

    async def handler(ws):
        await start_reading.wait()
        async for m in ws:
            got.append(m)
            if len(got) == N:
                return

    async with wirehub.serve(handler, HOST, 0, max_queue=16) as server:
        def flood():
            with wirehub.sync.client.connect(uri(server)) as ws:
                for i in range(N):
                    ws.send(f"{i:05d}" + "x" * SIZE)  # blocks while the server does not read
                ws.recv(timeout=30)  # until the server closes when it has all

        sender = asyncio.get_running_loop().run_in_executor(None, flood)
        # A server that did not pause would have queued all of it by then.
        deadline = time.monotonic() + 5
        while not peak and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(1)
        held = max(peak.values(), default=0)
        start_reading.set()
        with pytest.raises(wirehub.ConnectionClosedOK):
            await asyncio.wait_for(sender, 40)
    assert [m[:5] for m in got] == [f"{i:05d}" for i in range(N)]
    return held, max(peak.values())


async def test_a_server_handler_that_does_not_read_pauses_the_peer_and_loses_nothing(monkeypatch):
    held, peak = await _server_not_reading(monkeypatch)
    assert 16 <= held < N // 4, f"{held} of {N} messages queued unread (max_queue=16)"
    assert peak < N // 4, f"{peak} of {N} messages queued unread after a resume"


async def test_max_queue_high_and_low_marks_pause_and_resume_reading():
    calls = []

    async def handler(ws):
        await ws.recv()
        for i in range(200):
            await ws.send(str(i))
        await ws.wait_closed()

    async with wirehub.serve(handler, HOST, 0) as server:
        async with wirehub.connect(uri(server), max_queue=(8, 2)) as ws:
            native = ws._native

            class Spy:
                def __getattr__(self, name):
                    attr = getattr(native, name)
                    if name in ("pause", "resume"):
                        def call(*a):
                            calls.append((name, len(ws._messages)))
                            return attr(*a)
                        return call
                    return attr

            ws._native = Spy()
            await ws.send("go")
            await asyncio.sleep(0.3)
            got = [await asyncio.wait_for(ws.recv(), 5) for _ in range(200)]
            ws._native = native
    assert got == [str(i) for i in range(200)]
    # The engine hears of the pause once the batch that filled the queue is
    # dispatched (nothing more is read before): with 8 or more waiting.
    assert calls[0][0] == "pause" and calls[0][1] >= 8, calls
    assert ("resume", 2) in calls


def _sync_client_not_reading():
    """A server writes N x 4 KB as fast as it may to a sync client that
    does not read for a second: how many messages its queue then held."""
    total = N
    payload = "y" * SIZE
    ready, done, stop = threading.Event(), threading.Event(), threading.Event()
    port = []

    async def handler(ws):
        for i in range(total):
            await ws.send(f"{i:05d}{payload}")  # waits while the client does not read
        done.set()
        await ws.wait_closed()

    async def serve_until_stopped():
        async with wirehub.serve(handler, HOST, 0, compression=None) as server:
            port.append(server.port)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.02)

    t = threading.Thread(target=lambda: asyncio.run(serve_until_stopped()))
    t.start()
    try:
        assert ready.wait(10)
        with wirehub.sync.client.connect(f"ws://{HOST}:{port[0]}/", max_queue=16) as ws:
            time.sleep(1)  # the client's I/O thread had every chance to read it all
            unread = ws._hub.unread
            assert not done.is_set()
            got = [ws.recv(timeout=10) for _ in range(total)]
            assert done.wait(10)
            assert ws._hub.unread == 0
    finally:
        stop.set()
        t.join(10)
    assert [m[:5] for m in got] == [f"{i:05d}" for i in range(total)]
    return unread, total


def test_the_sync_client_pauses_reading_when_max_queue_messages_wait_unread():
    # The rest stays in the sockets and the server's send buffer.
    unread, total = _sync_client_not_reading()
    assert 16 <= unread < total // 4, f"{unread} of {total} messages queued unread (max_queue=16)"


def test_the_sync_client_holds_at_most_max_queue_messages():
    unread, _ = _sync_client_not_reading()
    assert unread <= 16, f"{unread} messages queued unread (max_queue=16)"


async def _stream(ws):
    """Sends 40 MB until the peer closes."""
    try:
        for i in range(N):
            await ws.send(f"{i:05d}" + "s" * SIZE)
    except wirehub.ConnectionClosed:
        pass
    await ws.wait_closed()


async def test_closing_while_reading_is_paused_completes_the_handshake():
    # Paused at max_queue, the peer's close frame must still be read: else
    # close() waits for close_timeout and ends with 1006.
    async with wirehub.serve(_stream, HOST, 0, compression=None) as server:
        async with wirehub.connect(uri(server), max_queue=4) as ws:
            await asyncio.sleep(0.3)
            t0 = time.monotonic()
            await asyncio.wait_for(ws.close(), 5)
            assert ws.close_code == 1000
            assert time.monotonic() - t0 < 2


async def test_a_handler_that_returns_with_its_queue_full_closes_at_once():
    closed = []

    async def handler(ws):
        await asyncio.sleep(0.3)  # the client's messages pile up: reading pauses

    async with wirehub.serve(handler, HOST, 0, max_queue=4, compression=None) as server:
        async with wirehub.connect(uri(server)) as ws:
            t0 = time.monotonic()
            try:
                for i in range(N):
                    await ws.send("c" * SIZE)
            except wirehub.ConnectionClosed:
                pass
            await asyncio.wait_for(ws.wait_closed(), 5)
            closed.append((ws.close_code, time.monotonic() - t0))
    assert closed[0][0] == 1000 and closed[0][1] < 3, closed


async def test_the_sync_client_closes_while_reading_is_paused():
    async with wirehub.serve(_stream, HOST, 0, compression=None) as server:
        def run():
            ws = wirehub.sync.client.connect(uri(server), max_queue=4)
            time.sleep(0.3)
            t0 = time.monotonic()
            ws.close(timeout=5)
            return ws.close_code, time.monotonic() - t0

        code, took = await asyncio.get_running_loop().run_in_executor(None, run)
    assert code == 1000 and took < 2, (code, took)
