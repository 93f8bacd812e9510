"""Shared helpers for the wirehub Python tests (loopback only)."""
import asyncio
import inspect
import os
import resource
import subprocess

import pytest

HOST = "127.0.0.1"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# Upper bound for one async test; the tests themselves finish in well under a second each.
TEST_TIMEOUT = float(os.environ.get("WIREHUB_PY_TEST_TIMEOUT", "60"))


def pytest_pyfunc_call(pyfuncitem):
    """Run ``async def`` tests on a fresh asyncio loop (no plugin needed), bounded in time."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {k: pyfuncitem.funcargs[k] for k in pyfuncitem._fixtureinfo.argnames}
        loop_factory = getattr(pyfuncitem.obj, "_loop_factory", None)

        async def bounded():
            await asyncio.wait_for(pyfuncitem.obj(**args), TEST_TIMEOUT)

        if loop_factory is None:
            asyncio.run(bounded())
        else:
            loop = loop_factory()
            try:
                loop.run_until_complete(bounded())
            finally:
                loop.close()
        return True
    return None


async def echo(ws):
    async for message in ws:
        await ws.send(message)


def uri(server, path="/"):
    return f"ws://{HOST}:{server.port}{path}"


@pytest.fixture(scope="session", autouse=True)
def _raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 8192):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A self-signed CA-less certificate for 127.0.0.1/localhost: (cert, key)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return str(cert), str(key)
