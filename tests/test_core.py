"""The one transport core (StreamCore): what the server, the client and the
uvicorn adapter share.  Its timers are driven here by hand (``tick(now)``)
over a fake transport; end-to-end cases run real servers."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Sequence
from typing import Any

import pytest

from fastframe import encode_frame, serve
from fastframe.connection import StreamCore, WebSocket
from fastframe.protocol import Connection, State

UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


class FakeTransport:
    """Records what the core does to its transport."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = self.aborted = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def write(self, data: bytes) -> None:
        self.written += data

    def writelines(self, data: Sequence[bytes]) -> None:
        self.written += b"".join(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class Front:
    """A front end that records what reaches it."""

    def __init__(self, core: StreamCore, inbox: deque[Any] | None = None) -> None:
        self.events: list[Any] = []
        self.lost = False
        self.messages: list[Any] = []
        core.attach(self, lambda front, m: front.messages.append(m), lambda front, exc: None, inbox)

    def _on_events(self, events: Sequence[Any]) -> None:
        self.events.extend(events)
        for ev in events:
            if type(ev).__name__ in ("Closed", "Rejected"):
                core = self.core
                core.finish()

    def _on_lost(self) -> None:
        self.lost = True

    def _on_drain(self) -> None:
        self.events.append("drain")


def assert_aborted_after(core: StreamCore, transport: FakeTransport, t0: float, timeout: float) -> None:
    """Not aborted halfway through ``timeout`` from ``t0``, aborted past it."""
    core.tick(t0 + timeout / 2)
    assert not transport.aborted
    core.tick(t0 + timeout * 1.5)
    assert transport.aborted


def open_core(**options: Any) -> tuple[StreamCore, FakeTransport, Front]:
    loop = asyncio.new_event_loop()
    conn = Connection(client=False, compression=None)
    inbox = options.pop("inbox", None)
    core = StreamCore(conn, loop=loop, **options)
    front = Front(core, inbox)
    front.core = core  # type: ignore[attr-defined]
    transport = FakeTransport()
    core.connection_made(transport)  # type: ignore[arg-type]
    core.data_received(UPGRADE)
    assert conn.state is State.OPEN
    transport.written.clear()
    return core, transport, front


def client_frame(opcode: int, payload: bytes) -> bytes:
    return encode_frame(opcode, payload, mask=True)


# -- keepalive (RFC 6455 §5.5.2) -------------------------------------------------------------


def test_core_keepalive_pings_then_aborts_a_silent_peer() -> None:
    core, transport, _ = open_core(ping_interval=1.0, ping_timeout=1.0)
    t0 = core.ping_sent
    core.tick(t0 + 0.5)
    assert not transport.written  # not yet
    core.tick(t0 + 1.1)
    assert transport.written[:1] == b"\x89"  # a ping
    core.tick(t0 + 1.5)
    assert not transport.aborted
    core.tick(t0 + 2.2)
    # Close with 1011, then abort: a peer that answers nothing will not
    # answer a close either (nor read what waits for it).
    assert transport.aborted and core.conn.state is State.CLOSING


def _ping_payload(written: bytes) -> bytes:
    assert written[:1] == b"\x89"
    return bytes(written[2:2 + (written[1] & 0x7F)])


def test_core_keepalive_is_answered_only_by_its_pong() -> None:
    # §5.5.3: the pong that answers carries the ping's payload; other
    # traffic, an unsolicited pong included, does not answer.
    core, transport, _ = open_core(ping_interval=1.0, ping_timeout=1.0)
    t0 = core.ping_sent
    core.tick(t0 + 1.1)
    payload = _ping_payload(transport.written)
    core.data_received(client_frame(10, b"unsolicited") + client_frame(2, b"data"))
    core.tick(t0 + 2.2)
    assert transport.aborted

    core, transport, _ = open_core(ping_interval=1.0, ping_timeout=1.0)
    t0 = core.ping_sent
    core.tick(t0 + 1.1)
    payload = _ping_payload(transport.written)
    core.data_received(client_frame(10, payload))
    core.tick(t0 + 2.0)
    assert not transport.aborted
    transport.written.clear()
    core.tick(t0 + 2.2)  # the next interval: the next ping
    assert transport.written[:1] == b"\x89" and not transport.aborted


def test_core_keepalive_waits_for_a_frame_arriving() -> None:
    core, transport, _ = open_core(ping_interval=1.0, ping_timeout=1.0)
    t0 = core.ping_sent
    core.tick(t0 + 1.1)  # ping
    frame = client_frame(2, b"x" * 1000)
    core.data_received(frame[:100])  # a long frame under way: the pong is behind it
    core.tick(t0 + 2.2)
    assert not transport.aborted
    core.data_received(frame[100:])  # over, and still no pong
    core.tick(t0 + 2.3)
    assert transport.aborted


# -- opening and closing timeouts ----------------------------------------------------------------


def test_core_open_timeout_aborts_a_stalled_handshake() -> None:
    loop = asyncio.new_event_loop()
    core = StreamCore(Connection(client=False), loop=loop, open_timeout=1.0)
    Front(core)
    transport = FakeTransport()
    core.connection_made(transport)  # type: ignore[arg-type]
    core.data_received(UPGRADE[:20])
    assert_aborted_after(core, transport, core.created, 1.0)


def test_core_close_timeout_aborts_after_our_close() -> None:
    core, transport, _ = open_core(close_timeout=1.0)
    core.close(1000, "bye")
    assert core.conn.state is State.CLOSING and transport.written[:1] == b"\x88"
    t0 = core.close_started
    assert t0 is not None
    assert_aborted_after(core, transport, t0, 1.0)


def test_core_close_timeout_aborts_a_closed_connection_whose_transport_lingers() -> None:
    # §7.1.1: after the peer's close, the server closes TCP; a transport with
    # bytes queued for a peer that stopped reading would wait for ever.
    core, transport, front = open_core(close_timeout=1.0)
    core.data_received(client_frame(8, struct.pack("!H", 1000)))
    assert core.conn.state is State.CLOSED and transport.closed
    transport.closed = False  # the transport still holds bytes: not gone yet
    t0 = core.close_started
    assert t0 is not None
    assert_aborted_after(core, transport, t0, 1.0)


# -- the hard write cap ------------------------------------------------------------------------


def test_core_hard_cap_aborts_once_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    core, transport, _ = open_core(max_write_buffer=1000)
    transport.get_write_buffer_size = lambda: 5000  # type: ignore[method-assign]
    core.conn.send(b"fits")
    core.flush()  # not paused: the high-water mark was not passed, no check
    assert transport.written and not transport.aborted
    core.pause_writing()
    with caplog.at_level("WARNING", logger="fastframe"):
        for _ in range(8):
            core.conn.send(b"m" * 600)  # ours in the buffer passes the cap on the third
            core.flush()
    assert transport.aborted
    assert len([r for r in caplog.records if "write buffer over" in r.getMessage()]) == 1
    assert not core.conn.output  # nothing kept for a connection that is gone


def test_core_hard_cap_counts_only_its_own_bytes() -> None:
    # Under uvicorn the HTTP server may still write a response of its own
    # into the transport after handing the connection over: those bytes are
    # not this connection's to cap.
    core, transport, _ = open_core(max_write_buffer=1000)
    transport.get_write_buffer_size = lambda: 50_000  # type: ignore[method-assign]
    core.pause_writing()
    core.conn.send(b"small")
    core.flush()
    assert not transport.aborted


# -- reading back-pressure ------------------------------------------------------------------------


@pytest.mark.parametrize("max_queue", [1, 2, 5])
def test_core_pauses_at_max_queue_and_resumes_at_half(max_queue: int) -> None:
    inbox: deque[Any] = deque()
    loop = asyncio.new_event_loop()
    core = StreamCore(Connection(client=False, compression=None), loop=loop, max_queue=max_queue)
    front = Front(core, inbox)
    front.core = core  # type: ignore[attr-defined]
    core.sink = lambda front, m: inbox.append(m)
    transport = FakeTransport()
    core.connection_made(transport)  # type: ignore[arg-type]
    core.data_received(UPGRADE)
    core.data_received(b"".join(client_frame(2, b"%d" % i) for i in range(max_queue)))
    assert not transport.reading and core.paused_reading
    while inbox:
        inbox.popleft()
        core.taken()
        if len(inbox) <= max_queue // 2:
            break
        assert not transport.reading
    assert transport.reading  # any max_queue >= 1 resumes


def test_core_hold_reading_wins_over_the_inbox() -> None:
    core, transport, _ = open_core(inbox=deque())
    core.hold_reading = True
    core.pause_reading()
    core.taken()
    assert not transport.reading
    core.hold_reading = False
    core.taken()
    assert transport.reading


# -- end to end ----------------------------------------------------------------------------------


def test_server_with_max_queue_one_keeps_going() -> None:
    async def slow_echo(ws: WebSocket) -> None:
        async for m in ws:
            await asyncio.sleep(0.001)
            await ws.send(m)

    async def go() -> None:
        from fastframe import connect

        async with serve(slow_echo, "127.0.0.1", 0, max_queue=1) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                for i in range(50):
                    await ws.send(str(i))
                got = [await asyncio.wait_for(ws.recv(), 5) for _ in range(50)]
                assert got == [str(i) for i in range(50)]

    run(go())


def test_server_aborts_a_closed_connection_to_a_peer_that_stopped_reading() -> None:
    """The peer sends its close while megabytes wait for it and it reads
    nothing more: the server ends the connection within the close timeout
    instead of holding the buffer until the peer's socket goes."""
    async def flood(ws: WebSocket) -> None:
        for _ in range(64):
            ws.send_nowait(b"x" * 65536)  # 4 MiB, under the hard cap
        await ws.wait_closed()

    async def go() -> None:
        async with serve(flood, "127.0.0.1", 0, close_timeout=0.5, write_limit=1 << 30) as server:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            await loop.sock_sendall(sock, UPGRADE)
            await asyncio.sleep(0.3)  # the server writes until the socket is full
            await loop.sock_sendall(sock, client_frame(8, struct.pack("!H", 1000)))
            for _ in range(100):
                if not server.protocols:
                    break
                await asyncio.sleep(0.05)
            assert not server.protocols  # gone, though the peer never read
            sock.close()

    run(go())


def test_handler_ending_in_cancelled_error_closes_with_1011() -> None:
    async def handler(ws: WebSocket) -> None:
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.05, fut.cancel)  # another task cancels what it awaits
        await fut

    async def go() -> None:
        from fastframe import ConnectionClosed, connect

        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                assert ws.close_code == 1011

    run(go())


