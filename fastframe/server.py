"""``fastframe.serve``: an asyncio WebSocket server with a handler per connection.

    async def handler(ws):
        async for message in ws:
            await ws.send(message)

    async with fastframe.serve(handler, "127.0.0.1", 8080) as server:
        await server.serve_forever()

Defaults follow websockets where it has one (1 MiB messages, 20 s ping
interval and timeout, 10 s open and close timeouts, compression negotiated
when the client offers it, window bits 12) and picows for the write path
(no per-message task, writes coalesced).  See ``serve`` for every option.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Awaitable, Iterable, Sequence
from typing import (
    Any,
    Callable,
    Optional,
    Union,
    cast,
)

from ._impl import codec
from .connection import Listener, StreamProtocol, WebSocket
from .deflate import DeflateConfig
from .exceptions import ConnectionClosed
from .handshake import Request
from .protocol import Connection, State
from .pubsub import Broker, Topics, broker_from_url

__all__ = ["Response", "Server", "broadcast", "serve"]

log = logging.getLogger("fastframe.server")

Handler = Union[Callable[[WebSocket], Awaitable[Any]], "type[Listener]"]
#: process_request may answer a request itself: (status, headers, body).
Response = tuple[int, Sequence[tuple[str, str]], bytes]
ProcessRequest = Callable[[Request], Optional[Response]]


class Server:
    """A running server: the set of open connections and the listening sockets."""

    def __init__(
        self,
        handler: Handler,
        *,
        connection_options: dict[str, Any],
        protocol_options: dict[str, Any],
        ping_interval: float | None,
        ping_timeout: float | None,
        open_timeout: float | None,
        max_connections: int | None,
        broker: Broker | None = None,
    ) -> None:
        self.handler = handler
        # Passed as they are to each connection's Connection and
        # StreamProtocol (see serve() for what they mean).
        self._connection_options = connection_options
        self._protocol_options = protocol_options
        self.close_timeout: float = protocol_options["close_timeout"]
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.open_timeout = open_timeout
        self.max_connections = max_connections
        self.loop = asyncio.get_running_loop()
        self.protocols: set[StreamProtocol] = set()
        self.connections: set[WebSocket] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        #: The topics of this server (fastframe.pubsub): ws.subscribe, publish.
        self.topics = Topics(broker)
        self._server: asyncio.AbstractServer | None = None
        self._closing = False
        self._port = 0

    # -- protocol factory ---------------------------------------------------------------

    def _make_protocol(self) -> StreamProtocol:
        conn = Connection(client=False, defer_failure=True, **self._connection_options)
        proto = StreamProtocol(
            conn, loop=self.loop, ping_interval=self.ping_interval, ping_timeout=self.ping_timeout,
            open_timeout=self.open_timeout, **self._protocol_options,
        )
        WebSocket(proto, on_open=self._on_open, on_finish=self._on_finish)
        if self._closing or (self.max_connections is not None and len(self.protocols) >= self.max_connections):
            conn.reject(503, "too many connections" if not self._closing else "server shutting down")
        self.protocols.add(proto)
        return proto

    def _on_open(self, ws: WebSocket) -> None:
        proto = ws._proto
        log.info("open #%d %s %s", ws.id, proto.peer, ws.path)
        self.connections.add(ws)
        ws.server = self
        if isinstance(self.handler, type) and issubclass(self.handler, Listener):
            listener = self.handler()
            ws.set_listener(listener)
            try:
                listener.on_open(ws)
            except Exception:
                log.exception("listener error in on_open on #%d %s", ws.id, proto.peer)
                proto.close(1011, "internal error")
            return
        task = self.loop.create_task(self._run(ws))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, ws: WebSocket) -> None:
        proto = ws._proto
        try:
            await cast(Callable[[WebSocket], Awaitable[Any]], self.handler)(ws)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("handler error on #%d %s", ws.id, proto.peer)
            proto.close(1011, "internal error")
            return
        except asyncio.CancelledError:
            # The handler was cancelled, or let through the cancellation of
            # something it awaited: it is over either way, and the peer
            # learns it as from any handler that failed (§7.4.1, as
            # websockets does); the cancellation goes on up.
            log.info("handler cancelled on #%d %s", ws.id, proto.peer)
            proto.close(1011, "internal error")
            raise
        # Returning from the handler closes the connection normally.
        proto.close(1000, "")

    def _on_finish(self, ws: WebSocket) -> None:
        self.protocols.discard(ws._proto)
        self.topics.leave(ws)
        if ws in self.connections:
            self.connections.discard(ws)
            log.info("close #%d %s code=%s", ws.id, ws._proto.peer, ws._proto.conn.close_code)

    # -- public ---------------------------------------------------------------------------

    @property
    def sockets(self) -> tuple[Any, ...]:
        return tuple(getattr(self._server, "sockets", ())) if self._server else ()

    @property
    def port(self) -> int:
        """The port listened on (the first socket's), kept after closing."""
        return self._port

    async def serve_forever(self) -> None:
        assert self._server is not None
        try:
            await self._server.serve_forever()
        except asyncio.CancelledError:
            await self.aclose()
            raise

    def broadcast(self, message: str | bytes, connections: Iterable[WebSocket] | None = None) -> None:
        """Send ``message`` to every open connection (or those given).

        See :func:`broadcast`.
        """
        broadcast(self.connections if connections is None else connections, message)

    def publish(self, topic: str, message: str | bytes) -> int:
        """Send ``message`` to every subscriber of ``topic`` (``ws.subscribe``):
        on this server, and with a broker on every server attached to it.

        The frame is encoded once and queued on each open subscriber, to
        leave in one write per connection at the end of the loop iteration;
        nothing waits, and a subscriber past ``max_write_buffer`` is
        disconnected, as with :func:`broadcast`.  Returns the number of local
        subscribers it was queued for.  See docs/pubsub.md.
        """
        return self.topics.publish(topic, message)

    def num_subscribers(self, topic: str) -> int:
        """How many connections of this server subscribe to ``topic``."""
        return self.topics.num_subscribers(topic)

    def close(self) -> None:
        """Stop accepting and start closing every connection with 1001."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for proto in list(self.protocols):
            proto.close(1001, "server shutting down")

    async def aclose(self) -> None:
        """Graceful shutdown: stop accepting, close with 1001, wait up to the
        close timeout, then abort what is left."""
        self.close()
        pending = [p.closed_future for p in self.protocols]
        if pending:
            await asyncio.wait(pending, timeout=self.close_timeout)
            for proto in list(self.protocols):
                proto.abort()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=self.close_timeout)
        if self._server is not None:
            await self._server.wait_closed()
        # Last: what the closing handlers published still goes out.
        await self.topics.aclose()

    async def __aenter__(self) -> Server:  # noqa: PYI034 - typing.Self needs 3.11
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def broadcast(connections: Iterable[WebSocket], message: str | bytes) -> None:
    """Send one message to many connections without waiting for any of them.

    The frame is encoded once and written to every open connection as is:
    a connection that negotiated compression gets it uncompressed, which
    RFC 7692 allows per message (RSV1 clear), so nothing is compressed per
    peer.  A peer whose write buffer is over its hard cap (``max_write_buffer``)
    is disconnected; a slow peer never blocks the others.
    """
    if isinstance(message, str):
        frame = codec.encode_frame(1, message.encode("utf-8"))
    else:
        frame = codec.encode_frame(2, message)
    for ws in list(connections):
        proto = ws._proto
        if proto.conn.state is State.OPEN and not proto.conn.client:
            proto.write_raw(frame)


class _Serve:
    """``serve(...)`` is both awaitable and an async context manager."""

    def __init__(self, handler: Handler, host: str | None, port: int, ssl: ssl_module.SSLContext | None,
                 sock: Any, reuse_port: bool, kw: dict[str, Any]) -> None:
        self._args = (handler, host, port, ssl, sock, reuse_port, kw)
        self.server: Server | None = None

    async def _start(self) -> Server:
        handler, host, port, ssl, sock, reuse_port, kw = self._args
        server = Server(handler, **kw)
        loop = asyncio.get_running_loop()
        # The broker first, so that the first subscriptions reach it.
        await server.topics.start()
        try:
            if sock is not None:
                server._server = await loop.create_server(server._make_protocol, sock=sock, ssl=ssl)
            else:
                server._server = await loop.create_server(server._make_protocol, host, port, ssl=ssl,
                                                          reuse_port=reuse_port or None)
        except BaseException:
            await server.topics.aclose()
            raise
        socks = getattr(server._server, "sockets", ())
        server._port = int(socks[0].getsockname()[1]) if socks else 0
        self.server = server
        return server

    def __await__(self):  # type: ignore[no-untyped-def]
        return self._start().__await__()

    async def __aenter__(self) -> Server:
        return await self._start()

    async def __aexit__(self, *exc: object) -> None:
        if self.server is not None:
            await self.server.aclose()


def serve(
    handler: Handler,
    host: str | None = "127.0.0.1",
    port: int = 8080,
    *,
    max_size: int | None = 1 << 20,
    compression: DeflateConfig | None = DeflateConfig(),
    subprotocols: list[str] | None = None,
    origins: list[str] | None = None,
    extra_headers: list[tuple[str, str]] | None = None,
    process_request: ProcessRequest | None = None,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    open_timeout: float | None = 10.0,
    close_timeout: float = 10.0,
    max_connections: int | None = None,
    write_limit: int = 64 * 1024,
    max_write_buffer: int | None = 16 * 1024 * 1024,
    max_queue: int = 32,
    ssl: ssl_module.SSLContext | None = None,
    sock: Any = None,
    broker: str | Broker | None = None,
    reuse_port: bool = False,
) -> _Serve:
    """Start a WebSocket server; use as ``async with serve(...) as server``.

    Args:
        handler: ``async def handler(ws)`` run once per connection; the
            connection closes with 1000 when it returns, 1011 if it raises.
            Or a :class:`~fastframe.Listener` subclass, instantiated per
            connection, whose callbacks run inside the read callback (the
            fastest path: no task switch per message).
        max_size: largest incoming message in bytes, None for no limit
            (1009 past it).  Default 1 MiB, as websockets.
        compression: permessage-deflate settings, or None to refuse it.
        subprotocols: offered subprotocols, in order of preference.
        origins: accepted Origin header values (403 otherwise), None for any.
        process_request: called with each request before the upgrade; a
            ``(status, headers, body)`` it returns is sent instead (to serve
            a page, or to refuse with any status).
        ping_interval, ping_timeout: keepalive; a ping is sent after
            ``ping_interval`` seconds without inbound bytes, and the
            connection is closed with 1011 when nothing arrives for
            ``ping_timeout`` more.  None disables.
        open_timeout: seconds for the opening handshake (slowloris guard).
        close_timeout: seconds to wait for the peer's close frame.
        max_connections: more are refused with 503.
        write_limit: high-water mark of the transport buffer; ``send``
            waits (drain) above it.
        max_write_buffer: hard cap; a peer whose buffer grows past it (it
            stopped reading) is disconnected.  None disables.
        max_queue: received messages queued for a handler before reading
            pauses (back-pressure).
        ssl: an ``ssl.SSLContext`` for wss://.
        sock: an already bound socket instead of host/port.
        broker: where ``publish`` goes so that every server attached to it
            delivers to its own subscribers: a URL (``redis://host:6379/0``;
            see :data:`fastframe.pubsub.ENGINES`) or a
            :class:`~fastframe.pubsub.Broker`.  None: topics are in-process.
        reuse_port: bind with SO_REUSEPORT, so that several processes can
            listen on the same port (the kernel spreads connections over
            them on Linux).
    """
    kw = {
        "connection_options": {
            "max_message_size": max_size, "compression": compression, "subprotocols": subprotocols,
            "origins": origins, "extra_headers": extra_headers, "process_request": process_request,
        },
        "protocol_options": {
            "write_limit": write_limit, "max_write_buffer": max_write_buffer, "max_queue": max_queue,
            "close_timeout": close_timeout,
        },
        "ping_interval": ping_interval, "ping_timeout": ping_timeout, "open_timeout": open_timeout,
        "max_connections": max_connections,
        "broker": broker_from_url(broker) if isinstance(broker, str) else broker,
    }
    return _Serve(handler, host, port, ssl, sock, reuse_port, kw)
