"""1,000 concurrent clients on one server; the uvloop event loop."""
import asyncio

import pytest

import wirehub

from conftest import HOST, echo, uri

N_CLIENTS = 1000


async def test_one_thousand_concurrent_clients():
    async with wirehub.serve(echo, HOST, 0, backlog=2048, compression=None) as server:
        async def client(i):
            async with wirehub.connect(uri(server), compression=None, open_timeout=30) as ws:
                for j in range(3):
                    await ws.send(f"{i}:{j}")
                    assert await ws.recv() == f"{i}:{j}"
                return i

        results = await asyncio.gather(*(client(i) for i in range(N_CLIENTS)))
        assert sorted(results) == list(range(N_CLIENTS))


async def test_broadcast_reaches_one_thousand_clients():
    async def handler(ws):
        await ws.wait_closed()

    async with wirehub.serve(handler, HOST, 0, backlog=2048, compression=None) as server:
        clients = await asyncio.gather(*(wirehub.connect(uri(server), compression=None, open_timeout=30)
                                         for _ in range(N_CLIENTS)))
        while len(server.connections) < N_CLIENTS:
            await asyncio.sleep(0.01)
        wirehub.broadcast(server.connections, "everyone")
        got = await asyncio.gather(*(c.recv() for c in clients))
        assert got == ["everyone"] * N_CLIENTS
        await asyncio.gather(*(c.close() for c in clients))


def _uvloop_factory():
    uvloop = pytest.importorskip("uvloop")
    return uvloop.new_event_loop()


async def _uvloop_echo():
    assert "uvloop" in type(asyncio.get_running_loop()).__module__
    async with wirehub.serve(echo, HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            for m in ("on", b"uvloop", "x" * 100000):
                await ws.send(m)
                assert await ws.recv() == m


_uvloop_echo._loop_factory = _uvloop_factory
test_echo_on_uvloop = _uvloop_echo
