"""The asyncio server and client over real TCP on loopback.

Each test starts its server on an ephemeral port and stops it.  Peers:
fastframe's own client, websockets and aiohttp, and raw sockets for
misbehaviour.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Awaitable
from typing import Any

import pytest
from conftest import free_port

import fastframe
from fastframe import ConnectionClosed, DeflateConfig, HandshakeError, broadcast, connect, serve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


async def raw_open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(UPGRADE)
    head = await r.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    return r, w


# -- echo with several clients ------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, DeflateConfig()], ids=["plain", "deflate"])
def test_fastframe_client_echo(compression: DeflateConfig | None) -> None:
    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/x?y=1", compression=compression) as ws:
                assert ws.open
                for m in ["héllo", b"\x00" * 100_000, "", b""]:
                    await ws.send(m)
                    assert await ws.recv() == m
                rtt = await asyncio.wait_for(await ws.ping(b"abc"), 5)
                assert rtt >= 0
            assert ws.close_code == 1000

    run(go())


def test_websockets_client_echo_with_compression() -> None:
    client = pytest.importorskip("websockets.asyncio.client")

    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            async with client.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                assert ws.response.headers.get("Sec-WebSocket-Extensions", "").startswith("permessage-deflate")
                await ws.send("hello " * 1000)
                assert await ws.recv() == "hello " * 1000
                await ws.send(["frag", "mented"])
                assert await ws.recv() == "fragmented"
                await asyncio.wait_for(await ws.ping(b"p"), 5)
            assert ws.close_code == 1000

    run(go())


def test_aiohttp_client_echo() -> None:
    aiohttp = pytest.importorskip("aiohttp")

    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"http://127.0.0.1:{server.port}/", compress=15) as ws:
                    await ws.send_str("from aiohttp")
                    assert (await ws.receive()).data == "from aiohttp"
                    await ws.send_bytes(b"\x01" * 70000)
                    assert (await ws.receive()).data == b"\x01" * 70000
                    await ws.close()
                assert ws.close_code == 1000

    run(go())


def test_request_path_headers_subprotocol_and_ids() -> None:
    seen: list[Any] = []

    async def handler(ws: Any) -> None:
        seen.append((ws.path, ws.headers.get("X-Test"), ws.subprotocol, ws.id, ws.remote_address[0]))
        await ws.send("hi")

    async def go() -> None:
        async with serve(handler, "127.0.0.1", 0, subprotocols=["v2", "v1"]) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/room/1", subprotocols=["v1"],
                               extra_headers=[("X-Test", "yes")]) as ws:
                assert await ws.recv() == "hi"
                assert ws.subprotocol == "v1"
                with pytest.raises(ConnectionClosed):
                    await ws.recv()  # the handler returned: closed with 1000
            assert ws.close_code == 1000

    run(go())
    assert seen[0][:3] == ("/room/1", "yes", "v1") and seen[0][4] == "127.0.0.1"


def test_non_ascii_url_reaches_the_server_percent_encoded_as_with_websockets() -> None:
    """fastframe's client to fastframe's server and to websockets' server:
    both see the same ASCII request target, which decodes to the URL's."""
    ws_server = pytest.importorskip("websockets.asyncio.server")
    seen: list[str] = []

    async def handler(ws: Any) -> None:
        await ws.send(ws.path)

    async def websockets_handler(ws: Any) -> None:
        await ws.send(ws.request.path)

    async def go() -> None:
        async with serve(handler, "127.0.0.1", 0) as server, \
                ws_server.serve(websockets_handler, "127.0.0.1", 0) as other:
            for port in (server.port, other.sockets[0].getsockname()[1]):
                async with connect(f"ws://127.0.0.1:{port}/café/ü?q=€&r=a b") as ws:
                    seen.append(await ws.recv())

    run(go())
    assert seen == ["/caf%C3%A9/%C3%BC?q=%E2%82%AC&r=a%20b"] * 2
    assert urllib.parse.unquote(seen[0]) == "/café/ü?q=€&r=a b"


