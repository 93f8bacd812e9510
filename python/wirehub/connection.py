"""The asyncio connection shared by the server and the client side."""
from __future__ import annotations

import asyncio
import collections
import logging
import os
from typing import (Any, AsyncIterable, AsyncIterator, Deque, Dict, Iterable, List, Optional,
                    Tuple, Union)

from . import _wirehub as _native
from ._runtime import (EV_CLOSE, EV_DRAIN, EV_OPEN, EV_PONG, Runtime, error_name, queue_marks,
                       strerror)
from .exceptions import (ConcurrencyError, ConnectionClosed, ConnectionClosedError, ConnectionClosedOK,
                         PayloadTooBig, WebSocketException, _ClosedTooBig)

__all__ = ["Connection", "State", "Data"]

Data = Union[str, bytes]

_TEXT = _native.TEXT
_BINARY = _native.BINARY
_MORE = _native.MORE
_SENT = _native.SENT
_QUEUED = _native.QUEUED
_ECLOSED = _native.ECLOSED
_EDROPPED = _native.EDROPPED
_ETOOBIG = _native.ETOOBIG
_ECLOSECODE = _native.ECLOSECODE
_EINVAL = _native.EINVAL
_Future = asyncio.Future
# Connection._pause_state bits: what the engine was told, and whether the
# runtime has the connection queued to tell it again (Runtime.pause_changed).
_ENGINE_PAUSED = 1
_PAUSE_QUEUED = 2


