"""wss:// with the engine's own TLS."""
import ssl

import pytest
import websockets

import wirehub

from conftest import HOST, echo


def client_context(cert):
    ctx = wirehub.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cert)
    return ctx


async def test_tls_server_and_client(certs):
    cert, key = certs
    server_ctx = wirehub.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    async with wirehub.serve(echo, HOST, 0, ssl=server_ctx) as server:
        async with wirehub.connect(f"wss://localhost:{server.port}/", ssl=client_context(cert)) as ws:
            await ws.send("secret")
            assert await ws.recv() == "secret"


async def test_tls_with_websockets_client(certs):
    cert, key = certs
    async with wirehub.serve(echo, HOST, 0, ssl=(cert, key)) as server:
        ctx = ssl.create_default_context(cafile=cert)
        async with websockets.connect(f"wss://localhost:{server.port}/", ssl=ctx) as ws:
            await ws.send(b"tls bytes")
            assert await ws.recv() == b"tls bytes"


async def test_untrusted_certificate_fails_and_insecure_context_connects(certs):
    cert, key = certs
    async with wirehub.serve(echo, HOST, 0, ssl=(cert, key)) as server:
        with pytest.raises(ssl.SSLError, match="TLS"):
            await wirehub.connect(f"wss://localhost:{server.port}/", ssl=ssl.create_default_context())
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        async with wirehub.connect(f"wss://localhost:{server.port}/", ssl=insecure) as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"


async def test_plain_ssl_context_on_the_server_is_a_clear_type_error(certs):
    cert, key = certs
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with pytest.raises(TypeError, match="wirehub.SSLContext"):
        wirehub.serve(echo, HOST, 0, ssl=ctx)


async def test_missing_certificate_file_fails_listen(tmp_path):
    with pytest.raises(OSError):
        await wirehub.serve(echo, HOST, 0, ssl=(str(tmp_path / "nope.pem"), str(tmp_path / "nope.key")))


async def test_server_hostname_is_what_gets_verified(certs):
    cert, key = certs
    async with wirehub.serve(echo, HOST, 0, ssl=(cert, key)) as server:
        with pytest.raises(ssl.SSLError):
            await wirehub.connect(f"wss://{HOST}:{server.port}/", ssl=client_context(cert),
                                  server_hostname="wrong.example")
        async with wirehub.connect(f"wss://{HOST}:{server.port}/", ssl=client_context(cert),
                                   server_hostname="localhost") as ws:
            await ws.send("sni")
            assert await ws.recv() == "sni"


async def test_ssl_argument_with_ws_uri_is_rejected(certs):
    with pytest.raises(wirehub.InvalidURI, match="ws://"):
        await wirehub.connect(f"ws://{HOST}:1/", ssl=client_context(certs[0]))
