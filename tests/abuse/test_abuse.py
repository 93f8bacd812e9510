"""The abuse suite: what an attacker on loopback can make a server hold.

Each case runs against the C, Python and Node servers (servers/) with their
default limits, while probe.py, a well-behaved client, does echo round
trips. Every case asserts (conftest.Case.finish): the server's peak VmRSS
above its baseline and its open descriptors stay under the case's bound,
the probe is served throughout (p99 <= 200 ms, no echo lost or late), the
server survives, and its descriptors are back at baseline once the attacker
is gone. The bounds are what a correct server needs (README.md), never what
today's one happens to use. Issue 11's findings are named where a case
reproduces one.
"""
import os
import select
import socket
import struct
import threading
import time

import pytest

import rawws
from conftest import FD_SLACK, MiB, SLACK
from rawws import OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, ZERO_MASK, frame

KiB = 1024
# A connection's own state (socket, buffers, runtime objects) in a correct
# server; what a case allows per attacking connection on top of the slack.
PER_CONN = 16 * KiB


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pump(sock, block, frame_size, max_bytes, deadline, until_reply=False):
    """Sends `block` (whole frames of frame_size bytes) again and again until
    max_bytes or the deadline (or, with until_reply, until the server sends
    something: its close frame must be read before it resets the connection
    we keep writing to), then completes the frame in flight. Returns the
    bytes sent (a multiple of frame_size). A server that stops reading only
    makes this wait, bounded by the deadline."""
    sent = 0
    view = memoryview(block)
    off = 0
    sock.settimeout(0.2)
    while sent < max_bytes and time.monotonic() < deadline:
        if until_reply and select.select([sock], [], [], 0)[0]:
            break
        try:
            n = sock.send(view[off:])
        except socket.timeout:
            continue
        sent += n
        off = (off + n) % len(block)
    rest = (-sent) % frame_size
    if rest:
        sock.settimeout(5)
        sock.sendall(view[off:off + rest])
        sent += rest
    return sent


def open_sockets(port, n, first_bytes=b""):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        if first_bytes:
            s.sendall(first_bytes)
        socks.append(s)
    return socks


def close_all(socks):
    for s in socks:
        rawws.hard_close(s)


# ---------------------------------------------------------------- findings

def test_big_length_trickle(case):
    """Finding 1: 16 connections each announce a frame as long as the server
    accepts, then send 15 payload bytes one segment at a time. A server that
    grows its buffer as bytes arrive holds 15 bytes per connection (before:
    +256 MB on the C echo server, +763 MB on Node with 8 connections)."""
    c = case()
    s = c.server
    socks = [rawws.connect(s.port)[0] for _ in range(16)]
    cpu0 = cpu_seconds(s.pid)
    for sock in socks:
        sock.sendall(frame(OP_BINARY, b"", length=s.spec["max_size"], mask=ZERO_MASK))
    for _ in range(15):
        for sock in socks:
            sock.send(b"x")
        time.sleep(0.05)
    time.sleep(0.5)
    cpu = cpu_seconds(s.pid) - cpu0
    c.figures["cpu_ms"] = round(cpu * 1000)
    # 240 bytes in 1.3 s: nothing to do but store them (the probe's own
    # round trips cost a few ms of this).
    c.check("server CPU for 240 payload bytes <= 250 ms", cpu <= 0.25, f"{cpu * 1000:.0f} ms")
    close_all(socks)
    c.finish(rss_bound=SLACK + 16 * PER_CONN, fd_bound=16 + FD_SLACK)


