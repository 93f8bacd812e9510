"""serve(broker=...): servers attached to one Redis (Debian's redis-server,
started per test on a free loopback port) share their topics.

What is checked against Redis itself goes through a raw RESP connection
(redis_helpers.Resp): PUBSUB NUMSUB for the interest-based subscriptions,
PUBLISH for a foreign publisher's garbage."""
import asyncio
import inspect
import os
import socket
import subprocess
import sys
import textwrap

import pytest

import wirehub
from wirehub import BrokerError, BrokerStats
from wirehub import _wirehub as native

from conftest import HOST
from redis_helpers import REDIS_SERVER, RedisProcess, Resp, free_port, wait_numsub, wait_until

# scripts/test-python.sh requires them to run (WIREHUB_REQUIRE_REDIS).
pytestmark = pytest.mark.skipif(REDIS_SERVER is None and not os.environ.get("WIREHUB_REQUIRE_REDIS"),
                                reason="redis-server is not installed (scripts/deps-python.sh installs it)")


@pytest.fixture
def redis():
    r = RedisProcess().start()
    try:
        yield r
    finally:
        r.close()


async def room(ws):
    """/sub/<topic> subscribes; every message is published to that topic."""
    topic = ws.request.path.rsplit("/", 1)[1]
    ws.subscribe(topic)
    await ws.send("subscribed")
    async for message in ws:
        ws.server.publish(topic, message)


async def join(server, topic):
    ws = await wirehub.connect(f"ws://{HOST}:{server.port}/sub/{topic}")
    assert await asyncio.wait_for(ws.recv(), 5) == "subscribed"
    return ws


async def recv_n(ws, n, timeout=10):
    return [await asyncio.wait_for(ws.recv(), timeout) for _ in range(n)]


async def nothing_arrives(ws, within=0.3):
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ws.recv(), within)


async def test_a_publish_reaches_subscribers_on_another_server(redis):
    async with wirehub.serve(room, HOST, 0, broker=redis.url) as a, \
            wirehub.serve(room, HOST, 0, broker=redis.url) as b:
        on_a, on_b = await join(a, "news"), await join(b, "news")
        await wait_numsub(redis.port, "wirehub:news", 2)
        await on_a.send("from a")
        assert await recv_n(on_a, 1) == ["from a"]
        assert await recv_n(on_b, 1) == ["from a"]
        await on_b.send(b"\x00from b")  # the kind is kept: binary stays bytes
        assert await recv_n(on_b, 1) == [b"\x00from b"]
        assert await recv_n(on_a, 1) == [b"\x00from b"]
        # The publishing node delivered locally, not through Redis as well.
        await nothing_arrives(on_a)
        # published counts what Redis acknowledged, which may come after the delivery.
        await wait_until(lambda: a.broker_stats().published == 1 and b.broker_stats().published == 1, 5,
                         what="published == 1 on both nodes")
        sa, sb = a.broker_stats(), b.broker_stats()
        assert isinstance(sa, BrokerStats) and sa.connected and sb.connected
        assert sa == BrokerStats(connected=True, channels=1, published=1, received=1, dropped=0, malformed=0,
                                 reconnects=0)
        assert sb == sa
        # broadcast() stays local.
        assert b.broadcast("local only") == 1
        assert await recv_n(on_b, 1) == ["local only"]
        await nothing_arrives(on_a)
        await on_a.close()
        await on_b.close()
    # After close(), the last counters.
    assert a.broker_stats().received == 1 and a.broker == redis.url


async def test_a_server_without_broker_has_no_broker_stats():
    async with wirehub.serve(room, HOST, 0) as s:
        assert s.broker_stats() is None and s.broker is None


