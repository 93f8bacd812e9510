"""One engine hub per asyncio event loop, run by the loop's own thread.

The hub is in host mode (WH_EVENTS_HOST): it starts no I/O thread. Its
descriptor, registered with ``loop.add_reader``, is readable when the engine
has work. While there are few connections their sockets are registered with
``loop.add_reader`` too (the engine asks through ``set_watch``), so a message
costs the loop's own wait and nothing else; with more, the engine keeps them
behind its descriptor, and one wakeup serves a whole batch of sockets. Each
wakeup runs the work inside ``poll()`` / ``poll_fd()`` and drains the events
in batches converted to Python objects by the native module, then dispatches
them to their connection / server objects. The hub lives while it has users
(servers, client connections) and is destroyed when the last one is gone, or
at exit.
"""
from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import weakref
from typing import List, Optional

from . import _wirehub as _native
from ._wakeup import resume_now

logger = logging.getLogger("wirehub")

EV_OPEN = _native.EV_OPEN
EV_MESSAGE = _native.EV_MESSAGE
EV_PING = _native.EV_PING
EV_PONG = _native.EV_PONG
EV_CLOSE = _native.EV_CLOSE
EV_DRAIN = _native.EV_DRAIN
EV_UPGRADE = _native.EV_UPGRADE
EV_HTTP = _native.EV_HTTP
EV_SERVER_CLOSED = _native.EV_SERVER_CLOSED
EV_ERROR = _native.EV_ERROR

_BATCH = 1024
# Sockets the loop watches itself, at most: past this a callback per ready
# socket costs more than the engine's own wait for the whole batch.
_DIRECT_SOCKETS = 2
# Bounds one wakeup so a flood of events cannot starve the rest of the loop.
_MAX_BATCHES_PER_WAKEUP = 32

_runtimes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Runtime]" = weakref.WeakKeyDictionary()
_all: "weakref.WeakSet[Runtime]" = weakref.WeakSet()
_lock = threading.Lock()