def test_a_message_larger_than_the_write_cap_reaches_a_peer_that_reads() -> None:
    """The hard cap (max_write_buffer, 16 MiB) is for peers that stop
    reading, not a limit on message size: 24 MiB to a reading peer pass."""
    async def handler(ws: WebSocket) -> None:
        await ws.send(b"x" * (24 << 20))
        await ws.send("done")

    async def go() -> None:
        from fastframe import connect

        async with serve(handler, "127.0.0.1", 0, compression=None) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/", max_size=None, compression=None) as ws:
                big = await asyncio.wait_for(ws.recv(), 20)
                assert len(big) == 24 << 20
                assert await asyncio.wait_for(ws.recv(), 5) == "done"

    run(go())


def _violation_after(message: bytes) -> bytes:
    # A text message, then a frame with RSV1 set and no extension
    # (Autobahn 3.2), then a ping, in one write.
    return (client_frame(1, message) + encode_frame(1, b"x", rsv1=True, mask=True)
            + client_frame(9, b"after"))


async def _raw_open_port(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(UPGRADE)
    assert (await r.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
    return r, w


async def _read_frame(r: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await asyncio.wait_for(r.readexactly(2), 5)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await r.readexactly(2))
    return b0 & 0x0F, await r.readexactly(n)


@pytest.mark.parametrize("kind", ["handler", "listener"])
def test_messages_before_a_violation_are_answered_then_the_connection_fails(kind: str) -> None:
    """Autobahn 3.2, 4.1.3, 5.15 strictly: the message that came before the
    violation (in the same read) is delivered and its echo goes out, then
    the close with 1002."""
    from fastframe import Listener

    async def echo(ws: WebSocket) -> None:
        async for m in ws:
            await asyncio.sleep(0.01)  # a handler that takes its time
            await ws.send(m)

    class Echo(Listener):
        def on_message(self, ws: WebSocket, message: Any) -> None:
            ws.send_nowait(message)

    async def go() -> None:
        async with serve(echo if kind == "handler" else Echo, "127.0.0.1", 0) as server:
            r, w = await _raw_open_port(server.port)
            w.write(_violation_after(b"first"))
            assert await _read_frame(r) == (1, b"first")
            op, payload = await _read_frame(r)
            assert op == 8 and struct.unpack("!H", payload[:2])[0] == 1002
            w.close()

    run(go())


def test_a_handler_that_never_reads_does_not_delay_the_failure_for_ever() -> None:
    async def sleeper(ws: WebSocket) -> None:
        await asyncio.sleep(30)

    async def go() -> None:
        async with serve(sleeper, "127.0.0.1", 0, close_timeout=0.3) as server:
            r, w = await _raw_open_port(server.port)
            w.write(_violation_after(b"first"))
            op, payload = await asyncio.wait_for(_read_frame(r), 5)
            assert op == 8 and struct.unpack("!H", payload[:2])[0] == 1002
            w.close()

    run(go())


def test_listener_back_pressure_send_result_buffered_amount_and_on_drain() -> None:
    """A Listener learns that its peer is slow: send_nowait returns False past
    write_limit, buffered_amount says how much waits, on_drain says when to
    go on; sending only then, it is never cut off, and nothing is lost."""
    from fastframe import Listener

    chunk = b"y" * 16384
    total = 400  # 6.4 MiB in all, far over write_limit and under the hard cap
    seen: dict[str, Any] = {"false_at": [], "buffered": [], "drains": 0}

    class Producer(Listener):
        def __init__(self) -> None:
            self.sent = 0

        def pump(self, ws: WebSocket) -> None:
            while self.sent < total:
                self.sent += 1
                if not ws.send_nowait(chunk):
                    seen["false_at"].append(self.sent)
                    seen["buffered"].append(ws.buffered_amount)
                    return  # wait for on_drain

        def on_open(self, ws: WebSocket) -> None:
            self.pump(ws)

        def on_drain(self, ws: WebSocket) -> None:
            seen["drains"] += 1
            self.pump(ws)

    async def go() -> None:
        async with serve(Producer, "127.0.0.1", 0, write_limit=65536, max_write_buffer=1 << 20,
                         compression=None) as server:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            await loop.sock_sendall(sock, UPGRADE)
            await asyncio.sleep(0.5)  # the peer reads nothing for a while
            assert seen["false_at"] and seen["drains"] == 0
            assert all(b > 65536 for b in seen["buffered"])
            got = bytearray()
            want = total * (len(chunk) + 4)  # each frame: 4 header bytes + payload
            head_end = None
            while head_end is None or len(got) - head_end < want:
                data = await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), 10)
                assert data, "cut off"
                got += data
                if head_end is None and b"\r\n\r\n" in got:
                    head_end = got.index(b"\r\n\r\n") + 4
            sock.close()
            assert seen["drains"] >= 1
            assert got[head_end:head_end + 4] == b"\x82\x7e\x40\x00"

    run(go())