async def test_nodes_subscribe_on_redis_only_to_topics_with_local_subscribers(redis):
    async with wirehub.serve(room, HOST, 0, broker=redis.url) as a, \
            wirehub.serve(room, HOST, 0, broker=redis.url) as b:
        probe = await Resp.open(redis.port)
        assert await probe.numsub("wirehub:t") == 0
        a1 = await join(a, "t")
        await wait_numsub(redis.port, "wirehub:t", 1)
        a2 = await join(a, "t")  # a second subscriber on the same node: still one Redis subscription
        b1 = await join(b, "t")
        await wait_numsub(redis.port, "wirehub:t", 2)
        assert a.broker_stats().channels == 1 and b.broker_stats().channels == 1
        # A node without subscribers of a topic gets no traffic for it.
        other = await join(a, "other")
        await wait_numsub(redis.port, "wirehub:other", 1)
        await other.send("only a cares")
        assert await recv_n(other, 1) == ["only a cares"]
        await asyncio.sleep(0.2)
        assert b.broker_stats().received == 0
        await a1.close()
        await asyncio.sleep(0.2)
        assert await probe.numsub("wirehub:t") == 2  # a2 is still there
        await a2.close()
        await wait_numsub(redis.port, "wirehub:t", 1)
        await b1.close()
        await wait_numsub(redis.port, "wirehub:t", 0)
        await other.close()
        await wait_numsub(redis.port, "wirehub:other", 0)
        assert a.broker_stats().channels == 0
        await probe.close()


async def test_topics_subscribed_before_the_broker_was_attached_are_not_needed_a_prefix_separates_apps(redis):
    async with wirehub.serve(room, HOST, 0, broker=redis.url, broker_prefix="app1:") as a, \
            wirehub.serve(room, HOST, 0, broker=redis.url, broker_prefix="app1:") as b, \
            wirehub.serve(room, HOST, 0, broker=redis.url, broker_prefix="app2:") as c:
        on_a, on_b, on_c = await join(a, "t"), await join(b, "t"), await join(c, "t")
        await wait_numsub(redis.port, "app1:t", 2)
        await wait_numsub(redis.port, "app2:t", 1)
        await on_a.send("app1 only")
        assert await recv_n(on_b, 1) == ["app1 only"]
        await nothing_arrives(on_c)
        assert c.broker_stats().received == 0
        for ws in (on_a, on_b, on_c):
            await ws.close()


async def test_thousands_of_messages_arrive_on_the_other_node_in_publish_order(redis):
    n = 5000
    async with wirehub.serve(room, HOST, 0, broker=redis.url) as a, \
            wirehub.serve(room, HOST, 0, broker=redis.url) as b:
        local, remote = await join(a, "seq"), await join(b, "seq")
        await wait_numsub(redis.port, "wirehub:seq", 2)
        for i in range(n):
            a.publish("seq", str(i) if i % 2 else str(i).encode())
            if i % 500 == 499:
                await asyncio.sleep(0)  # let the engine write to Redis and the clients read
        expect = [str(i) if i % 2 else str(i).encode() for i in range(n)]
        assert await recv_n(remote, n) == expect
        assert await recv_n(local, n) == expect
        await wait_until(lambda: a.broker_stats().published == n, 5, what=f"published == {n}")
        assert b.broker_stats().received == n and a.broker_stats().dropped == 0
        await local.close()
        await remote.close()


# The node in the other process serves the same room() (its source, copied
# in), prints its port, and when its stdin ends how much came from Redis.
NODE = "import asyncio, sys, wirehub\n\n" + inspect.getsource(room) + textwrap.dedent("""

    async def main():
        async with wirehub.serve(room, "127.0.0.1", 0, broker=sys.argv[1]) as server:
            print("port", server.port, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            print("stats", server.broker_stats().received, flush=True)

    asyncio.run(main())
""")


