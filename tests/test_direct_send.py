"""Sending straight to the socket (``try_send``) while the transport holds
nothing, and handing the rest to the transport: same bytes, same order."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from types import ModuleType
from typing import Any

import pytest

import fastframe
from fastframe import connect, serve
from fastframe.connection import direct_send_fd


def _read_all(sock: socket.socket, out: bytearray) -> None:
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return
        out += chunk


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    return a, b


def test_whole_send_in_order(aio: ModuleType) -> None:
    a, b = _pair()
    with a, b:
        rest = aio.try_send(a.fileno(), [b"ab", b"", b"cd"])
        if aio.DIRECT_SEND:
            assert rest is None
        else:
            assert rest == b"abcd"  # the twin sends nothing: all of it is left
            a.sendall(rest)
        assert b.recv(10) == b"abcd"
        assert aio.try_send(a.fileno(), []) in (None, b"")


def test_partial_send_leaves_exactly_the_rest(aio: ModuleType) -> None:
    data = [bytes([i]) * 100_000 for i in range(80)]  # 8 MB, more than 64 chunks
    few = data[:40]  # 4 MB: more than the socket takes at once
    a, b = _pair()
    got = bytearray()
    reader = threading.Thread(target=_read_all, args=(b, got))
    with a, b:
        rest = aio.try_send(a.fileno(), few)
        assert rest is not None and 0 < len(rest) <= len(b"".join(few))
        reader.start()
        a.setblocking(True)
        a.sendall(rest)
        # Over 64 chunks nothing is sent directly: all of it comes back.
        assert aio.try_send(a.fileno(), data[:65]) == b"".join(data[:65])
        a.shutdown(socket.SHUT_WR)
        reader.join(30)
    assert bytes(got) == b"".join(few)


def test_full_socket_and_dead_peer_send_nothing_and_do_not_raise(aio: ModuleType) -> None:
    a, b = _pair()
    with a:
        with b:
            while aio.DIRECT_SEND and aio.try_send(a.fileno(), [b"x" * 65536]) is None:
                pass  # fill the socket until it would block
            assert aio.try_send(a.fileno(), [b"y" * 10]) == b"y" * 10  # EAGAIN: all left
        # The peer is gone: EPIPE/ECONNRESET, no exception, no SIGPIPE.
        assert aio.try_send(a.fileno(), [b"z" * 10]) == b"z" * 10


def test_other_buffer_types_are_left_to_the_transport(aio: ModuleType) -> None:
    a, b = _pair()
    with a, b:
        assert aio.try_send(a.fileno(), [b"ab", bytearray(b"cd")]) == b"abcd"
        a.setblocking(True)
        a.sendall(b"!")
        assert b.recv(10) == b"!"  # nothing else went out


# -- which transports qualify -----------------------------------------------------------


async def _transport_fd(ssl_ctx: ssl.SSLContext | None = None, client_ctx: ssl.SSLContext | None = None) -> int:
    loop = asyncio.get_running_loop()
    seen: list[int] = []

    class P(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            seen.append(direct_send_fd(transport))

    server = await loop.create_server(P, "127.0.0.1", 0, ssl=ssl_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        _, w = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                             server_hostname="localhost" if client_ctx else None)
        while not seen:
            await asyncio.sleep(0.01)
        w.close()
    finally:
        server.close()
        await server.wait_closed()
    return seen[0]


def test_plain_socket_transports_qualify_tls_does_not() -> None:
    expected_plain = fastframe.IMPLEMENTATION == "c"
    assert (asyncio.run(_transport_fd()) >= 0) is expected_plain
    uvloop = pytest.importorskip("uvloop")
    assert (uvloop.run(_transport_fd()) >= 0) is expected_plain
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    assert asyncio.run(_transport_fd(server_ctx, client_ctx)) == -1
    assert uvloop.run(_transport_fd(server_ctx, client_ctx)) == -1


# -- end to end: a reader that pauses gets everything, in order --------------------------


async def _burst_to_a_paused_reader() -> None:
    sizes = [64, 70_000, 5, 300_000, 1, 65_536] * 40

    async def handler(ws: Any) -> None:
        await ws.recv()
        for i, n in enumerate(sizes):
            # send() waits while the transport is over its high-water mark:
            # the direct sends and the transport's buffer take turns.
            await ws.send(bytes([i % 251]) * n)
        await ws.send("done")

    async with serve(handler, "127.0.0.1", 0, max_size=None, write_limit=32 * 1024) as server:
        async with connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as ws:
            await ws.send("go")
            await asyncio.sleep(0.3)  # let the server fill every buffer
            for i, n in enumerate(sizes):
                m = await ws.recv()
                assert m == bytes([i % 251]) * n, f"message {i} differs"
            assert await ws.recv() == "done"


def test_burst_to_a_paused_reader_arrives_whole_and_in_order() -> None:
    asyncio.run(asyncio.wait_for(_burst_to_a_paused_reader(), 60))


def test_burst_to_a_paused_reader_under_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")
    uvloop.run(asyncio.wait_for(_burst_to_a_paused_reader(), 60))


async def _write_after_close() -> bytes:
    """What the peer receives when output is written after transport.close()."""
    from fastframe.connection import Writer

    loop = asyncio.get_running_loop()
    made: asyncio.Future[Any] = loop.create_future()

    class P(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            made.set_result(transport)

    server = await loop.create_server(P, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        transport = await made
        writer = Writer(transport)
        writer.write([b"before"])
        transport.close()
        writer.write([b"after"])  # must not reach any socket: the fd may be reused
        data = await asyncio.wait_for(r.read(), 5)
        w.close()
        return data
    finally:
        server.close()
        await server.wait_closed()


def test_nothing_is_written_once_the_transport_is_closing() -> None:
    assert asyncio.run(_write_after_close()) == b"before"
    uvloop = pytest.importorskip("uvloop")
    assert uvloop.run(_write_after_close()) == b"before"
