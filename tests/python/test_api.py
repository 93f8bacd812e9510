"""The package surface: exports, docstrings, typing, exceptions, headers."""
import inspect
import os

import pytest

import wirehub
import wirehub.sync.client
from wirehub import (ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, Headers, InvalidHandshake,
                     InvalidStatus, InvalidURI, PayloadTooBig, Response, WebSocketException)


def public_names():
    for name in wirehub.__all__:
        yield name, getattr(wirehub, name)


@pytest.mark.parametrize("name,obj", list(public_names()))
def test_every_public_name_has_a_docstring(name, obj):
    if isinstance(obj, (int, str)) or obj is wirehub.Data:
        return
    assert inspect.getdoc(obj), f"wirehub.{name} has no docstring"
    if inspect.isclass(obj):
        for attr, member in vars(obj).items():
            if attr.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                continue
            assert inspect.getdoc(member), f"wirehub.{name}.{attr} has no docstring"


def test_sync_client_is_documented():
    assert inspect.getdoc(wirehub.sync.client.connect)
    for attr in ("send", "recv", "close", "ping"):
        assert inspect.getdoc(getattr(wirehub.sync.client.ClientConnection, attr))


def test_package_is_typed():
    pkg = os.path.dirname(wirehub.__file__)
    assert os.path.exists(os.path.join(pkg, "py.typed"))
    assert os.path.exists(os.path.join(pkg, "_wirehub.pyi"))
    assert wirehub.__version__ == "0.1.0"
    assert wirehub.engine_version.count(".") == 2


def test_exception_hierarchy_matches_websockets():
    assert issubclass(ConnectionClosedOK, ConnectionClosed)
    assert issubclass(ConnectionClosedError, ConnectionClosed)
    assert issubclass(InvalidStatus, InvalidHandshake)
    for exc in (ConnectionClosed, InvalidURI, InvalidHandshake, PayloadTooBig):
        assert issubclass(exc, WebSocketException)


def test_exception_messages_are_specific():
    assert str(ConnectionClosedOK(1001, "")) == "connection closed: 1001 (going away)"
    assert str(ConnectionClosedError(1011, "oops")) == "connection closed: 1011 (internal error) oops"
    assert "isn't a valid WebSocket URI: scheme" in str(InvalidURI("http://x", "scheme isn't ws or wss"))
    assert str(InvalidStatus(Response(403))) == "server rejected WebSocket connection: HTTP 403"
    exc = ConnectionClosedError(4000, "custom")
    assert (exc.code, exc.reason, exc.rcvd.code) == (4000, "custom", 4000)


def test_headers_are_case_insensitive_and_keep_repeats():
    h = Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2")], Host="example")
    assert h["SET-COOKIE"] == "a=1, b=2"
    assert h.get_all("set-cookie") == ["a=1", "b=2"]
    assert "host" in h and h["HOST"] == "example"
    del h["set-cookie"]
    assert "Set-Cookie" not in h and len(h) == 1
    assert h.serialize() == "Host: example\r\n"
    with pytest.raises(ValueError):
        Headers({"Bad": "line\r\nbreak"}).serialize()


def test_response_defaults():
    r = Response(404, body="missing")
    assert (r.status_code, r.reason_phrase, r.body) == (404, "Not Found", b"missing")