def test_send_queues_at_the_call_and_is_awaitable_any_way() -> None:
    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                pending = ws.send("queued at the call")  # not awaited yet
                assert await ws.recv() == "queued at the call"
                await pending
                await asyncio.create_task(ws.send("from a task"))  # type: ignore[arg-type]
                assert await ws.recv() == "from a task"
                await asyncio.gather(ws.send("a"), ws.send(b"b"))
                assert [await ws.recv(), await ws.recv()] == ["a", b"b"]
                await ws.close()
                with pytest.raises(ConnectionClosed):
                    ws.send("too late")  # refused at the call, not at the await

    run(go())


def test_send_waits_while_the_write_buffer_is_over_its_high_water_mark() -> None:
    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                proto = ws._proto
                proto.pause_writing()  # what the transport calls past write_limit
                waiting = asyncio.ensure_future(ws.send("x"))
                await asyncio.sleep(0.05)
                assert not waiting.done()
                proto.resume_writing()
                await asyncio.wait_for(waiting, 5)
                assert await ws.recv() == "x"

    run(go())


def test_two_coroutines_waiting_for_messages_at_once_is_refused() -> None:
    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                first = asyncio.ensure_future(ws.recv())
                await asyncio.sleep(0)
                with pytest.raises(fastframe.ConcurrencyError, match="already waiting"):
                    await ws.recv()
                with pytest.raises(fastframe.ConcurrencyError):
                    await ws.__anext__()
                await ws.send("one")
                assert await asyncio.wait_for(first, 5) == "one"
                await ws.send("two")
                assert await ws.recv() == "two"

    run(go())


def test_a_recv_cancelled_as_its_message_arrives_loses_nothing() -> None:
    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                waiting = asyncio.ensure_future(ws.recv())
                await asyncio.sleep(0)
                # A read delivers a message and wakes the waiter, and the
                # waiting task is cancelled before it runs again (a timeout
                # firing in the same loop iteration): the next recv gets it.
                ws._deliver("kept")
                waiting.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await waiting
                assert await asyncio.wait_for(ws.recv(), 5) == "kept"
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.05)
                await ws.send("after")
                assert await asyncio.wait_for(ws.recv(), 5) == "after"

    run(go())


def test_handler_resumed_by_a_read_keeps_its_task_and_context() -> None:
    # However a message wakes the waiting handler, it runs as its own task,
    # in its own context, and what arrives while it is busy waits in order.
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[tuple[bool, str, str]] = []

    async def handler(ws: Any) -> None:
        task = asyncio.current_task()
        var.set(f"handler {ws.id}")
        async for message in ws:
            seen.append((asyncio.current_task() is task, var.get(), message))
            await ws.send(message)
            if message == "sleep":
                await asyncio.sleep(0.05)  # busy elsewhere: what arrives meanwhile waits

    async def go() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                for m in ["a", "b", "sleep"]:
                    await ws.send(m)
                    assert await ws.recv() == m
                for m in ["c", "d", "e"]:  # sent while the handler sleeps
                    await ws.send(m)
                assert [await ws.recv() for _ in range(3)] == ["c", "d", "e"]

    run(go())
    assert [m for _, _, m in seen] == ["a", "b", "sleep", "c", "d", "e"]
    assert all(same and value.startswith("handler ") for same, value, _ in seen), seen


def test_queued_messages_come_in_order_however_they_are_awaited() -> None:
    # A burst arrives while the handler sleeps (reading pauses at max_queue
    # and resumes as the handler catches up); then recv(), __anext__ (the
    # queued message's awaitable, also through a task) and async for take
    # turns, and a wait that times out before it starts takes nothing.
    got: list[str] = []

    async def handler(ws: Any) -> None:
        await asyncio.sleep(0.2)
        got.append(await ws.recv())
        got.append(await ws.__anext__())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.__anext__(), 0)
        got.append(await asyncio.ensure_future(ws.__anext__()))
        async for message in ws:
            got.append(message)
            if len(got) == 200:
                await ws.send(",".join(got))

    async def go() -> None:
        async with serve(handler, "127.0.0.1", 0, max_queue=4) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                for i in range(200):
                    await ws.send(str(i))
                assert await asyncio.wait_for(ws.recv(), 10) == ",".join(map(str, range(200)))

    run(go())


