"""fastframe as uvicorn's WebSocket implementation (``--ws fastframe.uvicorn:Protocol``).

Each test runs uvicorn in this process on an ephemeral loopback port with a
Starlette app.  The ``ws`` fixture runs it on fastframe with the compiled core
and with the pure twin, and, where the behaviour should match, with uvicorn's
own ``websockets-sansio`` implementation as a reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import pytest

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
websockets = pytest.importorskip("websockets")

from starlette.applications import Starlette  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route, WebSocketRoute  # noqa: E402
from starlette.websockets import WebSocket, WebSocketDisconnect  # noqa: E402

from fastframe import encode_frame  # noqa: E402

FASTFRAME = "fastframe.uvicorn:Protocol"
REFERENCE = "websockets-sansio"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def _use_codec(name: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """fastframe's Protocol on the compiled core (``c``) or the pure twin (``py``)."""
    from conftest import load_c, load_py, swap_codec

    impl: ModuleType = load_c() if name == "c" else load_py()
    swap_codec(impl, monkeypatch)
    return FASTFRAME


@pytest.fixture(params=["c", "py"])
def fastframe_ws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """fastframe only: for what the reference does differently or not at all."""
    return _use_codec(request.param, monkeypatch)


@pytest.fixture(params=["c", "py", "reference"])
def ws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """fastframe (c and py) and uvicorn's websockets-sansio, for behaviour both share."""
    if request.param == "reference":
        from importlib.metadata import version

        # 0.52.1 fixed the close handshake and denial responses in its own
        # implementations; older ones (the newest for Python 3.9) are no reference.
        have = tuple(int(x) for x in version("uvicorn").split(".")[:3] if x.isdigit())
        if have < (0, 52, 1):
            pytest.skip(f"uvicorn {version('uvicorn')} predates the reference behaviour (0.52.1)")
        return REFERENCE
    return _use_codec(request.param, monkeypatch)


# -- the Starlette app -------------------------------------------------------------------

EVENTS: list[Any] = []  # what the app saw, for the tests to check


async def echo(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol="chat" if "chat" in websocket.scope["subprotocols"] else None)
    try:
        while True:
            msg = await websocket.receive()
            if msg["type"] == "websocket.disconnect":
                EVENTS.append(("disconnect", msg.get("code"), msg.get("reason")))
                return
            if msg.get("text") is not None:
                text = msg["text"]
                if text.startswith("close "):
                    _, code, reason = text.split(" ", 2)
                    await websocket.close(int(code), reason)
                    EVENTS.append(("closed", int(code)))
                    return
                await websocket.send_text(text)
            else:
                await websocket.send_bytes(msg["bytes"])
    except WebSocketDisconnect as exc:
        EVENTS.append(("disconnect", exc.code, exc.reason))


async def scope_view(websocket: WebSocket) -> None:
    await websocket.accept(headers=[(b"x-extra", b"yes")])
    s = websocket.scope
    await websocket.send_json({
        "path": s["path"], "raw_path": s["raw_path"].decode(), "query": s["query_string"].decode(),
        "root_path": s["root_path"], "scheme": s["scheme"], "subprotocols": s["subprotocols"],
        "x-test": dict(s["headers"]).get(b"x-test", b"").decode(), "client": s["client"][0],
        "http_version": s["http_version"], "spec": s["asgi"].get("spec_version"),
    })
    await websocket.close()


async def refuse(websocket: WebSocket) -> None:
    await websocket.close()  # before accept: 403


async def deny(websocket: WebSocket) -> None:
    await websocket.send_denial_response(PlainTextResponse("not you", status_code=401))


