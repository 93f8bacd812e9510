"""asyncio WebSocket server: :func:`serve`, :class:`Server`, :class:`ServerConnection`."""
from __future__ import annotations

import asyncio
import errno
import functools
import http
import inspect
import logging
import ssl as _ssl
from typing import Any, Awaitable, Callable, Generator, Iterable, Optional, Sequence, Set, Union

from . import _wirehub as _native
from ._runtime import (EV_ERROR, EV_HTTP, EV_SERVER_CLOSED, EV_UPGRADE, get_runtime, limit_options, queue_marks,
                       strerror)
from ._tls import server_tls_files
from .broker import BrokerStats, broker_options, reason as _broker_reason, redact_url
from .connection import Connection, Data, State
from .exceptions import BrokerError, ConnectionClosed
from .http import Headers, Request, Response

_ECLOSED = _native.ECLOSED

__all__ = ["serve", "Server", "ServerConnection", "Listener", "broadcast"]

logger = logging.getLogger("wirehub.server")

Handler = Callable[["ServerConnection"], Awaitable[Any]]
ProcessRequest = Callable[["ServerConnection", Request], Union[Optional[Response], Awaitable[Optional[Response]]]]
SelectSubprotocol = Callable[["ServerConnection", Sequence[str]], Optional[str]]

# Headers the engine writes itself on an HTTP answer.
_ENGINE_HEADERS = {"content-length", "connection", "transfer-encoding"}


def _ms(seconds: Optional[float]) -> int:
    if seconds is None:
        return 0
    if seconds < 0:
        raise ValueError("timeouts and intervals must not be negative")
    return max(1, int(seconds * 1000)) if seconds > 0 else 0


class ServerConnection(Connection):
    """The server side of one WebSocket connection, passed to the handler.

    ``request`` is the upgrade request (``request.path``, ``request.headers``).
    """

    def __init__(self, server: "Server", request: Request) -> None:
        super().__init__(server._runtime, max_queue=server._max_queue, logger=logger)
        self.server = server
        """The :class:`Server` this connection belongs to."""
        self.request: Request = request
        """The HTTP upgrade request: ``path``, ``headers``, ``query``."""
        self.response: Optional[Response] = None
        self._addresses = (request.remote_address, None)
        self._task: Optional[asyncio.Task] = None

    def respond(self, status: Union[int, http.HTTPStatus], text: str) -> Response:
        """A plain-text :class:`Response` for ``process_request`` to return."""
        return Response(int(status), None, Headers([("Content-Type", "text/plain; charset=utf-8")]), text.encode())

    def _on_open(self) -> None:
        super()._on_open()
        self.server._on_connection_open(self)

    def _after_close(self) -> None:
        self.server._on_connection_close(self)


class Listener:
    """Callback-style handling: pass an instance to :func:`serve` instead of a
    handler coroutine.

    No task runs per connection: the engine's dispatch calls these methods
    directly, on the event loop's thread, as each event arrives, so a message
    costs no task switch (picows' style; the fastest this API offers). They
    must not block; send with :meth:`Connection.send_nowait` (or
    :func:`broadcast`, :meth:`Server.publish`), close with
    ``asyncio.ensure_future(ws.close())`` or :meth:`Connection.terminate`.
    Messages do not queue, so ``recv()`` and ``async for`` raise
    :class:`ConcurrencyError` on these connections. A method that raises closes
    its connection with 1011 (logged); the server keeps serving.
    """

    def on_open(self, ws: "ServerConnection") -> None:
        """The handshake completed; ``ws`` is open."""

    def on_message(self, ws: "ServerConnection", message: Data) -> None:
        """A whole message arrived: ``str`` for text, ``bytes`` for binary."""

    def on_close(self, ws: "ServerConnection") -> None:
        """``ws`` closed (``ws.close_code``, ``ws.close_reason``)."""


class _ConnectionSet(set):
    """``Server.connections``: a set that knows its server, so that
    ``broadcast(server.connections, msg)`` frames the message once in the engine."""

    __slots__ = ("_server",)