def test_a_recv_cancelled_before_its_message_arrives_loses_nothing() -> None:
    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                waiting = asyncio.ensure_future(ws.recv())
                await asyncio.sleep(0)
                waiting.cancel()
                await ws.send("kept")  # its echo arrives after the cancellation
                with pytest.raises(asyncio.CancelledError):
                    await waiting
                assert await asyncio.wait_for(ws.recv(), 5) == "kept"

    run(go())


def test_handler_exception_closes_1011() -> None:
    async def handler(ws: Any) -> None:
        raise RuntimeError("boom")

    async def go() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
            assert ws.close_code == 1011

    run(go())


def test_tls_wss() -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0, ssl=server_ctx) as server:
            async with connect(f"wss://localhost:{server.port}/", ssl=client_ctx) as ws:
                await ws.send("secret")
                assert await ws.recv() == "secret"

    run(go())


# -- handshake refusals ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "kind", "status"),
    [
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", fastframe.InvalidStatus, 403),
        # §4.2.2: a 101 whose Sec-WebSocket-Accept does not answer our key.
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         b"Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n", fastframe.InvalidResponse, 101),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", fastframe.InvalidResponse, 0),  # not HTTP at all
        (b"HTTP/1.1 101 Swi", fastframe.HandshakeTimeout, 0),  # then the server hangs up
        (None, fastframe.HandshakeTimeout, 0),  # never answers
    ],
)
def test_client_handshake_failures_have_their_own_class(
    answer: bytes | None, kind: type[fastframe.HandshakeError], status: int
) -> None:
    async def go() -> None:
        async def reply(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await r.readuntil(b"\r\n\r\n")
            if answer is None:
                await asyncio.sleep(5)
            else:
                w.write(answer)
            w.close()

        listener = await asyncio.start_server(reply, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        async with listener:
            with pytest.raises(kind) as info:
                await connect(f"ws://127.0.0.1:{port}/", open_timeout=0.5)
        assert type(info.value) is kind and isinstance(info.value, HandshakeError)
        assert info.value.status == status
        assert isinstance(info.value, TimeoutError) == (kind is fastframe.HandshakeTimeout)

    run(go())


def test_client_sees_refusals() -> None:
    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0, origins=["https://ok.example"]) as server:
            with pytest.raises(HandshakeError) as info:
                await connect(f"ws://127.0.0.1:{server.port}/", origin="https://evil.example")
            assert info.value.status == 403
        with pytest.raises(OSError):
            await connect(f"ws://127.0.0.1:{server.port}/")
        with pytest.raises(ValueError):
            await connect("http://127.0.0.1/")
        with pytest.raises(fastframe.InvalidURI):
            await connect("http://127.0.0.1/")

    run(go())


def test_process_request_can_answer_or_refuse() -> None:
    def process(request: Any) -> Any:
        if request.path == "/health":
            return (200, [("Content-Type", "text/plain")], b"ok\n")
        if request.path == "/private":
            return (401, [], b"no\n")
        return None

    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0, process_request=process) as server:
            r, w = await asyncio.open_connection("127.0.0.1", server.port)
            w.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            data = await r.read()
            assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\nok\n")
            with pytest.raises(HandshakeError) as info:
                await connect(f"ws://127.0.0.1:{server.port}/private")
            assert info.value.status == 401
            async with connect(f"ws://127.0.0.1:{server.port}/open") as ws:
                await ws.send("x")
                assert await ws.recv() == "x"

    run(go())


def test_max_connections_refused_503() -> None:
    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0, max_connections=1) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/"):
                with pytest.raises(HandshakeError) as info:
                    await connect(f"ws://127.0.0.1:{server.port}/")
                assert info.value.status == 503
                # The refusal is sent at once and the connection closed,
                # without waiting for the client to speak.
                r, w = await asyncio.open_connection("127.0.0.1", server.port)
                data = await asyncio.wait_for(r.read(), 5)
                assert data.startswith(b"HTTP/1.1 503 ")
                w.close()

    run(go())