class Runtime:
    """The hub of one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Host mode: this loop's thread runs the engine inside poll(), so a
        # message costs no hand-off between threads (no I/O thread at all).
        self.native = _native.Hub(1, hosted=True)
        self.users = 0
        self.corked = False
        self._dispatching = False
        self._woken: "List[asyncio.Future[None]]" = []
        self._destroy_handle: Optional[asyncio.Handle] = None
        # Events the engine queued that are not taken yet (the last poll
        # filled its batch): taken before the engine runs again.
        self._backlog = False
        self._more_scheduled = False
        # Connections whose reading should pause or resume (their queue
        # crossed max_queue or fell back to the low mark): told at the end of
        # the batch, so a pause the batch's readers undid costs nothing.
        self._pumping = False
        self._pause_changes: list = []
        self._pauses_scheduled = False
        loop.add_reader(self.native.fd, self._on_readable)
        self.native.set_watch(self._watch, _DIRECT_SOCKETS)
        _all.add(self)

    def _watch(self, fd: int, on: bool) -> None:
        # The engine's call; an "off" comes before it closes the socket.
        if on:
            self.loop.add_reader(fd, self._on_readable, fd)
            return
        try:
            self.loop.remove_reader(fd)
        except Exception:  # the loop may be half torn down at exit
            pass

    # -- users: the hub stays up while a server or client connection needs it
    def acquire(self) -> None:
        self.users += 1
        if self._destroy_handle is not None:
            self._destroy_handle.cancel()
            self._destroy_handle = None

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0 and self._destroy_handle is None:
            # Later, not now: we may be inside _on_readable's dispatch loop.
            self._destroy_handle = self.loop.call_soon(self._maybe_destroy)

    def _maybe_destroy(self) -> None:
        self._destroy_handle = None
        if self.users <= 0:
            self.destroy()

    def destroy(self, timeout_ms: int = 1000) -> None:
        if self.native.closed:
            return
        with _lock:
            if _runtimes.get(self.loop) is self:
                del _runtimes[self.loop]
        try:
            if not self.loop.is_closed():
                self.loop.remove_reader(self.native.fd)
        except Exception:  # the loop may be half torn down at exit
            pass
        self.native.destroy(timeout_ms)

    # -- sends: the engine writes the first send after a poll at once and
    # batches the later ones into one write per connection at the next
    # wakeup. A fan-out corks the rest of the loop iteration instead, so the
    # iteration's fan-outs all leave together.
    def cork_rest_of_iteration(self) -> None:
        self.corked = True
        self.native.cork()
        self.loop.call_soon(self._uncork)

    def _uncork(self) -> None:
        self.corked = False
        if not self.native.closed:
            self.native.uncork()

    # -- the event pump
    def _on_readable(self, fd: int = -1, run: bool = True) -> None:
        """The hub's descriptor (fd -1) or a socket it handed out is readable.

        Every poll runs the engine, which reads new input (up to a turn's
        worth per connection: thousands of events from a peer flooding tiny
        frames) before it hands out events. So the engine runs once per
        wakeup (``run``): for a socket's wakeup, that socket's input; for the
        hub's, all the rest, and only once what earlier runs queued is taken
        (``take()``, no new input). What it queued is taken before it runs
        again, at this wakeup or the next: the events waiting are bounded by
        a few runs of input, not by how far the reads got ahead of Python.
        """
        native = self.native
        if native.closed:
            return
        self._pumping = True
        try:
            self._pump(fd, run)
        finally:
            self._pumping = False
            if self._pause_changes:
                self._apply_pauses()

    def _pump(self, fd: int, run: bool) -> None:
        native = self.native
        woken = self._woken
        for _ in range(_MAX_BATCHES_PER_WAKEUP):
            if run and fd >= 0:
                # A socket's own wakeup reads that socket (one turn of its
                # input) even while another one's events wait: a flood
                # elsewhere must not keep it from being read.
                run = False
                batch = native.poll_fd(fd, _BATCH)
            elif self._backlog:
                batch = native.take(_BATCH)
            elif run:
                # The hub's wakeup runs everything else (the engine's own
                # sockets, timers, other threads' calls): only with nothing
                # left to take.
                run = False
                batch = native.poll(_BATCH)
            else:
                return
            self._backlog = more = native.more
            self._dispatching = True
            try:
                for ev in batch:
                    target = ev[1]
                    if target is None:
                        continue
                    try:
                        if ev[0] == EV_MESSAGE:
                            target._on_message(ev[2])
                        else:
                            target._on_event(ev)
                    except Exception:  # one broken object must not stop the pump
                        logger.exception("wirehub: error while dispatching event %d", ev[0])
            finally:
                self._dispatching = False
            # The readers this batch woke run now, in this loop iteration (see
            # _wakeup), each once for all its messages of the batch. The
            # first one's reply leaves at once (latency); the cork then holds
            # the others' until all ran: one write per connection, no wake-up.
            if woken:
                self._woken = []
                cork = len(woken) > 1
                corked = False
                resumed = 0
                try:
                    for w in woken:
                        resumed += 1
                        try:
                            resume_now(w)
                        except Exception:
                            logger.exception("wirehub: error while resuming a reader")
                        if cork and not corked and not native.closed:
                            corked = native.cork() == 0
                finally:
                    if corked and not native.closed:
                        native.uncork()
                    # A KeyboardInterrupt out of a reader: the others wake as usual.
                    for w in woken[resumed:]:
                        if not w.done():
                            w.set_result(None)
                woken = self._woken
            if self._pause_changes:
                self._apply_pauses()
            if native.closed:
                return
        # The wakeup's share is spent: the rest of the loop runs first, then
        # what waits is taken (the engine's queue does not signal in host
        # mode; a socket's own wakeup comes back, level-triggered).
        if self._backlog and not self._more_scheduled:
            self._more_scheduled = True
            self.loop.call_soon(self._take_more)

    def _take_more(self) -> None:
        self._more_scheduled = False
        if self._backlog:
            self._on_readable(run=False)

    def pause_changed(self, conn) -> None:
        """``conn``'s reading should pause or resume: the engine hears of it
        after the batch being dispatched, else at this loop iteration's end."""
        conn._pause_state |= 2  # connection._PAUSE_QUEUED
        self._pause_changes.append(conn)
        if not self._pumping and not self._pauses_scheduled:
            self._pauses_scheduled = True
            self.loop.call_soon(self._apply_pauses)

    def _apply_pauses(self) -> None:
        self._pauses_scheduled = False
        changes, self._pause_changes = self._pause_changes, []
        for conn in changes:
            try:
                conn._apply_pause()
            except Exception:
                logger.exception("wirehub: error while pausing or resuming a connection")

    def wake(self, waiter: "asyncio.Future[None]") -> None:
        """Resume a reader: after the batch being dispatched, else as usual."""
        if self._dispatching:
            self._woken.append(waiter)
        elif not waiter.done():
            waiter.set_result(None)