async def test_a_node_in_another_process_shares_the_topic(redis):
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", NODE, redis.url, stdin=subprocess.PIPE,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line.startswith("port "), line + (await proc.stderr.read()).decode()
        other_port = int(line.split()[1])
        async with wirehub.serve(room, HOST, 0, broker=redis.url) as here:
            mine = await join(here, "chat")
            theirs = await wirehub.connect(f"ws://{HOST}:{other_port}/sub/chat")
            assert await asyncio.wait_for(theirs.recv(), 5) == "subscribed"
            await wait_numsub(redis.port, "wirehub:chat", 2)
            await mine.send("to the other process")
            assert await recv_n(theirs, 1) == ["to the other process"]
            assert await recv_n(mine, 1) == ["to the other process"]
            await theirs.send("back from it")
            assert await recv_n(mine, 1) == ["back from it"]
            assert await recv_n(theirs, 1) == ["back from it"]
            assert here.broker_stats().received == 1
            await mine.close()
            await theirs.close()
        proc.stdin.close()
        out = (await asyncio.wait_for(proc.stdout.read(), 20)).decode()
        assert "stats 1" in out, out
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_redis_killed_and_restarted_mid_stream(redis):
    async with wirehub.serve(room, HOST, 0, broker=redis.url, broker_timeout=1) as a, \
            wirehub.serve(room, HOST, 0, broker=redis.url, broker_timeout=1) as b:
        local, remote = await join(a, "live"), await join(b, "live")
        await wait_numsub(redis.port, "wirehub:live", 2)
        got_local, got_remote = [], []

        async def reader(ws, into):
            try:
                async for m in ws:
                    into.append(int(m))
            except wirehub.ConnectionClosed:
                pass

        readers = [asyncio.ensure_future(reader(local, got_local)), asyncio.ensure_future(reader(remote, got_remote))]
        sent = 0

        async def publish_for(seconds):
            nonlocal sent
            end = asyncio.get_running_loop().time() + seconds
            while asyncio.get_running_loop().time() < end:
                a.publish("live", str(sent))
                sent += 1
                await asyncio.sleep(0.002)

        await publish_for(0.3)
        before_kill = sent
        redis.stop()
        await wait_until(lambda: not a.broker_stats().connected and not b.broker_stats().connected, 10,
                         what="both nodes to see Redis gone")
        # Local delivery goes on while Redis is down.
        down_from = sent
        await publish_for(0.5)
        await wait_until(lambda: len(got_local) == sent, 5, what="local delivery while Redis is down")
        assert a.broker_stats().dropped >= sent - down_from > 0
        redis.start()
        # Both reconnect and resubscribe in the background, publishing all along.
        task = asyncio.ensure_future(publish_for(60))
        try:
            await wait_until(lambda: a.broker_stats().connected and b.broker_stats().connected, 15,
                             what="both nodes to reconnect")
            await wait_numsub(redis.port, "wirehub:live", 2, timeout=15)
        finally:
            task.cancel()
        resubscribed_at = sent
        await publish_for(0.3)
        end = sent
        await wait_until(lambda: len(got_local) == end and got_remote and got_remote[-1] == end - 1, 10,
                         what="the last message on both nodes")
        # Every message reached the local subscriber, in order; the remote one
        # saw them in order too, all of those before the kill was noticed and
        # after both resubscribed, and missed at least what was counted dropped.
        assert got_local == list(range(end))
        assert got_remote == sorted(got_remote) and len(set(got_remote)) == len(got_remote)
        assert set(range(resubscribed_at, end)) <= set(got_remote)
        assert got_remote[:min(100, before_kill)] == list(range(min(100, before_kill)))
        missed = end - len(got_remote)
        sa, sb = a.broker_stats(), b.broker_stats()
        assert sa.dropped > 0 and missed >= sa.dropped
        assert sa.reconnects >= 1 and sb.reconnects >= 1 and sa.channels == 1
        await local.close()
        await remote.close()
        await asyncio.gather(*readers)


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "redis://", "redis://127.0.0.1:99999",
                                 "redis://127.0.0.1:6379/x", "redis://127.0.0.1:6379/0?ssl=1", "redis://h ost"])
async def test_a_wrong_url_raises_broker_error(url):
    with pytest.raises(BrokerError) as info:
        await wirehub.serve(room, HOST, 0, broker=url)
    assert info.value.code == native.EURL and info.value.url == url
    assert "invalid URL" in str(info.value) and url in str(info.value)


async def test_an_unreachable_redis_raises_broker_error_and_frees_the_port():
    port, dead = free_port(), free_port()
    url = f"redis://user:hunter2@127.0.0.1:{dead}/0"
    t0 = asyncio.get_running_loop().time()
    with pytest.raises(BrokerError) as info:
        await wirehub.serve(room, HOST, port, broker=url)
    assert asyncio.get_running_loop().time() - t0 < 5
    assert info.value.code == native.ECONNREFUSED
    assert "hunter2" not in str(info.value) and f"redis://user:***@127.0.0.1:{dead}/0" in str(info.value)
    assert "connection refused" in str(info.value)
    # The server was closed: its port is free again.
    async with wirehub.serve(room, HOST, port) as s:
        assert s.port == port