# -- robustness ---------------------------------------------------------------------------


def test_slowloris_handshake_times_out() -> None:
    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0, open_timeout=0.3) as server:
            r, w = await asyncio.open_connection("127.0.0.1", server.port)
            w.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never finishes
            t = time.monotonic()
            assert await asyncio.wait_for(r.read(), 5) == b""
            assert time.monotonic() - t < 3
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send("still serving")
                assert await ws.recv() == "still serving"

    run(go())


def test_malformed_frame_closes_only_that_connection_1002() -> None:
    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as good:
                r, w = await raw_open(server.port)
                w.write(b"\x83\x80abcd")  # reserved opcode
                data = await asyncio.wait_for(r.read(), 5)
                assert data[0] == 0x88 and data[2:4] == b"\x03\xea"
                w.close()
                await good.send("ok")
                assert await good.recv() == "ok"

    run(go())


def test_oversized_message_closes_1009() -> None:
    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0, max_size=1000) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
                await ws.send(b"x" * 1001)
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
            assert ws.close_code == 1009

    run(go())


def test_reader_that_stops_is_cut_at_hard_cap_others_unaffected() -> None:
    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0, max_write_buffer=256 * 1024, write_limit=16 * 1024) as server:
            # A peer that never reads, with a small receive window so that
            # the kernel does not absorb megabytes for it.
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            await loop.sock_connect(sock, ("127.0.0.1", server.port))
            await loop.sock_sendall(sock, UPGRADE)
            assert (await loop.sock_recv(sock, 4096)).startswith(b"HTTP/1.1 101 ")
            async with connect(f"ws://127.0.0.1:{server.port}/") as good:
                while len(server.connections) < 2:
                    await asyncio.sleep(0.01)
                received = 0

                async def drain() -> None:
                    nonlocal received
                    async for m in good:
                        assert m == b"z" * 16384
                        received += 1

                reader = asyncio.ensure_future(drain())
                sent = 0
                while len(server.connections) == 2 and sent < 4000:
                    broadcast(server.connections, b"z" * 16384)
                    sent += 1
                    await asyncio.sleep(0)
                assert len(server.connections) == 1, "the stalled peer was not cut off"
                while received < sent:
                    await asyncio.sleep(0.01)
                reader.cancel()
            sock.close()

    run(go())


@pytest.mark.parametrize(
    ("now", "ping_sent", "answered", "arriving", "timeout", "expected"),
    [
        (5.0, 0.0, True, False, 20.0, "wait"),  # opened 5 s ago < the 10 s interval
        (10.0, 0.0, True, False, 20.0, "ping"),  # the interval passed: ping, whatever came meanwhile
        (25.0, 10.0, False, False, 20.0, "wait"),  # ping outstanding, 15 s < 20 s
        (30.0, 10.0, False, False, 20.0, "timeout"),  # outstanding for the timeout
        (99.0, 10.0, False, False, None, "wait"),  # no timeout: wait for ever
        (30.0, 10.0, False, True, 20.0, "wait"),  # a frame is arriving: the pong is behind it
        (15.0, 10.0, True, False, 20.0, "wait"),  # answered, 5 s since the ping
        (20.0, 10.0, True, False, 20.0, "ping"),  # answered, the next interval is up
    ],
)
def test_keepalive_rule(now: float, ping_sent: float, answered: bool, arriving: bool, timeout: float | None,
                        expected: str) -> None:
    from fastframe.connection import (
        KEEPALIVE_PING,
        KEEPALIVE_TIMEOUT,
        KEEPALIVE_WAIT,
        keepalive_action,
    )

    names = {KEEPALIVE_WAIT: "wait", KEEPALIVE_PING: "ping", KEEPALIVE_TIMEOUT: "timeout"}
    assert names[keepalive_action(now, ping_sent, answered, arriving, 10.0, timeout)] == expected