class Server:
    """A listening WebSocket server (returned by ``await serve(...)`` or ``async with serve(...)``).

    ``connections`` is the set of open connections, ``port`` the bound port.
    ``close()`` stops accepting and closes every connection with 1001;
    ``wait_closed()`` waits until that is done and every handler has returned.
    """

    def __init__(self, handler: Union[Handler, Listener], host: Optional[str], port: Optional[int], *,
                 subprotocols: Optional[Sequence[str]] = None,
                 select_subprotocol: Optional[SelectSubprotocol] = None,
                 process_request: Optional[ProcessRequest] = None,
                 compression: Optional[str] = "deflate",
                 max_size: Optional[int] = 2 ** 20,
                 max_queue: "Optional[int | tuple[int, int]]" = 16,
                 ping_interval: Optional[float] = 20,
                 ping_timeout: Optional[float] = 20,
                 open_timeout: Optional[float] = 10,
                 close_timeout: Optional[float] = 10,
                 ssl: Any = None,
                 max_connections: int = 0,
                 backlog: int = 0,
                 reuse_port: bool = False,
                 write_limit: Optional[int] = None,
                 server_header: Optional[str] = "wirehub/" + _native.version(),
                 logger: Optional[logging.Logger] = None,
                 max_handshakes: Optional[int] = None,
                 idle_timeout: Optional[float] = None,
                 message_timeout: Optional[float] = None,
                 max_memory: Optional[int] = None,
                 broker: Optional[str] = None,
                 broker_prefix: Optional[str] = None,
                 broker_timeout: Optional[float] = None,
                 broker_max_pending: Optional[int] = None,
                 broker_ssl: Any = None) -> None:
        self._listener = handler if isinstance(handler, Listener) else None
        if self._listener is None and not callable(handler):
            raise TypeError("handler must be a coroutine function taking the connection, or a Listener")
        if compression not in (None, "deflate"):
            raise ValueError(f"unsupported compression: {compression!r} (use 'deflate' or None)")
        self._handler = handler
        self.host = host or "0.0.0.0"
        self._requested_port = int(port or 0)
        self.subprotocols = list(subprotocols) if subprotocols else []
        self._select_subprotocol = select_subprotocol
        self._process_request = process_request
        queue_marks(max_queue)  # refuse a bad value now, not at the first connection
        self._max_queue = max_queue
        self._server_header = server_header
        self.logger = logger or globals()["logger"]
        cert, key = server_tls_files(ssl)
        self._options = {
            "host": self.host,
            "port": self._requested_port,
            "backlog": int(backlog),
            "flags": (_native.SERVER_UPGRADE_HOOK | (_native.SERVER_HTTP if process_request else 0)
                      | (_native.SERVER_REUSE_PORT if reuse_port else 0)),
            "max_connections": int(max_connections),
            # The engine's 0 means "default" (16 MiB): None (no limit) maps to the largest value.
            "max_size": int(max_size) if max_size is not None else 2 ** 62,
            "ping_interval_ms": _ms(ping_interval),
            "ping_timeout_ms": _ms(ping_timeout) if ping_interval else 0,
            "handshake_timeout_ms": _ms(open_timeout),
            "close_timeout_ms": _ms(close_timeout),
            "high_water": int(write_limit) if write_limit else 0,
            "deflate": compression == "deflate",
            "cert_file": cert,
            "key_file": key,
            **limit_options(idle_timeout=idle_timeout, message_timeout=message_timeout,
                            max_handshakes=max_handshakes, max_memory=max_memory),
        }
        self._broker = broker_options(broker, broker_prefix, broker_timeout, broker_max_pending, broker_ssl)
        self.broker: Optional[str] = redact_url(broker) if broker is not None else None
        """The broker URL (password hidden), None without a broker."""
        self._broker_stats: Optional[BrokerStats] = None  # the last counters, kept at close()
        self._runtime: Any = None
        self._native: Any = None
        self.port: int = 0
        """The bound port (useful with port 0)."""
        self._connections: _ConnectionSet = _ConnectionSet()
        self._connections._server = self
        self._handler_tasks: Set[asyncio.Task] = set()
        self._closing = False
        self._closed_fut: Optional[asyncio.Future] = None

    # ------------------------------------------------------------- lifecycle
    def _start(self) -> "Server":
        rt = get_runtime()
        self._runtime = rt
        self._closed_fut = rt.loop.create_future()
        rt.acquire()
        rc, native = rt.native.listen(self, self._options)
        if rc < 0:
            rt.release()
            where = f"{self.host}:{self._requested_port}"
            if rc == _native.EADDRINUSE:
                raise OSError(errno.EADDRINUSE, f"cannot listen on {where}: {strerror(rc)}")
            if rc == _native.EACCES:
                raise PermissionError(errno.EACCES, f"cannot listen on {where}: {strerror(rc)}")
            if rc == _native.EMFILE:
                raise OSError(errno.EMFILE, f"cannot listen on {where}: {strerror(rc)}")
            if rc in (_native.EADDR, _native.ERESOLVE):
                raise OSError(errno.EADDRNOTAVAIL, f"cannot listen on {where}: {strerror(rc)}")
            if rc == _native.ETLS:
                raise _ssl.SSLError(f"cannot listen on {where}: {strerror(rc)} (check the certificate and key files)")
            raise OSError(f"cannot listen on {where}: {strerror(rc)}")
        self._native = native
        self.port = native.port
        self.logger.info("server listening on %s:%d", self.host, self.port)
        return self

    async def _open(self) -> "Server":
        self._start()
        if self._broker is not None:
            await self._attach_broker()
        return self

    async def _attach_broker(self) -> None:
        # wh_server_set_broker waits for Redis (up to broker_timeout). The C
        # ABI allows it on the host thread, but that thread runs this loop
        # and the engine: every other task and connection would stall. So it
        # runs in the loop's executor, the GIL released; the server stays
        # open (and this runtime acquired) until it has returned.
        o = self._broker
        assert o is not None
        if "\x00" in o["url"]:
            rc = _native.EURL
        else:
            fut = self._runtime.loop.run_in_executor(
                None, functools.partial(self._native.set_broker, o["url"], o["prefix"], o["ca_file"], o["insecure"],
                                        o["connect_timeout_ms"], o["max_pending"]))
            try:
                rc = await asyncio.shield(fut)
            except asyncio.CancelledError:
                fut.add_done_callback(lambda _f: self.close())
                raise
        if rc < 0:
            self.close()
            await self.wait_closed()
            raise BrokerError(self.broker or "", _broker_reason(rc, o["connect_timeout_ms"]), rc)
        # Redis answered the check; the engine's own connection comes up in
        # the background right after. Publishes made before it is up wait for
        # it (within broker_max_pending), but subscriptions would reach Redis
        # only then: serve() returns once it is up, so that a node that is
        # serving is one the others can reach both ways (or, if Redis went
        # away in between, after broker_timeout, reconnecting then).
        loop = self._runtime.loop
        deadline = loop.time() + o["connect_timeout_ms"] / 1000
        try:
            while loop.time() < deadline:
                t = self._native.broker_stats()
                if t is None or t[0]:
                    break
                await asyncio.sleep(0.002)
        except asyncio.CancelledError:
            self.close()
            raise
        self.logger.info("server on port %d attached to the broker %s", self.port, self.broker)

    @property
    def connections(self) -> Set[ServerConnection]:
        """The open connections (a live set: copy it before awaiting while iterating)."""
        return self._connections

    @property
    def is_serving(self) -> bool:
        """True until ``close()`` is called."""
        return self._native is not None and not self._closing

    def close(self, close_connections: bool = True) -> None:
        """Stop accepting and close every connection with 1001 (going away).

        Returns at once; ``await wait_closed()`` for the end.
        """
        if self._closing or self._native is None:
            return
        if self._broker is not None:
            self._broker_stats = self.broker_stats()
        self._closing = True
        self._native.close(0)

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every connection handler has finished."""
        if self._closed_fut is None:
            return
        await asyncio.shield(self._closed_fut)
        while self._handler_tasks:
            await asyncio.wait(list(self._handler_tasks))

    async def serve_forever(self) -> None:
        """Serve until cancelled (or until ``close()``); cancelling closes the server."""
        if self._closed_fut is None:
            raise RuntimeError("server is not started")
        try:
            await asyncio.shield(self._closed_fut)
        except asyncio.CancelledError:
            self.close()
            await self.wait_closed()
            raise

    async def __aenter__(self) -> "Server":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
        await self.wait_closed()

    # ---------------------------------------------------------------- pub/sub
    def publish(self, topic: str, message: Data, except_: Optional[Connection] = None) -> int:
        """Send ``message`` to every connection subscribed to ``topic`` (framed once).

        With a ``broker``, the subscribers of ``topic`` on every other server
        attached to the same Redis and prefix get it too, in publish order;
        ``except_`` applies here only. Returns how many connections of this
        server it was queued for (0 once closing).
        """
        if self._native is None or self._closing:
            return 0
        self._cork()
        rc = self._native.publish(topic, message, 0, except_._native if except_ is not None else None)
        return rc if rc > 0 else 0

    def broadcast(self, message: Data, except_: Optional[Connection] = None) -> int:
        """Send ``message`` to every open connection of this server (framed once).

        Local even with a ``broker``: use :meth:`publish` to reach other servers.
        """
        if self._native is None or self._closing:
            return 0
        self._cork()
        rc = self._native.broadcast(message, 0, except_._native if except_ is not None else None)
        return rc if rc > 0 else 0

    def broker_stats(self) -> Optional[BrokerStats]:
        """The counters of the broker (:class:`wirehub.BrokerStats`), None without one.

        ``dropped`` counts publishes other servers missed (Redis down,
        ``broker_max_pending`` reached), ``malformed`` what arrived on our
        channels and could not be read. After ``close()``, the last counters.
        """
        if self._broker is None:
            return None
        if self._native is None or self._closing:
            return self._broker_stats
        t = self._native.broker_stats()
        return BrokerStats(*t) if t is not None else self._broker_stats

    def _cork(self) -> None:
        # A fan-out is about throughput: the loop iteration's fan-outs leave
        # together, one write per connection, at the iteration's end.
        rt = self._runtime
        if rt is not None and not rt.corked and not rt.native.closed:
            rt.cork_rest_of_iteration()

    # ---------------------------------------------------------- engine events
    def _on_event(self, ev: tuple) -> None:
        kind = ev[0]
        if kind == EV_UPGRADE:
            self._on_request(ev[2], True)
        elif kind == EV_HTTP:
            self._on_request(ev[2], False)
        elif kind == EV_SERVER_CLOSED:
            self._closing = True
            if self._closed_fut is not None and not self._closed_fut.done():
                self._closed_fut.set_result(None)
            self.logger.info("server on port %d closed", self.port)
            self._runtime.release()
        elif kind == EV_ERROR:
            self.logger.warning("server error: %s: %s", strerror(ev[2]), ev[3])

    def _on_request(self, nreq: Any, upgrade: bool) -> None:
        info = nreq.info()
        if info is None:
            return
        method, target, path, query, headers, raddr, rport, offered = info
        request = Request(method, target, Headers(headers), query, (raddr, rport), upgrade)
        conn = ServerConnection(self, request)
        if self._process_request is not None:
            # The hub must outlive the request: it is answered through it.
            self._runtime.acquire()
            t = self._runtime.loop.create_task(self._process(conn, nreq, upgrade, offered))
            self._handler_tasks.add(t)
            t.add_done_callback(self._handler_tasks.discard)
        elif upgrade:
            self._accept(conn, nreq, offered)
        else:
            nreq.respond(426, "Upgrade: websocket\r\n", b"Failed to open a WebSocket connection.\n")

    async def _process(self, conn: ServerConnection, nreq: Any, upgrade: bool, offered: str) -> None:
        try:
            await self._process_inner(conn, nreq, upgrade, offered)
        finally:
            self._runtime.release()

    async def _process_inner(self, conn: ServerConnection, nreq: Any, upgrade: bool, offered: str) -> None:
        try:
            result = self._process_request(conn, conn.request)  # type: ignore[misc]
            if inspect.isawaitable(result):
                result = await result
        except asyncio.CancelledError:
            nreq.respond(503, "", b"Server shutting down.\n")
            raise
        except Exception:
            self.logger.error("process_request failed for %s", conn.request.path, exc_info=True)
            nreq.respond(500, "", b"Failed to open a WebSocket connection.\nSee server log for more information.\n")
            return
        if result is not None:
            if not isinstance(result, Response):
                self.logger.error("process_request returned %r, not a Response or None", result)
                nreq.respond(500, "", b"Internal Server Error\n")
                return
            conn.response = result
            headers = Headers([(n, v) for n, v in result.headers.raw_items() if n.lower() not in _ENGINE_HEADERS])
            if upgrade:
                self.logger.info("rejected upgrade of %s with HTTP %d", conn.request.path, result.status_code)
            try:
                rc = nreq.respond(result.status_code, headers.serialize(), result.body)
            except ValueError as exc:  # a header with a line break
                rc, why = -1, str(exc)
            else:
                why = strerror(rc) if rc < 0 else ""
            if rc < 0:
                self.logger.error("process_request returned an invalid response %r: %s", result, why)
                nreq.respond(500, "", b"Internal Server Error\n")
            return
        if upgrade:
            self._accept(conn, nreq, offered)
        else:
            nreq.respond(426, "Upgrade: websocket\r\n", b"Failed to open a WebSocket connection.\n")

    def _choose_subprotocol(self, conn: ServerConnection, offered: str) -> Optional[str]:
        client = [p.strip() for p in offered.split(",") if p.strip()]
        if self._select_subprotocol is not None:
            return self._select_subprotocol(conn, client)
        for p in self.subprotocols:
            if p in client:
                return p
        return None

    def _accept(self, conn: ServerConnection, nreq: Any, offered: str) -> None:
        try:
            sub = self._choose_subprotocol(conn, offered)
        except Exception:
            self.logger.error("select_subprotocol failed", exc_info=True)
            nreq.respond(500, "", b"Internal Server Error\n")
            return
        extra = f"Server: {self._server_header}\r\n" if self._server_header else ""
        rc, native = nreq.accept(sub, extra, conn)
        if rc == _ECLOSED:
            # The client went away while the handshake was being decided:
            # the engine closed the socket with nothing written, as ws does.
            self.logger.info("connection from %s closed before it was accepted", conn.request.remote_address)
            return
        if rc < 0:
            self.logger.error("cannot accept connection from %s (subprotocol %r): %s",
                              conn.request.remote_address, sub, strerror(rc))
            nreq.respond(500, "", b"Internal Server Error\n")
            return
        conn._native = native

    def _on_connection_open(self, conn: ServerConnection) -> None:
        self._connections.add(conn)
        listener = self._listener
        if listener is not None:
            conn._listener = listener
            try:
                listener.on_open(conn)
            except Exception:
                conn._listener_failed("on_open")
            return
        t = self._runtime.loop.create_task(self._run_handler(conn))
        conn._task = t
        self._handler_tasks.add(t)
        t.add_done_callback(self._handler_tasks.discard)

    def _on_connection_close(self, conn: ServerConnection) -> None:
        self._connections.discard(conn)
        listener = conn._listener
        if listener is not None:
            try:
                listener.on_close(conn)
            except Exception:
                self.logger.error("%r: Listener.on_close failed", conn, exc_info=True)

    async def _run_handler(self, conn: ServerConnection) -> None:
        try:
            await self._handler(conn)
        except ConnectionClosed as exc:
            # The peer went away while the handler was using the connection.
            self.logger.info("connection %s closed during the handler: %s", conn.request.path, exc)
        except Exception:
            # Only this connection pays for its handler's bug.
            self.logger.error("connection handler failed (%s): closing with 1011", conn.request.path, exc_info=True)
            conn._close_now(1011)
        else:
            conn._close_now(1000)
        await conn.wait_closed()

    def __repr__(self) -> str:
        return f"<wirehub.Server {self.host}:{self.port} {len(self._connections)} connections>"


class serve:
    """Start a WebSocket server on ``host``:``port`` (port 0 picks a free one).

    ``handler(connection)`` is a coroutine run for each connection; when it
    returns the connection is closed with 1000, when it raises with 1011 (and
    the error is logged). Or ``handler`` is a :class:`Listener`, whose methods
    the engine calls for each event, without a task per connection. Use
    ``async with serve(...) as server:`` or ``server = await serve(...)``.

    Options (as in python-websockets): ``subprotocols`` (preference order),
    ``select_subprotocol``, ``process_request(connection, request)`` (return a
    :class:`Response` to refuse the upgrade or answer a plain HTTP request,
    ``None`` to go on; may be async), ``compression`` ("deflate" or None),
    ``max_size`` (bytes, None = no limit), ``max_queue`` (unread messages
    before reading pauses, resuming at a quarter of it; a ``(high, low)``
    tuple; None = never pause), ``ping_interval`` /
    ``ping_timeout`` (seconds, None = off), ``open_timeout``, ``close_timeout``,
    ``ssl`` (a :class:`wirehub.SSLContext` with ``load_cert_chain`` done, or a
    ``(certfile, keyfile)`` tuple), ``max_connections``, ``backlog``,
    ``reuse_port``, ``write_limit`` (send buffer high-water mark, bytes).

    Hardening limits (wirehub's own; None = the engine's default, 0 = off):
    ``max_handshakes`` (sockets still in their handshake, default 1024),
    ``idle_timeout`` (seconds with nothing from the peer before closing
    with 1001, default off), ``message_timeout`` (seconds a begun message
    may take before closing with 1008, default 60), ``max_memory`` (bytes
    held for all peers before refusing more with 1008, default 1 GiB).
    Negative values raise ``ValueError``.

    Scale-out (wirehub's own): ``broker`` (a ``redis://[[user]:password@]host[:port][/db]``
    or ``rediss://`` URL) makes :meth:`Server.publish` reach the subscribers
    of the topic on every server attached to the same Redis with the same
    ``broker_prefix`` (default ``"wirehub:"``; one per application sharing a
    Redis). ``broker_timeout`` (seconds, default 5) bounds the check at start
    and each reconnection attempt; ``broker_max_pending`` (bytes, default 8
    MiB) what may wait for Redis before publishes for other nodes are dropped
    (and counted); ``broker_ssl`` for ``rediss://`` (an ``ssl.SSLContext``:
    ``CERT_NONE`` disables verification, a :class:`wirehub.SSLContext`'s
    ``load_verify_locations`` CA file is trusted). Starting waits until Redis
    answers and raises :class:`BrokerError` for a wrong URL, a refused
    password or an unreachable Redis; later losses are reconnected in the
    background (:meth:`Server.broker_stats`).
    """

    def __init__(self, handler: Union[Handler, Listener], host: Optional[str] = None, port: Optional[int] = None,
                 **kwargs: Any) -> None:
        self._server = Server(handler, host, port, **kwargs)

    def __await__(self) -> Generator[Any, None, Server]:
        return self._start().__await__()

    async def _start(self) -> Server:
        return await self._server._open()

    async def __aenter__(self) -> Server:
        return await self._server._open()

    async def __aexit__(self, *exc: Any) -> None:
        self._server.close()
        await self._server.wait_closed()


def broadcast(connections: Iterable[Connection], message: Data, raise_exceptions: bool = False) -> None:
    """Send ``message`` to every open connection of ``connections`` without waiting.

    Connections whose buffer is full or that are closing are skipped (like
    python-websockets' ``broadcast``). ``broadcast(server.connections, m)``
    hands the whole fan-out to the engine, which frames ``m`` once.
    """
    if not isinstance(message, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"message must be str or bytes, not {type(message).__name__}")
    if isinstance(connections, _ConnectionSet):
        srv = connections._server
        if srv._native is not None and not srv._closing:
            srv._cork()
            srv._native.broadcast(message, 0, None)
        return
    _native.broadcast(connections, message, 0)