async def test_a_redis_that_never_answers_times_out_and_the_loop_runs_meanwhile():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel does), never answers
    try:
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.ensure_future(ticker())
        t0 = asyncio.get_running_loop().time()
        with pytest.raises(BrokerError) as info:
            await wirehub.serve(room, HOST, 0, broker=f"redis://127.0.0.1:{silent.getsockname()[1]}",
                                broker_timeout=0.5)
        elapsed = asyncio.get_running_loop().time() - t0
        t.cancel()
        assert info.value.code == native.ETIMEDOUT and "0.5 s" in str(info.value)
        assert 0.4 < elapsed < 5
        assert ticks >= 10  # the wait did not block the event loop
    finally:
        silent.close()


async def test_a_wrong_password_raises_broker_error_the_right_one_works():
    r = RedisProcess(password="s3cret").start()
    try:
        bad = f"redis://:wrong-pass@127.0.0.1:{r.port}/0"
        with pytest.raises(BrokerError) as info:
            await wirehub.serve(room, HOST, 0, broker=bad)
        assert info.value.code == native.EACCES and "authentication refused" in str(info.value)
        assert "wrong-pass" not in str(info.value) and f"redis://:***@127.0.0.1:{r.port}/0" in str(info.value)
        with pytest.raises(BrokerError) as info:
            await wirehub.serve(room, HOST, 0, broker=f"redis://127.0.0.1:{r.port}/0")  # none at all
        assert info.value.code == native.EACCES
        async with wirehub.serve(room, HOST, 0, broker=r.url) as s:
            assert s.broker_stats().connected and s.broker == f"redis://:***@127.0.0.1:{r.port}/0"
    finally:
        r.close()


async def test_a_foreign_publishers_garbage_is_dropped_and_counted(redis):
    async with wirehub.serve(room, HOST, 0, broker=redis.url) as a, \
            wirehub.serve(room, HOST, 0, broker=redis.url) as b:
        on_a, on_b = await join(a, "g"), await join(b, "g")
        await wait_numsub(redis.port, "wirehub:g", 2)
        foreign = await Resp.open(redis.port)
        assert await foreign.command("PUBLISH", "wirehub:g", b"plain garbage") == 2
        assert await foreign.command("PUBLISH", "wirehub:g", b"") == 2
        # Our header, a text message that is not UTF-8.
        assert await foreign.command("PUBLISH", "wirehub:g", b"WH\x01\x01" + bytes(8) + b"\xff\xfe") == 2
        await wait_until(lambda: a.broker_stats().malformed == 3 and b.broker_stats().malformed == 3, 5,
                         what="malformed == 3 on both nodes")
        await nothing_arrives(on_a, 0.2)
        await nothing_arrives(on_b, 0.2)
        # A well-formed foreign message is delivered (what the header says).
        assert await foreign.command("PUBLISH", "wirehub:g", b"WH\x01\x02" + bytes(8) + b"\x01\x02") == 2
        assert await recv_n(on_a, 1) == [b"\x01\x02"]
        assert await recv_n(on_b, 1) == [b"\x01\x02"]
        # The nodes are unharmed.
        await on_a.send("still fine")
        assert await recv_n(on_b, 1) == ["still fine"]
        assert a.broker_stats().connected and b.broker_stats().received == 2
        await foreign.close()
        await on_a.close()
        await on_b.close()


def test_broker_options_are_checked_when_serve_is_called():
    with pytest.raises(TypeError):
        wirehub.serve(room, HOST, 0, broker=b"redis://127.0.0.1")
    with pytest.raises(ValueError, match="need broker="):
        wirehub.serve(room, HOST, 0, broker_prefix="app:")
    with pytest.raises(ValueError):
        wirehub.serve(room, HOST, 0, broker="redis://127.0.0.1", broker_timeout=0)
    with pytest.raises(ValueError):
        wirehub.serve(room, HOST, 0, broker="redis://127.0.0.1", broker_max_pending=-1)
    with pytest.raises(ValueError, match="rediss://"):
        wirehub.serve(room, HOST, 0, broker="redis://127.0.0.1", broker_ssl={"insecure": True})


def test_the_url_is_shown_without_its_password():
    from wirehub.broker import redact_url
    assert redact_url("redis://u:p@h:1/0") == "redis://u:***@h:1/0"
    assert redact_url("redis://:p@h") == "redis://:***@h"
    assert redact_url("rediss://lonepass@h") == "rediss://***@h"
    assert redact_url("redis://u:p:q@x@h") == "redis://u:***@h"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