def test_keepalive_closes_silent_peer_but_not_slow_frame() -> None:
    async def go() -> None:
        async with serve(echo, "127.0.0.1", 0, ping_interval=0.2, ping_timeout=0.3) as server:
            # Silent peer: reads nothing, answers no ping.
            r1, w1 = await raw_open(server.port)
            # Slow peer: sends a long frame a byte at a time, never a pong.
            r2, w2 = await raw_open(server.port)
            frame = fastframe.encode_frame(2, b"s" * 60, mask=b"abcd")
            t = time.monotonic()
            for i in range(len(frame)):
                w2.write(frame[i : i + 1])
                await asyncio.sleep(0.02)
            data = b""
            while b"s" * 60 not in data:
                data += await asyncio.wait_for(r2.read(4096), 5)
            assert time.monotonic() - t > 1.0  # longer than interval + timeout
            closed = await asyncio.wait_for(r1.read(), 5)
            assert b"\x89" in closed  # it was pinged, then cut
            w1.close()
            w2.close()

    run(go())


async def _silent_server() -> tuple[asyncio.AbstractServer, list[bytes], asyncio.Event]:
    """Answers the upgrade, then reads and answers nothing (no pongs); the
    event is set once it has read to the end."""
    from fastframe.handshake import accept_key

    seen: list[bytes] = []
    done = asyncio.Event()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            head = await r.readuntil(b"\r\n\r\n")
            key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            w.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Accept: " + accept_key(key.decode()).encode() + b"\r\n\r\n")
            while data := await r.read(4096):
                seen.append(data)
            w.close()
        finally:
            done.set()

    return await asyncio.start_server(handle, "127.0.0.1", 0), seen, done


def test_client_keepalive_closes_a_silent_server_and_keeps_a_live_one() -> None:
    async def go() -> None:
        silent, seen, done = await _silent_server()
        port = silent.sockets[0].getsockname()[1]
        async with silent:
            ws = await connect(f"ws://127.0.0.1:{port}/", ping_interval=0.2, ping_timeout=0.3)
            t = time.monotonic()
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert 0.4 < time.monotonic() - t < 3
            # No close frame came back: 1006 here (as websockets says), and
            # the server was sent a ping, then a close with 1011 (§7.4.1).
            assert ws.close_code == 1006
            await asyncio.wait_for(done.wait(), 5)  # the server has read all there was
            frames = fastframe.FrameParser(expect_mask=True).feed(b"".join(seen))
            assert [int(f.opcode) for f in frames] == [9, 8]
            assert int.from_bytes(frames[1].payload[:2], "big") == 1011
        async with serve(echo, "127.0.0.1", 0, ping_interval=None) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/", ping_interval=0.1, ping_timeout=0.2) as ws:
                await asyncio.sleep(1.0)  # idle: pings answered by the server's pongs
                assert ws.open
                await ws.send("still here")
                assert await ws.recv() == "still here"
            assert ws.close_code == 1000

    run(go())


def test_graceful_shutdown_sends_1001() -> None:
    async def go() -> None:
        server = await serve(echo, "127.0.0.1", 0)
        ws = await connect(f"ws://127.0.0.1:{server.port}/")
        await server.aclose()
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1001
        with pytest.raises(OSError):
            await connect(f"ws://127.0.0.1:{server.port}/")

    run(go())


def test_broadcast_reaches_everyone_once_encoded() -> None:
    async def handler(ws: Any) -> None:
        await ws.wait_closed()

    async def go() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            clients = [await connect(f"ws://127.0.0.1:{server.port}/", compression=c)
                       for c in (None, DeflateConfig(), None)]
            while len(server.connections) < 3:
                await asyncio.sleep(0.01)
            server.broadcast("to all")
            broadcast(server.connections, b"\x00\x01")
            for c in clients:
                assert await c.recv() == "to all"
                assert await c.recv() == b"\x00\x01"
                await c.close()

    run(go())


# -- command line -------------------------------------------------------------------------


