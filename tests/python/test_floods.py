"""What a peer's floods cost the Python side (issue 11's abuse suite, in
small): control frames nobody reads make no Python objects, and a pong
arrives only where a ping() waits for it. Loopback only; every loop is
bounded in count and time."""
import asyncio
import collections
import socket
import sys
import struct
import time
import tracemalloc

import wirehub
import wirehub.server
import wirehub.sync.client
from conftest import HOST, echo, uri

OP_TEXT, OP_PING, OP_PONG = 0x1, 0x9, 0xA


def frame(op: int, payload: bytes) -> bytes:
    """A masked client frame (mask 0: the payload goes as it is)."""
    assert len(payload) < 126
    return struct.pack("!BB", 0x80 | op, 0x80 | len(payload)) + b"\0\0\0\0" + payload


def raw_client(port: int) -> "tuple[socket.socket, bytes]":
    """An open connection, and what came after the 101's headers."""
    s = socket.create_connection((HOST, port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, "closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head[:40]
    return s, head.split(b"\r\n\r\n", 1)[1]


def read_until(s: socket.socket, marker: bytes, deadline: float, got: bytes = b"") -> bytes:
    while marker not in got and time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        got += chunk
    return got


async def test_pings_and_pongs_nobody_awaits_make_no_python_objects(monkeypatch):
    # Before: every ping and every pong became a tuple and a bytes object
    # (a ping flood: one of each per 131 bytes the peer sent), dispatched to
    # the connection only to be dropped there.
    seen = collections.Counter()
    real = wirehub.server.ServerConnection._on_event

    def counting(self, ev):
        seen[ev[0]] += 1
        real(self, ev)

    monkeypatch.setattr(wirehub.server.ServerConnection, "_on_event", counting)
    n = 3000
    async with wirehub.serve(echo, HOST, 0, compression=None) as server:
        def flood():
            s, _ = raw_client(server.port)
            try:
                s.sendall((frame(OP_PING, b"p" * 125) + frame(OP_PONG, b"q" * 125)) * n + frame(OP_TEXT, b"end"))
                return read_until(s, b"\x81\x03end", time.monotonic() + 20)
            finally:
                s.close()

        got = await asyncio.get_running_loop().run_in_executor(None, flood)
        assert got.endswith(b"\x81\x03end"), got[-40:]
    assert seen[wirehub.server._native.EV_PING] == 0, seen
    assert seen[wirehub.server._native.EV_PONG] == 0, seen


async def test_a_ping_gets_its_pong_among_a_peers_unsolicited_ones():
    results = []

    async def handler(ws):
        await ws.recv()  # the peer's pongs are in by then
        waiter = await ws.ping(b"mine")
        assert ws._native.want_pongs == 1
        results.append(await asyncio.wait_for(waiter, 5))
        assert ws._native.want_pongs == 0  # delivered no more: nobody waits
        await ws.send("done")
        await ws.wait_closed()

    async with wirehub.serve(handler, HOST, 0, compression=None) as server:
        def peer():
            s, _ = raw_client(server.port)
            try:
                s.sendall(frame(OP_PONG, b"not yours") * 500 + frame(OP_TEXT, b"go"))
                got = read_until(s, b"\x89\x04mine", time.monotonic() + 10)
                assert got.endswith(b"\x89\x04mine"), got[-40:]
                s.sendall(frame(OP_PONG, b"mine"))
                got = read_until(s, b"\x81\x04done", time.monotonic() + 10)
                assert got.endswith(b"\x81\x04done"), got[-40:]
            finally:
                s.close()

        await asyncio.get_running_loop().run_in_executor(None, peer)
    assert len(results) == 1 and 0 <= results[0] < 5


async def test_the_sync_client_keeps_no_pong_it_did_not_ask_for():
    # Before: every pong the server sent was queued by the I/O thread and
    # kept in the client's list for good (a ping() with the same data then
    # returned True without any new pong).
    n = 2000

    async def handler(ws):
        for _ in range(n):
            await ws.pong(b"unsolicited")
        await ws.send("sent")
        await ws.recv()  # the client's "bye"
        await ws.wait_closed()

    async with wirehub.serve(handler, HOST, 0, compression=None) as server:
        def client():
            with wirehub.sync.client.connect(uri(server)) as ws:
                assert ws.recv(timeout=10) == "sent"
                assert len(ws._pongs) == 0, f"{len(ws._pongs)} unsolicited pongs kept"
                assert ws.ping(b"mine", timeout=5)
                assert len(ws._pongs) == 0 and ws._native.want_pongs == 0
                ws.send("bye")

        await asyncio.get_running_loop().run_in_executor(None, client)


async def test_a_reader_that_keeps_up_costs_no_pause_or_resume():
    # Before: a batch holding max_queue messages of one connection paused it
    # while it was dispatched, and its reader, run right after, resumed it:
    # a pause and a resume per batch, and each resume made the engine read
    # that connection once more (a peer flooding empty messages was read
    # ever further ahead of Python). Now the engine hears of a pause only if
    # the queue is still full once the batch's readers have run.
    calls = []

    async def handler(ws):
        native = ws._native

        class Spy:
            def __getattr__(self, name):
                attr = getattr(native, name)
                if name in ("pause", "resume"):
                    def call(*a):
                        calls.append(name)
                        return attr(*a)
                    return call
                return attr

        ws._native = Spy()
        await ws.send("ready")
        async for message in ws:
            await ws.send(message)
            if message == "end":
                break
        ws._native = native

    async with wirehub.serve(handler, HOST, 0, compression=None, max_queue=16) as server:
        def burst():
            s, early = raw_client(server.port)
            try:
                got = read_until(s, b"\x81\x05ready", time.monotonic() + 10, early)
                assert got.endswith(b"\x81\x05ready"), got[-40:]
                s.sendall(frame(OP_TEXT, b"m") * 2000 + frame(OP_TEXT, b"end"))
                got = read_until(s, b"\x81\x03end", time.monotonic() + 20)
                assert b"\x81\x03end" in got, got[-40:]
                return got.count(b"\x81\x01m")
            finally:
                s.close()

        echoed = await asyncio.get_running_loop().run_in_executor(None, burst)
    assert echoed == 2000
    assert calls == [], calls


async def test_take_hands_out_what_waits_without_reading_new_input():
    # The pump takes what an engine run queued before the engine runs (and
    # reads) again: a peer flooding tiny frames is read one run ahead of
    # Python at most, not as far as the engine's backlog cap lets it.
    async with wirehub.serve(echo, HOST, 0, compression=None) as server:
        native = server._runtime.native
        loop = asyncio.get_running_loop()
        s, _ = await loop.run_in_executor(None, raw_client, server.port)
        try:
            await asyncio.sleep(0.05)  # the open is dispatched
            s.sendall(frame(OP_TEXT, b"m") * 100 + frame(OP_TEXT, b"end"))  # fits the socket's buffer
            time.sleep(0.05)  # in the server's socket now; the loop does not run meanwhile
            assert native.take(1024) == [] and not native.more
            got = await loop.run_in_executor(None, read_until, s, b"\x81\x03end", time.monotonic() + 10)
            assert got.count(b"\x81\x01m") == 100 and got.endswith(b"\x81\x03end")
        finally:
            s.close()


async def test_an_idle_connection_keeps_a_small_attribute_dict():
    # Every idle connection a peer holds open costs its Python objects; an
    # instance dict past CPython's shared-keys limit (29 attributes) is not
    # shared any more: over a KiB more per connection (2000 idle deflate
    # connections: +2.6 MB).
    held = []

    async def handler(ws):
        held.append(ws)
        await ws.wait_closed()

    async with wirehub.serve(handler, HOST, 0) as server:
        async with wirehub.connect(uri(server)) as client:
            for _ in range(100):
                if held:
                    break
                await asyncio.sleep(0.01)
            for conn in (held[0], client):
                size = sys.getsizeof(conn.__dict__)
                assert size < 1024, f"{type(conn).__name__}: {len(conn.__dict__)} attributes, a {size}-byte dict"


async def test_nothing_of_a_message_stays_once_its_handler_dropped_it():
    # deflate_state_between_messages: 2000 idle connections after one 40 KB
    # message each. The binding keeps none of it (no buffer, slab or view
    # per connection); a handler's own local would (the abuse server's did).
    tracemalloc.start()
    try:
        async def handler(ws):
            async for message in ws:
                await ws.send(str(len(message)))
                del message

        async with wirehub.serve(handler, HOST, 0) as server:
            async with wirehub.connect(uri(server)) as client:
                await client.send(bytes(40000))
                assert await client.recv() == "40000"
                await client.send("é" * 40000)
                assert await client.recv() == "40000"
                await asyncio.sleep(0.05)
                kept = [t for t in tracemalloc.take_snapshot().traces if t.size >= 32768]
    finally:
        tracemalloc.stop()
    assert not kept, [str(t) for t in kept]
