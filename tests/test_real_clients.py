"""Real clients against the server: curl, Node `ws`, headless Chromium.

The test command (scripts/test.sh) installs curl, Chromium and the npm
packages, so these run there; elsewhere a missing tool is a skip that says
which.  Each test starts its own server on an ephemeral loopback port.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import free_port

from fastframe.handshake import accept_key

# The CLI is stopped with SIGINT (Ctrl-C), which Windows cannot send to a child.
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="stops the CLI with SIGINT")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JS = os.path.join(ROOT, "tests", "js")
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


@pytest.fixture(params=["c", "py"])
def server_env(request: pytest.FixtureRequest) -> dict:
    env = dict(os.environ)
    if request.param == "py":
        env["FASTFRAME_NO_EXTENSIONS"] = "1"
    else:
        env.pop("FASTFRAME_NO_EXTENSIONS", None)
        from conftest import load_c

        load_c()
    return env


def start(mode: str, env: dict) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastframe", "serve", "--mode", mode, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env,
    )
    assert proc.stdout is not None
    assert "listening" in proc.stdout.readline()
    return proc, port


@contextlib.contextmanager
def serving(mode: str, env: dict) -> Iterator[int]:
    """``python -m fastframe serve --mode MODE`` for the duration, then Ctrl-C."""
    proc, port = start(mode, env)
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)


@pytest.fixture
def chat(server_env: dict) -> Iterator[int]:
    with serving("chat", server_env) as port:
        yield port


@pytest.fixture
def echo(server_env: dict) -> Iterator[int]:
    with serving("echo", server_env) as port:
        yield port


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (scripts/test.sh installs it)")
    return path


def need_js(module: str) -> None:
    need("node")
    if not os.path.isdir(os.path.join(JS, "node_modules", module)):
        pytest.skip(f"npm package {module} is not installed (scripts/test.sh runs npm install in tests/js)")


# -- curl ------------------------------------------------------------------------------


def curl(port: int, headers: list[str], path: str = "/ws") -> str:
    cmd = [need("curl"), "-si", "--http1.1", "--max-time", "2", f"http://127.0.0.1:{port}{path}"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd, capture_output=True)
    # After a 101 the chat sends its "joined" frame: binary, so decode leniently.
    return out.stdout.decode("latin-1")


UPGRADE = ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13"]


def test_curl_handshake_and_refusals(chat: int) -> None:
    # 101 with the right accept header (curl then waits for data; --max-time ends it).
    out = curl(chat, UPGRADE + [f"Sec-WebSocket-Key: {KEY}"])
    assert out.startswith("HTTP/1.1 101 Switching Protocols")
    assert f"Sec-WebSocket-Accept: {accept_key(KEY)}" in out
    # Missing key: 400 that says so.
    out = curl(chat, UPGRADE)
    assert out.startswith("HTTP/1.1 400 ") and "Sec-WebSocket-Key" in out
    # Bad version: 426 naming the version we speak.
    out = curl(chat, ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 8",
                      f"Sec-WebSocket-Key: {KEY}"])
    assert out.startswith("HTTP/1.1 426 ") and "Sec-WebSocket-Version: 13" in out
    # A plain GET of /ws is refused politely, with a body that explains.
    out = curl(chat, [])
    assert out.startswith("HTTP/1.1 426 ") and "WebSocket endpoint" in out
    # The page itself, and the server still serves after all that.
    out = curl(chat, [], path="/")
    assert out.startswith("HTTP/1.1 200 ") and "<!doctype html>" in out
    out = curl(chat, UPGRADE + [f"Sec-WebSocket-Key: {KEY}"])
    assert out.startswith("HTTP/1.1 101 ")


# -- Node ws -----------------------------------------------------------------------------


@pytest.mark.parametrize("deflate", ["0", "1"], ids=["plain", "deflate"])
def test_node_ws_client(echo: int, deflate: str) -> None:
    need_js("ws")
    out = subprocess.run(["node", os.path.join(JS, "ws_client.js"), f"ws://127.0.0.1:{echo}/", deflate],
                         capture_output=True, text=True, timeout=60)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["ok"], report
    assert ("permessage-deflate" in report["extensions"]) == (deflate == "1")


@pytest.mark.parametrize("deflate", ["0", "1"], ids=["plain", "deflate"])
def test_fastframe_client_against_node_ws_server(server_env: dict, deflate: str) -> None:
    need_js("ws")
    node = subprocess.Popen(["node", os.path.join(JS, "ws_server.js"), deflate],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert node.stdout is not None
        port = int(node.stdout.readline())
        out = subprocess.run(
            [sys.executable, "-m", "fastframe", "client", f"ws://127.0.0.1:{port}/"],
            input="one\ntwo\n" + "x" * 5000 + "\n", capture_output=True, text=True, timeout=60,
            cwd=ROOT, env=server_env,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout == "one\ntwo\n" + "x" * 5000 + "\n"
    finally:
        node.terminate()
        node.wait(10)


# -- Chromium ----------------------------------------------------------------------------


def test_chromium_chat_two_pages(chat: int) -> None:
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)")
    need_js("playwright-core")
    out = subprocess.run(["node", os.path.join(JS, "chromium_chat.js"), f"http://127.0.0.1:{chat}/"],
                         capture_output=True, text=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    assert lines, out.stderr
    report = json.loads(lines[-1])
    assert report["ok"], report
    assert report["close_code"] == 1000 and report["was_clean"] is True
