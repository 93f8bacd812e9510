"""Close codes and error codes as the engine's header defines them, URIs and
headers that would inject lines into the upgrade request, a process out of
file descriptors, and the extension's exported symbols."""
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest
import websockets.frames

import wirehub
from wirehub import CloseCode, InvalidHandshake, InvalidURI
from wirehub import _wirehub as native

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_close_codes_are_the_engines_and_named_as_in_websockets():
    engine = {name: getattr(native, name) for name in dir(native) if name.startswith("CLOSE_")}
    assert len(engine) == 14
    assert sorted(engine.values()) == sorted(c.value for c in CloseCode if c is not CloseCode.TLS_HANDSHAKE)
    assert {c.name: c.value for c in CloseCode} == {c.name: c.value for c in websockets.frames.CloseCode}
    assert CloseCode.POLICY_VIOLATION == native.CLOSE_POLICY == 1008
    assert CloseCode.MESSAGE_TOO_BIG == native.CLOSE_TOO_BIG == 1009
    assert wirehub.CloseCode is CloseCode and "CloseCode" in wirehub.__all__


def test_the_hardening_error_codes_are_exported():
    assert (native.EIDLE, native.EBUDGET, native.EMFILE) == (-28, -29, -30)
    assert native.strerror(native.EMFILE) == "too many open files"


def test_every_error_code_of_the_header_is_exported_and_typed():
    # capi/wirehub.h's WH_ERRNO_MAP, parsed: a code appended there (EBROKER,
    # issue 13) must reach the module and its stub without anyone listing it.
    header = (ROOT / "capi" / "wirehub.h").read_text()
    codes = dict((name, int(value)) for name, value in re.findall(r"X\((E[A-Z0-9]+), (-\d+),", header))
    assert len(codes) >= 31 and codes["EBROKER"] == -31
    stub = (ROOT / "python" / "wirehub" / "_wirehub.pyi").read_text()
    for name, value in codes.items():
        assert getattr(native, name) == value, name
        assert native.err_name(value) == "WH_" + name
        assert f"\n{name}: int\n" in stub, name
    assert native.strerror(native.EBROKER) == "broker (Redis) error"


@pytest.mark.parametrize("bad", ["ws://127.0.0.1:9/a\r\nX-Injected: 1", "ws://127.0.0.1:9/a\nb",
                                 "ws://127.0.0.1:9/?q=\r", "ws://127.0.0.1:9/a\x00b", "ws://127.0.0.1:9/a\x7f"])
async def test_a_control_character_in_the_uri_raises_invalid_uri(bad):
    # The path and query go into the request line: CR/LF would forge headers,
    # a NUL would cut the URI short in the engine.
    with pytest.raises(InvalidURI):
        await wirehub.connect(bad, open_timeout=2)


@pytest.mark.parametrize("headers", [{"X-A": "1\r\nX-Injected: 1"}, {"X-A\r\nX-Injected": "1"}, {"X-A": "1\x00"}])
async def test_a_header_with_cr_lf_or_nul_is_refused_before_anything_is_sent(headers):
    with pytest.raises(InvalidHandshake, match="invalid additional header"):
        await wirehub.connect("ws://127.0.0.1:9/", additional_headers=headers, open_timeout=2)


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="under UBSan, Asio unwinding a service whose constructor failed with EMFILE "
                           "trips the vptr check inside Boost (the Release run checks this case)")
def test_a_process_out_of_descriptors_gets_oserror_emfile():
    # In a child process: it lowers its own limit and uses up every descriptor.
    # The event loop exists first, so the hub is what finds none left.
    script = textwrap.dedent("""
        import asyncio, errno, resource, os, wirehub
        async def main():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
            held = []
            try:
                while True:
                    held.append(os.open("/dev/null", os.O_RDONLY))
            except OSError as exc:
                assert exc.errno == errno.EMFILE
            try:
                await wirehub.serve(lambda ws: None, "127.0.0.1", 0)
            except OSError as exc:
                print("errno", exc.errno)
        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "errno 24", out.stdout + out.stderr


def test_the_extension_exports_only_its_init_function():
    check = ROOT / "tests" / "install" / "check_symbols.sh"
    out = subprocess.run([str(check), native.__file__, "PyInit__wirehub", "PyInit__wirehub"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
