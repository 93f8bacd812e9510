"""The chat example (examples/python/chat) driven by clients, and in a real browser."""
import asyncio
import json
import os
import shutil
import subprocess
import sys
import signal
import urllib.request

import pytest

import wirehub

from conftest import HOST, ROOT
from redis_helpers import REDIS_SERVER, RedisProcess, wait_numsub

CHAT = os.path.join(ROOT, "examples", "python", "chat", "server.py")
BROWSER_DIR = os.path.join(os.path.dirname(__file__), "browser")


def start_chat(*args):
    """(process, port) of one chat instance."""
    proc = subprocess.Popen([sys.executable, CHAT, "--host", HOST, "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise AssertionError(line + proc.stderr.read())
    return proc, int(line.split(f"{HOST}:")[1].split("/")[0])


def stop_chat(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def chat_port():
    proc, port = start_chat()
    try:
        yield port
    finally:
        stop_chat(proc)


try:
    import redis as _redis_package  # noqa: F401  (the chat's cluster mode needs it)
    _HAVE_CLUSTER = REDIS_SERVER is not None
except ImportError:
    _HAVE_CLUSTER = False
needs_cluster = pytest.mark.skipif(not _HAVE_CLUSTER and not os.environ.get("WIREHUB_REQUIRE_REDIS"),
                                   reason="needs redis-server and the redis package (scripts/deps-python.sh)")


class Cluster:
    def __init__(self):
        self.redis = RedisProcess().start()
        self.procs = []
        self.ports = []

    def add(self, name):
        proc, port = start_chat("--redis", self.redis.url, "--name", name)
        self.procs.append(proc)
        self.ports.append(port)
        return proc, port

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                stop_chat(p)
        self.redis.close()


@pytest.fixture
def chat_cluster():
    """Two chat instances behind one Redis: the Cluster (ports[0], ports[1])."""
    c = Cluster()
    try:
        c.add("one")
        c.add("two")
        yield c
    finally:
        c.close()


class Client:
    def __init__(self, ws):
        self.ws = ws

    @classmethod
    async def open(cls, port):
        c = cls(await wirehub.connect(f"ws://{HOST}:{port}/ws"))
        c.hello = await c.get("hello")
        c.nick = c.hello["nick"]
        return c

    async def say(self, **msg):
        await self.ws.send(json.dumps(msg))

    async def get(self, kind=None):
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), 5))
            if kind is None or msg["type"] == kind:
                return msg


async def bob_joins_alice_in_the_lobby(alice, bob):
    """bob joins "lobby", where alice said "first!": he gets that history and both
    members, she his arrival; then what he says reaches them both."""
    await bob.say(type="join", room="lobby", nick="bob")
    joined = await bob.get("joined")
    assert [m["text"] for m in joined["history"]] == ["first!"]
    assert joined["members"] == ["alice", "bob"]
    presence = await alice.get("presence")
    assert (presence["event"], presence["nick"], presence["members"]) == ("join", "bob", ["alice", "bob"])

    await bob.say(type="message", text="hello alice")
    assert (await alice.get("message"))["text"] == "hello alice"
    assert (await bob.get("message"))["text"] == "hello alice"


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
    await bob_joins_alice_in_the_lobby(alice, bob)

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


# ----------------------------------------------------- several instances, one Redis

@needs_cluster
async def test_two_instances_are_one_chat(chat_cluster):
    one, two = chat_cluster.ports
    alice = await Client.open(one)
    assert alice.hello["instance"] == "one"
    await alice.say(type="join", room="lobby", nick="alice")
    assert (await alice.get("joined"))["members"] == ["alice"]
    await alice.say(type="message", text="first!")
    assert (await alice.get("message"))["text"] == "first!"
    await wait_numsub(chat_cluster.redis.port, "chat:room:lobby", 1)

    bob = await Client.open(two)
    assert bob.hello["instance"] == "two" and bob.hello["rooms"] == ["lobby"]
    assert bob.nick != alice.nick  # guest numbers are shared too
    # History, members and presence are shared: the same as on one instance.
    await bob_joins_alice_in_the_lobby(alice, bob)
    await alice.say(type="message", text="hi bob, from instance one")
    assert (await bob.get("message"))["text"] == "hi bob, from instance one"
    assert (await alice.get("message"))["text"] == "hi bob, from instance one"

    await bob.say(type="nick", nick="robert")
    assert (await bob.get("nick"))["nick"] == "robert"
    presence = await alice.get("presence")
    assert (presence["event"], presence["old"], presence["members"]) == ("nick", "bob", ["alice", "robert"])

    await bob.say(type="leave")
    assert (await bob.get("left"))["room"] == "lobby"
    presence = await alice.get("presence")
    assert (presence["event"], presence["nick"], presence["members"]) == ("leave", "robert", ["alice"])
    await bob.say(type="join", room="lobby")
    await bob.get("joined")
    await alice.get("presence")
    await bob.ws.close()  # a disconnect on one instance is a leave on the other
    presence = await alice.get("presence")
    assert (presence["event"], presence["nick"], presence["members"]) == ("leave", "robert", ["alice"])
    await alice.ws.close()


