"""WebSocket URI parsing (ws:// and wss://)."""
from __future__ import annotations

import base64
import urllib.parse
from typing import NamedTuple, Optional, Tuple

from .exceptions import InvalidURI

__all__ = ["WebSocketURI", "parse_uri"]


class WebSocketURI(NamedTuple):
    """A parsed WebSocket URI."""

    secure: bool
    host: str
    port: int
    path: str
    query: str
    user_info: Optional[Tuple[str, str]]

    @property
    def resource_name(self) -> str:
        """Path and query as sent in the request line."""
        return self.path + ("?" + self.query if self.query else "")

    def url(self) -> str:
        """The URI without user info, as given to the engine."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'wss' if self.secure else 'ws'}://{host}:{self.port}{self.resource_name}"


def parse_uri(uri: str) -> WebSocketURI:
    """Parse and validate ``uri``; raises :class:`InvalidURI` with the reason."""
    if not isinstance(uri, str):
        raise InvalidURI(repr(uri), "URI must be a string")
    try:
        parsed = urllib.parse.urlsplit(uri)
    except ValueError as exc:
        raise InvalidURI(uri, str(exc)) from None
    if parsed.scheme not in ("ws", "wss"):
        raise InvalidURI(uri, "scheme isn't ws or wss")
    if not parsed.hostname:
        raise InvalidURI(uri, "hostname isn't provided")
    if parsed.fragment:
        raise InvalidURI(uri, "fragment identifier is meaningless")
    # Copied into the request line: a CR/LF would forge headers, a NUL cut
    # the URI short in the engine.
    if any(c <= " " or c == "\x7f" for c in uri):
        raise InvalidURI(uri, "URI contains whitespace or a control character")
    try:
        port = parsed.port
    except ValueError as exc:
        raise InvalidURI(uri, f"invalid port: {exc}") from None
    secure = parsed.scheme == "wss"
    if port is None:
        port = 443 if secure else 80
    if port == 0:
        raise InvalidURI(uri, "port 0 is not a valid destination")
    user_info = None
    if parsed.username is not None:
        if parsed.password is None:
            raise InvalidURI(uri, "username provided without password")
        user_info = (urllib.parse.unquote(parsed.username), urllib.parse.unquote(parsed.password))
    return WebSocketURI(secure, parsed.hostname, port, parsed.path or "/", parsed.query, user_info)


def basic_auth(user_info: Tuple[str, str]) -> str:
    """The Authorization header value for HTTP Basic auth."""
    return "Basic " + base64.b64encode(f"{user_info[0]}:{user_info[1]}".encode()).decode()
