"""The package surface: exports, docstrings, typing, exceptions, headers."""
import asyncio
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


# The public names' behaviour is tested where it is used; the 24 one-name
# docstring checks that stood here are replaced by this one documentation
# check plus the behaviour tests below. Where each name is tested:
#   serve, Server, broadcast: test_server.py, test_listener.py, test_lifecycle.py
#   ServerConnection, ClientConnection, Connection, State, Data, Request: below
#   Listener: test_listener.py; connect, parse_uri: test_client.py, test_basics.py
#   Headers, Response, WebSocketException and every exception class: below and
#   test_client.py / test_server.py (InvalidStatus, InvalidURI, PayloadTooBig),
#   test_basics.py (ConnectionClosedOK/Error, ConcurrencyError); SSLContext: test_tls.py
def test_public_api_is_documented():
    missing = []
    for name, obj in public_names():
        if isinstance(obj, (int, str)) or obj is wirehub.Data:
            continue  # constants and the Data alias carry no docstring of their own
        if not inspect.getdoc(obj):
            missing.append(f"wirehub.{name}")
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                    continue
                if not inspect.getdoc(member):
                    missing.append(f"wirehub.{name}.{attr}")
    if not inspect.getdoc(wirehub.sync.client.connect):
        missing.append("wirehub.sync.client.connect")
    for attr in ("send", "recv", "close", "ping"):
        if not inspect.getdoc(getattr(wirehub.sync.client.ClientConnection, attr)):
            missing.append(f"wirehub.sync.client.ClientConnection.{attr}")
    assert missing == [], f"public names without a docstring: {missing}"


async def test_each_side_is_a_connection_that_goes_from_open_to_closed():
    # Connection: "Text messages arrive as str, binary ones as bytes" (Data);
    # ServerConnection is what a handler gets, ClientConnection what connect()
    # returns, both Connections; State: OPEN while open, CLOSED after.
    seen = {}

    async def handler(ws):
        seen["server_type"] = (isinstance(ws, wirehub.ServerConnection), isinstance(ws, wirehub.Connection))
        seen["server_state"] = ws.state
        async for message in ws:
            seen.setdefault("received", []).append(message)
            await ws.send(message)
        seen["server_after"] = ws.state

    async with wirehub.serve(handler, "127.0.0.1", 0) as server:
        assert isinstance(server, wirehub.Server)
        ws = await wirehub.connect(f"ws://127.0.0.1:{server.port}/")
        assert isinstance(ws, wirehub.ClientConnection) and isinstance(ws, wirehub.Connection)
        assert not isinstance(ws, wirehub.ServerConnection)
        assert ws.state == wirehub.State.OPEN
        await ws.send("text")
        assert await ws.recv() == "text"
        await ws.send(b"\x00bin")
        echoed = await ws.recv()
        assert type(echoed) is bytes and echoed == b"\x00bin"
        await ws.close()
        assert ws.state == wirehub.State.CLOSED
        for _ in range(200):
            if "server_after" in seen:
                break
            await asyncio.sleep(0.01)
    assert seen["server_type"] == (True, True)
    assert seen["server_state"] == wirehub.State.OPEN
    assert seen["received"] == ["text", b"\x00bin"]
    assert seen["server_after"] == wirehub.State.CLOSED
    assert [wirehub.State.CONNECTING, wirehub.State.OPEN, wirehub.State.CLOSING, wirehub.State.CLOSED] == [0, 1, 2, 3]


async def test_process_request_gets_the_upgrade_request():
    # Request: method, path (with the query string), headers, query and the
    # peer's remote_address, as its docstring lists them.
    got = {}

    def process_request(connection, request):
        assert isinstance(request, wirehub.Request)
        got.update(method=request.method, path=request.path, query=request.query,
                   header=request.headers.get("X-Probe"), remote=request.remote_address)
        return None

    async with wirehub.serve(echo_handler, "127.0.0.1", 0, process_request=process_request) as server:
        async with wirehub.connect(f"ws://127.0.0.1:{server.port}/room?x=1",
                                   additional_headers={"X-Probe": "yes"}) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
    assert got["method"] == "GET"
    assert got["path"] == "/room?x=1"
    assert got["query"] == "x=1"
    assert got["header"] == "yes"
    assert got["remote"][0] == "127.0.0.1" and got["remote"][1] > 0


async def echo_handler(ws):
    async for message in ws:
        await ws.send(message)


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