def start_cli(*args: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastframe", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    assert proc.stdout is not None
    assert "listening" in proc.stdout.readline()
    return proc, port


def cli_client(url: str, lines: str) -> str:
    """``python -m fastframe client URL`` with ``lines`` on stdin: its stdout."""
    out = subprocess.run([sys.executable, "-m", "fastframe", "client", url],
                         input=lines, capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout


# The CLI is stopped with SIGINT (Ctrl-C), which Windows cannot send to a child.
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="stops the CLI with SIGINT")


@posix_only
def test_cli_echo_and_client_pipe() -> None:
    proc, port = start_cli("--mode", "echo")
    try:
        assert cli_client(f"ws://127.0.0.1:{port}/", "hello\nwörld\n") == "hello\nwörld\n"
    finally:
        proc.send_signal(2)
        proc.wait(10)
    assert proc.returncode == 0


@posix_only
def test_cli_second_sigint_stops_at_once() -> None:
    """The first Ctrl-C closes every connection with 1001 and waits (up to
    the close timeout, 10 s) for the peers' close frames; a second one stops
    at once."""
    proc, port = start_cli("--mode", "echo")
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        sock.sendall(UPGRADE)
        assert sock.recv(4096).startswith(b"HTTP/1.1 101 ")
        proc.send_signal(2)  # graceful: waits for a close frame this peer never sends
        time.sleep(0.5)
        assert proc.poll() is None
        t = time.monotonic()
        proc.send_signal(2)
        proc.wait(5)
        assert time.monotonic() - t < 3
    finally:
        sock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@posix_only
def test_cli_chat_prefixes_and_serves_page() -> None:
    proc, port = start_cli("--mode", "chat")
    try:
        import urllib.request

        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
        assert b"new WebSocket" in page and b"<script" in page and b"http" not in page.split(b"<script")[0].lower().replace(b"http-equiv", b"")
        lines = cli_client(f"ws://127.0.0.1:{port}/ws", "hi there\n").splitlines()
        assert lines[0].endswith("joined") and lines[1].endswith(": hi there")
    finally:
        proc.send_signal(2)
        _, err = proc.communicate(timeout=10)
    assert "open #" in err and "close #" in err  # one INFO line per open and close


@posix_only
def test_cli_chat_sends_structured_messages_and_checks_origins() -> None:
    """Each chat message is JSON, its sender apart from its text, so that
    no text passes for another user's line; browsers' connections from
    other sites are refused (RFC 6455 §10.2) unless allowed."""
    tricky = "hi\n* user1 left\nuser1: <b>x</b>"

    async def chat(port: int) -> None:
        url = f"ws://127.0.0.1:{port}/ws"
        async with connect(url) as a:  # no Origin: not a browser
            joined = json.loads(await a.recv())
            assert set(joined) == {"user", "event"} and joined["event"] == "joined"
            await a.send(tricky)
            assert json.loads(await a.recv()) == {"user": joined["user"], "text": tricky}
            async with connect(url, origin=f"http://127.0.0.1:{port}"):  # the chat's own page
                assert json.loads(await a.recv())["event"] == "joined"
            assert json.loads(await a.recv())["event"] == "left"

    async def refused(port: int, origin: str) -> int:
        try:
            async with connect(f"ws://127.0.0.1:{port}/ws", origin=origin):
                return 101
        except HandshakeError as exc:
            return exc.status

    proc, port = start_cli("--mode", "chat", "--allow-origin", "https://friend.example")
    try:
        run(chat(port))
        assert run(refused(port, "https://friend.example")) == 101
        for origin in ("http://evil.example", f"http://localhost:{port}", f"https://127.0.0.1:{port + 1}", "null"):
            assert run(refused(port, origin)) == 403, origin
    finally:
        proc.send_signal(2)
        proc.communicate(timeout=10)
    proc, port = start_cli("--mode", "chat", "--any-origin")
    try:
        assert run(refused(port, "http://evil.example")) == 101
    finally:
        proc.send_signal(2)
        proc.communicate(timeout=10)


@posix_only
def test_cli_client_shows_chat_messages_attributed() -> None:
    from fastframe.__main__ import _chat_line

    # Further lines of a text are indented under it: no line of it can look
    # like another user's, or like a join or a leave.
    assert _chat_line('{"user": "user2", "text": "hi\\n* user1 left\\nuser1: x"}') == (
        "user2: hi\n       * user1 left\n       user1: x")
    assert _chat_line('{"user": "user2", "event": "left"}') == "* user2 left"
    for other in ("plain text", '{"not": "chat"}', "{broken", '["user", "text"]'):
        assert _chat_line(other) == other
    proc, port = start_cli("--mode", "chat")
    try:
        # A carriage return would redraw the terminal's line: shown escaped.
        joined, said = cli_client(f"ws://127.0.0.1:{port}/ws", "hi\r* user9 left\n").split("\n")[:2]
        name = joined.split()[1]
        assert joined == f"* {name} joined" and said == f"{name}: hi\\x0d* user9 left"
    finally:
        proc.send_signal(2)
        proc.communicate(timeout=10)


def test_cli_client_fails_clearly() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fastframe", "client", f"ws://127.0.0.1:{free_port()}/"],
        input="", capture_output=True, text=True, timeout=30, cwd=ROOT,
    )
    assert out.returncode != 0
    assert "cannot connect" in out.stderr


