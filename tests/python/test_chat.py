"""The chat example (examples/python/chat) driven by clients, and in a real browser."""
import asyncio
import json
import os
import shutil
import subprocess
import sys
import urllib.request

import pytest

import wirehub

from conftest import HOST, ROOT

CHAT = os.path.join(ROOT, "examples", "python", "chat", "server.py")
BROWSER_DIR = os.path.join(os.path.dirname(__file__), "browser")


@pytest.fixture
def chat_port():
    proc = subprocess.Popen([sys.executable, CHAT, "--host", HOST, "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "listening on" in line, proc.stderr.read()
        port = int(line.split(f"{HOST}:")[1].split("/")[0])
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


class Client:
    def __init__(self, ws):
        self.ws = ws

    @classmethod
    async def open(cls, port):
        c = cls(await wirehub.connect(f"ws://{HOST}:{port}/ws"))
        hello = await c.get("hello")
        c.nick = hello["nick"]
        return c

    async def say(self, **msg):
        await self.ws.send(json.dumps(msg))

    async def get(self, kind=None):
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), 5))
            if kind is None or msg["type"] == kind:
                return msg


async def test_join_message_history_members_and_leave(chat_port):
    alice = await Client.open(chat_port)
    assert alice.nick.startswith("guest")
    await alice.say(type="join", room="lobby", nick="alice")
    assert (await alice.get("nick"))["nick"] == "alice"
    joined = await alice.get("joined")
    assert joined["room"] == "lobby" and joined["history"] == [] and joined["members"] == ["alice"]
    await alice.say(type="message", text="first!")
    line = await alice.get("message")
    assert (line["nick"], line["text"], line["room"]) == ("alice", "first!", "lobby")

    bob = await Client.open(chat_port)
    await bob.say(type="join", room="lobby", nick="bob")
    joined = await bob.get("joined")
    assert [m["text"] for m in joined["history"]] == ["first!"]
    assert joined["members"] == ["alice", "bob"]
    presence = await alice.get("presence")
    assert (presence["event"], presence["nick"], presence["members"]) == ("join", "bob", ["alice", "bob"])

    await bob.say(type="message", text="hello alice")
    assert (await alice.get("message"))["text"] == "hello alice"
    assert (await bob.get("message"))["text"] == "hello alice"

    await bob.say(type="leave")
    assert (await bob.get("left"))["room"] == "lobby"
    presence = await alice.get("presence")
    assert (presence["event"], presence["members"]) == ("leave", ["alice"])

    await bob.ws.close()
    await alice.ws.close()


async def test_rooms_are_separate_and_history_keeps_the_last_50(chat_port):
    a = await Client.open(chat_port)
    await a.say(type="join", room="busy")
    await a.get("joined")
    for i in range(60):
        await a.say(type="message", text=f"m{i}")
    for i in range(60):
        assert (await a.get("message"))["text"] == f"m{i}"

    b = await Client.open(chat_port)
    await b.say(type="join", room="quiet")
    assert (await b.get("joined"))["history"] == []
    await b.say(type="join", room="busy")
    joined = await b.get("joined")
    assert [m["text"] for m in joined["history"]] == [f"m{i}" for i in range(10, 60)]
    await a.ws.close()
    await b.ws.close()


async def test_disconnect_leaves_the_room(chat_port):
    a = await Client.open(chat_port)
    b = await Client.open(chat_port)
    await a.say(type="join", room="r", nick="stay")
    await a.get("joined")
    await b.say(type="join", room="r", nick="go")
    await b.get("joined")
    assert (await a.get("presence"))["event"] == "join"
    await b.ws.close()
    presence = await a.get("presence")
    assert (presence["event"], presence["nick"], presence["members"]) == ("leave", "go", ["stay"])
    await a.ws.close()


async def test_errors_are_reported_to_the_sender(chat_port):
    a = await Client.open(chat_port)
    b = await Client.open(chat_port)
    await a.ws.send("not json")
    assert "JSON" in (await a.get("error"))["error"]
    await a.say(type="message", text="nobody hears")
    assert "join a room" in (await a.get("error"))["error"]
    await a.say(type="nick", nick="taken")
    await a.get("nick")
    await b.say(type="nick", nick="taken")
    assert "taken" in (await b.get("error"))["error"]
    await b.say(type="join", room="")
    assert "room" in (await b.get("error"))["error"]
    await b.say(type="dance")
    assert "unknown" in (await b.get("error"))["error"]
    await a.ws.close()
    await b.ws.close()


def test_the_page_is_served_on_the_same_port(chat_port):
    with urllib.request.urlopen(f"http://{HOST}:{chat_port}/", timeout=5) as r:
        body = r.read().decode()
        assert r.headers["Content-Type"].startswith("text/html")
    assert "new WebSocket(" in body and 'id="messages"' in body


CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


_HAVE_BROWSER = (os.path.exists(CHROMIUM) and shutil.which("node")
                 and os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")))


@pytest.mark.skipif(not _HAVE_BROWSER and not os.environ.get("WIREHUB_REQUIRE_BROWSER"),
                    reason="needs Debian's chromium, node and playwright-core (scripts/deps-python.sh)")
def test_two_browser_pages_chat_through_the_server(chat_port, tmp_path):
    shot_dir = os.environ.get("WIREHUB_SCREENSHOT_DIR", str(tmp_path))
    os.makedirs(shot_dir, exist_ok=True)
    shot = os.path.join(shot_dir, "python-chat.png")
    # The browser loads no wirehub code; the ASan runtime that test-python.sh
    # --asan preloads into Python would only hang Chromium's start.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    proc = subprocess.run(["node", os.path.join(BROWSER_DIR, "chat_browser.js"), f"http://{HOST}:{chat_port}/", shot],
                          capture_output=True, text=True, timeout=90, cwd=BROWSER_DIR, env=env)
    assert proc.returncode == 0, proc.stderr
    view = json.loads(proc.stdout.strip().splitlines()[-1])
    alice, bob = view["alice"], view["bob"]
    assert alice["room"] == bob["room"] == "browsers"
    assert alice["members"] == bob["members"] == ["alice", "bob"]
    assert "alice: hello from alice" in bob["messages"]  # from the room's history
    assert "bob: hi alice, bob here" in alice["messages"]
    assert "bob joined" in alice["messages"]
    assert alice["status"] == "connected as alice"
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(shot) > 5000