class State:
    """Connection states (compatible in spirit with websockets.protocol.State)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class Connection:
    """A WebSocket connection, used from the event loop that created it.

    Receive with ``await recv()`` or ``async for message in ws``; send with
    ``await send(message)``: ``str`` goes as a text message, bytes-like as a
    binary one, an (async) iterable of them as one fragmented message. Text
    messages arrive as ``str``, binary ones as ``bytes``.
    """

    # Set only by a client's refused handshake: a class default keeps it out
    # of every idle connection's instance dict.
    _close_reason_phrase: Optional[str] = None

    def __init__(self, runtime: Runtime, *, max_queue: "Optional[int | Tuple[int, int]]" = 16,
                 logger: Optional[logging.Logger] = None) -> None:
        self._runtime = runtime
        self._loop = runtime.loop
        self._native: Any = None  # native Conn, set when the engine names the connection
        self.state = State.CONNECTING
        self._messages: Deque[Data] = collections.deque()
        self._waiter: "Optional[asyncio.Future[None]]" = None
        # Callback style (server.Listener): messages go to its on_message,
        # not to the queue that recv() reads.
        self._listener: Any = None
        # Reading pauses when this many messages wait unread and resumes at
        # the low-water mark (python-websockets' max_queue; 0: never pauses).
        self._max_queue, self._low_queue = queue_marks(max_queue)
        # _paused: the queue reached max_queue and is not back to the low
        # mark yet. The engine hears of it only once the batch being
        # dispatched and the readers it woke are done (see _apply_pause): a
        # reader that takes the batch's messages at once then costs no pause
        # and resume at all. One attribute for both of _pause_state's bits:
        # past 29 attributes an instance's dict stops sharing its keys
        # (CPython), over a KiB more per connection.
        self._paused = False
        self._pause_state = 0
        self._drain_waiters: List[asyncio.Future] = []
        self._pong_waiters: Dict[bytes, asyncio.Future] = {}
        self._opened: asyncio.Future = self._loop.create_future()
        self._closed: asyncio.Future = self._loop.create_future()
        self._close_exc: Optional[ConnectionClosed] = None
        self.close_code: Optional[int] = None
        """The close code once the connection is closed (1006 if it broke without a close frame)."""
        self.close_reason: Optional[str] = None
        """The close reason once the connection is closed."""
        self._close_error = 0
        self._close_status = 0
        self._close_headers = ""
        self._close_body = b""
        self.logger = logger or logging.getLogger("wirehub")
        # (remote_address, local_address), one attribute: a 30th would take the
        # instance dict past CPython's shared-keys limit, a KiB more for every
        # idle connection (test_floods).
        self._addresses: Tuple[Optional[Tuple[str, int]], Optional[Tuple[str, int]]] = (None, None)
        self._subprotocol: Optional[str] = None

    # ------------------------------------------------------------ properties
    @property
    def remote_address(self) -> Optional[Tuple[str, int]]:
        """The peer's ``(host, port)``."""
        return self._addresses[0]

    @property
    def local_address(self) -> Optional[Tuple[str, int]]:
        """This end's ``(host, port)``: the address and port the peer reached
        (server side) or the socket got (client side); ``None`` until open,
        ``("", 0)`` over a UNIX socket, as ``remote_address``."""
        return self._addresses[1]

    @property
    def subprotocol(self) -> Optional[str]:
        """The negotiated subprotocol, or ``None``."""
        return self._subprotocol

    @property
    def extensions(self) -> str:
        """The negotiated ``Sec-WebSocket-Extensions`` value (``""`` if none)."""
        return self._native.extensions if self._native is not None else ""

    @property
    def open(self) -> bool:
        """True while the connection is open."""
        return self.state == State.OPEN

    @property
    def closed(self) -> bool:
        """True once the connection is closed."""
        return self.state == State.CLOSED

    # -------------------------------------------------------- engine events
    def _on_message(self, message: Data) -> None:
        listener = self._listener
        if listener is not None:
            try:
                listener.on_message(self, message)
            except Exception:
                self._listener_failed("on_message")
            return
        q = self._messages
        q.append(message)
        if self._max_queue and not self._paused and len(q) >= self._max_queue and self.state == State.OPEN:
            self._paused = True
            if not self._pause_state & _PAUSE_QUEUED:
                self._runtime.pause_changed(self)
        w = self._waiter
        if w is not None:
            self._waiter = None
            rt = self._runtime
            if rt._dispatching:  # Runtime.wake(), inlined: once per message
                rt._woken.append(w)
            else:
                rt.wake(w)

    def _on_event(self, ev: tuple) -> None:
        kind = ev[0]
        if kind == EV_DRAIN:
            self._wake_drain()
        elif kind == EV_PONG:
            waiters = self._pong_waiters
            fut = waiters.pop(ev[2], None)
            if fut is not None:
                # The binding delivers pongs only while a ping() waits.
                self._native.want_pongs = len(waiters)
                if not fut.done():
                    fut.set_result(self._loop.time() - fut._wh_sent)  # type: ignore[attr-defined]
        elif kind == EV_OPEN:
            if ev[2] is not None:
                self._native = ev[2]
            if ev[3] is not None:
                self._on_handshake_headers(ev[3], ev[4])
            self._on_open()
        elif kind == EV_CLOSE:
            self._on_close(ev[2], ev[3], ev[4], ev[5], ev[6], ev[7])
            self._close_reason_phrase = ev[8]

    def _on_handshake_headers(self, block: str, reason_phrase: Optional[str]) -> None:
        """A client's 101 response headers (server connections get none)."""

    def _on_open(self) -> None:
        self.state = State.OPEN
        n = self._native
        self._addresses = (n.remote_address, n.local_address)
        self._subprotocol = n.subprotocol or None
        if not self._opened.done():
            self._opened.set_result(None)

    def _on_close(self, code: int, reason: str, error: int, status: int, headers: str, body: bytes) -> None:
        self.state = State.CLOSED
        self.close_code = code
        self.close_reason = reason
        self._close_error = error
        self._close_status = status
        self._close_headers = headers
        self._close_body = body
        exc = self._make_closed()
        self._close_exc = exc
        if (error or code not in (1000, 1001, 1005)) and self._opened.done():
            self.logger.info("%r: %s", self, exc)
        for f in self._drain_waiters:
            if not f.done():
                f.set_result(None)
        self._drain_waiters.clear()
        for f in self._pong_waiters.values():
            if not f.done():
                f.set_exception(exc)
                f.exception()  # mark retrieved: nobody may await a pong waiter
        self._pong_waiters.clear()
        if not self._closed.done():
            self._closed.set_result(None)
        self._after_close()
        w = self._waiter
        if w is not None:
            self._waiter = None
            self._runtime.wake(w)  # last: the reader must find the close complete

    def _after_close(self) -> None:
        pass

    def _make_closed(self) -> ConnectionClosed:
        code = self.close_code if self.close_code is not None else 1006
        reason = self.close_reason or ""
        err = self._close_error
        detail = strerror(err) if err else ""
        if err == _ETOOBIG:
            return _ClosedTooBig(code, reason, detail)
        if code == 1009:  # the peer refused one of our messages as too big
            return _ClosedTooBig(code, reason, "the peer's maximum message size was exceeded")
        if err == 0 and code in (1000, 1001, 1005):
            return ConnectionClosedOK(code, reason)
        return ConnectionClosedError(code, reason, detail)

    def _closed_error(self) -> ConnectionClosed:
        if self._close_exc is not None:
            return self._close_exc
        # The engine refused a call but its CLOSE event is not dispatched yet.
        return ConnectionClosedError(1006, "", "connection is closing")

    # ---------------------------------------------------------------- receive
    async def recv(self, decode: Optional[bool] = None) -> Data:
        """Receive the next message: ``str`` for text, ``bytes`` for binary.

        ``decode=True`` returns binary messages decoded as UTF-8; ``False``
        returns text messages encoded to bytes. Raises :class:`ConnectionClosedOK`
        / :class:`ConnectionClosedError` once the connection is closed and every
        message received before has been returned.
        """
        q = self._messages
        while not q:
            if self.state == State.CLOSED:
                raise self._closed_error()
            if self._listener is not None:
                raise ConcurrencyError("this connection's messages go to its Listener's on_message")
            if self._waiter is not None:
                raise ConcurrencyError("cannot call recv() while another coroutine is already waiting for the next message")
            w = _Future(loop=self._loop)
            self._waiter = w
            try:
                await w
            finally:
                if self._waiter is w:
                    self._waiter = None
        msg = q.popleft()
        if self._paused and len(q) <= self._low_queue:
            self._paused = False
            if self._pause_state == _ENGINE_PAUSED:  # and not queued already
                self._runtime.pause_changed(self)
        if decode is not None:
            if decode and type(msg) is bytes:
                return msg.decode()
            if not decode and type(msg) is str:
                return msg.encode()
        return msg

    def __aiter__(self) -> AsyncIterator[Data]:
        return self

    async def __anext__(self) -> Data:
        # recv() inlined: one coroutine frame per message instead of two, and
        # a message already waiting returns without creating a future.
        q = self._messages
        while not q:
            if self.state == State.CLOSED:
                exc = self._closed_error()
                if isinstance(exc, ConnectionClosedOK):
                    raise StopAsyncIteration
                raise exc
            if self._listener is not None:
                raise ConcurrencyError("this connection's messages go to its Listener's on_message")
            if self._waiter is not None:
                raise ConcurrencyError("cannot iterate while another coroutine is waiting for the next message")
            w = _Future(loop=self._loop)  # what loop.create_future() makes, one call less
            self._waiter = w
            try:
                await w
            finally:
                if self._waiter is w:
                    self._waiter = None
        msg = q.popleft()
        if self._paused and len(q) <= self._low_queue:
            self._paused = False
            if self._pause_state == _ENGINE_PAUSED:  # and not queued already
                self._runtime.pause_changed(self)
        return msg

    # ------------------------------------------------------------------- send
    async def send(self, message: Union[Data, Iterable[Data], AsyncIterable[Data]], text: Optional[bool] = None) -> None:
        """Send a message: ``str`` as text, bytes-like as binary.

        ``text=True`` sends bytes as a text frame (they must be UTF-8), ``False``
        sends a ``str`` as a binary frame. An iterable or async iterable of
        ``str`` / bytes is sent as one fragmented message, one frame per item.
        Awaiting it waits while the send buffer is above its high-water mark
        (flow control). Raises :class:`ConnectionClosed` if the connection is
        closed, ``TypeError`` for other types.
        """
        tm = type(message)
        if tm is str or tm is bytes or isinstance(message, (bytearray, memoryview)):
            if not self.send_nowait(message, text):
                await self._wait_drain()
            return
        if isinstance(message, dict):
            raise TypeError("data is a dict-like object")
        if hasattr(message, "__aiter__"):
            await self._send_fragments_async(message, text)  # type: ignore[arg-type]
        elif hasattr(message, "__iter__"):
            await self._send_fragments(iter(message), text)  # type: ignore[arg-type]
        else:
            raise TypeError(f"message must be str, bytes or an iterable of them, not {tm.__name__}")

    def send_nowait(self, message: Data, text: Optional[bool] = None) -> bool:
        """Send a message without waiting, from code that cannot await (a
        :class:`~wirehub.Listener`'s callbacks, a plain loop callback).

        ``str`` goes as text, bytes-like as binary (``text`` overrides, as in
        :meth:`send`). Returns ``True``, or ``False`` when the send buffer is
        now above its high-water mark (``write_limit``): the message is queued,
        not lost, and the caller should slow down. Raises
        :class:`ConnectionClosed` once the connection is closed,
        :class:`PayloadTooBig` past the buffer's hard cap, ``TypeError`` for
        other types (fragmented messages need :meth:`send`).
        """
        native = self._native
        if native is None:
            raise self._not_open()
        rc = native.send(message, 0 if text is None else (_TEXT if text else _BINARY))
        if rc == _SENT:
            return True
        if rc == _QUEUED:
            return False
        self._raise_send(rc)
        return False  # not reached

    async def _send_fragments(self, it, text: Optional[bool]) -> None:
        try:
            current = next(it)
        except StopIteration:
            return
        kind = type(current)
        first = True
        while True:
            try:
                nxt = next(it)
                more = True
            except StopIteration:
                more = False
            await self._send_fragment(current, kind, first, more, text)
            first = False
            if not more:
                return
            current = nxt

    async def _send_fragments_async(self, ait, text: Optional[bool]) -> None:
        ait = ait.__aiter__()
        try:
            current = await ait.__anext__()
        except StopAsyncIteration:
            return
        kind = type(current)
        first = True
        while True:
            try:
                nxt = await ait.__anext__()
                more = True
            except StopAsyncIteration:
                more = False
            await self._send_fragment(current, kind, first, more, text)
            first = False
            if not more:
                return
            current = nxt

    async def _send_fragment(self, frag, kind, first: bool, more: bool, text: Optional[bool]) -> None:
        if not isinstance(frag, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"fragments must be str or bytes, not {type(frag).__name__}")
        if (type(frag) is str) != (kind is str):
            raise TypeError("all fragments of a message must be of the same type (str or bytes)")
        if self._native is None:
            raise self._not_open()
        flags = _MORE if more else 0
        if first:
            if text is None:
                flags |= _TEXT if kind is str else _BINARY
            else:
                flags |= _TEXT if text else _BINARY
        rc = self._native.send(frag, flags)
        if rc == _QUEUED:
            await self._wait_drain()
        elif rc < 0:
            self._raise_send(rc)

    def _close_now(self, code: int) -> None:
        # Start our close without waiting for it (a handler's end, a failure).
        if self.state == State.OPEN and self._native is not None:
            self._native.close(code, "")
            self.state = State.CLOSING
            self._read_to_close()

    def _read_to_close(self) -> None:
        # Closing: the peer's close frame must be read even with the queue
        # full, else the handshake waits for close_timeout and ends as 1006.
        # No more pausing (the peer stops sending once it has our close).
        self._paused = False
        if self._pause_state & _ENGINE_PAUSED:
            self._pause_state &= ~_ENGINE_PAUSED
            self._native.resume()

    def _apply_pause(self) -> None:
        """Tell the engine what _paused says (Runtime.pause_changed's call).
        Each pause and resume makes the engine's loop read this connection
        again; a reader keeping up never needs either."""
        was = self._pause_state & _ENGINE_PAUSED
        want = self._paused and self.state == State.OPEN and self._native is not None
        self._pause_state = _ENGINE_PAUSED if want else 0
        if want != bool(was):
            if want:
                self._native.pause()
            else:
                self._native.resume()

    def _listener_failed(self, what: str) -> None:
        # As a handler's exception: only this connection pays for it.
        self.logger.error("%r: Listener.%s failed: closing with 1011", self, what, exc_info=True)
        self._close_now(1011)

    def _raise_send(self, rc: int) -> None:
        if rc == _ECLOSED:
            exc = self._closed_error()
            self.logger.info("%r: cannot send: %s", self, exc)
            raise exc
        if rc == _EDROPPED:
            raise PayloadTooBig(f"message dropped: the send buffer is above its hard cap ({strerror(rc)})")
        raise WebSocketException(f"send failed: {strerror(rc)} ({error_name(rc)})")

    def _not_open(self) -> WebSocketException:
        if self.state == State.CLOSED:
            return self._closed_error()
        return WebSocketException("connection is not open yet")

    async def _wait_drain(self) -> None:
        if self.state == State.CLOSED:
            return
        f = self._loop.create_future()
        self._drain_waiters.append(f)
        await f

    def _wake_drain(self) -> None:
        ws = self._drain_waiters
        if ws:
            self._drain_waiters = []
            for f in ws:
                if not f.done():
                    f.set_result(None)

    # ---------------------------------------------------------------- control
    async def ping(self, data: Optional[Data] = None) -> "asyncio.Future[float]":
        """Send a ping; returns a future that resolves to the round-trip time
        (seconds) when the matching pong arrives. ``await (await ws.ping())``
        waits for it. ``data``: at most 125 bytes (random by default).
        """
        if data is None:
            payload = os.urandom(4)
            while payload in self._pong_waiters:
                payload = os.urandom(4)
        else:
            payload = data.encode() if isinstance(data, str) else bytes(data)
        if len(payload) > 125:
            raise ValueError("ping payload must be at most 125 bytes")
        if self._native is None:
            raise self._not_open()
        if payload in self._pong_waiters:
            raise ConcurrencyError("already waiting for a pong with the same data")
        rc = self._native.ping(payload)
        if rc < 0:
            self._raise_send(rc)
        fut = self._loop.create_future()
        fut._wh_sent = self._loop.time()  # type: ignore[attr-defined]
        self._pong_waiters[payload] = fut
        self._native.want_pongs = len(self._pong_waiters)
        return fut

    async def pong(self, data: Data = b"") -> None:
        """Send an unsolicited pong (pings are answered automatically)."""
        payload = data.encode() if isinstance(data, str) else bytes(data)
        if self._native is None:
            raise self._not_open()
        rc = self._native.pong(payload)
        if rc < 0:
            self._raise_send(rc)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake with ``code`` / ``reason`` and wait until
        the connection is closed. Closing a closed connection does nothing.
        ``ValueError`` for an invalid code or a reason over 123 bytes.
        """
        if self.state == State.CLOSED:
            return
        if self._native is None:
            raise self._not_open()
        raw = reason.encode()
        if len(raw) > 123:
            raise ValueError("close reason must be at most 123 bytes of UTF-8")
        if self.state == State.OPEN:
            rc = self._native.close(code, reason)
            if rc == _ECLOSECODE or rc == _EINVAL:
                raise ValueError(f"invalid close code {code}")
            self.state = State.CLOSING
            self._read_to_close()
        await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (by either side)."""
        await asyncio.shield(self._closed)

    def terminate(self) -> None:
        """Drop the TCP connection now, without a closing handshake (close code 1006)."""
        if self._native is not None and self.state != State.CLOSED:
            self._native.terminate()

    # ----------------------------------------------------------- pub/sub
    def subscribe(self, topic: str) -> None:
        """Subscribe this (server-side) connection to ``topic`` (see ``Server.publish``)."""
        if self._native is None:
            raise self._not_open()
        rc = self._native.subscribe(topic)
        if rc < 0:
            if rc == _ECLOSED:
                raise self._closed_error()
            raise WebSocketException(f"subscribe failed: {strerror(rc)}")

    def unsubscribe(self, topic: str) -> None:
        """Unsubscribe from ``topic``; unknown topics are ignored."""
        if self._native is None:
            raise self._not_open()
        rc = self._native.unsubscribe(topic)
        if rc < 0 and rc != _ECLOSED:
            raise WebSocketException(f"unsubscribe failed: {strerror(rc)}")

    @property
    def buffered_amount(self) -> int:
        """Bytes accepted by send() but not yet written to the socket."""
        return self._native.buffered() if self._native is not None else 0

    def __repr__(self) -> str:
        states = {0: "CONNECTING", 1: "OPEN", 2: "CLOSING", 3: "CLOSED"}
        return f"<{type(self).__name__} {states.get(self.state)} {self._addresses[0]}>"
