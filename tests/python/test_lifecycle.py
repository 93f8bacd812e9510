"""Resources: the engine runs on the event loop's thread and is freed with the last server / connection."""
import asyncio
import os
import subprocess
import sys
import textwrap

import wirehub

from conftest import HOST, echo, uri


def thread_count():
    return len(os.listdir("/proc/self/task"))


def test_the_engine_runs_on_the_loops_thread_and_starts_no_thread():
    before = thread_count()

    async def main():
        async with wirehub.serve(echo, HOST, 0) as server:
            async with wirehub.connect(uri(server)) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
                assert thread_count() == before  # no I/O thread: host mode
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert thread_count() == before


def test_interpreter_exits_cleanly_with_a_server_left_open():
    code = textwrap.dedent(f"""
        import asyncio, wirehub
        async def echo(ws):
            async for m in ws:
                await ws.send(m)
        async def main():
            server = await wirehub.serve(echo, "{HOST}", 0)
            ws = await wirehub.connect(f"ws://{HOST}:{{server.port}}/")
            await ws.send("x")
            print(await ws.recv(), flush=True)
        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "x"


async def test_many_sequential_connections_do_not_accumulate():
    async with wirehub.serve(echo, HOST, 0) as server:
        for i in range(50):
            async with wirehub.connect(uri(server)) as ws:
                await ws.send(str(i))
                assert await ws.recv() == str(i)
        while server.connections:
            await asyncio.sleep(0.01)
        rt = server._runtime
        assert rt.native.live_connections == 0
