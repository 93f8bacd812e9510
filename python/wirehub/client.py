"""asyncio WebSocket client: :func:`connect` and :class:`ClientConnection`."""
from __future__ import annotations

import asyncio
import errno
import logging
import random
import ssl as _ssl
from typing import Any, AsyncIterator, Generator, Optional, Sequence

from . import _wirehub as _native
from ._runtime import Runtime, get_runtime, limit_options, queue_marks, strerror
from ._tls import client_tls_options
from .connection import Connection, State
from .exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from .http import Headers, HeadersLike, Response
from .uri import WebSocketURI, basic_auth, parse_uri

__all__ = ["connect", "ClientConnection"]

logger = logging.getLogger("wirehub.client")


def _ms(seconds: Optional[float]) -> int:
    if not seconds:
        return 0
    if seconds < 0:
        raise ValueError("timeouts and intervals must not be negative")
    return max(1, int(seconds * 1000))


class ClientConnection(Connection):
    """The client side of a WebSocket connection (returned by :func:`connect`)."""

    def __init__(self, runtime: Runtime, uri: WebSocketURI, max_queue: "Optional[int | tuple[int, int]]") -> None:
        super().__init__(runtime, max_queue=max_queue, logger=logger)
        self.uri = uri
        """The parsed URI this connection was opened to."""
        self.response: Optional[Response] = None
        """The server's handshake response: its 101 and headers once open, or
        the refusal of a refused handshake."""
        self._released = False

    def _on_handshake_headers(self, block: str, reason_phrase: Optional[str]) -> None:
        self.response = Response(101, reason_phrase, Headers.from_block(block))

    def _after_close(self) -> None:
        if not self._released:
            self._released = True
            self._runtime.release()


def handshake_error(uri: str, err: int, status: int, headers: str, body: bytes, reason: str = "",
                    reason_phrase: Optional[str] = None) -> Exception:
    """The exception for a connection that closed before it opened."""
    where = f"cannot connect to {uri}"
    if err == _native.ESTATUS:
        return InvalidStatus(Response(status, reason_phrase, Headers.from_block(headers), body))
    if err == _native.ECONNREFUSED:
        return ConnectionRefusedError(errno.ECONNREFUSED, f"{where}: {strerror(err)}")
    if err == _native.ERESOLVE:
        return OSError(errno.EHOSTUNREACH, f"{where}: {strerror(err)}")
    if err == _native.ETIMEDOUT:
        return TimeoutError(f"{where}: timed out during the opening handshake")
    if err == _native.ETLS:
        return _ssl.SSLError(f"{where}: TLS handshake failed ({strerror(err)})")
    if err in (_native.ERESET, _native.EIO):
        return ConnectionResetError(errno.ECONNRESET, f"{where}: {strerror(err)}")
    if err == _native.EADDR:
        return OSError(errno.EADDRNOTAVAIL, f"{where}: {strerror(err)}")
    if err == _native.EMFILE:
        return OSError(errno.EMFILE, f"{where}: {strerror(err)}")
    what = strerror(err) if err else "connection closed during the handshake"
    if reason and reason != what:
        what += f": {reason}"
    return InvalidHandshake(f"{where}: {what}")