def get_runtime(loop: Optional[asyncio.AbstractEventLoop] = None) -> Runtime:
    """The hub of ``loop`` (the running loop by default), created on first use."""
    if loop is None:
        loop = asyncio.get_running_loop()
    with _lock:
        rt = _runtimes.get(loop)
        if rt is None or rt.native.closed:
            rt = Runtime(loop)
            _runtimes[loop] = rt
        return rt


@atexit.register
def _destroy_all() -> None:
    # Joins the I/O threads so none outlives the interpreter.
    for rt in list(_all):
        try:
            rt.native.destroy(200)
        except Exception:
            pass


def error_name(rc: int) -> str:
    return _native.err_name(rc)


def strerror(rc: int) -> str:
    return _native.strerror(rc)


# ------------------------------------------------- options shared by every API
# The engine's hardening limits (capi/wirehub.h, issue 11). In every option,
# None keeps the engine's default and 0 turns the limit off.
_INT_MAX = 2 ** 31 - 1
_SIZE_MAX = 2 ** 64 - 1


def _timeout_ms(name: str, seconds: Optional[float], off: int) -> int:
    if seconds is None:
        return 0
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(seconds).__name__}")
    if seconds != seconds or seconds < 0:
        raise ValueError(f"{name} must be a positive number of seconds, 0 (off) or None (default), not {seconds!r}")
    if seconds == 0:
        return off
    ms = max(1, round(seconds * 1000))
    if ms > _INT_MAX:
        raise ValueError(f"{name} must be at most {_INT_MAX // 1000} seconds, not {seconds!r}")
    return ms


def _count(name: str, value: Optional[int], off: int, top: int) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, not {type(value).__name__}")
    if value < 0 or value > top:
        raise ValueError(f"{name} must be between 1 and {top}, 0 (no limit) or None (default), not {value!r}")
    return off if value == 0 else value


def limit_options(*, idle_timeout: Optional[float] = None, message_timeout: Optional[float] = None,
                  max_handshakes: Optional[int] = None, max_memory: Optional[int] = None) -> dict:
    """The engine option fields of the hardening limits, validated.

    ``idle_timeout``: seconds without input before closing with 1001 (default
    off). ``message_timeout``: seconds a begun message may take (default 60).
    ``max_handshakes``: sockets in their handshake (default 1024).
    ``max_memory``: the server's budget in bytes (default 1 GiB).
    """
    return {
        "idle_timeout_ms": _timeout_ms("idle_timeout", idle_timeout, 0),
        "message_timeout_ms": _timeout_ms("message_timeout", message_timeout, -1),
        "max_handshakes": _count("max_handshakes", max_handshakes, -1, _INT_MAX),
        "max_memory": _count("max_memory", max_memory, _SIZE_MAX, _SIZE_MAX - 1),
    }


def queue_marks(max_queue: "Optional[int | tuple]") -> "tuple[int, int]":
    """``max_queue`` as python-websockets takes it: the high-water mark in
    messages (low = high // 4), a ``(high, low)`` tuple, or None for no flow
    control. Returns (high, low); high 0 means never pause."""
    if max_queue is None:
        return 0, 0
    if isinstance(max_queue, tuple):
        if len(max_queue) != 2:
            raise ValueError("max_queue must be an int, a (high, low) tuple or None")
        high, low = max_queue
    else:
        high, low = max_queue, None
    if isinstance(high, bool) or not isinstance(high, int) or high < 1:
        raise ValueError(f"max_queue must be a positive number of messages or None, not {max_queue!r}")
    if low is None:
        low = high // 4
    if isinstance(low, bool) or not isinstance(low, int) or not 0 <= low <= high:
        raise ValueError(f"max_queue's low-water mark must be between 0 and the high-water mark, not {max_queue!r}")
    return high, low
