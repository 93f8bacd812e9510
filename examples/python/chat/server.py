#!/usr/bin/env python3
"""wirehub chat: one port serves the page (GET /) and the WebSocket endpoint (/ws).

    python3 examples/python/chat/server.py [--host 127.0.0.1] [--port 8080]
    python3 examples/python/chat/server.py --port 8081 --redis redis://127.0.0.1:6379/0

Rooms are engine topics ("room:NAME"): a chat line is framed once by the
engine and shared by every member. The server keeps, per room, the last 50
messages (sent to newcomers) and who is in it. Protocol: README.md.

With --redis, any number of instances (processes, machines) behind one Redis
are one chat: the engine's broker carries each room's topic to every
instance with members in it, and the shared state (history, members,
nicknames) lives in Redis (the `redis` package: pip install 'wirehub[redis]').
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import pathlib
import signal
import socket
import time
import uuid
from typing import Any, Deque, Dict, List, Optional, Set, Tuple

import wirehub
from wirehub import Response
from wirehub.broker import redact_url

HISTORY = 50
MAX_NAME = 32
MAX_TEXT = 4000
PAGE = (pathlib.Path(__file__).parent / "index.html").read_bytes()

log = logging.getLogger("chat")


class Room:
    def __init__(self, name: str) -> None:
        self.name = name
        self.history: Deque[dict] = collections.deque(maxlen=HISTORY)
        self.members: Dict[str, str] = {}  # member id -> nickname

    def who(self) -> List[str]:
        return sorted(self.members.values())


class LocalState:
    """One instance: rooms, members and nicknames in this process."""

    def __init__(self) -> None:
        self.rooms: Dict[str, Room] = {}
        self.nicks: Set[str] = set()
        self._guest = 0

    async def new_guest(self, member: str) -> str:
        while True:
            self._guest += 1
            nick = f"guest{self._guest}"
            if nick not in self.nicks:
                self.nicks.add(nick)
                return nick

    async def claim_nick(self, member: str, nick: str) -> bool:
        if nick in self.nicks:
            return False
        self.nicks.add(nick)
        return True

    async def release_nick(self, member: str, nick: str) -> None:
        self.nicks.discard(nick)

    async def rooms_in_use(self) -> List[str]:
        return sorted(r.name for r in self.rooms.values() if r.members)

    async def join(self, name: str, member: str, nick: str) -> Tuple[List[dict], List[str]]:
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Room(name)
        room.members[member] = nick
        return list(room.history), room.who()

    async def leave(self, name: str, member: str) -> List[str]:
        room = self.rooms[name]
        room.members.pop(member, None)
        who = room.who()
        if not room.members and not room.history:
            del self.rooms[name]
        return who

    async def rename(self, name: str, member: str, nick: str) -> List[str]:
        room = self.rooms[name]
        room.members[member] = nick
        return room.who()

    async def add_line(self, name: str, line: dict) -> None:
        self.rooms[name].history.append(line)

    async def close(self) -> None:
        pass


class RedisState:
    """Every instance behind one Redis: the same state, kept there.

    Keys (under the prefix): ``nick:NAME`` → the member holding it (SET NX, so
    a nickname is unique across instances), ``members:ROOM`` a hash member →
    nickname, ``history:ROOM`` a list of the last 50 lines, ``guests`` the
    guestN counter, ``alive:INSTANCE`` a heartbeat. Members are
    ``INSTANCE:N``: the entries of an instance that died without cleaning up
    (its heartbeat expired) are left out and removed, and its nicknames expire.
    """

    TTL_MS = 15000
    BEAT_S = 5

    # Deletes a nickname only if this member still holds it.
    _RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

    def __init__(self, url: str, prefix: str, instance: str) -> None:
        import redis.asyncio  # the optional dependency: pip install 'wirehub[redis]'

        self.r = redis.asyncio.Redis.from_url(url, decode_responses=True)
        self.p = prefix
        self.instance = instance
        self.mine: Dict[str, str] = {}  # nickname -> member, for the heartbeat
        self._release = self.r.register_script(self._RELEASE)
        self._beat: Optional[asyncio.Task] = None

    async def start(self) -> None:
        await self.r.set(self.p + "alive:" + self.instance, "1", px=self.TTL_MS)
        self._beat = asyncio.ensure_future(self._heartbeat())

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.BEAT_S)
            try:
                async with self.r.pipeline(transaction=False) as pipe:
                    pipe.set(self.p + "alive:" + self.instance, "1", px=self.TTL_MS)
                    for nick in list(self.mine):
                        pipe.pexpire(self.p + "nick:" + nick, self.TTL_MS)
                    await pipe.execute()
            except Exception as exc:  # Redis away for a while: try again at the next beat
                log.warning("heartbeat failed: %s", exc)

    async def new_guest(self, member: str) -> str:
        while True:
            nick = f"guest{await self.r.incr(self.p + 'guests')}"
            if await self.claim_nick(member, nick):
                return nick

    async def claim_nick(self, member: str, nick: str) -> bool:
        if await self.r.set(self.p + "nick:" + nick, member, nx=True, px=self.TTL_MS):
            self.mine[nick] = member
            return True
        return False

    async def release_nick(self, member: str, nick: str) -> None:
        self.mine.pop(nick, None)
        await self._release(keys=[self.p + "nick:" + nick], args=[member])

    async def rooms_in_use(self) -> List[str]:
        names = []
        async for key in self.r.scan_iter(match=self.p + "members:*", count=100):
            name = key[len(self.p + "members:"):]
            if await self.members(name):
                names.append(name)
        return sorted(names)

    async def members(self, name: str) -> List[str]:
        key = self.p + "members:" + name
        entries: Dict[str, str] = await self.r.hgetall(key)
        instances = sorted({m.rsplit(":", 1)[0] for m in entries})
        alive = dict(zip(instances, await self.r.mget([self.p + "alive:" + i for i in instances]))) if instances else {}
        dead = [m for m in entries if not alive.get(m.rsplit(":", 1)[0])]
        if dead:
            await self.r.hdel(key, *dead)
        return sorted(nick for m, nick in entries.items() if m not in dead)

    async def join(self, name: str, member: str, nick: str) -> Tuple[List[dict], List[str]]:
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(self.p + "members:" + name, member, nick)
            pipe.lrange(self.p + "history:" + name, 0, -1)
            _, history = await pipe.execute()
        return [json.loads(h) for h in history], await self.members(name)

    async def leave(self, name: str, member: str) -> List[str]:
        await self.r.hdel(self.p + "members:" + name, member)
        return await self.members(name)

    async def rename(self, name: str, member: str, nick: str) -> List[str]:
        await self.r.hset(self.p + "members:" + name, member, nick)
        return await self.members(name)

    async def add_line(self, name: str, line: dict) -> None:
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.rpush(self.p + "history:" + name, json.dumps(line))
            pipe.ltrim(self.p + "history:" + name, -HISTORY, -1)
            await pipe.execute()

    async def close(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
        try:
            await self.r.delete(self.p + "alive:" + self.instance)
        finally:
            await self.r.aclose()


class Chat:
    def __init__(self, state: Any = None, instance: Optional[str] = None) -> None:
        self.state = state if state is not None else LocalState()
        self.instance = instance  # set on a cluster: shown in "hello"
        self.server: Optional[wirehub.Server] = None
        self._members = 0
        self._handlers: Set[asyncio.Task] = set()

    async def drain(self, timeout: float = 5) -> None:
        """Close every connection and let the handlers say goodbye while the
        server can still publish: on a cluster, the other instances' members
        see these leave."""
        assert self.server is not None
        handlers = set(self._handlers)
        await asyncio.gather(*(ws.close(1001, "server shutting down") for ws in list(self.server.connections)),
                             return_exceptions=True)
        if handlers:
            await asyncio.wait(handlers, timeout=timeout)

    # -- HTTP: the page on "/", WebSocket upgrades on "/ws"
    def process_request(self, connection, request):
        path = request.path.split("?", 1)[0]
        if path == "/ws" and request.is_upgrade:
            return None
        if path in ("/", "/index.html") and not request.is_upgrade:
            return Response(200, "OK", {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}, PAGE)
        return connection.respond(404, "not found\n")

    # -- helpers
    def send_json(self, ws, obj) -> asyncio.Future:
        return ws.send(json.dumps(obj))

    def publish(self, room: str, obj, except_=None) -> None:
        # With a broker, the members on the other instances get it too.
        self.server.publish("room:" + room, json.dumps(obj), except_)

    def valid_name(self, name) -> bool:
        return isinstance(name, str) and 0 < len(name) <= MAX_NAME and name.strip() == name and name.isprintable()

    async def join(self, ws, state, name: str) -> None:
        if state["room"] is not None:
            if state["room"] == name:
                return
            await self.leave(ws, state)
        history, members = await self.state.join(name, state["member"], state["nick"])
        state["room"] = name
        ws.subscribe("room:" + name)
        await self.send_json(ws, {"type": "joined", "room": name, "nick": state["nick"],
                                  "history": history, "members": members})
        self.publish(name, {"type": "presence", "room": name, "event": "join", "nick": state["nick"],
                            "members": members}, except_=ws)

    async def leave(self, ws, state) -> None:
        name = state["room"]
        if name is None:
            return
        state["room"] = None
        if not ws.closed:
            ws.unsubscribe("room:" + name)
        members = await self.state.leave(name, state["member"])
        self.publish(name, {"type": "presence", "room": name, "event": "leave", "nick": state["nick"],
                            "members": members})

    # -- one connection
    async def handler(self, ws: wirehub.ServerConnection) -> None:
        self._handlers.add(asyncio.current_task())
        self._members += 1
        member = f"{self.instance or 'local'}:{self._members}"
        state = {"member": member, "nick": await self.state.new_guest(member), "room": None}
        try:
            hello = {"type": "hello", "nick": state["nick"], "rooms": await self.state.rooms_in_use()}
            if self.instance is not None:
                hello["instance"] = self.instance
            await self.send_json(ws, hello)
            async for raw in ws:
                try:
                    msg = json.loads(raw)
                    kind = msg["type"]
                except (ValueError, KeyError, TypeError):
                    await self.send_json(ws, {"type": "error", "error": "messages are JSON objects with a \"type\""})
                    continue
                if kind == "join":
                    nick = msg.get("nick")
                    if nick is not None and nick != state["nick"]:
                        if not await self.rename(ws, state, nick):
                            continue
                    room = msg.get("room")
                    if not self.valid_name(room):
                        await self.send_json(ws, {"type": "error", "error": f"invalid room name (1-{MAX_NAME} characters)"})
                        continue
                    await self.join(ws, state, room)
                elif kind == "nick":
                    await self.rename(ws, state, msg.get("nick"))
                elif kind == "leave":
                    room = state["room"]
                    await self.leave(ws, state)
                    await self.send_json(ws, {"type": "left", "room": room})
                elif kind == "message":
                    text = msg.get("text")
                    room = state["room"]
                    if room is None:
                        await self.send_json(ws, {"type": "error", "error": "join a room first"})
                    elif not isinstance(text, str) or not text or len(text) > MAX_TEXT:
                        await self.send_json(ws, {"type": "error", "error": f"text must be 1-{MAX_TEXT} characters"})
                    else:
                        line = {"type": "message", "room": room, "nick": state["nick"], "text": text,
                                "ts": round(time.time(), 3)}
                        await self.state.add_line(room, line)
                        self.publish(room, line)
                else:
                    await self.send_json(ws, {"type": "error", "error": f"unknown message type {kind!r}"})
        finally:
            self._handlers.discard(asyncio.current_task())
            try:
                await self.leave(ws, state)
            finally:
                await self.state.release_nick(member, state["nick"])

    async def rename(self, ws, state, nick) -> bool:
        if not self.valid_name(nick):
            await self.send_json(ws, {"type": "error", "error": f"invalid nickname (1-{MAX_NAME} characters)"})
            return False
        if not await self.state.claim_nick(state["member"], nick):
            await self.send_json(ws, {"type": "error", "error": f"nickname {nick!r} is taken"})
            return False
        old = state["nick"]
        await self.state.release_nick(state["member"], old)
        state["nick"] = nick
        await self.send_json(ws, {"type": "nick", "nick": nick})
        room = state["room"]
        if room is not None:
            members = await self.state.rename(room, state["member"], nick)
            self.publish(room, {"type": "presence", "room": room, "event": "nick", "nick": nick, "old": old,
                                "members": members})
        return True


async def main(host: str, port: int, redis_url: Optional[str] = None, prefix: str = "chat:",
               reuse_port: bool = False, name: Optional[str] = None) -> None:
    if redis_url is None:
        chat = Chat()
        cluster: Dict[str, Any] = {}
    else:
        instance = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        state = None
        try:
            state = RedisState(redis_url, prefix, instance)
            await state.start()
        except Exception as exc:  # redis.exceptions.*: refused, wrong password; ValueError: bad URL
            if state is not None:
                await state.r.aclose()
            raise SystemExit(f"chat: cannot use Redis at {redact_url(redis_url)}: {exc}") from None
        chat = Chat(state, instance)
        cluster = {"broker": redis_url, "broker_prefix": prefix}
    try:
        async with wirehub.serve(chat.handler, host, port, process_request=chat.process_request,
                                 reuse_port=reuse_port, **cluster) as server:
            chat.server = server
            where = f" (instance {chat.instance}, Redis {server.broker})" if redis_url else ""
            print(f"listening on ws://{host}:{server.port}/ws (page: http://{host}:{server.port}/){where}", flush=True)
            loop = asyncio.get_running_loop()
            stop = loop.create_future()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
            await stop
            if redis_url is not None:
                await chat.drain()
    finally:
        await chat.state.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="wirehub chat server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--redis", metavar="URL",
                        help="run as one instance of several behind this Redis (redis://host:6379/0)")
    parser.add_argument("--redis-prefix", default="chat:", help="Redis key and channel prefix (default chat:)")
    parser.add_argument("--reuse-port", action="store_true",
                        help="SO_REUSEPORT: several instances share --port, the kernel spreads the clients")
    parser.add_argument("--name", help="this instance's name (default host-pid-random)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        asyncio.run(main(args.host, args.port, args.redis, args.redis_prefix, args.reuse_port, args.name))
    except wirehub.BrokerError as exc:
        raise SystemExit(f"chat: {exc}")
