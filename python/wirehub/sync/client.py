"""A blocking WebSocket client for scripts and tests.

::

    from wirehub.sync.client import connect

    with connect("ws://127.0.0.1:8765/") as ws:
        ws.send("hello")
        print(ws.recv(timeout=5))

Each connection owns a small engine hub (one I/O thread); the calling thread
waits on the hub's event descriptor, so no Python thread is started. Use one
connection from one thread at a time. The I/O thread keeps reading while the
application does not call ``recv()``, until ``max_queue`` messages wait
unread (16 by default, as in python-websockets); it resumes once they are
down to the low-water mark (a quarter of it).
"""
from __future__ import annotations

import collections
import select
import threading
import time
from typing import Any, Deque, Iterator, Optional, Sequence, Union

from .. import _wirehub as _native
from .._runtime import limit_options, queue_marks, strerror
from .._tls import client_tls_options
from ..client import handshake_error
from ..exceptions import (ConnectionClosed, ConnectionClosedError, ConnectionClosedOK,
                          InvalidURI, PayloadTooBig, WebSocketException, _ClosedTooBig)
from ..http import Headers, HeadersLike, Response
from ..uri import basic_auth, parse_uri

__all__ = ["connect", "ClientConnection"]

Data = Union[str, bytes]


def _ms(seconds: Optional[float]) -> int:
    return max(1, int(seconds * 1000)) if seconds else 0


