#!/usr/bin/env python3
"""Writes the hand-made seed corpora of tests/fuzz (corpus/<target>/), in
each target's input layout (see the comment at the top of fuzz_<target>.cpp).
Deterministic: running it again rewrites the same files. Seeds are small
and valid (or one step from valid), so the fuzzer starts deep in each parser.
Files named found_* are not written here: they are inputs a long libFuzzer
run found that reach code these seeds do not (corpus/server_socketpair: 12
picked from a 10-million-execution run), kept as they are.
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
MASK = b"\x37\xfa\x21\x3d"


def s(b):  # a length-prefixed string
    assert len(b) < 256
    return bytes([len(b)]) + b


def split(data, sizes):  # [n][data][n split sizes]
    return bytes([len(sizes)]) + data + bytes(sizes)


def frame(op, payload, fin=True, rsv1=False, mask=None):
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | op
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        h = bytes([b0, m | n])
    elif n < 65536:
        h = bytes([b0, m | 126]) + struct.pack("!H", n)
    else:
        h = bytes([b0, m | 127]) + struct.pack("!Q", n)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return h + mask + payload
    return h + payload


def deflate(data, wbits=15):
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    z = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert z.endswith(b"\x00\x00\xff\xff")
    return z[:-4]


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


REQUEST = (b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n"
           b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
           b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, permessage-deflate\r\n\r\n")


def handshake_request():
    t = "handshake_request"
    head = bytes([0, 1]) + s(b"superchat, chat") + bytes([0, 0x88])
    write(t, "valid", head + split(REQUEST, []))
    write(t, "valid_split", head + split(REQUEST, [0, 1, 2, 30, 5, 200]))
    write(t, "plain_http", head + split(b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n", []))
    write(t, "bad_version", head + split(REQUEST.replace(b"Version: 13", b"Version: 8"), []))
    write(t, "bad_key", head + split(REQUEST.replace(KEY, b"short=="), []))
    write(t, "repeated_headers", head + split(
        b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10; client_max_window_bits=9\r\n"
        b"\r\n", [3]))
    write(t, "small_limit", bytes([2, 1]) + s(b"chat") + bytes([3, 0x22]) + split(REQUEST, [7]))
    write(t, "frames_after", head + split(REQUEST + frame(1, b"hi", mask=MASK), []))


def handshake_response():
    t = "handshake_response"
    ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + ACCEPT + b"\r\n"
    write(t, "plain", bytes([0, 0, 0]) + s(b"") + split(ok + b"\r\n", []))
    write(t, "protocol", bytes([0, 0, 0]) + s(b"chat, superchat") + split(ok + b"Sec-WebSocket-Protocol: chat\r\n\r\n", [4, 9]))
    write(t, "deflate", bytes([0, 1, 0x88]) + s(b"") + split(
        ok + b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=15\r\n\r\n", []))
    write(t, "deflate_bits", bytes([0, 3, 0x33]) + s(b"") + split(
        ok + b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9; client_no_context_takeover\r\n\r\n", [1]))
    write(t, "frames_after", bytes([0, 0, 0]) + s(b"") + split(ok + b"\r\n" + frame(1, b"hello") + frame(9, b""), []))
    write(t, "refused", bytes([0, 0, 0]) + s(b"") + split(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\nContent-Type: text/plain\r\n\r\nforbidden", [2]))
    write(t, "chunked", bytes([0, 0, 0]) + s(b"") + split(
        b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []))


def pmd_negotiate():
    t = "pmd_negotiate"
    write(t, "defaults", bytes([0, 0x88, 0, 0x88, 0]) + s(b"permessage-deflate; client_max_window_bits") +
          b"permessage-deflate; server_no_context_takeover")
    write(t, "bits", bytes([1, 0x32, 2, 0x43, 1]) +
          s(b"permessage-deflate; server_max_window_bits=10; client_max_window_bits=12, permessage-deflate") +
          b"permessage-deflate; server_max_window_bits=10; client_max_window_bits=9; client_no_context_takeover")
    write(t, "quoted", bytes([3, 0x11, 3, 0x99, 0]) +
          s(b'x-webkit-deflate-frame, permessage-deflate; client_max_window_bits="10"; server_no_context_takeover') +
          b'permessage-deflate; client_max_window_bits="9"')
    write(t, "bad", bytes([0, 0, 0, 0, 1]) + s(b"permessage-deflate; server_max_window_bits=16; foo") +
          b"permessage-deflate, permessage-deflate")
    # Mode bit 8: the server answers by ws's rules (WH_SERVER_WS_DEFLATE_ANSWER).
    write(t, "ws_server", bytes([0, 0x45, 0, 0x88, 8]) +
          s(b"permessage-deflate; server_max_window_bits=9, permessage-deflate; client_max_window_bits=10") +
          b"permessage-deflate; client_max_window_bits=11; server_max_window_bits=12")
    write(t, "ws_server_false", bytes([2, 0, 1, 0x32, 8 | 16 | 32 | 64]) +
          s(b"permessage-deflate; server_no_context_takeover, permessage-deflate; server_max_window_bits=10, "
            b"permessage-deflate; client_max_window_bits=10") +
          b"permessage-deflate; client_no_context_takeover")
    write(t, "ws_server_numbers", bytes([1, 0x99, 0, 0x43, 8 | 2]) +
          s(b'permessage-deflate; server_max_window_bits=0xa; client_max_window_bits="1\\1"; client_no_context_takeover') +
          b"permessage-deflate; server_max_window_bits=1e1")


def inflate():
    t = "inflate"
    text = b"Hello, hello, hello, WebSocket! " * 8
    z = deflate(text)
    msg_raw = bytes([0x80 | 3]) + struct.pack("<H", 4096) + struct.pack("<H", len(z)) + z
    msg_known = bytes([0x40 | 0x80 | 3]) + struct.pack("<H", 4096) + struct.pack("<H", len(text)) + text
    msg_small = bytes([0x80 | 2, 10]) + struct.pack("<H", len(z)) + z
    write(t, "raw", bytes([7, 0]) + split(msg_raw, []))
    write(t, "raw_split", bytes([7, 1]) + split(msg_raw + msg_raw, [0, 3, 1, 17]))
    write(t, "known", bytes([7, 0]) + split(msg_known + msg_known, [5]))
    write(t, "too_big", bytes([7, 0]) + split(msg_small + msg_raw, []))
    bomb = deflate(b"\0" * 200000)
    write(t, "bomb", bytes([7, 1]) + split(bytes([0x80 | 4, 1]) + struct.pack("<H", len(bomb)) + bomb, [200, 250]))
    final = zlib.compressobj(6, zlib.DEFLATED, -15)
    zf = final.compress(b"final block") + final.flush(zlib.Z_FINISH)
    write(t, "bfinal", bytes([7, 0]) + split(bytes([0x80 | 3]) + struct.pack("<H", 100) + struct.pack("<H", len(zf)) +
                                             zf + msg_raw, []))
    z9 = deflate(text, 9)
    write(t, "window9", bytes([1, 0]) + split(bytes([0x80 | 3]) + struct.pack("<H", 4096) + struct.pack("<H", len(z9)) + z9, []))


def url():
    t = "url"
    for name, u in [("ws", b"ws://example.com/chat?x=1"), ("wss_port", b"wss://example.com:8443/"),
                    ("ipv6", b"ws://[::1]:9001/path"), ("userinfo", b"ws://user:pw@host:80"),
                    ("query_only", b"wss://h?q"), ("unix", b"ws+unix:///tmp/sock:/chat?room=1"),
                    ("bad_scheme", b"http://example.com/"), ("bad_port", b"ws://h:65536/"),
                    ("fragment", b"ws://h/#frag")]:
        write(t, name, u)


def protocol():
    t = "protocol"
    # [flags][max][dflags][bits][budget][behaviour][n][wire][splits]
    def head(flags, mx=7, dflags=0, bits=0x77, budget=0, behaviour=b""):
        return bytes([flags, mx, dflags, bits, budget]) + s(behaviour)
    srv = (frame(1, "héllo wörld".encode(), mask=MASK) + frame(2, bytes(range(200)), mask=MASK) +
           frame(9, b"ping", mask=MASK) + frame(10, b"", mask=MASK) +
           frame(1, b"frag", fin=False, mask=MASK) + frame(9, b"mid", mask=MASK) + frame(0, b"ment", mask=MASK) +
           frame(8, struct.pack("!H", 1000) + b"bye", mask=MASK))
    write(t, "server", head(0) + split(srv, []))
    write(t, "server_split", head(0, behaviour=b"\0\1\0") + split(srv, [0, 1, 2, 3, 13, 40]))
    cli = frame(1, b"hello") + frame(2, b"\0" * 300) + frame(9, b"p") + frame(8, b"")
    write(t, "client", head(1) + split(cli, [1]))
    text = b"compressed text, compressed text, compressed text"
    z = deflate(text)
    zc = deflate(b"\0" * 5000)
    pmd_srv = (frame(1, z, rsv1=True, mask=MASK) + frame(2, zc[:10], fin=False, rsv1=True, mask=MASK) +
               frame(0, zc[10:], mask=MASK) + frame(1, b"plain", mask=MASK))
    write(t, "server_deflate", head(2, dflags=3) + split(pmd_srv, []))
    write(t, "server_deflate_ctx", head(2 | 8, dflags=0) + split(pmd_srv + pmd_srv, [0, 5]))
    pmd_cli = frame(1, z, rsv1=True) + frame(2, zc, rsv1=True) + frame(8, struct.pack("!H", 1001))
    write(t, "client_deflate", head(3, dflags=1) + split(pmd_cli, [2]))
    big = frame(2, bytes(100000), mask=MASK)
    write(t, "large_window", head(8 | 16, mx=4) + split(big, [0xff, 0xff, 0xf0]))
    write(t, "too_big", head(0, mx=2) + split(frame(2, bytes(200), mask=MASK), []))
    write(t, "budget", head(0, budget=1) + split(frame(1, b"x", fin=False, mask=MASK) + frame(0, bytes(1000), mask=MASK), [7]))
    write(t, "bad_utf8", head(0) + split(frame(1, b"\xce", fin=False, mask=MASK) + frame(0, b"\xbaok", mask=MASK), []))
    write(t, "skip_utf8", head(4) + split(frame(1, b"\xff\xfe", mask=MASK), []))
    write(t, "host_payload", head(16) + split(frame(2, bytes(range(256)) * 4, mask=MASK) + frame(1, b"ok", mask=MASK), []))


def server_socketpair():
    t = "server_socketpair"
    msgs = (frame(1, b"hello", mask=MASK) + frame(9, b"ping", mask=MASK) + frame(2, bytes(300), mask=MASK) +
            frame(8, struct.pack("!H", 1000), mask=MASK))
    write(t, "plain", bytes([0]) + split(msgs, []))
    write(t, "plain_echo_split", bytes([4]) + split(msgs, [0, 1, 5, 20]))
    z = deflate(b"compress me " * 20)
    write(t, "deflate", bytes([1 | 4]) + split(frame(1, z, rsv1=True, mask=MASK) + msgs, []))
    write(t, "garbage", bytes([0]) + split(b"\xff\xff\xff\xff", []))
    write(t, "no_close", bytes([0]) + split(frame(1, b"x", fin=False, mask=MASK), []))
    req = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    write(t, "own_head", bytes([2]) + s(req) + split(frame(1, b"hi", mask=MASK), []))
    write(t, "own_head_partial", bytes([2]) + s(req[:40]) + split(req[40:] + frame(1, b"hi", mask=MASK), [9]))
    write(t, "bad_head", bytes([2]) + s(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n") + split(b"", []))


for f in (handshake_request, handshake_response, pmd_negotiate, inflate, url, protocol, server_socketpair):
    f()
