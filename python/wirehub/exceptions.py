"""Exceptions raised by wirehub, named and shaped like python-websockets' ones.

Hierarchy::

    WebSocketException
    ├── ConnectionClosed
    │   ├── ConnectionClosedOK       (1000 / 1001 / no status code)
    │   └── ConnectionClosedError    (anything else, or no close frame)
    ├── InvalidURI
    ├── InvalidHandshake
    │   └── InvalidStatus            (the server answered with a non-101 status)
    ├── PayloadTooBig                (a message over max_size)
    ├── ConcurrencyError             (two coroutines in recv() at once)
    └── BrokerError                  (serve(broker=...) could not attach to Redis)

A connection closed because the peer sent a message over ``max_size`` raises
an exception that is both a :class:`ConnectionClosedError` (code 1009) and a
:class:`PayloadTooBig`, so either ``except`` clause catches it.
"""
from __future__ import annotations

from typing import Optional

__all__ = [
    "WebSocketException",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "InvalidURI",
    "InvalidHandshake",
    "InvalidStatus",
    "PayloadTooBig",
    "ConcurrencyError",
    "BrokerError",
    "close_code_name",
]

_CLOSE_NAMES = {
    1000: "OK",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status received",
    1006: "connection closed abnormally",
    1007: "invalid frame payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS failure",
}


def close_code_name(code: Optional[int]) -> str:
    """A readable name for a close code ("going away", "private use", ...)."""
    if code is None:
        return "unknown"
    if code in _CLOSE_NAMES:
        return _CLOSE_NAMES[code]
    if 3000 <= code < 4000:
        return "registered"
    if 4000 <= code < 5000:
        return "private use"
    return "unknown"


class WebSocketException(Exception):
    """Base class of every exception wirehub raises on purpose."""


class ConnectionClosed(WebSocketException):
    """The connection is closed: raised by ``recv()``, ``send()``, ``ping()`` after the close.

    ``code`` and ``reason`` are the close code and reason of the closing
    handshake (1006 and ``""`` when the TCP connection broke without one).
    """

    def __init__(self, code: int, reason: str = "", detail: str = "") -> None:
        self.code = code
        self.reason = reason
        self.detail = detail
        super().__init__(code, reason)

    @property
    def rcvd(self) -> "ConnectionClosed":
        """websockets compatibility: an object with ``code`` and ``reason``."""
        return self

    def __str__(self) -> str:
        text = f"connection closed: {self.code} ({close_code_name(self.code)})"
        if self.reason:
            text += f" {self.reason}"
        if self.detail:
            text += f"; {self.detail}"
        return text


class ConnectionClosedOK(ConnectionClosed):
    """Closed cleanly with 1000 (normal), 1001 (going away) or without a status code."""


class ConnectionClosedError(ConnectionClosed):
    """Closed with an error code, or the connection broke without a closing handshake."""


class InvalidURI(WebSocketException):
    """The URI is not a valid ``ws://`` or ``wss://`` URI."""

    def __init__(self, uri: str, msg: str) -> None:
        self.uri = uri
        self.msg = msg
        super().__init__(uri, msg)

    def __str__(self) -> str:
        return f"{self.uri!r} isn't a valid WebSocket URI: {self.msg}"


class InvalidHandshake(WebSocketException):
    """The opening handshake failed (bad response, TLS failure, timeout...)."""


class InvalidStatus(InvalidHandshake):
    """The server refused the upgrade: ``response.status_code`` is its HTTP status."""

    def __init__(self, response) -> None:
        self.response = response
        super().__init__(response)

    def __str__(self) -> str:
        return f"server rejected WebSocket connection: HTTP {self.response.status_code}"


class PayloadTooBig(WebSocketException):
    """A message was larger than ``max_size`` (or the send buffer's hard cap)."""


class ConcurrencyError(WebSocketException, RuntimeError):
    """Two coroutines called ``recv()`` on one connection at the same time."""


class BrokerError(WebSocketException):
    """``serve(broker=...)`` could not attach the server to Redis: a wrong
    URL, an unreachable Redis or a refused password. The server is closed.

    ``url`` is the broker URL with its password replaced by ``***``,
    ``reason`` says what went wrong, ``code`` is the engine's ``WH_E*`` code
    (``wirehub._wirehub.ECONNREFUSED``, ``EACCES``, ``EURL``, ``ETIMEDOUT``,
    ``ERESOLVE``, ``ETLS`` or ``EBROKER``).
    """

    def __init__(self, url: str, reason: str, code: int = 0) -> None:
        self.url = url
        self.reason = reason
        self.code = code
        super().__init__(url, reason, code)

    def __str__(self) -> str:
        return f"cannot attach to the broker {self.url}: {self.reason}"


class _ClosedTooBig(ConnectionClosedError, PayloadTooBig):
    """Closed with 1009 because a received message exceeded ``max_size``."""