class ClientConnection:
    """A blocking client connection: ``send()``, ``recv(timeout)``, iteration, ``close()``."""

    def __init__(self) -> None:
        self._hub: Any = None
        self._native: Any = None
        self._messages: Deque[Data] = collections.deque()
        # Pongs arrive (the binding delivers them) only while a ping() waits.
        self._pongs: Deque[bytes] = collections.deque()
        self._pings = 0
        self._ping_lock = threading.Lock()
        self._open = False
        self._closed = False
        self._drained = True
        self.close_code: Optional[int] = None
        """Close code once closed."""
        self.close_reason: Optional[str] = None
        """Close reason once closed."""
        self._close_error = 0
        self._close_info: tuple = (0, "", b"", None)
        self.subprotocol: Optional[str] = None
        """Negotiated subprotocol or None."""
        self.remote_address: Optional[tuple] = None
        """The server's (host, port)."""
        self.local_address: Optional[tuple] = None
        """This end's (host, port), as the socket got it."""
        self.response: Optional[Response] = None
        """The server's handshake response (101 and its headers) once open."""
        self._lock = threading.Lock()

    # -- engine events (called from _pump on the caller's thread)
    def _on_message(self, message: Data) -> None:
        self._messages.append(message)

    def _on_event(self, ev: tuple) -> None:
        kind = ev[0]
        if kind == _native.EV_OPEN:
            self._open = True
            if ev[3] is not None:
                self.response = Response(101, ev[4], Headers.from_block(ev[3]))
            self.subprotocol = self._native.subprotocol or None
            self.remote_address = self._native.remote_address
            self.local_address = self._native.local_address
        elif kind == _native.EV_CLOSE:
            self._closed = True
            self._open = False
            self.close_code, self.close_reason, self._close_error = ev[2], ev[3], ev[4]
            self._close_info = (ev[5], ev[6], ev[7], ev[8])
        elif kind == _native.EV_DRAIN:
            self._drained = True
        elif kind == _native.EV_PONG:
            self._pongs.append(ev[2])

    def _pump(self, timeout: Optional[float]) -> None:
        hub = self._hub
        if hub is None or hub.closed:
            return
        r, _, _ = select.select([hub.fd], [], [], timeout)
        if not r:
            return
        while True:
            batch = hub.poll(1024)
            for ev in batch:
                if len(ev) < 2 or ev[1] is None:
                    continue
                if ev[0] == _native.EV_MESSAGE:
                    self._on_message(ev[2])
                else:
                    self._on_event(ev)
            if not hub.more:
                return

    def _wait(self, cond, timeout: Optional[float]) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not cond():
            if deadline is None:
                self._pump(None)
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._pump(left)
        return True

    def _closed_exc(self) -> ConnectionClosed:
        code = self.close_code if self.close_code is not None else 1006
        reason = self.close_reason or ""
        detail = strerror(self._close_error) if self._close_error else ""
        if self._close_error == _native.ETOOBIG:
            return _ClosedTooBig(code, reason, detail)
        if code == 1009:  # the peer refused one of our messages as too big
            return _ClosedTooBig(code, reason, "the peer's maximum message size was exceeded")
        if not self._close_error and code in (1000, 1001, 1005):
            return ConnectionClosedOK(code, reason)
        return ConnectionClosedError(code, reason, detail)

    # -- public API
    def recv(self, timeout: Optional[float] = None, decode: Optional[bool] = None) -> Data:
        """Return the next message (``str`` or ``bytes``).

        ``TimeoutError`` if none arrives within ``timeout`` seconds;
        :class:`ConnectionClosed` once closed and drained.
        """
        with self._lock:
            self._wait(lambda: bool(self._messages) or self._closed, timeout)
            if self._messages:
                msg = self._messages.popleft()
                hub = self._hub
                if hub is not None and hub.consumed() and not self._closed:
                    self._native.resume()
                if decode is True and isinstance(msg, bytes):
                    return msg.decode()
                if decode is False and isinstance(msg, str):
                    return msg.encode()
                return msg
            if self._closed:
                raise self._closed_exc()
            raise TimeoutError(f"no message within {timeout} s")

    def __iter__(self) -> Iterator[Data]:
        """Iterate over messages until the connection closes normally."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosedOK:
                return

    def send(self, message: Union[Data, Sequence[Data]], text: Optional[bool] = None) -> None:
        """Send ``str`` as text, bytes as binary; a list of them as one fragmented message.

        Blocks while the send buffer is above its high-water mark.
        """
        if self._closed:
            raise self._closed_exc()
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            parts = [message]
        elif isinstance(message, dict):
            raise TypeError("data is a dict-like object")
        else:
            parts = list(message)
            if not parts:
                return
        first_kind = type(parts[0]) is str
        for i, part in enumerate(parts):
            if not isinstance(part, (str, bytes, bytearray, memoryview)):
                raise TypeError(f"message must be str or bytes, not {type(part).__name__}")
            if (type(part) is str) != first_kind:
                raise TypeError("all fragments of a message must be of the same type")
            flags = _native.MORE if i < len(parts) - 1 else 0
            if i == 0:
                if text is None:
                    flags |= _native.TEXT if first_kind else _native.BINARY
                else:
                    flags |= _native.TEXT if text else _native.BINARY
            rc = self._native.send(part, flags)
            if rc == _native.QUEUED:
                self._drained = False
                with self._lock:
                    self._wait(lambda: self._drained or self._closed, None)
            elif rc < 0:
                if rc == _native.ECLOSED:
                    with self._lock:
                        self._wait(lambda: self._closed, 10)
                    raise self._closed_exc()
                if rc == _native.EDROPPED:
                    raise PayloadTooBig(strerror(rc))
                raise WebSocketException(f"send failed: {strerror(rc)}")

    def ping(self, data: bytes = b"", timeout: Optional[float] = 10) -> bool:
        """Send a ping and wait up to ``timeout`` for its pong; True if it came."""
        payload = data.encode() if isinstance(data, str) else bytes(data)
        with self._ping_lock:
            self._pings += 1
            self._native.want_pongs = self._pings
        try:
            rc = self._native.ping(payload)
            if rc < 0:
                if self._closed or rc == _native.ECLOSED:
                    raise self._closed_exc()
                raise WebSocketException(f"ping failed: {strerror(rc)}")
            with self._lock:
                return self._wait(lambda: payload in self._pongs or self._closed, timeout) and payload in self._pongs
        finally:
            with self._ping_lock:
                self._pings -= 1
                self._native.want_pongs = self._pings
                if self._pings:
                    try:
                        self._pongs.remove(payload)
                    except ValueError:
                        pass
                else:
                    self._pongs.clear()

    def close(self, code: int = 1000, reason: str = "", timeout: float = 10) -> None:
        """Close with ``code`` / ``reason``, wait up to ``timeout`` for the handshake, free the hub."""
        if self._hub is None:
            return
        if not self._closed:
            rc = self._native.close(code, reason)
            if rc in (_native.ECLOSECODE, _native.EINVAL):
                raise ValueError(f"invalid close code {code} or reason")
            # The server's close frame must be read even with the queue full.
            if self._hub.stop_pausing():
                self._native.resume()
            with self._lock:
                self._wait(lambda: self._closed, timeout)
        hub, self._hub = self._hub, None
        hub.destroy(200)

    def __enter__(self) -> "ClientConnection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        hub = getattr(self, "_hub", None)
        if hub is not None:
            try:
                hub.destroy(0)
            except Exception:
                pass


def connect(uri: str, *, additional_headers: Optional[HeadersLike] = None, origin: Optional[str] = None,
            subprotocols: Optional[Sequence[str]] = None, compression: Optional[str] = "deflate",
            max_size: Optional[int] = 2 ** 20, open_timeout: Optional[float] = 10,
            ping_interval: Optional[float] = 20, ping_timeout: Optional[float] = 20,
            close_timeout: Optional[float] = 10, ssl: Any = None, server_hostname: Optional[str] = None,
            user_agent_header: Optional[str] = "wirehub/" + _native.version(),
            max_queue: "Optional[int | tuple[int, int]]" = 16, idle_timeout: Optional[float] = None,
            message_timeout: Optional[float] = None) -> ClientConnection:
    """Open a blocking WebSocket connection; same options and errors as :func:`wirehub.connect`."""
    if compression not in (None, "deflate"):
        raise ValueError(f"unsupported compression: {compression!r}")
    high, low = queue_marks(max_queue)
    parsed = parse_uri(uri)
    headers = Headers(additional_headers or ())
    if user_agent_header and "User-Agent" not in headers:
        headers["User-Agent"] = user_agent_header
    if parsed.user_info and "Authorization" not in headers:
        headers["Authorization"] = basic_auth(parsed.user_info)
    opts = {
        "headers": headers.serialize(),
        "subprotocols": ", ".join(subprotocols) if subprotocols else None,
        "origin": origin,
        "max_size": int(max_size) if max_size is not None else 2 ** 62,
        "handshake_timeout_ms": _ms(open_timeout),
        "ping_interval_ms": _ms(ping_interval),
        "ping_timeout_ms": _ms(ping_timeout) if ping_interval else 0,
        "close_timeout_ms": _ms(close_timeout),
        "deflate": compression == "deflate",
        **limit_options(idle_timeout=idle_timeout, message_timeout=message_timeout),
    }
    if parsed.secure:
        opts.update(client_tls_options(ssl, server_hostname))
    conn = ClientConnection()
    conn._hub = _native.Hub(1, queue_high=high, queue_low=low)
    rc, native = conn._hub.connect(conn, parsed.url(), opts)
    if rc < 0:
        conn._hub.destroy(0)
        conn._hub = None
        if rc == _native.EURL:
            raise InvalidURI(uri, strerror(rc))
        raise handshake_error(uri, rc, 0, "", b"")
    conn._native = native
    limit = (open_timeout + 5) if open_timeout else None
    conn._wait(lambda: conn._open or conn._closed, limit)
    if conn._open or conn.subprotocol is not None or conn.remote_address is not None:
        return conn  # opened (maybe closed since: its messages are still readable)
    hub, conn._hub = conn._hub, None
    if not conn._closed:
        hub.destroy(0)
        raise TimeoutError(f"cannot connect to {uri}: timed out during the opening handshake")
    hub.destroy(0)
    status, hdrs, body, reason_phrase = conn._close_info
    raise handshake_error(uri, conn._close_error, status, hdrs, body, conn.close_reason or "", reason_phrase)
