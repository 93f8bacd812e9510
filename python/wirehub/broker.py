"""Scale-out through Redis: ``serve(..., broker="redis://host:6379/0")``.

With a broker, :meth:`Server.publish` also reaches the subscribers of the
topic on every other server (process, machine) attached to the same Redis
with the same ``broker_prefix``. The engine does the work (capi/wirehub.h,
"broker"): a node subscribes to a topic's Redis channel only while one of its
connections is subscribed to the topic, keeps the order of what one thread
publishes, reconnects with backoff when Redis goes away (local delivery goes
on; what was meant for other nodes meanwhile is dropped and counted), and
drops and counts what it cannot read on its channels.
:meth:`Server.broadcast` stays local.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Optional

from . import _wirehub as _native
from ._tls import client_tls_options

__all__ = ["BrokerStats", "redact_url"]


@dataclass(frozen=True)
class BrokerStats:
    """Counters of a server's broker (:meth:`Server.broker_stats`)."""

    connected: bool
    """True while the connection to Redis is up."""
    channels: int
    """Redis channels this node is subscribed to now (one per topic with local subscribers)."""
    published: int
    """Messages written to Redis for other nodes."""
    received: int
    """Messages from other nodes delivered to local subscribers."""
    dropped: int
    """Publishes for other nodes that could not be sent (Redis down, ``broker_max_pending`` reached)."""
    malformed: int
    """Messages on our channels dropped as unreadable (another publisher's, invalid UTF-8, over ``max_size``)."""
    reconnects: int
    """Times the connection to Redis came back after a loss."""


_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/]*)@")


def redact_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***``.

    ``redis://user:secret@host`` → ``redis://user:***@host``; a lone user info
    (``redis://secret@host``) is a password to Redis clients, so it is hidden too.
    """
    m = _USERINFO.match(url)
    if not m:
        return url
    info = m.group("info")
    user, colon, _ = info.partition(":")
    hidden = f"{user}:***" if colon else "***"
    return f"{m.group('scheme')}{hidden}@{url[m.end():]}"


_REASONS = {
    _native.EURL: "invalid URL (expected redis://[[user]:password@]host[:port][/db] or rediss://...)",
    _native.ECONNREFUSED: "connection refused (is Redis running there?)",
    _native.ERESOLVE: "host name could not be resolved",
    _native.EACCES: "authentication refused (wrong user name or password)",
    _native.ETLS: "TLS error (check the CA file, or the server's certificate)",
    _native.EBROKER: "Redis refused the connection",
    _native.ESHUTDOWN: "the server is closing",
}


def reason(rc: int, timeout_ms: int) -> str:
    """Why :func:`wh_server_set_broker` failed, for :class:`BrokerError`."""
    if rc == _native.ETIMEDOUT:
        return f"no answer from Redis within {timeout_ms / 1000:g} s"
    return _REASONS.get(rc, _native.strerror(rc))


def broker_options(broker: Any, prefix: Optional[str], timeout: Optional[float], max_pending: Optional[int],
                   ssl: Any) -> Optional[Dict[str, Any]]:
    """The arguments of the native ``set_broker``, validated; None without a broker."""
    if broker is None:
        if prefix is not None or timeout is not None or max_pending is not None or ssl is not None:
            raise ValueError("broker_prefix, broker_timeout, broker_max_pending and broker_ssl need broker=")
        return None
    if not isinstance(broker, str):
        raise TypeError(f"broker must be a redis:// or rediss:// URL string, not {type(broker).__name__}")
    if prefix is not None and not isinstance(prefix, str):
        raise TypeError(f"broker_prefix must be a string, not {type(prefix).__name__}")
    if prefix is not None and "\x00" in prefix:
        raise ValueError("broker_prefix must not contain NUL")
    if timeout is None:
        timeout_ms = 5000
    elif timeout <= 0:
        raise ValueError("broker_timeout must be positive (seconds)")
    else:
        timeout_ms = max(1, min(int(timeout * 1000), 2 ** 31 - 1))
    if max_pending is not None and max_pending <= 0:
        raise ValueError("broker_max_pending must be positive (bytes)")
    tls = client_tls_options(ssl)
    if ssl is not None and not broker.startswith("rediss://"):
        raise ValueError("broker_ssl needs a rediss:// broker URL")
    return {
        "url": broker,
        "prefix": prefix,
        "ca_file": tls.get("ca_file"),
        "insecure": bool(tls.get("insecure")),
        "connect_timeout_ms": timeout_ms,
        "max_pending": int(max_pending or 0),
    }