def test_listener_callback_api() -> None:
    events: list[Any] = []

    class Echo(fastframe.Listener):
        def on_open(self, ws: Any) -> None:
            events.append(("open", ws.path))

        def on_message(self, ws: Any, message: Any) -> None:
            if message == "boom":
                raise ValueError("boom")
            ws.send_nowait(message)
            ws.send_nowait(message)  # both leave in one write at the end of the read

        def on_close(self, ws: Any, code: int, reason: str) -> None:
            events.append(("close", code))

    async def go() -> None:
        async with serve(Echo, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/cb") as ws:
                await ws.send(b"\x01\x02")
                assert await ws.recv() == b"\x01\x02"
                assert await ws.recv() == b"\x01\x02"
            async with connect(f"ws://127.0.0.1:{server.port}/cb") as ws2:
                await ws2.send("boom")
                with pytest.raises(ConnectionClosed):
                    await ws2.recv()
            assert ws2.close_code == 1011
            while len(events) < 4:
                await asyncio.sleep(0.01)

    run(go())
    assert events[0] == ("open", "/cb") and ("close", 1000) in events and ("close", 1011) in events


def test_cli_bench_prints_a_table_and_json(tmp_path: Any) -> None:
    out_json = tmp_path / "r.json"
    out = subprocess.run(
        [sys.executable, "-m", "fastframe", "bench", "--only", "utf8", "--repeats", "1", "--json", str(out_json)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert "utf8: ascii" in out.stdout and "fastframe-c" in out.stdout and "faster" in out.stdout
    import json

    data = json.loads(out_json.read_text())
    assert {s["group"] for s in data["scenarios"]} == {"utf8"}


def test_listener_gets_frames_sent_with_the_handshake() -> None:
    got: list[Any] = []

    class Keep(fastframe.Listener):
        def on_message(self, ws: Any, message: Any) -> None:
            got.append(message)
            ws.send_nowait(message)

    async def go() -> None:
        async with serve(Keep, "127.0.0.1", 0) as server:
            r, w = await asyncio.open_connection("127.0.0.1", server.port)
            w.write(UPGRADE + fastframe.encode_frame(2, b"early", mask=b"abcd"))
            await r.readuntil(b"\r\n\r\n")
            assert await asyncio.wait_for(r.readexactly(7), 5) == b"\x82\x05early"
            w.close()

    run(go())
    assert got == [b"early"]


def test_client_close_gives_up_after_close_timeout() -> None:
    async def go() -> None:
        # A "server" that completes the handshake and then never answers.
        async def mute(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            head = await r.readuntil(b"\r\n\r\n")
            key = next(
                line.split(b": ")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key")
            )
            from fastframe.handshake import accept_key

            w.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n")
            await asyncio.sleep(30)

        srv = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        ws = await connect(f"ws://127.0.0.1:{port}/", close_timeout=0.3, compression=None)
        t = time.monotonic()
        await ws.close()
        assert time.monotonic() - t < 3
        assert ws.close_code == 1006
        srv.close()

    run(go())
