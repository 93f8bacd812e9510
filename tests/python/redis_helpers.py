"""A throwaway Redis for the tests (Debian's redis-server on a free loopback
port, no persistence) and a tiny RESP client to look at it from the side."""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import List, Optional, Union

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisProcess:
    """``redis-server`` on 127.0.0.1:port; ``stop()`` kills it (SIGKILL, as a
    crash would), ``start()`` brings it back on the same port, empty."""

    def __init__(self, port: Optional[int] = None, password: Optional[str] = None) -> None:
        self.port = port or free_port()
        self.password = password
        self.proc: Optional[subprocess.Popen] = None
        self.dir = tempfile.mkdtemp(prefix="wirehub-redis-")

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> "RedisProcess":
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.dir, "--loglevel", "warning"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    reply = s.recv(64)
                    if reply.startswith((b"+PONG", b"-NOAUTH")):
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


Reply = Union[bytes, int, List["Reply"], None, Exception]


class Resp:
    """Enough of RESP2 to send commands and read their replies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, password: Optional[str] = None) -> "Resp":
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        c = cls(r, w)
        if password:
            await c.command("AUTH", password)
        return c

    async def command(self, *args: Union[str, bytes, int]) -> Reply:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.writer.write(b"".join(out))
        return await asyncio.wait_for(self._read(), 5)

    async def _read(self) -> Reply:
        line = (await self.reader.readuntil(b"\r\n"))[:-2]
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            return (await self.reader.readexactly(n + 2))[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [await self._read() for _ in range(n)]
        raise ValueError(f"unexpected RESP reply {line!r}")

    async def numsub(self, channel: str) -> int:
        reply = await self.command("PUBSUB", "NUMSUB", channel)
        assert isinstance(reply, list), reply
        return int(reply[1])

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


async def wait_until(predicate, timeout: float = 10, interval: float = 0.01, what: str = "condition"):
    """Await until ``predicate()`` (sync or async) is truthy; AssertionError after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


async def wait_numsub(port: int, channel: str, n: int, timeout: float = 10) -> None:
    """Until Redis counts ``n`` subscribers (nodes) of ``channel``."""
    c = await Resp.open(port)
    try:
        await wait_until(lambda: _eq(c.numsub(channel), n), timeout, what=f"NUMSUB {channel} == {n}")
    finally:
        await c.close()


async def _eq(coro, n: int) -> bool:
    return (await coro) == n