class connect:
    """Open a WebSocket connection to ``uri`` (``ws://`` or ``wss://``).

    ``ws = await connect(uri)``, ``async with connect(uri) as ws:``, or
    ``async for ws in connect(uri):`` which reconnects with exponential
    backoff after connection failures (refused, reset, timeouts, 5xx).

    Options (as in python-websockets): ``additional_headers``, ``origin``,
    ``subprotocols``, ``compression`` ("deflate" or None), ``max_size``,
    ``max_queue``, ``open_timeout``, ``ping_interval`` / ``ping_timeout``,
    ``close_timeout``, ``ssl`` (``ssl.SSLContext``: CERT_NONE disables
    verification; a :class:`wirehub.SSLContext` with ``load_verify_locations``
    trusts that CA), ``server_hostname``, ``user_agent_header``. And
    wirehub's ``idle_timeout`` (seconds with nothing from the server before
    closing with 1001; None = off) and ``message_timeout`` (seconds a begun
    message may take, else 1008; None = 60, 0 = off).

    Errors: :class:`InvalidURI` (bad URI), ``OSError`` subclasses
    (``ConnectionRefusedError``, ...) when the host cannot be reached,
    :class:`InvalidStatus` when the server refuses the upgrade,
    ``TimeoutError`` after ``open_timeout``, :class:`InvalidHandshake` otherwise.
    """

    def __init__(self, uri: str, *,
                 additional_headers: Optional[HeadersLike] = None,
                 origin: Optional[str] = None,
                 subprotocols: Optional[Sequence[str]] = None,
                 compression: Optional[str] = "deflate",
                 max_size: Optional[int] = 2 ** 20,
                 max_queue: "Optional[int | tuple[int, int]]" = 16,
                 open_timeout: Optional[float] = 10,
                 ping_interval: Optional[float] = 20,
                 ping_timeout: Optional[float] = 20,
                 close_timeout: Optional[float] = 10,
                 ssl: Any = None,
                 server_hostname: Optional[str] = None,
                 user_agent_header: Optional[str] = "wirehub/" + _native.version(),
                 write_limit: Optional[int] = None,
                 backoff_initial: float = 1.0,
                 backoff_min: float = 0.5,
                 backoff_factor: float = 1.618,
                 backoff_max: float = 30.0,
                 logger: Optional[logging.Logger] = None,
                 idle_timeout: Optional[float] = None,
                 message_timeout: Optional[float] = None) -> None:
        if compression not in (None, "deflate"):
            raise ValueError(f"unsupported compression: {compression!r} (use 'deflate' or None)")
        self.uri = uri
        self._open_timeout = open_timeout
        queue_marks(max_queue)  # refuse a bad value now, not at the connection
        self._max_queue = max_queue
        self._ssl = ssl
        self.logger = logger or globals()["logger"]
        headers = Headers(additional_headers or ())
        if user_agent_header and "User-Agent" not in headers:
            headers["User-Agent"] = user_agent_header
        self._headers = headers
        self._options = {
            "subprotocols": ", ".join(subprotocols) if subprotocols else None,
            "origin": origin,
            "max_size": int(max_size) if max_size is not None else 2 ** 62,
            "handshake_timeout_ms": _ms(open_timeout),
            "ping_interval_ms": _ms(ping_interval),
            "ping_timeout_ms": _ms(ping_timeout) if ping_interval else 0,
            "close_timeout_ms": _ms(close_timeout),
            "high_water": int(write_limit) if write_limit else 0,
            "deflate": compression == "deflate",
            **limit_options(idle_timeout=idle_timeout, message_timeout=message_timeout),
        }
        self._server_hostname = server_hostname
        self._backoff = (backoff_initial, backoff_min, backoff_factor, backoff_max)
        self._conn: Optional[ClientConnection] = None

    async def _create(self) -> ClientConnection:
        try:
            parsed = parse_uri(self.uri)
        except InvalidURI as exc:
            self.logger.info("%s", exc)
            raise
        if self._ssl and not parsed.secure:
            raise InvalidURI(self.uri, "ssl argument is incompatible with a ws:// URI")
        opts = dict(self._options)
        headers = Headers(self._headers)
        if parsed.user_info and "Authorization" not in headers:
            headers["Authorization"] = basic_auth(parsed.user_info)
        try:
            opts["headers"] = headers.serialize()
        except ValueError as exc:
            raise InvalidHandshake(f"invalid additional header: {exc}") from None
        if parsed.secure:
            opts.update(client_tls_options(self._ssl, self._server_hostname))
        rt = get_runtime()
        conn = ClientConnection(rt, parsed, self._max_queue)
        rt.acquire()
        rc, native = rt.native.connect(conn, parsed.url(), opts)
        if rc < 0:
            conn._released = True
            rt.release()
            exc = InvalidURI(self.uri, strerror(rc)) if rc == _native.EURL else handshake_error(self.uri, rc, 0, "", b"")
            self.logger.info("%s", exc)
            raise exc
        conn._native = native
        done = {conn._opened, conn._closed}
        try:
            # The engine enforces open_timeout; this bound is a safety net.
            finished, _ = await asyncio.wait(done, timeout=(self._open_timeout + 5) if self._open_timeout else None,
                                             return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            native.terminate()
            raise
        if conn._opened.done():
            return conn  # even if already closed: what it received is still readable
        if conn.state != State.CLOSED:
            native.terminate()
            raise TimeoutError(f"cannot connect to {self.uri}: timed out during the opening handshake")
        exc = handshake_error(self.uri, conn._close_error, conn._close_status, conn._close_headers, conn._close_body,
                              conn.close_reason or "", conn._close_reason_phrase)
        if isinstance(exc, InvalidStatus):
            conn.response = exc.response
        self.logger.info("%s", exc)
        raise exc

    # ------------------------------------------------------ ways of using it
    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._create().__await__()

    async def __aenter__(self) -> ClientConnection:
        self._conn = await self._create()
        return self._conn

    async def __aexit__(self, *exc: Any) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def __aiter__(self) -> AsyncIterator[ClientConnection]:
        initial, low, factor, high = self._backoff
        delay = random.random() * initial
        while True:
            try:
                conn = await self._create()
            except Exception as exc:
                if not _retryable(exc):
                    raise
                self.logger.info("connect to %s failed (%s); retrying in %.1f s", self.uri, exc, delay)
                await asyncio.sleep(delay)
                delay = min(max(delay * factor, low), high)
                continue
            delay = random.random() * initial
            try:
                yield conn
            finally:
                await conn.close()


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, InvalidStatus):
        return exc.response.status_code >= 500
    if isinstance(exc, InvalidURI):
        return False
    return isinstance(exc, (OSError, TimeoutError, asyncio.TimeoutError, InvalidHandshake))
