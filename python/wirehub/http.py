"""HTTP pieces of the handshake: headers, the request a server sees, responses."""
from __future__ import annotations

import http
from typing import Iterable, Iterator, List, Mapping, MutableMapping, Optional, Tuple, Union

__all__ = ["Headers", "Request", "Response"]

HeadersLike = Union["Headers", Mapping[str, str], Iterable[Tuple[str, str]]]


class Headers(MutableMapping[str, str]):
    """Case-insensitive HTTP headers that keep repeated names (like websockets.datastructures.Headers).

    ``headers["Host"]`` returns the value (or raises ``KeyError``; repeated
    headers are joined with ``", "``), ``get_all(name)`` every value,
    ``raw_items()`` the (name, value) pairs in order.
    """

    __slots__ = ("_items",)

    def __init__(self, *args: HeadersLike, **kwargs: str) -> None:
        self._items: List[Tuple[str, str]] = []
        for arg in args:
            self.update(arg)
        for k, v in kwargs.items():
            self._items.append((k, v))

    @classmethod
    def from_block(cls, block: str) -> "Headers":
        """Headers from a raw ``"Name: value\\r\\n..."`` block, in order, repeats kept."""
        h = cls()
        for line in block.split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                h._items.append((name.strip(), value.strip()))
        return h

    def update(self, other=(), **kwargs: str) -> None:  # type: ignore[override]
        """Add headers from a mapping, a Headers or (name, value) pairs (keeps duplicates)."""
        if isinstance(other, Headers):
            self._items.extend(other._items)
        elif isinstance(other, Mapping):
            self._items.extend((str(k), str(v)) for k, v in other.items())
        else:
            self._items.extend((str(k), str(v)) for k, v in other)
        for k, v in kwargs.items():
            self._items.append((k, v))

    def __getitem__(self, key: str) -> str:
        values = self.get_all(key)
        if not values:
            raise KeyError(key)
        return ", ".join(values)

    def __setitem__(self, key: str, value: str) -> None:
        self._items.append((key, value))

    def __delitem__(self, key: str) -> None:
        k = key.lower()
        if not any(n.lower() == k for n, _ in self._items):
            raise KeyError(key)
        self._items = [(n, v) for n, v in self._items if n.lower() != k]

    def __iter__(self) -> Iterator[str]:
        seen = set()
        for n, _ in self._items:
            if n.lower() not in seen:
                seen.add(n.lower())
                yield n

    def __len__(self) -> int:
        return len({n.lower() for n, _ in self._items})

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and any(n.lower() == key.lower() for n, _ in self._items)

    def get_all(self, key: str) -> List[str]:
        """Every value of header ``key``, in order."""
        k = key.lower()
        return [v for n, v in self._items if n.lower() == k]

    def raw_items(self) -> List[Tuple[str, str]]:
        """The (name, value) pairs as received or added."""
        return list(self._items)

    def serialize(self) -> str:
        """As a raw header block ``"Name: value\\r\\n..."``."""
        for n, v in self._items:
            if any(c in n + v for c in "\r\n\x00") or ":" in n:  # a forged line, or a block cut short
                raise ValueError(f"invalid header {n!r}: {v!r}")
        return "".join(f"{n}: {v}\r\n" for n, v in self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class Request:
    """The HTTP request of a WebSocket upgrade (or of a plain HTTP request).

    Attributes: ``method``, ``path`` (with the query string, as websockets),
    ``headers`` (:class:`Headers`), ``query``, ``remote_address`` ((host, port)).
    """

    __slots__ = ("method", "path", "headers", "query", "remote_address", "is_upgrade")

    def __init__(self, method: str, path: str, headers: Headers, query: str = "",
                 remote_address: Tuple[str, int] = ("", 0), is_upgrade: bool = True) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.query = query
        self.remote_address = remote_address
        self.is_upgrade = is_upgrade

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path})"


class Response:
    """An HTTP response: returned by ``process_request`` to refuse an upgrade or
    answer a plain HTTP request; also the ``response`` of :class:`InvalidStatus`.
    """

    __slots__ = ("status_code", "reason_phrase", "headers", "body")

    def __init__(self, status_code: int, reason_phrase: Optional[str] = None, headers: Optional[HeadersLike] = None,
                 body: Union[bytes, str] = b"") -> None:
        self.status_code = int(status_code)
        # None: the standard phrase; "" stays "" (a server that sent none)
        if reason_phrase is None:
            try:
                reason_phrase = http.HTTPStatus(self.status_code).phrase
            except ValueError:
                reason_phrase = ""
        self.reason_phrase = reason_phrase
        self.headers = headers if isinstance(headers, Headers) else Headers(headers or ())
        self.body = body.encode() if isinstance(body, str) else bytes(body)

    def __repr__(self) -> str:
        return f"Response({self.status_code} {self.reason_phrase}, {len(self.body)} bytes)"
