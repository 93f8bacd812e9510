"""Just enough RFC 6455 over raw sockets to attack a server and to probe it.

The attacker must be able to send what no WebSocket library would (a length
it never completes, a million empty fragments, pings it never reads the
answers to), so frames are built by hand here. Standard library only.
"""
import base64
import os
import socket
import struct
import time
import zlib

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
ZERO_MASK = b"\0\0\0\0"  # a legal masking key that leaves the payload as is: floods are built fast


def frame(opcode, payload=b"", fin=True, rsv1=False, mask=None, length=None):
    """One client frame. `length` announces a different payload length than
    the bytes given (the header of a frame whose payload never comes);
    `mask` is the 4-byte key (random if None)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    key = os.urandom(4) if mask is None else mask
    if key == ZERO_MASK or not payload:
        return head + key + payload
    # XOR the whole payload at once with the key repeated over its length.
    rep = (key * (len(payload) // 4 + 1))[: len(payload)]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(rep, "big")).to_bytes(len(payload), "big")
    return head + key + masked


def close_frame(code, reason=b""):
    return frame(OP_CLOSE, struct.pack("!H", code) + reason)


def deflate_message(data, level=9, wbits=15):
    """permessage-deflate payload of one message (RFC 7692 7.2.1: the final
    empty stored block's 00 00 ff ff is removed), with a fresh context."""
    c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate_message(payload):
    """A compressed message from the server (its own context, any window)."""
    return zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")


def upgrade_request(port, path="/", extensions=None, extra=""):
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


class HandshakeError(Exception):
    pass


def read_response(sock, deadline):
    """Reads an HTTP response head; returns (status, headers text, bytes after it)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise HandshakeError(f"connection closed during the handshake after {buf[:80]!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    status_line, _, headers = head.decode("latin-1").partition("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise HandshakeError(f"bad status line {status_line!r}")
    return int(parts[1]), headers, rest


def connect(port, path="/", extensions=None, timeout=5.0, rcvbuf=None, nodelay=True):
    """A WebSocket connection (after its 101): returns (socket, Reader)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:  # before connect, so the window is small from the start
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    deadline = time.monotonic() + timeout
    try:
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        sock.sendall(upgrade_request(port, path, extensions))
        status, headers, rest = read_response(sock, deadline)
        if status != 101:
            raise HandshakeError(f"status {status}")
    except BaseException:
        sock.close()
        raise
    r = Reader(sock, rest)
    r.headers = headers
    return sock, r


class Closed(Exception):
    """The peer's close frame (code, reason) or EOF (code None)."""

    def __init__(self, code, reason=b""):
        super().__init__(f"closed: {code} {reason!r}")
        self.code = code
        self.reason = reason


class Reader:
    """Reads server frames from a socket."""

    def __init__(self, sock, initial=b""):
        self.sock = sock
        self.buf = bytearray(initial)
        self.headers = ""
        self.last_rsv1 = False  # whether the last message read was compressed

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("read deadline")
        self.sock.settimeout(left)
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise Closed(None)
        self.buf += chunk

    def read_frame(self, timeout=5.0):
        """(fin, rsv1, opcode, payload); a close frame raises Closed."""
        deadline = time.monotonic() + timeout
        while True:
            b = self.buf
            if len(b) >= 2:
                n = b[1] & 0x7F
                off = 2
                if n == 126:
                    off = 4
                    n = struct.unpack_from("!H", b, 2)[0] if len(b) >= 4 else None
                elif n == 127:
                    off = 10
                    n = struct.unpack_from("!Q", b, 2)[0] if len(b) >= 10 else None
                if n is not None and len(b) >= off + n:
                    fin, rsv1, op = bool(b[0] & 0x80), bool(b[0] & 0x40), b[0] & 0x0F
                    payload = bytes(b[off:off + n])
                    del b[:off + n]
                    if op == OP_CLOSE:
                        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                        raise Closed(code, payload[2:])
                    return fin, rsv1, op, payload
            self._fill(deadline)

    def read_message(self, timeout=5.0, on_ping=None):
        """A whole data message (opcode, payload); pings are answered (or
        passed to on_ping), pongs skipped."""
        deadline = time.monotonic() + timeout
        parts, op0 = [], None
        while True:
            fin, rsv1, op, payload = self.read_frame(max(0.001, deadline - time.monotonic()))
            if op == OP_PING:
                if on_ping:
                    on_ping(payload)
                else:
                    self.sock.sendall(frame(OP_PONG, payload))
                continue
            if op == OP_PONG:
                continue
            if op != OP_CONT:
                op0 = op
                self.last_rsv1 = rsv1
            parts.append(payload)
            if fin:
                return op0, b"".join(parts)

    def expect_close(self, timeout=5.0):
        """Reads (and drops) data until the peer's close frame; returns its
        code, or None on EOF/reset without one."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.read_frame(max(0.001, deadline - time.monotonic()))
        except Closed as c:
            return c.code
        except (ConnectionResetError, BrokenPipeError):
            return None


def hard_close(sock):
    """Close with a RST (SO_LINGER 0): no TIME_WAIT piling up in the churn cases."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()
