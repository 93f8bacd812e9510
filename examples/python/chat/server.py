#!/usr/bin/env python3
"""wirehub chat: one port serves the page (GET /) and the WebSocket endpoint (/ws).

    python3 examples/python/chat/server.py [--host 127.0.0.1] [--port 8080]

Rooms are engine topics ("room:NAME"): a chat line is framed once by the
engine and shared by every member. The server keeps, per room, the last 50
messages (sent to newcomers) and who is in it. Protocol: README.md.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import pathlib
import signal
import time
from typing import Deque, Dict, Optional, Set

import wirehub
from wirehub import Response

HISTORY = 50
MAX_NAME = 32
MAX_TEXT = 4000
PAGE = (pathlib.Path(__file__).parent / "index.html").read_bytes()

log = logging.getLogger("chat")


class Room:
    def __init__(self, name: str) -> None:
        self.name = name
        self.topic = "room:" + name
        self.history: Deque[dict] = collections.deque(maxlen=HISTORY)
        self.members: Dict[wirehub.ServerConnection, str] = {}

    def who(self):
        return sorted(self.members.values())


class Chat:
    def __init__(self) -> None:
        self.rooms: Dict[str, Room] = {}
        self.nicks: Set[str] = set()
        self.server: Optional[wirehub.Server] = None
        self._guest = 0

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

    def publish(self, room: Room, obj, except_=None) -> None:
        self.server.publish(room.topic, json.dumps(obj), except_)

    def valid_name(self, name) -> bool:
        return isinstance(name, str) and 0 < len(name) <= MAX_NAME and name.strip() == name and name.isprintable()

    def new_guest(self) -> str:
        while True:
            self._guest += 1
            nick = f"guest{self._guest}"
            if nick not in self.nicks:
                return nick

    async def join(self, ws, state, name: str) -> None:
        if state["room"] is not None:
            if state["room"].name == name:
                return
            self.leave(ws, state)
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Room(name)
        room.members[ws] = state["nick"]
        state["room"] = room
        ws.subscribe(room.topic)
        await self.send_json(ws, {"type": "joined", "room": name, "nick": state["nick"],
                                  "history": list(room.history), "members": room.who()})
        self.publish(room, {"type": "presence", "room": name, "event": "join", "nick": state["nick"],
                            "members": room.who()}, except_=ws)

    def leave(self, ws, state) -> None:
        room = state["room"]
        if room is None:
            return
        state["room"] = None
        room.members.pop(ws, None)
        if not ws.closed:
            ws.unsubscribe(room.topic)
        self.publish(room, {"type": "presence", "room": room.name, "event": "leave", "nick": state["nick"],
                            "members": room.who()})
        if not room.members and not room.history:
            del self.rooms[room.name]

    # -- one connection
    async def handler(self, ws: wirehub.ServerConnection) -> None:
        state = {"nick": self.new_guest(), "room": None}
        self.nicks.add(state["nick"])
        try:
            await self.send_json(ws, {"type": "hello", "nick": state["nick"],
                                      "rooms": sorted(r.name for r in self.rooms.values() if r.members)})
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
                    self.leave(ws, state)
                    await self.send_json(ws, {"type": "left", "room": room.name if room else None})
                elif kind == "message":
                    text = msg.get("text")
                    room = state["room"]
                    if room is None:
                        await self.send_json(ws, {"type": "error", "error": "join a room first"})
                    elif not isinstance(text, str) or not text or len(text) > MAX_TEXT:
                        await self.send_json(ws, {"type": "error", "error": f"text must be 1-{MAX_TEXT} characters"})
                    else:
                        line = {"type": "message", "room": room.name, "nick": state["nick"], "text": text,
                                "ts": round(time.time(), 3)}
                        room.history.append(line)
                        self.publish(room, line)
                else:
                    await self.send_json(ws, {"type": "error", "error": f"unknown message type {kind!r}"})
        finally:
            self.leave(ws, state)
            self.nicks.discard(state["nick"])

    async def rename(self, ws, state, nick) -> bool:
        if not self.valid_name(nick):
            await self.send_json(ws, {"type": "error", "error": f"invalid nickname (1-{MAX_NAME} characters)"})
            return False
        if nick in self.nicks:
            await self.send_json(ws, {"type": "error", "error": f"nickname {nick!r} is taken"})
            return False
        old = state["nick"]
        self.nicks.discard(old)
        self.nicks.add(nick)
        state["nick"] = nick
        await self.send_json(ws, {"type": "nick", "nick": nick})
        room = state["room"]
        if room is not None:
            room.members[ws] = nick
            self.publish(room, {"type": "presence", "room": room.name, "event": "nick", "nick": nick, "old": old,
                                "members": room.who()})
        return True


async def main(host: str, port: int) -> None:
    chat = Chat()
    async with wirehub.serve(chat.handler, host, port, process_request=chat.process_request) as server:
        chat.server = server
        print(f"listening on ws://{host}:{server.port}/ws (page: http://{host}:{server.port}/)", flush=True)
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="wirehub chat server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(main(args.host, args.port))
