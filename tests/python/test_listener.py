"""serve(Listener()): callback-style handling, no task per connection."""
import asyncio
import logging

import pytest

import wirehub
from wirehub import ConcurrencyError, ConnectionClosed, ConnectionClosedError, ConnectionClosedOK

from conftest import HOST, uri


class Recorder(wirehub.Listener):
    """Echoes every message and records what it was told, in order."""

    def __init__(self):
        self.calls = []
        self.closed = asyncio.Event()

    def on_open(self, ws):
        self.calls.append(("open", ws.open, ws.request.path))

    def on_message(self, ws, message):
        self.calls.append(("message", message))
        assert ws.send_nowait(message) is True

    def on_close(self, ws):
        self.calls.append(("close", ws.close_code))
        self.closed.set()


async def test_a_listener_is_told_open_each_message_in_order_and_close():
    rec = Recorder()
    async with wirehub.serve(rec, HOST, 0) as server:
        async with wirehub.connect(uri(server) + "chat?x=1") as ws:
            for m in ["one", b"\x00two", "three"]:
                await ws.send(m)
            assert [await ws.recv() for _ in range(3)] == ["one", b"\x00two", "three"]
            assert len(server.connections) == 1
        await asyncio.wait_for(rec.closed.wait(), 5)
        assert server.connections == set()
    assert rec.calls == [("open", True, "/chat?x=1"), ("message", "one"), ("message", b"\x00two"),
                         ("message", "three"), ("close", 1000)]


async def test_a_listener_without_overrides_accepts_and_ignores_messages():
    async with wirehub.serve(wirehub.Listener(), HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            await ws.send("ignored")
            pong = await ws.ping()
            await asyncio.wait_for(pong, 5)  # the connection is alive and served


async def test_send_nowait_text_flag_and_a_false_return_above_write_limit_lose_nothing():
    results = []

    class Flood(wirehub.Listener):
        def on_message(self, ws, message):
            ws.send_nowait(b"caf\xc3\xa9", text=True)  # bytes as a text frame
            ws.send_nowait("bin", text=False)          # str as a binary frame
            # Sends made in a callback leave together after it: with a 1 KiB
            # write limit, the buffer is above it after the first big one.
            for i in range(50):
                results.append(ws.send_nowait(bytes([i]) * 10000))

    async with wirehub.serve(Flood(), HOST, 0, write_limit=1024) as server:
        async with wirehub.connect(uri(server)) as ws:
            await ws.send("go")
            assert await ws.recv() == "café"
            assert await ws.recv() == b"bin"
            got = [await ws.recv() for _ in range(50)]
    assert got == [bytes([i]) * 10000 for i in range(50)]
    assert False in results and all(isinstance(r, bool) for r in results)


async def test_a_failing_callback_closes_only_its_connection_with_1011(caplog):
    class Picky(wirehub.Listener):
        def on_message(self, ws, message):
            if message == "crash":
                raise ValueError("listener bug")
            ws.send_nowait("fine")

    with caplog.at_level(logging.ERROR, logger="wirehub.server"):
        async with wirehub.serve(Picky(), HOST, 0) as server:
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
    assert "Listener.on_message failed: closing with 1011" in caplog.text
    assert "listener bug" in caplog.text


async def test_a_failing_on_open_closes_with_1011_and_on_close_errors_are_logged(caplog):
    class Broken(wirehub.Listener):
        def on_open(self, ws):
            raise RuntimeError("open bug")

        def on_close(self, ws):
            raise RuntimeError("close bug")

    with caplog.at_level(logging.ERROR, logger="wirehub.server"):
        async with wirehub.serve(Broken(), HOST, 0) as server:
            async with wirehub.connect(uri(server)) as ws:
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.code == 1011
            async with wirehub.connect(uri(server)) as ws:  # still serving
                with pytest.raises(ConnectionClosedError):
                    await ws.recv()
    assert "Listener.on_open failed" in caplog.text and "open bug" in caplog.text
    assert "Listener.on_close failed" in caplog.text and "close bug" in caplog.text


async def test_recv_on_a_listener_connection_is_a_concurrency_error():
    errors = asyncio.Queue()

    class TriesToRecv(wirehub.Listener):
        def on_open(self, ws):
            async def try_both():
                for attempt in (ws.recv(), ws.__anext__()):
                    try:
                        await attempt
                    except ConcurrencyError as exc:
                        errors.put_nowait(str(exc))
            asyncio.ensure_future(try_both())

    async with wirehub.serve(TriesToRecv(), HOST, 0) as server:
        async with wirehub.connect(uri(server)):
            first = await asyncio.wait_for(errors.get(), 5)
            second = await asyncio.wait_for(errors.get(), 5)
    assert "Listener's on_message" in first and "Listener's on_message" in second


async def test_send_nowait_errors_closed_connection_and_bad_types():
    conns = []

    class Keep(wirehub.Listener):
        def on_open(self, ws):
            conns.append(ws)

    async with wirehub.serve(Keep(), HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            await ws.ping()
            (conn,) = conns
            with pytest.raises(TypeError, match="str or bytes-like"):
                conn.send_nowait({"not": "data"})
            with pytest.raises(TypeError):
                conn.send_nowait(42)
        await conn.wait_closed()
        with pytest.raises(ConnectionClosedOK):
            conn.send_nowait("too late")
        with pytest.raises(ConnectionClosed):
            conn.send_nowait(b"too late")


async def test_a_listener_broadcasts_and_server_close_reaches_on_close():
    closed = []

    class Room(wirehub.Listener):
        def on_message(self, ws, message):
            wirehub.broadcast(ws.server.connections, message)

        def on_close(self, ws):
            closed.append(ws.close_code)

    server = await wirehub.serve(Room(), HOST, 0)
    clients = [await wirehub.connect(uri(server)) for _ in range(3)]
    for _ in range(50):
        if len(server.connections) == 3:
            break
        await asyncio.sleep(0.01)
    await clients[0].send("hi all")
    assert [await c.recv() for c in clients] == ["hi all"] * 3
    server.close()
    await server.wait_closed()
    assert closed == [1001, 1001, 1001]
    for c in clients:
        await c.close()


def test_serve_rejects_a_handler_that_is_neither_callable_nor_a_listener():
    with pytest.raises(TypeError, match="or a Listener"):
        wirehub.serve(object(), HOST, 0)