def test_ping_flood_nonreader(case):
    """Finding 2 (and the suite's ping flood): a peer sends pings as fast as
    it can and never reads. Its pongs are bytes queued for it like any other,
    so they stay under the send cap (max_buffered): the server stops reading
    from it or closes it (before: 256 MB of pings, +309 MB)."""
    c = case()
    s = c.server
    sock, _ = rawws.connect(s.port, rcvbuf=4096)
    ping = frame(OP_PING, b"p" * 125, mask=ZERO_MASK)
    block = ping * (MiB // len(ping))
    try:
        sent = pump(sock, block, len(ping), 256 * MiB, time.monotonic() + 6)
        c.note(f"{sent / MiB:.0f} MiB of pings sent")
    except (ConnectionResetError, BrokenPipeError):
        c.note("the server closed the flooding connection")
    time.sleep(0.5)
    rawws.hard_close(sock)
    c.finish(rss_bound=SLACK + s.spec["send_cap"], fd_bound=1 + FD_SLACK)


def test_broadcast_slow_consumers(case):
    """Finding 3 (and the suite's slow consumers): 4 subscribers never read
    while 48 MB is broadcast in 64 KiB messages at 16 MB/s. A broadcast is
    framed once, and the frames queued for a subscriber that is behind are
    that one copy, shared by every slow subscriber: each is closed with 1008
    at the send cap, and the server holds about one cap's worth however many
    they are, plus the send buffers' growth (before: +241 MB on the C chat,
    unbounded; then, with a copy per subscriber, up to a cap per slow
    consumer: ~163 MB).
    The well-behaved subscribers (the publisher, which keeps at most 4 MiB of
    its own messages in flight, and the probe, which reads all the time) get
    every message, in order."""
    c = case()
    s = c.server
    slow = [rawws.connect(s.port, rcvbuf=4096)[0] for _ in range(4)]
    pub, reader = rawws.connect(s.port)
    count, size = 768, 64 * KiB
    got, bad = [], []

    def read():
        try:
            while len(got) < count:
                op, data = reader.read_message(timeout=30)
                if not data.startswith(b"broadcast:"):
                    continue
                seq = int(data[10:20])
                if seq != len(got) or len(data) != size:
                    bad.append((seq, len(got), len(data)))
                got.append(seq)
        except (OSError, rawws.Closed) as e:
            bad.append(repr(e))

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t0 = time.monotonic()
    deadline = t0 + 40
    for i in range(count):
        # A well-behaved publisher: 16 MB/s (any reader keeps up; the slow
        # consumers pass their send cap in 2 s) and at most 64 of its own
        # messages (4 MiB) on their way back to it.
        while ((len(got) < i - 64 or i * size > (time.monotonic() - t0) * 16e6)
               and not bad and time.monotonic() < deadline):
            time.sleep(0.001)
        msg = b"broadcast:%010d" % i
        pub.settimeout(max(0.1, deadline - time.monotonic()))
        pub.sendall(frame(OP_BINARY, msg + b"." * (size - len(msg))))
    t.join(max(0.1, deadline - time.monotonic()))
    c.check("the publisher got every broadcast, in order", len(got) == count and not bad,
            f"{len(got)}/{count}, {bad[:3]}")
    time.sleep(0.5)
    close_all(slow + [pub])
    c.finish(rss_bound=SLACK + s.spec["send_cap"] * 3 // 2, fd_bound=5 + FD_SLACK)
    # The probe subscribed before the first broadcast and reads everything.
    assert c.probe_broadcasts == count, f"probe got {c.probe_broadcasts}/{count} broadcasts"


def test_refused_upgrade_pipelined(case):
    """Finding 4: a client refused by the upgrade hook (403 on /refuse) that
    already pipelined frames behind its request gets the 403 and the end of
    the connection, nothing else: no pong, and its "broadcast:" message never
    reaches the application (the probe, a subscriber, would receive it)."""
    c = case("--hook")
    s = c.server
    pipelined = (frame(OP_TEXT, b"broadcast:LEAK") + frame(OP_PING, b"leak")
                 + frame(OP_BINARY, b"x" * 1000) * 20)
    wrong = []
    for i in range(200):
        sock = socket.socket()
        sock.settimeout(3)
        data = b""
        try:
            sock.connect(("127.0.0.1", s.port))
            sock.sendall(rawws.upgrade_request(s.port, "/refuse") + pipelined)
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ConnectionResetError) as e:
            if not data:
                wrong.append(f"#{i}: {e!r} before any response")
                continue
        finally:
            sock.close()
        if not data.startswith(b"HTTP/1.1 403"):
            wrong.append(f"#{i}: answered {data[:40]!r}")
        elif b"leak" in data.split(b"\r\n\r\n", 1)[-1]:
            wrong.append(f"#{i}: a pong followed the 403")
    c.check("every refused client got 403 then EOF, no frame", not wrong, f"{len(wrong)} wrong: {wrong[:3]}")
    time.sleep(0.3)
    c.finish(rss_bound=SLACK, fd_bound=2 + FD_SLACK)
    assert c.probe_broadcasts == 0, "a refused connection's pipelined message reached the application"


def test_half_open_handshakes(case):
    """Finding 6: 2000 sockets that connect and send half a request line.
    Sockets still in their handshake are capped (max_handshakes, 1024 by
    default; past it a socket is closed at once), so the server never holds
    2000 of them."""
    c = case()
    s = c.server
    socks = []
    deadline = time.monotonic() + 10
    while len(socks) < 2000 and time.monotonic() < deadline:
        sk = socket.socket()
        sk.settimeout(2)
        try:
            sk.connect(("127.0.0.1", s.port))
            sk.send(b"GET / HT")
        except OSError:
            pass
        socks.append(sk)
    time.sleep(2)
    close_all(socks)
    c.finish(rss_bound=SLACK + 1024 * PER_CONN, fd_bound=1024 + FD_SLACK)


def test_unfinished_fragment(case):
    """Finding 6: a text message whose first fragment arrives and whose end
    never does, on a connection kept busy with pings (so no idle timeout
    ends it). The server gives a message message_timeout to complete (3 s
    here) and then closes with 1008 (policy)."""
    c = case("--message-timeout-ms", "3000")
    s = c.server
    sock, r = rawws.connect(s.port)
    sock.sendall(frame(OP_TEXT, b"a" * 1000, fin=False))
    code = "none within 8 s"
    deadline = time.monotonic() + 8
    try:
        while time.monotonic() < deadline:
            sock.sendall(frame(OP_PING, b"alive"))
            try:
                r.read_frame(0.5)
            except socket.timeout:
                pass
    except rawws.Closed as e:
        code = e.code
    except (ConnectionResetError, BrokenPipeError) as e:
        code = repr(e)
    c.figures["close"] = code
    c.check("closed with 1008 within message_timeout + 5 s", code == 1008, f"close: {code}")
    rawws.hard_close(sock)
    c.finish(rss_bound=SLACK, fd_bound=1 + FD_SLACK)


def test_empty_frame_flood(case):
    """Finding 6: empty messages and empty pongs (6 bytes each on the wire)
    as fast as the server takes them for 3 s, while their echoes are read.
    The queue of events they become is capped, so memory stays flat; the
    server either echoes every message or closes with 1008."""
    c = case()
    s = c.server
    sock, _ = rawws.connect(s.port)
    pair = frame(OP_BINARY, b"", mask=ZERO_MASK) + frame(OP_PONG, b"", mask=ZERO_MASK)
    block = pair * 50000
    received = [0, b""]

    def drain():
        sock2 = sock.dup()
        sock2.settimeout(15)
        try:
            while True:
                chunk = sock2.recv(1 << 20)
                if not chunk:
                    break
                received[0] += len(chunk)
                received[1] = (received[1] + chunk)[-64:]
                if received[1].endswith(b"\x81\x03end") or b"\x88" in received[1][-40:]:
                    break
        except OSError:
            pass
        sock2.close()

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    closed, sent = None, 0
    try:
        sent = pump(sock, block, len(pair), 100 * MiB, time.monotonic() + 3)
        sock.settimeout(10)
        sock.sendall(frame(OP_TEXT, b"end"))
    except (ConnectionResetError, BrokenPipeError, socket.timeout) as e:
        closed = repr(e) if not isinstance(e, socket.timeout) else "the server stopped reading for 10 s"
    t.join(15)
    n = sent // len(pair)
    c.note(f"{n} empty messages + {n} empty pongs sent")
    tail = received[1]
    if tail.endswith(b"\x81\x03end"):
        c.check("every empty message echoed", received[0] == 2 * n + 5, f"{(received[0] - 5) // 2} of {n}")
    else:
        i = tail.rfind(b"\x88")
        code = struct.unpack("!H", tail[i + 2:i + 4])[0] if i >= 0 and len(tail) >= i + 4 else closed
        c.check("all echoed, or closed with 1008", code == 1008, f"close: {code}, {received[0]} bytes back")
    rawws.hard_close(sock)
    c.finish(rss_bound=SLACK + 8 * MiB, fd_bound=1 + FD_SLACK)


def test_deflate_state_between_messages(case):
    """Finding 9: 2000 deflate connections each send one compressed 40 KB
    text message (enough to fill a 32 KiB window) and stay open. All ask for
    server_no_context_takeover; half offer client_no_context_takeover (the
    client resets its context for every message: the server needs no inflate
    state between messages), half client_max_window_bits=9 (it compresses
    with a 512-byte window: the server's inflater needs no 32 KiB one). So an
    idle connection costs what an idle one does (6 KiB, the Python
    package's target and the largest of the three) plus, for the second
    half, an inflate state with a 512-byte window (8 KiB). Before: a 15-bit
    window always, 40 KB per connection on C."""
    c = case("--deflate")
    s = c.server
    rnd = __import__("random").Random(9)
    text = b" ".join(b"%d" % rnd.randrange(10 ** 6) for _ in range(6000))[:40000]
    offers = [("permessage-deflate; client_no_context_takeover; server_no_context_takeover",
               rawws.deflate_message(text)),
              ("permessage-deflate; client_max_window_bits=9; server_no_context_takeover",
               rawws.deflate_message(text, wbits=9))]
    socks, wrong = [], []
    n = 2000
    for i in range(n):
        offer, body = offers[i % 2]
        sock, r = rawws.connect(s.port, extensions=offer)
        socks.append(sock)
        if "permessage-deflate" not in r.headers:
            wrong.append(f"{offer}: not negotiated")
            break
        sock.sendall(frame(OP_TEXT, body, rsv1=True))
        op, data = r.read_message()
        if r.last_rsv1:
            data = rawws.inflate_message(data)
        if data != text:
            wrong.append(f"{offer}: echo of {len(data)} bytes")
            break
    c.check("deflate negotiated and echoed", not wrong, str(wrong))
    time.sleep(0.5)
    close_all(socks)
    c.finish(rss_bound=SLACK + n * 6 * KiB + n // 2 * 8 * KiB, fd_bound=n + FD_SLACK)


# ------------------------------------------------------- the suite's own

def test_slowloris(case):
    """300 sockets each send one byte of an upgrade request per second for
    12 s. The handshake timeout (10 s by default) counts from the accept,
    not from the last byte, so the server drops every one of them in time."""
    c = case()
    s = c.server
    req = rawws.upgrade_request(s.port)
    socks = open_sockets(s.port, 300)
    dropped = set()
    t_end = time.monotonic() + 12
    i = 0
    while time.monotonic() < t_end:
        for k, sk in enumerate(socks):
            if k in dropped:
                continue
            try:
                sk.send(req[i:i + 1])
                if sk.recv(4096, socket.MSG_DONTWAIT) is not None:
                    dropped.add(k)  # an answer (408/400) or EOF: the server let go
            except BlockingIOError:
                pass
            except OSError:
                dropped.add(k)
        i += 1
        time.sleep(max(0.0, t_end - 12 + i - time.monotonic()))  # round i starts i s in
    c.figures["dropped"] = len(dropped)
    c.check("the server dropped every slow handshake within 12 s", len(dropped) == len(socks),
            f"{len(dropped)}/{len(socks)} dropped")
    close_all(socks)
    c.finish(rss_bound=SLACK + 300 * PER_CONN, fd_bound=300 + FD_SLACK)


def test_handshake_flood(case):
    """1000 complete handshakes at once (under max_handshakes), held for a
    second and reset. Each is a well-behaved client: all get their 101."""
    c = case()
    s = c.server
    socks = open_sockets(s.port, 1000)
    for sk in socks:
        sk.sendall(rawws.upgrade_request(s.port))
    ok = 0
    deadline = time.monotonic() + 15
    for sk in socks:
        try:
            status, _, _ = rawws.read_response(sk, deadline)
            ok += status == 101
        except (OSError, rawws.HandshakeError):
            pass
    c.check("every handshake got 101", ok == len(socks), f"{ok}/{len(socks)}")
    time.sleep(1)
    close_all(socks)
    c.finish(rss_bound=SLACK + 1000 * PER_CONN, fd_bound=1000 + FD_SLACK)


_bombs = {}


def test_deflate_bomb(case):
    """A compressed message of a few hundred KB that inflates to twice the
    server's max message size: the server stops inflating at the limit and
    closes with 1009, holding at most the limit."""
    c = case("--deflate")
    s = c.server
    limit = s.spec["max_size"]
    if limit not in _bombs:
        _bombs[limit] = rawws.deflate_message(b"\0" * (2 * limit), level=9)
    bomb = _bombs[limit]
    c.note(f"{len(bomb) // KiB} KiB inflating to {2 * limit // MiB} MiB")
    sock, r = rawws.connect(s.port, extensions="permessage-deflate")
    assert "permessage-deflate" in r.headers, "deflate not negotiated"
    try:
        sock.sendall(frame(OP_BINARY, bomb, rsv1=True))
    except (ConnectionResetError, BrokenPipeError):
        pass
    code = r.expect_close(10)
    c.figures["close"] = code
    c.check("closed with 1009", code == 1009, f"close: {code}")
    rawws.hard_close(sock)
    # The inflated output grows by doubling up to limit + 1 and is then
    # refused; while the last doubling copies, the half-size buffer is still
    # there: 1.5 x the limit at the peak, never the 2 x the bomb would make.
    c.finish(rss_bound=SLACK + limit * 3 // 2, fd_bound=1 + FD_SLACK)


def test_fragment_flood(case):
    """A text message of up to a million empty fragments (as many as fit in
    4 s), then 1-byte fragments for 4 s or until past the max message size,
    then its last fragment. An empty fragment costs nothing to hold; the
    message is held up to the limit. The server echoes the message whole, or
    closes with 1009 (past the limit) or 1008 (a fragment or time budget)."""
    c = case()
    s = c.server
    sock, r = rawws.connect(s.port)
    sock.sendall(frame(OP_TEXT, b"", fin=False, mask=ZERO_MASK))
    empty = frame(OP_CONT, b"", fin=False, mask=ZERO_MASK)
    one = frame(OP_CONT, b"a", fin=False, mask=ZERO_MASK)
    outcome, n_one = None, 0
    try:
        n_empty = pump(sock, empty * 10000, len(empty), 1_000_000 * len(empty), time.monotonic() + 4,
                       until_reply=True) // len(empty)
        n_one = pump(sock, one * 10000, len(one), (s.spec["max_size"] + 1) * len(one),
                     time.monotonic() + 4, until_reply=True) // len(one)
        c.note(f"{n_empty} empty + {n_one} 1-byte fragments")
        if not select.select([sock], [], [], 0)[0]:  # else the server has answered (closed) already
            sock.sendall(frame(OP_CONT, b"", fin=True, mask=ZERO_MASK))
        op, data = r.read_message(timeout=20)
        outcome = "echo" if (op == OP_TEXT and data == b"a" * n_one) else f"wrong echo ({len(data)} bytes)"
        c.check("the message echoed whole", outcome == "echo" and n_one <= s.spec["max_size"], outcome)
    except rawws.Closed as e:
        outcome = e.code
        c.check("closed with 1008 or 1009", e.code in (1008, 1009), f"close: {e.code}")
    except (ConnectionResetError, BrokenPipeError, socket.timeout) as e:
        outcome = repr(e)
        c.check("echo or a close frame", False, outcome)
    c.figures["close"] = outcome
    rawws.hard_close(sock)
    # The message itself may be held up to the limit (an assembly buffer
    # that grows geometrically: twice its bytes); the empty fragments nothing.
    c.finish(rss_bound=SLACK + 2 * min(n_one, s.spec["max_size"]), fd_bound=1 + FD_SLACK)


RSS_SETTLE_S = 20


def test_connect_close_cycles(case):
    """10,000 connections (4 at a time) that each open, echo one message and
    go, half with a close handshake and half with a reset. Every one is
    served, and afterwards descriptors and RSS are back near baseline."""
    c = case()
    s = c.server
    total, threads = 10_000, 4
    done, errors = [0] * threads, []
    deadline = time.monotonic() + 60

    def run(k):
        for i in range(total // threads):
            if time.monotonic() > deadline:
                errors.append("out of time")
                return
            try:
                sock, r = rawws.connect(s.port)
                sock.sendall(frame(OP_TEXT, b"cycle"))
                op, data = r.read_message()
                if data != b"cycle":
                    errors.append(f"echo {data!r}")
                if i % 2:
                    sock.sendall(rawws.close_frame(1000))
                    r.expect_close(5)
                    sock.close()
                else:
                    rawws.hard_close(sock)
                done[k] += 1
            except (OSError, rawws.Closed, rawws.HandshakeError) as e:
                errors.append(repr(e))
                if len(errors) > 20:
                    return

    ts = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(threads)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join(70)
    c.note(f"{sum(done)} cycles in {time.monotonic() - t0:.1f} s")
    c.check("every cycle served", sum(done) == total and not errors, f"{sum(done)}/{total}, {errors[:3]}")
    # "Back to baseline" is a state to reach, not an instant: V8 returns the
    # young generation the burst grew only when its memory reducer runs, about
    # 12 s after the burst ends (RSS +9.7 MiB until then, -0.6 MiB after). The
    # C and Python servers are back within the first sample.
    settle = time.monotonic()
    after = None
    while s.alive():
        after = s.rss() - c.base_rss
        if after <= SLACK or time.monotonic() - settle > RSS_SETTLE_S:
            break
        time.sleep(0.25)
    if after is not None:
        c.figures["rss_after_mb"] = round(after / MiB, 1)
        c.figures["rss_settle_s"] = round(time.monotonic() - settle, 1)
        c.check(f"RSS back within {SLACK // MiB} MiB of baseline within {RSS_SETTLE_S} s", after <= SLACK,
                f"{after / MiB:.1f} MiB after {time.monotonic() - settle:.1f} s")
    c.finish(rss_bound=SLACK + threads * PER_CONN + 8 * MiB, fd_bound=threads + FD_SLACK)


def test_tls_garbage(case):
    """The servers here are plain ws:// (the C examples have no TLS mode), so
    TLS and random bytes arrive at the HTTP parser: 100 TLS ClientHello
    records and 100 random blocks (1 B-16 KiB). Each gets a clean close
    (an HTTP 4xx or nothing, then EOF) within 3 s, not the handshake timeout."""
    c = case()
    s = c.server
    rnd = __import__("random").Random(11)
    hello = bytes.fromhex("160301") + struct.pack("!H", 512) + bytes.fromhex("010001fc0303") + os.urandom(506)
    wrong = []
    for i in range(200):
        payload = hello if i % 2 == 0 else os.urandom(rnd.randint(1, 16 * KiB))
        if payload[:1].isalpha():  # a random method-like start could wait for its line
            payload = b"\x00" + payload
        sk = socket.socket()
        sk.settimeout(3)
        data = b""
        try:
            sk.connect(("127.0.0.1", s.port))
            sk.sendall(payload)
            while True:
                chunk = sk.recv(65536)
                if not chunk:
                    break
                data += chunk
            if data and not data.startswith(b"HTTP/1.1 4"):
                wrong.append(f"#{i}: answered {data[:30]!r}")
        except socket.timeout:
            wrong.append(f"#{i}: not closed within 3 s")
        except (ConnectionResetError, BrokenPipeError):
            pass  # a reset is a close too
        finally:
            sk.close()
    c.check("every garbage connection closed cleanly", not wrong, f"{len(wrong)} wrong: {wrong[:3]}")
    c.finish(rss_bound=SLACK, fd_bound=2 + FD_SLACK)


def test_invalid_utf8_split(case):
    """UTF-8 is checked across fragment boundaries: "é" split between two
    fragments is echoed; a lead byte whose continuation is invalid in the
    next fragment closes the connection with 1007."""
    c = case()
    s = c.server
    sock, r = rawws.connect(s.port)
    sock.sendall(frame(OP_TEXT, b"caf\xc3", fin=False) + frame(OP_CONT, b"\xa9!", fin=True))
    op, data = r.read_message()
    c.check("a valid split character is echoed", data == "café!".encode(), repr(data))
    sock.sendall(frame(OP_TEXT, b"ok\xc3", fin=False) + frame(OP_CONT, b"\x28", fin=True))
    try:
        r.read_message()
        code = "an echo"
    except rawws.Closed as e:
        code = e.code
    c.figures["close"] = code
    c.check("invalid split character closes with 1007", code == 1007, f"got {code}")
    rawws.hard_close(sock)
    c.finish(rss_bound=SLACK, fd_bound=1 + FD_SLACK)