@needs_cluster
async def test_nicknames_are_unique_across_instances(chat_cluster):
    one, two = chat_cluster.ports
    a = await Client.open(one)
    b = await Client.open(two)
    await a.say(type="nick", nick="taken")
    assert (await a.get("nick"))["nick"] == "taken"
    await b.say(type="nick", nick="taken")
    assert "taken" in (await b.get("error"))["error"]
    await b.say(type="join", room="r", nick="taken")
    assert "taken" in (await b.get("error"))["error"]
    # Given back when its holder disconnects (from the other instance).
    await a.ws.close()
    for _ in range(100):
        await b.say(type="nick", nick="taken")
        reply = await b.get()
        if reply["type"] == "nick":
            break
        await asyncio.sleep(0.05)
    assert reply == {"type": "nick", "nick": "taken"}
    await b.ws.close()


@needs_cluster
async def test_an_instance_that_stops_says_goodbye_to_the_others(chat_cluster):
    proc, three = chat_cluster.add("three")
    stay = await Client.open(chat_cluster.ports[0])
    await stay.say(type="join", room="r", nick="stay")
    await stay.get("joined")
    go = await Client.open(three)
    await go.say(type="join", room="r", nick="go")
    assert (await go.get("joined"))["members"] == ["go", "stay"]
    assert (await stay.get("presence"))["members"] == ["go", "stay"]
    proc.send_signal(signal.SIGTERM)
    presence = await stay.get("presence")
    assert (presence["event"], presence["nick"], presence["members"]) == ("leave", "go", ["stay"])
    assert await asyncio.get_running_loop().run_in_executor(None, proc.wait, 10) == 0
    # Its nickname is free again.
    await stay.say(type="nick", nick="go")
    assert (await stay.get("nick"))["nick"] == "go"
    await stay.ws.close()


@needs_cluster
def test_an_unreachable_redis_stops_the_instance_with_a_clear_error():
    url = f"redis://:pw@127.0.0.1:{RedisProcess().port}/0"
    proc = subprocess.run([sys.executable, CHAT, "--port", "0", "--redis", url], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    assert "Redis" in proc.stderr or "redis" in proc.stderr
    assert ":pw@" not in proc.stderr


CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


_HAVE_BROWSER = (os.path.exists(CHROMIUM) and shutil.which("node")
                 and os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")))
needs_browser = pytest.mark.skipif(not _HAVE_BROWSER and not os.environ.get("WIREHUB_REQUIRE_BROWSER"),
                                   reason="needs Debian's chromium, node and playwright-core (scripts/deps-python.sh)")


def chat_in_browsers(tmp_path, shot_name, *urls):
    """Runs chat_browser.js: alice's page on urls[0], bob's on urls[1] if given
    (else on urls[0] too), a screenshot to shot_name (in WIREHUB_SCREENSHOT_DIR
    if set). Returns (alice, bob, shot): each page's view as the script reports
    it, and the screenshot's path, checked to be a PNG."""
    shot_dir = os.environ.get("WIREHUB_SCREENSHOT_DIR", str(tmp_path))
    os.makedirs(shot_dir, exist_ok=True)
    shot = os.path.join(shot_dir, shot_name)
    # The browser loads no wirehub code; the ASan runtime that test-python.sh
    # --asan preloads into Python would only hang Chromium's start.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    proc = subprocess.run(["node", os.path.join(BROWSER_DIR, "chat_browser.js"), urls[0], shot, *urls[1:]],
                          capture_output=True, text=True, timeout=90, cwd=BROWSER_DIR, env=env)
    assert proc.returncode == 0, proc.stderr
    view = json.loads(proc.stdout.strip().splitlines()[-1])
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    return view["alice"], view["bob"], shot


@needs_browser
def test_two_browser_pages_chat_through_the_server(chat_port, tmp_path):
    alice, bob, shot = chat_in_browsers(tmp_path, "python-chat.png", f"http://{HOST}:{chat_port}/")
    assert alice["room"] == bob["room"] == "browsers"
    assert alice["members"] == bob["members"] == ["alice", "bob"]
    assert "alice: hello from alice" in bob["messages"]  # from the room's history
    assert "bob: hi alice, bob here" in alice["messages"]
    assert "bob joined" in alice["messages"]
    assert alice["status"] == "connected as alice"
    assert os.path.getsize(shot) > 5000


@needs_cluster
@needs_browser
def test_two_browser_pages_on_two_instances_chat_as_on_one(chat_cluster, tmp_path):
    one, two = chat_cluster.ports
    alice, bob, _ = chat_in_browsers(tmp_path, "python-chat-cluster.png", f"http://{HOST}:{one}/",
                                     f"http://{HOST}:{two}/")
    assert (alice["instance"], bob["instance"]) == ("via instance one", "via instance two")
    assert alice["room"] == bob["room"] == "browsers"
    assert alice["members"] == bob["members"] == ["alice", "bob"]
    assert "alice: hello from alice" in bob["messages"]  # the room's history, kept in Redis
    assert "bob: hi alice, bob here" in alice["messages"]  # carried by the broker
    assert "bob joined" in alice["messages"]
    assert alice["status"] == "connected as alice"
