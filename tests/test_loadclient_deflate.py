"""The end-to-end benchmark's load client in permessage-deflate mode.

``benchmarks/e2e/loadclient.c`` is compiled here (into a temporary
directory) and run in a subprocess, as ``python -m benchmarks.e2e.run`` runs
it; nothing is imported from ``benchmarks/``.  In deflate mode the client
offers permessage-deflate as Chrome does, sends JSON-looking text compressed
with context takeover and inflates and checks every reply: it must complete
an echo run against fastframe's server (compiled and pure) and against
websockets, and must fail, not fall back to plain frames, against a server
that refuses compression.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port

SOURCE = Path(__file__).resolve().parent.parent / "benchmarks" / "e2e" / "loadclient.c"

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the load client uses epoll"),
    pytest.mark.skipif(not SOURCE.exists(), reason="benchmarks/e2e/loadclient.c is not beside tests/"),
]

#: The websockets echo server: permessage-deflate with websockets's defaults
#: (12-bit windows, context takeover), or with the factory's arguments in argv[1].
WEBSOCKETS_ECHO = """
import asyncio, json, sys
from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    settings = json.loads(sys.argv[1])
    options = {"extensions": [ServerPerMessageDeflateFactory(**settings)], "compression": None} if settings else {}
    async with serve(echo, "127.0.0.1", int(sys.argv[2]), max_size=None, **options):
        print("listening", flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def loadclient(tmp_path_factory: pytest.TempPathFactory) -> str:
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc):
        pytest.skip(f"no C compiler ({cc})")
    exe = tmp_path_factory.mktemp("loadclient") / "loadclient"
    out = subprocess.run([cc, "-O2", "-o", str(exe), str(SOURCE), "-lz"], capture_output=True, text=True)
    if out.returncode != 0:
        if "zlib.h" in out.stderr:
            pytest.skip("zlib's headers are missing (apt-get install zlib1g-dev)")
        pytest.fail(f"loadclient.c did not build:\n{out.stderr}")
    return str(exe)


@contextlib.contextmanager
def server(args: list[str], env: dict[str, str] | None = None) -> Iterator[int]:
    """Run ``python ARGS... PORT`` until it prints a line with "listening"; its port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, *args, str(port)], stdout=subprocess.PIPE, text=True,
                            env=env or dict(os.environ))
    try:
        assert proc.stdout is not None and "listening" in proc.stdout.readline()
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fastframe_server(impl: Any, *options: str) -> contextlib.AbstractContextManager[int]:
    """The CLI's echo server on ``impl`` (compiled, or the pure twin)."""
    env = dict(os.environ)
    if impl.__name__.endswith("_py"):
        env["FASTFRAME_NO_EXTENSIONS"] = "1"
    else:
        env.pop("FASTFRAME_NO_EXTENSIONS", None)
    code = ("import sys\nfrom fastframe.__main__ import main\n"
            "sys.exit(main(['serve', '--mode', 'echo', '--log-level', 'warning', "
            f"*{list(options)!r}, '--port', sys.argv[1]]))\n")
    return server(["-c", code], env)


def run(exe: str, port: int, conns: int, inflight: int, size: int, deflate: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [exe, "127.0.0.1", str(port), str(conns), str(inflight), str(size), "0.3", "0.1"]
    return subprocess.run(cmd + (["deflate"] if deflate else []), capture_output=True, text=True, timeout=30)


def check_echo(exe: str, port: int) -> dict[str, Any]:
    """Echo runs of 1 KiB and 16 KiB messages; the last run's result."""
    result: dict[str, Any] = {}
    for conns, inflight, size in ((1, 1, 1024), (4, 8, 1024), (2, 2, 16384)):
        out = run(exe, port, conns, inflight, size)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert result["messages"] > 0
        assert result["deflate"].startswith("permessage-deflate")
        # Compressed both ways: JSON-looking text shrinks well below its size.
        assert 0 < result["sent_bytes_per_msg"] < size / 2
        assert 0 < result["reply_bytes_per_msg"] < size / 2
    return result


def test_echo_fastframe(loadclient: str, impl: Any) -> None:
    with fastframe_server(impl) as port:
        check_echo(loadclient, port)


@pytest.mark.parametrize("settings", [
    {},
    # The other branches of the client: a fresh compressor and inflater per
    # message, and windows it must keep its stream within.
    {"server_no_context_takeover": True, "client_no_context_takeover": True,
     "server_max_window_bits": 10, "client_max_window_bits": 9},
    {"server_max_window_bits": 9, "client_max_window_bits": 9},
], ids=["defaults", "no-context-takeover", "9-bit-windows"])
def test_echo_websockets(loadclient: str, settings: dict[str, Any]) -> None:
    pytest.importorskip("websockets")
    with server(["-c", WEBSOCKETS_ECHO, json.dumps(settings)]) as port:
        out = check_echo(loadclient, port)
    for key, value in settings.items():
        assert (key if value is True else f"{key}={value}") in out["deflate"]


def test_fails_when_compression_is_refused(loadclient: str, impl: Any) -> None:
    with fastframe_server(impl, "--no-compression") as port:
        out = run(loadclient, port, 1, 1, 1024)
        assert out.returncode == 5
        assert "did not accept permessage-deflate" in out.stderr
        assert out.stdout == ""
        # The same server serves the plain mode (binary frames).
        plain = run(loadclient, port, 1, 1, 1024, deflate=False)
        assert plain.returncode == 0, plain.stderr
        assert "deflate" not in json.loads(plain.stdout)