async def crash(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.receive_text()
    raise RuntimeError("the app failed")


async def flood(websocket: WebSocket) -> None:
    """Sends 64 KiB messages as fast as ``send`` lets it; counts them."""
    await websocket.accept()
    EVENTS.append(0)
    chunk = b"x" * 65536
    try:
        for i in range(1, 2001):
            await websocket.send_bytes(chunk)
            EVENTS[0] = i
    except (WebSocketDisconnect, OSError):
        pass


async def idle(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect as exc:
        EVENTS.append(("disconnect", exc.code, exc.reason))


async def slow_reader(websocket: WebSocket) -> None:
    """Accepts, then reads nothing for a while (ws_max_queue)."""
    await websocket.accept()
    await asyncio.sleep(0.5)
    n = 0
    while n < 2000:
        await websocket.receive_bytes()
        n += 1
    await websocket.send_text(f"got {n}")
    await websocket.close()


BIG = 32 << 20


async def big(request: Any) -> Any:
    from starlette.responses import Response

    return Response(b"x" * BIG, media_type="application/octet-stream")


app = Starlette(routes=[
    Route("/big", big),
    WebSocketRoute("/echo", echo),
    WebSocketRoute("/scope", scope_view),
    WebSocketRoute("/refuse", refuse),
    WebSocketRoute("/deny", deny),
    WebSocketRoute("/crash", crash),
    WebSocketRoute("/flood", flood),
    WebSocketRoute("/idle", idle),
    WebSocketRoute("/slow", slow_reader),
])


@contextlib.asynccontextmanager
async def running(ws: str, **options: Any) -> AsyncIterator[Any]:
    """uvicorn serving ``app`` with the ``ws`` implementation; yields the Server."""
    EVENTS.clear()
    options.setdefault("log_level", "warning")
    config = uvicorn.Config(app, host="127.0.0.1", port=0, ws=ws, lifespan="off", loop="asyncio", **options)
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    server.port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


def url(server: Any, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


async def raw_handshake(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
    return r, w, head


async def read_frame(r: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await asyncio.wait_for(r.readexactly(2), 5)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await r.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await r.readexactly(8))
    return b0 & 0x0F, await r.readexactly(n)


def run(coro: Any) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


# -- echo, sizes, compression ----------------------------------------------------------------


def test_echo_text_and_bytes(ws: str) -> None:
    async def go() -> None:
        async with running(ws) as server, websockets.connect(url(server, "/echo")) as c:
            await c.send("héllo")
            assert await c.recv() == "héllo"
            await c.send(b"\x00\xff" * 10)
            assert await c.recv() == b"\x00\xff" * 10
            for i in range(100):
                await c.send(f"m{i}")
            assert [await c.recv() for _ in range(100)] == [f"m{i}" for i in range(100)]

    run(go())


def test_large_messages_and_the_size_limit(ws: str) -> None:
    async def go() -> None:
        async with running(ws, ws_max_size=4 << 20) as server:
            async with websockets.connect(url(server, "/echo"), max_size=None) as c:
                big = bytes(range(256)) * (3 << 12)  # 3 MiB
                await c.send(big)
                assert await c.recv() == big
            async with websockets.connect(url(server, "/echo"), max_size=None) as c:
                await c.send(b"x" * ((4 << 20) + 1))
                with pytest.raises(websockets.ConnectionClosed):
                    await c.recv()
                assert c.close_code == 1009  # RFC 6455 §7.4.1: message too big

    run(go())


@pytest.mark.parametrize("deflate", [True, False])
def test_compression_on_and_off(ws: str, deflate: bool) -> None:
    async def go() -> None:
        async with running(ws, ws_per_message_deflate=deflate) as server, websockets.connect(
            url(server, "/echo"), compression="deflate"
        ) as c:
            agreed = c.response.headers.get("Sec-WebSocket-Extensions") or ""
            assert ("permessage-deflate" in agreed) is deflate
            text = "compress me " * 5000
            await c.send(text)
            assert await c.recv() == text

    run(go())


def test_scope_subprotocol_and_accept_headers(fastframe_ws: str) -> None:
    async def go() -> None:
        async with running(fastframe_ws, root_path="/api") as server, websockets.connect(
            url(server, "/scope?a=1&b=%20"), subprotocols=["other", "chat"],
            additional_headers={"X-Test": "ok"},
        ) as c:
            import json

            got = json.loads(await c.recv())
            assert c.response.headers["x-extra"] == "yes"
            assert got["query"] == "a=1&b=%20"
            assert got["path"].endswith("/scope")
            assert got["root_path"] == "/api"
            assert got["scheme"] == "ws" and got["http_version"] == "1.1" and got["spec"] == "2.4"
            assert got["subprotocols"] == ["other", "chat"]
            assert got["x-test"] == "ok" and got["client"] == "127.0.0.1"

    run(go())


# -- closing ----------------------------------------------------------------------------------


def test_client_close_code_reaches_the_app(ws: str) -> None:
    async def go() -> None:
        async with running(ws) as server:
            async with websockets.connect(url(server, "/echo")) as c:
                await c.send("hi")
                await c.recv()
                await c.close(4001, "bye")
            for _ in range(100):
                if EVENTS:
                    break
                await asyncio.sleep(0.01)
            assert EVENTS == [("disconnect", 4001, "bye")]

    run(go())


def test_app_close_code_reaches_the_client(ws: str) -> None:
    async def go() -> None:
        async with running(ws) as server, websockets.connect(url(server, "/echo")) as c:
            await c.send("close 4002 done here")
            with pytest.raises(websockets.ConnectionClosed):
                await c.recv()
            assert c.close_code == 4002 and c.close_reason == "done here"
            assert c.protocol.close_rcvd is not None and c.protocol.close_sent is not None  # a full handshake

    run(go())


def test_server_initiated_close_is_a_handshake(ws: str) -> None:
    """RFC 6455 §7.1.2/§7.1.1: after its close frame the server waits for the
    client's, then closes TCP first.  uvicorn's glue once closed at once."""

    async def go() -> None:
        async with running(ws) as server:
            r, w, head = await raw_handshake(server.port, "/echo")
            assert head.startswith(b"HTTP/1.1 101")
            w.write(encode_frame(1, b"close 4003 bye", mask=True))
            op, payload = await read_frame(r)
            assert op == 8 and payload == struct.pack("!H", 4003) + b"bye"
            # The server keeps the TCP connection while it waits for our close.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(r.read(1), 0.3)
            w.write(encode_frame(8, struct.pack("!H", 4003), mask=True))
            assert await asyncio.wait_for(r.read(1), 5) == b""  # then it closes first
            w.close()

    run(go())


def test_messages_after_app_close_are_not_delivered_but_read(fastframe_ws: str) -> None:
    async def go() -> None:
        async with running(fastframe_ws) as server:
            r, w, _ = await raw_handshake(server.port, "/echo")
            w.write(encode_frame(1, b"close 1000 ok", mask=True))
            assert (await read_frame(r))[0] == 8
            w.write(encode_frame(1, b"late", mask=True) + encode_frame(8, b"\x03\xe8", mask=True))
            assert await asyncio.wait_for(r.read(1), 5) == b""
            w.close()

    run(go())


def test_client_that_disappears(fastframe_ws: str) -> None:
    """No close frame: the app gets 1006 (RFC 6455 §7.1.5; websockets-sansio says 1005)."""

    async def go() -> None:
        async with running(fastframe_ws) as server:
            r, w, _ = await raw_handshake(server.port, "/idle")
            w.transport.abort()  # no close frame: 1006
            for _ in range(200):
                if EVENTS:
                    break
                await asyncio.sleep(0.01)
            assert EVENTS and EVENTS[0][:2] == ("disconnect", 1006)
            async with websockets.connect(url(server, "/echo")) as c:  # still serving
                await c.send("after")
                assert await c.recv() == "after"

    run(go())


def test_protocol_error_closes_with_1002(ws: str) -> None:
    async def go() -> None:
        async with running(ws) as server:
            r, w, _ = await raw_handshake(server.port, "/idle")
            w.write(encode_frame(1, b"unmasked"))  # §5.1: client frames must be masked
            op, payload = await read_frame(r)
            assert op == 8 and struct.unpack("!H", payload[:2])[0] == 1002
            w.close()

    run(go())


def test_invalid_utf8_closes_with_1007(fastframe_ws: str) -> None:
    async def go() -> None:
        async with running(fastframe_ws) as server:
            r, w, _ = await raw_handshake(server.port, "/idle")
            w.write(encode_frame(1, b"\xff\xfe", mask=True))
            op, payload = await read_frame(r)
            assert op == 8 and struct.unpack("!H", payload[:2])[0] == 1007
            w.close()

    run(go())


# -- rejection ------------------------------------------------------------------------------


def test_app_that_rejects_gets_403(ws: str) -> None:
    async def go() -> None:
        async with running(ws) as server:
            r, w, head = await raw_handshake(server.port, "/refuse")
            assert head.startswith(b"HTTP/1.1 403")
            w.close()

    run(go())


def test_denial_response_extension(ws: str) -> None:
    async def go() -> None:
        async with running(ws) as server:
            r, w, head = await raw_handshake(server.port, "/deny")
            assert head.startswith(b"HTTP/1.1 401")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            assert await r.readexactly(length) == b"not you"
            assert head.lower().count(b"content-length") == 1
            w.close()

    run(go())


def test_bad_handshake_is_refused_without_the_app(fastframe_ws: str) -> None:
    async def go() -> None:
        async with running(fastframe_ws) as server:
            r, w = await asyncio.open_connection("127.0.0.1", server.port)
            w.write(
                b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\nSec-WebSocket-Version: 8\r\n\r\n"
            )
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 426") and b"Sec-WebSocket-Version: 13" in head
            w.close()

    run(go())


def test_app_exception_after_accept_closes_with_1011(fastframe_ws: str) -> None:
    """§7.4.1: 1011 for an unexpected condition (websockets-sansio drops TCP: 1006)."""

    async def go() -> None:
        async with running(fastframe_ws, log_level="critical") as server, websockets.connect(
            url(server, "/crash")
        ) as c:
            await c.send("boom")
            with pytest.raises(websockets.ConnectionClosed):
                await c.recv()
            assert c.close_code == 1011

    run(go())


# -- flow control, queue, keepalive, shutdown -----------------------------------------------------


def test_slow_reader_applies_backpressure_to_send(fastframe_ws: str) -> None:
    """A client that stops reading holds the app's ``send`` (write flow control),
    and then every message arrives once it reads again."""

    async def go() -> None:
        async with running(fastframe_ws) as server:
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            r, w = await asyncio.open_connection(sock=sock)
            w.write(
                f"GET /flood HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
            w.transport.pause_reading()
            await asyncio.sleep(1.0)
            sent_while_stalled = EVENTS[0]
            # Kernel buffers plus the transport's high-water mark: a few MiB at
            # most, far from the 2000 messages (125 MiB) the app wants to send.
            assert sent_while_stalled < 200, sent_while_stalled
            w.transport.resume_reading()
            for _ in range(2000):
                op, payload = await read_frame(r)
                assert op == 2 and len(payload) == 65536
            assert EVENTS[0] == 2000
            w.close()

    run(go())


def test_max_queue_pauses_reading(fastframe_ws: str) -> None:
    async def go() -> None:
        async with running(fastframe_ws, ws_max_queue=4) as server, websockets.connect(
            url(server, "/slow"), compression=None  # sizes on the wire as sent
        ) as c:
            for _ in range(2000):  # 2 MB, while the app reads nothing
                await c.send(b"m" * 1000)
            await asyncio.sleep(0.2)
            (proto,) = [p for p in server.server_state.connections if hasattr(p, "asgi")]
            # Reading paused at the limit: what one read holds (64 KiB with a
            # buffered transport, 256 KiB without) past it at most.
            assert len(proto.asgi._queue) <= 4 + 270
            assert proto.paused_reading
            assert await c.recv() == "got 2000"

    run(go())


def test_keepalive_closes_a_silent_peer(fastframe_ws: str) -> None:
    async def go() -> None:
        async with running(fastframe_ws, ws_ping_interval=0.2, ws_ping_timeout=0.2) as server:
            r, w, _ = await raw_handshake(server.port, "/idle")
            op, _ = await read_frame(r)
            assert op == 9  # a ping, which this client never answers
            op, payload = await read_frame(r)
            assert op == 8 and struct.unpack("!H", payload[:2])[0] == 1011
            w.close()
            async with websockets.connect(url(server, "/echo")) as c:  # answers pings
                await asyncio.sleep(1.0)
                await c.send("still here")
                assert await c.recv() == "still here"

    run(go())


def test_keepalive_spares_a_peer_still_sending_a_long_frame(fastframe_ws: str) -> None:
    """Any inbound byte is life: a frame trickling in for longer than
    interval + timeout, with no pong, does not get the connection cut."""
    async def go() -> None:
        async with running(fastframe_ws, ws_ping_interval=0.2, ws_ping_timeout=0.2) as server:
            r, w, _ = await raw_handshake(server.port, "/echo")
            frame = encode_frame(2, b"s" * 60, mask=b"abcd")
            t = time.monotonic()
            for i in range(len(frame)):
                w.write(frame[i : i + 1])
                await asyncio.sleep(0.02)
            while True:  # pings may come first; the echo must come, not a close
                op, payload = await asyncio.wait_for(read_frame(r), 5)
                assert op != 8, f"closed: {payload!r}"
                if op == 2:
                    break
            assert payload == b"s" * 60
            assert time.monotonic() - t > 1.0  # longer than interval + timeout
            w.close()

    run(go())


def test_graceful_shutdown_closes_with_1012(ws: str) -> None:
    async def go() -> None:
        async with running(ws) as server:
            c = await websockets.connect(url(server, "/echo"))
            await c.send("x")
            await c.recv()
            server.should_exit = True
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(c.recv(), 10)
            assert c.close_code == 1012  # service restart
            await c.close()

    run(go())


def test_a_receive_cancelled_after_delivery_loses_nothing(fastframe_ws: str) -> None:
    """The app's receive() is cancelled (a timeout, a task group) just after
    an event was handed to it: the next receive() still gets that event."""
    from types import SimpleNamespace

    from fastframe.uvicorn import Protocol

    async def go() -> None:
        loop = asyncio.get_running_loop()
        state = SimpleNamespace(connections=set(), tasks=set(), default_headers=[])
        proto = Protocol(uvicorn.Config(app, ws=fastframe_ws), state, {}, _loop=loop)
        task = asyncio.ensure_future(proto.asgi.receive())
        await asyncio.sleep(0)  # it waits
        first = {"type": "websocket.receive", "text": "first"}
        proto.asgi._put(first)
        task.cancel()  # before the task ran again
        with pytest.raises(asyncio.CancelledError):
            await task
        proto.asgi._put({"type": "websocket.receive", "text": "second"})
        assert await proto.asgi.receive() is first
        assert (await proto.asgi.receive())["text"] == "second"
        # A receive cancelled while still waiting takes nothing with it.
        task = asyncio.ensure_future(proto.asgi.receive())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        proto.asgi._put({"type": "websocket.receive", "text": "third"})
        assert (await proto.asgi.receive())["text"] == "third"

    run(go())


def _upgrade(path: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def _raw_socket(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def test_upgrade_after_a_response_still_in_the_transport_keeps_the_order(fastframe_ws: str) -> None:
    """Keep-alive: a 32 MiB response the client has not read yet, then an
    upgrade on the same connection.  The 101 and the frames after it must
    follow the whole body, though the adapter may send straight to the
    socket: uvicorn's transport still holds most of the body."""
    async def go() -> None:
        async with running(fastframe_ws) as server:
            loop = asyncio.get_running_loop()
            sock = _raw_socket(server.port)
            try:
                await loop.sock_sendall(sock, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n" + _upgrade("/echo"))
                await asyncio.sleep(0.5)  # the server answers both while nothing is read
                data = bytearray()
                while b"HTTP/1.1 101" not in data[BIG:]:
                    chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 10)
                    assert chunk, "connection closed early"
                    data += chunk
            finally:
                sock.close()
            head_end = data.index(b"\r\n\r\n") + 4
            assert data.startswith(b"HTTP/1.1 200 ")
            assert data[head_end:head_end + BIG] == b"x" * BIG
            assert data[head_end + BIG:].startswith(b"HTTP/1.1 101 ")

    run(go())


def test_pings_from_a_peer_that_never_reads_hit_the_write_cap(fastframe_ws: str) -> None:
    """Every ping is answered with a pong (§5.5.2); a peer that pings and
    never reads would make the server buffer pongs without end: the same
    hard cap as fastframe's own server cuts it off (16 MiB)."""
    async def go() -> None:
        async with running(fastframe_ws) as server:
            loop = asyncio.get_running_loop()
            sock = _raw_socket(server.port)
            try:
                await loop.sock_sendall(sock, _upgrade("/idle"))
                head = bytearray()
                while b"\r\n\r\n" not in head:
                    head += await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
                assert head.startswith(b"HTTP/1.1 101 ")
                blob = encode_frame(9, b"p" * 125, mask=True) * 1000
                sent = 0
                with pytest.raises(OSError):  # reset by the server
                    while sent < 256 << 20:
                        await asyncio.wait_for(loop.sock_sendall(sock, blob), 10)
                        sent += len(blob)
                assert sent < 128 << 20
            finally:
                sock.close()

    run(go())


def test_a_message_before_a_violation_is_answered_then_1002(fastframe_ws: str) -> None:
    """Autobahn 3.2 strictly: the app receives the message that came before
    the violation (same read) and its answer goes out before the close."""
    async def go() -> None:
        async with running(fastframe_ws) as server:
            r, w, head = await raw_handshake(server.port, "/echo")
            assert head.startswith(b"HTTP/1.1 101 ")
            w.write(encode_frame(1, b"first", mask=True) + encode_frame(1, b"x", rsv1=True, mask=True)
                    + encode_frame(9, b"after", mask=True))
            assert await read_frame(r) == (1, b"first")
            op, payload = await read_frame(r)
            assert op == 8 and struct.unpack("!H", payload[:2])[0] == 1002
            w.close()

    run(go())
