"""Echo through the public API: messages, fragments, properties, closing."""
import asyncio
import socket

import pytest

import wirehub
from wirehub import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK

from conftest import HOST, echo, uri


async def test_text_and_binary_keep_their_type():
    async with wirehub.serve(echo, HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"
            await ws.send(bytearray(b"ba"))
            assert await ws.recv() == b"ba"
            await ws.send(memoryview(b"mv"))
            assert await ws.recv() == b"mv"
            await ws.send("")
            assert await ws.recv() == ""


async def test_send_text_flag_overrides_type_and_recv_decode():
    async with wirehub.serve(echo, HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            await ws.send(b"as text", text=True)
            assert await ws.recv() == "as text"
            await ws.send("as binary", text=False)
            assert await ws.recv() == b"as binary"
            await ws.send(b"decoded")
            assert await ws.recv(decode=True) == "decoded"
            await ws.send("encoded")
            assert await ws.recv(decode=False) == b"encoded"


async def test_large_message_roundtrip():
    big = bytes(range(256)) * 4096  # 1 MiB
    async with wirehub.serve(echo, HOST, 0, max_size=2 ** 21) as server:
        async with wirehub.connect(uri(server), max_size=2 ** 21) as ws:
            await ws.send(big)
            assert await ws.recv() == big


async def test_iterable_is_sent_as_one_fragmented_message():
    got = []

    async def handler(ws):
        got.append(await ws.recv())
        got.append(await ws.recv())

    async def agen():
        for part in (b"x", b"y", b"z"):
            yield part

    async with wirehub.serve(handler, HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            await ws.send(["frag", "men", "ted"])
            await ws.send(agen())
            await ws.wait_closed()
    assert got == ["fragmented", b"xyz"]


async def test_fragments_must_share_a_type():
    async with wirehub.serve(echo, HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            with pytest.raises(TypeError):
                await ws.send(["a", b"b"])
            with pytest.raises(TypeError):
                await ws.send(42)
            with pytest.raises(TypeError):
                await ws.send({"a": 1})


async def test_async_for_ends_on_normal_close():
    received = []

    async def handler(ws):
        async for message in ws:
            received.append(message)

    async with wirehub.serve(handler, HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            for i in range(5):
                await ws.send(str(i))
        await asyncio.sleep(0)
        while server.connections:
            await asyncio.sleep(0.01)
    assert received == ["0", "1", "2", "3", "4"]


async def test_close_code_and_reason_reach_both_sides():
    seen = {}

    async def handler(ws):
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            seen["exc"] = exc
        seen["code"], seen["reason"] = ws.close_code, ws.close_reason

    async with wirehub.serve(handler, HOST, 0) as server:
        ws = await wirehub.connect(uri(server))
        await ws.close(4000, "bye now")
        # close_code/close_reason are what the peer answered: the engine echoes the code.
        assert ws.close_code == 4000
        await asyncio.sleep(0.05)
    assert seen["code"] == 4000 and seen["reason"] == "bye now"
    assert isinstance(seen["exc"], ConnectionClosedError)
    assert "4000" in str(seen["exc"]) and "bye now" in str(seen["exc"])


async def test_server_close_gives_1001_going_away():
    async with wirehub.serve(echo, HOST, 0) as server:
        ws = await wirehub.connect(uri(server))
        server.close()
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.recv()
        assert info.value.code == 1001
        await server.wait_closed()


async def test_handler_return_closes_with_1000():
    async def handler(ws):
        await ws.send("only one")

    async with wirehub.serve(handler, HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            assert await ws.recv() == "only one"
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1000


async def test_send_on_closed_connection_raises_connection_closed():
    async with wirehub.serve(echo, HOST, 0) as server:
        ws = await wirehub.connect(uri(server))
        await ws.close()
        with pytest.raises(ConnectionClosedOK):
            await ws.send("late")
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        with pytest.raises(ConnectionClosed):
            await ws.ping()
        await ws.close()  # closing twice is fine


async def test_invalid_close_code_is_a_value_error():
    async with wirehub.serve(echo, HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            with pytest.raises(ValueError):
                await ws.close(1005)
            with pytest.raises(ValueError):
                await ws.close(1000, "x" * 124)


async def test_ping_resolves_with_latency_and_pong_is_allowed():
    async with wirehub.serve(echo, HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            waiter = await ws.ping()
            latency = await waiter
            assert 0 <= latency < 5
            waiter = await ws.ping(b"custom")
            await waiter
            await ws.pong(b"unsolicited")
            with pytest.raises(ValueError):
                await ws.ping(b"x" * 126)


async def test_concurrent_recv_is_an_error():
    async def handler(ws):
        await ws.wait_closed()

    async with wirehub.serve(handler, HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            first = asyncio.ensure_future(ws.recv())
            await asyncio.sleep(0.01)
            with pytest.raises(wirehub.ConcurrencyError):
                await ws.recv()
            first.cancel()


async def test_request_remote_address_and_subprotocol():
    seen = {}

    async def handler(ws):
        seen["path"] = ws.request.path
        seen["agent"] = ws.request.headers["x-custom"]
        seen["remote"] = ws.remote_address
        seen["sub"] = ws.subprotocol
        await ws.send("ok")

    async with wirehub.serve(handler, HOST, 0, subprotocols=["superchat", "chat"]) as server:
        async with wirehub.connect(uri(server, "/room?x=1"), subprotocols=["chat", "superchat"],
                                   additional_headers={"X-Custom": "yes"}) as ws:
            assert await ws.recv() == "ok"
            assert ws.subprotocol == "superchat"
            assert ws.remote_address == (HOST, server.port)
    assert seen["path"] == "/room?x=1"
    assert seen["agent"] == "yes"
    assert seen["remote"][0] == HOST
    assert seen["sub"] == "superchat"


def _has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("host", [HOST, "::1"])
async def test_local_address_is_each_ends_own(host):
    # Like python-websockets' local_address: the server side's is the
    # address and port its client reached, the client's what its socket got;
    # each is the other's remote_address. None until open.
    if host == "::1" and not _has_ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    seen = {}

    async def handler(ws):
        seen["local"] = ws.local_address
        seen["remote"] = ws.remote_address
        await ws.send("ok")
        await ws.wait_closed()

    async with wirehub.serve(handler, host, 0) as server:
        url = f"ws://[{host}]:{server.port}/" if ":" in host else f"ws://{host}:{server.port}/"
        async with wirehub.connect(url) as ws:
            assert await ws.recv() == "ok"
            local = ws.local_address
            assert isinstance(local, tuple) and local[0] == host
            assert isinstance(local[1], int) and local[1] not in (0, server.port)
            assert ws.remote_address == (host, server.port)
        assert ws.local_address == local, "kept once closed, as remote_address"
    assert seen["local"] == (host, server.port)
    assert seen["remote"] == local


async def test_no_common_subprotocol_fails_our_client_handshake():
    # Like Node's ws, our client refuses a server that ignored every offered
    # subprotocol (python-websockets' client goes on without one).
    async with wirehub.serve(echo, HOST, 0, subprotocols=["a"]) as server:
        with pytest.raises(wirehub.InvalidHandshake, match="no subprotocol"):
            await wirehub.connect(uri(server), subprotocols=["b"])
        async with wirehub.connect(uri(server)) as ws:
            assert ws.subprotocol is None


async def test_select_subprotocol_callback():
    def select(conn, offered):
        return offered[-1]

    async with wirehub.serve(echo, HOST, 0, select_subprotocol=select) as server:
        async with wirehub.connect(uri(server), subprotocols=["a", "b"]) as ws:
            assert ws.subprotocol == "b"


async def test_compression_is_negotiated_by_default_and_can_be_off():
    async with wirehub.serve(echo, HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            assert "permessage-deflate" in ws.extensions
            await ws.send("z" * 10000)
            assert await ws.recv() == "z" * 10000
        async with wirehub.connect(uri(server), compression=None) as ws:
            assert ws.extensions == ""
    with pytest.raises(ValueError):
        wirehub.serve(echo, HOST, 0, compression="brotli")


async def test_flow_control_send_waits_for_drain():
    # A tiny write limit makes most sends come back WH_QUEUED: awaiting send()
    # then waits for the drain, and every byte still arrives in order.
    async def handler(ws):
        for i in range(200):
            await ws.send(bytes([i % 256]) * 10000)
        await ws.close()

    async with wirehub.serve(handler, HOST, 0, write_limit=1024) as server:
        async with wirehub.connect(uri(server)) as ws:
            got = [m async for m in ws]
    assert len(got) == 200
    assert all(m == bytes([i % 256]) * 10000 for i, m in enumerate(got))


async def test_slow_reader_pauses_the_peer_without_losing_messages():
    async def handler(ws):
        for i in range(500):
            await ws.send(str(i))
        await ws.close()

    async with wirehub.serve(handler, HOST, 0) as server:
        async with wirehub.connect(uri(server), max_queue=4) as ws:
            await asyncio.sleep(0.2)  # let messages pile up: reading pauses at 4
            got = [m async for m in ws]
    assert got == [str(i) for i in range(500)]


async def test_a_message_costs_a_waiting_reader_one_loop_iteration():
    # The engine's dispatch resumes a waiting reader itself, instead of
    # through call_soon on the next iteration: an echo round trip between a
    # client and a server on this loop takes two passes through the
    # selector (server's turn, client's turn), not four.
    loop = asyncio.get_running_loop()
    selector = loop._selector  # the default loop's; counting its passes
    passes = 0
    real_select = selector.select

    def counting_select(timeout=None):
        nonlocal passes
        passes += 1
        return real_select(timeout)

    async with wirehub.serve(echo, HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            await ws.send("warm")
            assert await ws.recv() == "warm"
            selector.select = counting_select
            try:
                for i in range(100):
                    await ws.send(str(i))
                    assert await ws.recv() == str(i)
            finally:
                del selector.select
    assert passes <= 100 * 3, passes


async def test_the_loop_watches_few_sockets_itself_and_the_engine_keeps_many():
    # With at most two sockets on the hub the loop waits on each itself (one
    # wait per message); a third moves them all behind the engine's own
    # descriptor (one wait per batch of sockets). They are handed back once
    # at most one is left. Messages flow the same way in both.
    loop = asyncio.get_running_loop()
    watched = set()
    real_add, real_remove = loop.add_reader, loop.remove_reader

    def add_reader(fd, callback, *args):
        if args:  # a socket (the hub's own descriptor comes without args)
            watched.add(fd)
        return real_add(fd, callback, *args)

    def remove_reader(fd):
        watched.discard(fd)
        return real_remove(fd)

    loop.add_reader, loop.remove_reader = add_reader, remove_reader
    try:
        async with wirehub.serve(echo, HOST, 0) as server:
            one = await wirehub.connect(uri(server))
            await one.send("a")
            assert await one.recv() == "a"
            assert len(watched) == 2  # the client's socket and the server's
            two = await wirehub.connect(uri(server))
            for ws in (one, two):
                await ws.send("b")
                assert await ws.recv() == "b"
            assert watched == set()
            await one.close()
            await two.close()
            three = await wirehub.connect(uri(server))
            await three.send("c")
            assert await three.recv() == "c"
            assert len(watched) == 2
            await three.close()
        assert watched == set()
    finally:
        del loop.add_reader, loop.remove_reader


async def test_recv_timeout_and_cancellation_leave_the_connection_usable():
    async with wirehub.serve(echo, HOST, 0) as server:
        async with wirehub.connect(uri(server)) as ws:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.05)
            reader = asyncio.ensure_future(ws.recv())
            await asyncio.sleep(0.01)
            reader.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reader
            await ws.send("still here")
            assert await ws.recv() == "still here"
            # Messages that arrive together reach one reader in order.
            for i in range(50):
                await ws.send(str(i))
            assert [await ws.recv() for _ in range(50)] == [str(i) for i in range(50)]
