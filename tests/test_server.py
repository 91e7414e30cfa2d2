"""The echo server over real TCP on loopback, with independent clients."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import socket
from typing import AsyncIterator, Tuple

import pytest

from fastframe.server import serve_echo

websockets_client = pytest.importorskip("websockets.asyncio.client")


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def _with_server(fn, max_size=1 << 20):  # type: ignore[no-untyped-def]
    server = await serve_echo("127.0.0.1", 0, max_size)
    port = server.sockets[0].getsockname()[1]
    try:
        return await fn(port)
    finally:
        server.close()
        await server.wait_closed()


def test_echo_with_websockets_client() -> None:
    async def go(port: int) -> None:
        async with websockets_client.connect(f"ws://127.0.0.1:{port}/any/path", compression=None) as ws:
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\x01" * 50000)
            assert await ws.recv() == b"\x00\x01" * 50000
            await ws.send(["frag", "mented"])
            assert await ws.recv() == "fragmented"
            pong = await ws.ping(b"p")
            await asyncio.wait_for(pong, 5)
        assert ws.close_code == 1000

    run(_with_server(go))


def test_oversized_message_closes_1009_and_server_keeps_serving() -> None:
    async def go(port: int) -> None:
        async with websockets_client.connect(f"ws://127.0.0.1:{port}/", compression=None, max_size=None) as ws:
            await ws.send(b"x" * 2000)
            with pytest.raises(Exception):
                await ws.recv()
        assert ws.close_code == 1009
        async with websockets_client.connect(f"ws://127.0.0.1:{port}/", compression=None) as ws2:
            await ws2.send("still here")
            assert await ws2.recv() == "still here"

    run(_with_server(go, max_size=1000))


def test_malformed_frame_closes_only_that_connection_1002() -> None:
    async def go(port: int) -> None:
        async with websockets_client.connect(f"ws://127.0.0.1:{port}/", compression=None) as good:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(
                b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            head = await r.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 ")
            w.write(b"\x83\x80abcd")  # reserved opcode
            data = await asyncio.wait_for(r.read(), 5)
            assert data[0] == 0x88 and data[2:4] == b"\x03\xea"
            w.close()
            await good.send("ok")
            assert await good.recv() == "ok"

    run(_with_server(go))


def test_bad_handshake_gets_400_with_reason() -> None:
    async def go(port: int) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n")
        data = await asyncio.wait_for(r.read(), 5)
        assert data.startswith(b"HTTP/1.1 400 ")
        assert b"Sec-WebSocket-Key" in data
        w.close()

    run(_with_server(go))


def test_cli_serve_echo() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastframe", "serve", "--mode", "echo", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    try:
        assert proc.stdout is not None
        assert "listening" in proc.stdout.readline()

        async def go() -> None:
            async with websockets_client.connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send("cli")
                assert await ws.recv() == "cli"

        run(go())
    finally:
        proc.terminate()
        proc.wait(10)
