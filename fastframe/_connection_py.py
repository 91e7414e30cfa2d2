"""The asyncio connection object handlers use: ``async for message in ws``.

Rules of this module: it moves bytes between an asyncio transport and the
sans-I/O :class:`~fastframe.protocol.Connection`; everything RFC 6455 is
decided there.  The read path is an :class:`asyncio.BufferedProtocol` that
reads into one buffer shared by every connection of a loop (a read is parsed
before the next one starts, and the parser copies what it keeps), so an idle
connection holds no read buffer at all.  Writes produced while handling one
read, and by handlers during one loop iteration, leave in one write: a
``send`` straight to the socket while the transport has nothing queued, else
the transport's ``write`` (``writelines`` where it applies flow control); see
Writer.  Compiled by Cython as ``_connection_c``, typed by _connection_c.pxd.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Generator, Sequence
from typing import Any, Callable, Union, cast

from ._impl import load
from .exceptions import ConcurrencyError, ConnectionClosed
from .handshake import Headers, Request
from .protocol import Closed, Connection, Message, Opened, Ping, Pong, Rejected, State

__all__ = [
    "KEEPALIVE_PING",
    "KEEPALIVE_TIMEOUT",
    "KEEPALIVE_WAIT",
    "READ_SIZE",
    "ConnectionClosed",
    "Listener",
    "ProtocolCore",
    "WebSocket",
    "WebSocketProtocol",
    "Writer",
    "direct_send_fd",
    "keepalive_action",
    "shared_read_buffer",
    "tick_period",
    "writelines_pauses",
]

log = logging.getLogger("fastframe")

_OPEN = State.OPEN
_aio = load("_aio")
_try_send: Callable[[int, list[bytes]], bytes | None] = _aio.try_send

#: Size of the shared read buffer: the most one read hands to the parser.
READ_SIZE = 64 * 1024

_ids = itertools.count(1)
# The queue's two methods on the per-message path, taken once: compiled code
# (Cython knows no deque) would otherwise look each up by name on every call.
_append = deque.append
_popleft = deque.popleft
_queued_next: Callable[[deque[Data], Callable[[WebSocket], Awaitable[Data]], WebSocket], Awaitable[Data]] = (
    _aio.queued_next)
# The read buffer shared by the connections of a thread's event loop: one
# loop runs in a thread at a time and parses each read before the next.
_local = threading.local()


def _listener_failed(ws: WebSocket, exc: Exception) -> None:
    """A listener's on_message raised: log it, close with 1011 (§7.4.1)."""
    proto = ws._proto
    log.error("listener error on #%d %s", ws.id, proto.peer, exc_info=exc)
    proto.close(1011, "internal error")


# What every read hands the parser for a listener that raised (a C global
# when compiled: _connection_c.pxd).
_on_listener_error = _listener_failed


def writelines_pauses(transport: asyncio.BaseTransport) -> bool:
    """Whether ``transport.writelines`` applies write flow control.

    asyncio's socket transport in CPython 3.12 and 3.13.0 buffers what
    ``writelines`` cannot send at once without ever calling
    ``pause_writing`` (its ``write`` does), so a peer that stops reading
    would grow the buffer without bound.  There we join and ``write``
    instead (a copy of large payloads); uvloop's ``writelines`` is fine, and
    before 3.12 asyncio's ``writelines`` was a joined ``write`` anyway.
    """
    return not type(transport).__module__.startswith("asyncio.")


#: Transports known to be a plain stream socket (no TLS layer above them):
#: uvloop's and asyncio's.
_SOCKET_TRANSPORTS = frozenset({"uvloop.loop.TCPTransport", "uvloop.loop.UnixTransport",
                                "asyncio.selector_events._SelectorSocketTransport"})


def direct_send_fd(transport: asyncio.BaseTransport) -> int:
    """The socket under ``transport`` if bytes may be sent to it directly
    while the transport's own buffer is empty, else -1.

    Only a plain socket transport qualifies: with TLS, the socket carries
    records, never our bytes.  Sending there ourselves (``send``, as picows
    does) skips the loop's write path: about 850 fewer instructions per
    message under uvloop (callgrind), the same one system call.
    """
    kind = type(transport)
    if not _aio.DIRECT_SEND or f"{kind.__module__}.{kind.__qualname__}" not in _SOCKET_TRANSPORTS:
        return -1
    sock = transport.get_extra_info("socket")
    try:
        return int(sock.fileno()) if sock is not None else -1
    except (OSError, ValueError, AttributeError):
        return -1


class Writer:
    """How a connection's output reaches its transport: straight to the
    socket while the transport holds nothing (see direct_send_fd), else
    through the transport, whose buffer and flow control then apply."""

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.fd = direct_send_fd(transport)
        self.pending = False  # the transport may hold bytes: ask it first
        self.writelines = writelines_pauses(transport)

    def write(self, out: list[bytes]) -> None:
        """Write the byte strings ``out``, in order, after what went before;
        nothing once the transport is closing."""
        t = self.transport
        if t.is_closing():
            # Also a must for the direct path: uvloop closes the socket at
            # once, and its number may already belong to a new connection.
            return
        if self.fd >= 0 and (not self.pending or t.get_write_buffer_size() == 0):
            # One send() instead of the loop's write(); the order holds, as
            # the transport has nothing queued.
            self.pending = False
            rest = _try_send(self.fd, out)
            if rest is not None:
                # The rest, and any error, are the transport's to deal with.
                self.pending = True
                t.write(rest)
        elif len(out) == 1:
            t.write(out[0])
        elif self.writelines:
            t.writelines(out)
        else:
            t.write(b"".join(out))


def shared_read_buffer() -> bytearray:
    """This thread's read buffer (READ_SIZE bytes), for BufferedProtocol.get_buffer.

    A bytearray, not a memoryview: the parser is given it whole with the
    length read (``receive_into(..., size)``), and taking a bytearray's
    buffer costs a fraction of a memoryview slice per read."""
    buf: bytearray | None = getattr(_local, "read_buffer", None)
    if buf is None:
        buf = _local.read_buffer = bytearray(READ_SIZE)
    return buf


def tick_period(*timeouts: float | None) -> float:
    """How often to check the given timeouts: a quarter of the shortest,
    between 50 ms and 1 s."""
    periods = [t for t in timeouts if t]
    return max(0.05, min(1.0, min(periods) / 4)) if periods else 1.0


#: What a keepalive check does: nothing yet, send a ping, or give up on the peer.
KEEPALIVE_WAIT, KEEPALIVE_PING, KEEPALIVE_TIMEOUT = 0, 1, 2


def keepalive_action(now: float, last_recv: float, ping_sent: float | None,
                     interval: float, timeout: float | None) -> int:
    """The keepalive rule, shared by the asyncio server and client and the
    uvicorn adapter.

    RFC 6455 §5.5.2 lets either side ping to check that the peer is still
    responsive.  Any inbound byte counts as life: a ping is outstanding only
    while nothing came in since it was sent, so a long frame in flight never
    trips the timeout.  ``last_recv`` is when bytes last came in, ``ping_sent``
    when the last keepalive ping left (None: never).
    """
    if ping_sent is not None and last_recv < ping_sent:
        if timeout is not None and now - ping_sent >= timeout:
            return KEEPALIVE_TIMEOUT
        return KEEPALIVE_WAIT
    if now - last_recv >= interval:
        return KEEPALIVE_PING
    return KEEPALIVE_WAIT


Data = Union[str, bytes]


class Listener:
    """Callback-style handler, for the lowest overhead per message.

    Subclass it and pass the class to ``serve``: one instance per connection.
    ``on_message`` runs synchronously inside the read callback, with no task
    switch; what it sends with ``ws.send_nowait`` leaves in one write at the
    end of that read.  Like picows's ``WSListener``; use it when a coroutine
    per connection costs more than the work per message.
    """

    def on_open(self, ws: WebSocket) -> None:
        """The connection is open."""

    def on_message(self, ws: WebSocket, message: Data) -> None:
        """A message arrived: ``str`` for text, ``bytes`` for binary."""

    def on_close(self, ws: WebSocket, code: int, reason: str) -> None:
        """The connection is closed (1006 when it ended without a close frame)."""


class _Sent:
    """What ``send`` returns when there is nothing to wait for: an awaitable
    that is already complete, in place of a coroutine per message.  It is
    also a coroutine by protocol (``send``/``throw``/``close``), so that
    ``asyncio.create_task(ws.send(m))`` keeps working."""

    def __await__(self) -> Generator[None, None, None]:
        # An iterator that is already exhausted ends the await with None at
        # once, and without raising: it stops with no exception set.
        return _EXHAUSTED  # type: ignore[return-value]

    def send(self, value: object) -> None:
        raise StopIteration

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> None:
        if val is None:
            val = typ() if isinstance(typ, type) else typ
        raise val

    def close(self) -> None:
        pass


_EXHAUSTED = iter(())
_SENT = _Sent()


class WebSocket:
    """One open WebSocket, server or client side.

    Iterate it for messages (``str`` for text, ``bytes`` for binary); the
    iteration ends when the connection closes.  ``send`` queues a message and
    returns at once unless the transport's buffer is over the high-water mark,
    in which case it waits for it to drain.
    """

    def __init__(self, proto: ProtocolCore) -> None:
        self._proto = proto
        self.id = next(_ids)
        self._messages: deque[Data] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._pong_waiters: list[tuple[bytes, asyncio.Future[float]]] = []

    # -- facts ------------------------------------------------------------------

    @property
    def remote_address(self) -> Any:
        return self._proto.peer

    @property
    def request(self) -> Request | None:
        """The opening handshake request (path and headers)."""
        return self._proto.conn.request

    @property
    def path(self) -> str:
        r = self._proto.conn.request
        return r.path if r is not None else ""

    @property
    def headers(self) -> Headers:
        r = self._proto.conn.request
        return r.headers if r is not None else Headers()

    @property
    def subprotocol(self) -> str | None:
        return self._proto.conn.subprotocol

    @property
    def state(self) -> State:
        return self._proto.conn.state

    @property
    def close_code(self) -> int | None:
        return self._proto.conn.close_code

    @property
    def close_reason(self) -> str:
        return self._proto.conn.close_reason

    @property
    def open(self) -> bool:
        return self._proto.conn.state is _OPEN

    def __repr__(self) -> str:
        return f"<WebSocket #{self.id} {self.remote_address} {self.state.name}>"

    # -- receiving ------------------------------------------------------------------

    def __aiter__(self) -> WebSocket:
        return self

    def __anext__(self) -> Awaitable[Data]:
        # A message already queued (the rest of a read that brought several)
        # comes back without a coroutine per message in the compiled core:
        # _aio.queued_next takes it at the await.  Otherwise, and while
        # reading is paused (which taking a message may resume), the
        # coroutine, called through the function looked up once (see
        # _deliver below) rather than a bound method made per call.
        if self._messages and not self._proto.paused_reading:
            return _queued_next(self._messages, _wait_next, self)
        return _wait_next(self)

    async def _next_message(self) -> Data:
        """The next message, waiting for it (``__anext__`` without one queued).

        The waiting is here rather than in recv(): one coroutine per message
        instead of two on the path every handler loop takes.
        """
        messages = self._messages
        proto = self._proto
        while not messages:
            if proto.finished:
                raise StopAsyncIteration
            if self._waiter is not None:
                # One stream of messages: a second reader would leave the
                # first waiting for ever.
                raise ConcurrencyError("another coroutine is already waiting for the next message")
            self._waiter = waiter = proto.loop.create_future()
            try:
                await waiter
            finally:
                if self._waiter is waiter:  # not yet cleared by _deliver
                    self._waiter = None
        msg = _popleft(messages)
        if proto.paused_reading and len(messages) < proto.max_queue // 2:
            proto.resume_reading()
        return msg

    async def recv(self) -> Data:
        """The next message.

        Raises:
            ConnectionClosed: the connection closed before one arrived.
        """
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise self._closed() from None

    def _deliver(self, data: Data) -> None:
        _append(self._messages, data)
        w = self._waiter
        if w is not None:
            # Woken once: the messages after it in the same read find no
            # waiter, instead of asking the future whether it is done.
            self._waiter = None
            if not w.done():
                w.set_result(None)

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)
        for _, fut in self._pong_waiters:
            if not fut.done():
                fut.set_exception(self._closed())
        self._pong_waiters.clear()

    # -- sending -------------------------------------------------------------------------

    def _closed(self) -> ConnectionClosed:
        conn = self._proto.conn
        return ConnectionClosed(conn.close_code or 1006, conn.close_reason)

    def send(self, message: Data, *, compress: bool | None = None) -> Awaitable[None]:
        """Send a message: text for ``str``, binary for bytes-like.

        The message is queued at once, when ``send`` is called; awaiting the
        result waits, when the transport's buffer is over the high-water
        mark, until it drains (``await ws.send(m)`` is the usual form).

        Raises:
            ConnectionClosed: the connection is closing or closed.
        """
        self.send_nowait(message, compress)
        if self._proto.paused_writing:
            return self._proto.drain()
        return _SENT

    def send_nowait(self, message: Data, compress: bool | None = None) -> None:
        """Queue a message without waiting for the buffer to drain.

        Raises:
            ConnectionClosed: the connection is closing or closed.
        """
        proto = self._proto
        conn = proto.conn
        if conn.state is not _OPEN:
            raise self._closed()
        conn.send(message, compress)
        if not proto.in_read:  # inside a read, the write at its end takes it
            ProtocolCore.after_send(proto, self._messages)

    async def ping(self, payload: bytes = b"") -> asyncio.Future[float]:
        """Send a ping; the returned future resolves with the round-trip time
        when its pong arrives."""
        proto = self._proto
        conn = proto.conn
        if conn.state is not _OPEN:
            raise self._closed()
        if not payload:
            payload = proto.loop.time().hex().encode()[:32]
        fut: asyncio.Future[float] = proto.loop.create_future()
        self._pong_waiters.append((payload, fut))
        fut._ff_sent = proto.loop.time()  # type: ignore[attr-defined]
        conn.send_ping(payload)
        proto.schedule_flush()
        return fut

    def _pong(self, payload: bytes) -> None:
        for i, (p, fut) in enumerate(self._pong_waiters):
            if p == payload:
                del self._pong_waiters[i]
                if not fut.done():
                    fut.set_result(self._proto.loop.time() - fut._ff_sent)  # type: ignore[attr-defined]
                return

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake and wait (up to the close timeout) for it."""
        self._proto.close(code, reason)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._proto.closed_future)


# The unbound method the parser calls as sink(ws, message) for the handler's
# queue: looked up on the type once, at import, and shared by every
# connection.  Compiled (binding=False), it is the type's method descriptor,
# which checks that it is given a WebSocket.
_deliver = getattr(WebSocket, "_deliver")  # noqa: B009
# The coroutine __anext__ falls back on, looked up once the same way.
_wait_next: Callable[[WebSocket], Awaitable[Data]] = getattr(WebSocket, "_next_message")  # noqa: B009


class ProtocolCore:
    """Transport glue for one connection (server or client side): all of
    WebSocketProtocol but its asyncio base class, which a compiled class
    cannot have (the compiled layer declares this one in _connection_c.pxd)."""

    def __init__(
        self,
        conn: Connection,
        *,
        loop: asyncio.AbstractEventLoop,
        on_open: Callable[[WebSocketProtocol], None] | None = None,
        on_finish: Callable[[WebSocketProtocol], None] | None = None,
        write_limit: int = 64 * 1024,
        max_write_buffer: int | None = 16 * 1024 * 1024,
        max_queue: int = 32,
        close_timeout: float = 10.0,
    ) -> None:
        self.conn = conn
        self.loop = loop
        self.ws = WebSocket(self)
        self.listener: Listener | None = None
        # Where the parser hands whole messages: the handler's queue, or the
        # listener's on_message (bound once in set_listener, not per read).
        self.sink: Callable[[WebSocket, Data], object] = _deliver
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self._on_open = on_open
        self._on_finish = on_finish
        self.write_limit = write_limit
        self.max_write_buffer = max_write_buffer
        self.max_queue = max_queue
        self.close_timeout = close_timeout
        self.flush_scheduled = False
        self.in_read = False
        self.paused_writing = False
        self.paused_reading = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self.finished = False
        self.closed_future: asyncio.Future[None] = loop.create_future()
        self.opened_future: asyncio.Future[Rejected | None] = loop.create_future()
        self.last_recv = loop.time()
        self.created = self.last_recv
        self.reads = 0  # reads so far; seen_reads is the count at the last tick
        self.seen_reads = 0
        self.close_started = 0.0
        self.ping_sent: float | None = None  # the last keepalive ping
        self._buffer = shared_read_buffer()
        self._writer: Writer | None = None

    # -- transport callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")
        self._writer = Writer(transport)
        transport.set_write_buffer_limits(high=self.write_limit)  # type: ignore[attr-defined]
        if self.conn.client:
            self.flush()
        elif self.conn.state is State.CLOSED:
            # Refused before it started (max_connections, shutting down):
            # answer at once and hang up.
            self.flush()
            transport.close()

    def set_listener(self, listener: Listener) -> None:
        """Hand this connection's messages to ``listener`` from now on."""
        self.listener = listener
        self.sink = listener.on_message

    def get_buffer(self, sizehint: int) -> bytearray:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        # A count, not a clock read per read: the server's ticker turns a
        # changed count into last_recv (keepalive: any bytes are life).
        self.reads += 1
        # The per-message fast path: messages go from the parser straight to
        # the listener's on_message, or to the handler's queue, with no
        # event object in between; what they send leaves in one write below.
        # During the handshake nothing goes that way: Opened (or Rejected)
        # comes first, and _handle takes it and what follows in order.
        ws = self.ws
        self.in_read = True
        try:
            try:
                events = self.conn.receive_into(self._buffer, self.sink, _on_listener_error, ws, nbytes)
            except Exception:  # pragma: no cover - a bug in fastframe, not the peer
                log.exception("internal error on connection from %s", self.peer)
                self.abort()
                return
            # Pings, pongs, a close, and messages that came after them: what
            # listeners send while these are handled joins the same write.
            if events:
                self._handle(events)
            elif self.listener is None:
                ProtocolCore._check_queue(self)
        finally:
            self.in_read = False
        ProtocolCore.flush(self)

    def _handle(self, events: Sequence[Any]) -> None:
        ws = self.ws
        listener = self.listener
        for ev in events:
            t = type(ev)
            if t is Message:
                if listener is None:
                    ws._deliver(ev.data)
                else:
                    try:
                        listener.on_message(ws, ev.data)
                    except Exception:
                        log.exception("listener error on #%d %s", ws.id, self.peer)
                        self.close(1011, "internal error")
            elif t is Ping:
                pass  # the pong is already queued by the Connection
            elif t is Pong:
                ws._pong(ev.payload)
            elif t is Opened:
                self.last_recv = self.loop.time()
                if not self.opened_future.done():
                    self.opened_future.set_result(None)
                if self._on_open is not None:
                    self._on_open(cast("WebSocketProtocol", self))  # only ever one
                # Frames can follow the handshake in the same read: a
                # listener installed by on_open must receive them.
                listener = self.listener
            elif t is Closed:
                if ev.error is not None:
                    log.info("%s failed the connection: %s (close %d)", self.peer, ev.error, ev.code)
                self._finish_soon()
            elif t is Rejected:
                if not self.opened_future.done():
                    self.opened_future.set_result(ev)
                if ev.status >= 400:
                    log.info("%s: HTTP %d instead of an upgrade: %s", self.peer, ev.status,
                             ev.reason.splitlines()[0] if ev.reason else "")
                else:
                    log.info("%s: HTTP %d", self.peer, ev.status)
                self._finish_soon()
        if listener is None:
            self._check_queue()

    def _check_queue(self) -> None:
        if self.max_queue and len(self.ws._messages) >= self.max_queue and not self.paused_reading:
            # The handler is not keeping up: stop reading until it catches up
            # (back-pressure to the peer through TCP, as websockets does).
            self.pause_reading()

    def _finish_soon(self) -> None:
        # §7.1.1: after the close handshake the server closes TCP first; the
        # client waits a little for it.
        self.flush()
        if self.transport is not None:
            if self.conn.client:
                self.loop.call_later(self.close_timeout / 10, self._close_transport)
            else:
                self.transport.close()

    def _close_transport(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def eof_received(self) -> bool | None:
        self._handle(self.conn.receive_eof())
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.conn.state is not State.CLOSED:
            self.conn.receive_eof()
        self.finished = True
        self.ws._wake()
        for w in self._drain_waiters:
            if not w.done():
                w.set_result(None)
        self._drain_waiters.clear()
        if not self.opened_future.done():
            self.opened_future.set_result(Rejected(0, "connection lost during the handshake"))
        if not self.closed_future.done():
            self.closed_future.set_result(None)
        if self.listener is not None and self.opened_future.done() and self.opened_future.result() is None:
            try:
                self.listener.on_close(self.ws, self.conn.close_code or 1006, self.conn.close_reason)
            except Exception:
                log.exception("listener error in on_close on #%d %s", self.ws.id, self.peer)
        if self._on_finish is not None:
            self._on_finish(cast("WebSocketProtocol", self))

    def keepalive(self, now: float, interval: float, timeout: float | None) -> None:
        """One keepalive check of an OPEN connection, run periodically (the
        server's ticker, the client's timer): a ping (§5.5.2) after
        ``interval`` seconds without inbound bytes, and close with 1011 when
        nothing came for ``timeout`` seconds after it (keepalive_action)."""
        # Reads are counted, and turned into last_recv here, to keep the clock
        # out of the read path.
        if self.reads != self.seen_reads:
            self.seen_reads = self.reads
            self.last_recv = now
        action = keepalive_action(now, self.last_recv, self.ping_sent, interval, timeout)
        if action == KEEPALIVE_TIMEOUT:
            log.info("%s: keepalive ping timeout", self.peer)
            self.close(1011, "keepalive ping timeout")
            self.abort()  # a peer that answers nothing will not answer a close either
        elif action == KEEPALIVE_PING:
            self.ping_sent = now
            self.conn.send_ping(b"ka" + int(now * 1000).to_bytes(8, "big"))
            self.flush()

    # -- flow control ------------------------------------------------------------------

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        for w in self._drain_waiters:
            if not w.done():
                w.set_result(None)
        self._drain_waiters.clear()

    async def drain(self) -> None:
        if self.paused_writing and not self.finished:
            w = self.loop.create_future()
            self._drain_waiters.append(w)
            await w

    def pause_reading(self) -> None:
        if self.transport is not None and not self.paused_reading:
            self.paused_reading = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and self.paused_reading:
            self.paused_reading = False
            self.transport.resume_reading()

    # -- writing ------------------------------------------------------------------------

    def after_send(self, queued: deque[Data]) -> None:
        """Decide when a message a handler just sent leaves.

        While the handler still has received messages queued it will likely
        answer them in the same task step, so the write waits for the end of
        the loop iteration (one write for the batch).  When its queue is
        empty the batch is over: write now, without the extra loop
        iteration a deferred flush costs in latency.
        """
        if self.in_read or self.flush_scheduled:
            return  # the read (buffer_updated), or the scheduled flush, writes it
        if queued:
            ProtocolCore.schedule_flush(self)
        else:
            ProtocolCore.flush(self)

    def schedule_flush(self) -> None:
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        conn = self.conn
        out = conn.output
        if not out:
            return
        t = self.transport
        if t is None:  # connection lost: nowhere to write
            out.clear()
            return
        # The list is emptied and kept (not replaced per write); the writer
        # copies what it hands on.  Emptied whatever happens: a byte string
        # written twice would corrupt the stream.
        try:
            self._writer.write(out)  # type: ignore[union-attr]  # set with the transport
        finally:
            out.clear()
        # The buffer can only be over the cap once it passed the high-water
        # mark, which pause_writing() reported: check only then.
        cap = self.max_write_buffer
        if self.paused_writing and cap is not None and t.get_write_buffer_size() > cap:
            # A peer that stops reading is cut off here: it cannot read a
            # close frame either, so the transport is aborted (1006 for it).
            log.warning("%s: write buffer over %d bytes, closing the connection", self.peer, cap)
            self.abort()

    def write_raw(self, data: bytes) -> None:
        """Write pre-encoded frame bytes (broadcast) after what is queued."""
        self.conn.output.append(data)
        self.flush()

    # -- closing ----------------------------------------------------------------------------

    def close(self, code: int = 1000, reason: str = "") -> None:
        conn = self.conn
        if conn.state is State.OPEN:
            conn.send_close(code, reason)
            self.close_started = self.loop.time()
            self.flush()
            # §7.1.1: wait for the peer's close, but not forever.
            self.loop.call_later(self.close_timeout, self._close_timed_out)
        elif conn.state is State.CONNECTING and not conn.client:
            conn.reject(503, "server shutting down")
            self.flush()
            self._close_transport()

    def _close_timed_out(self) -> None:
        if not self.finished:
            log.info("%s: no close frame within %.1f s, aborting", self.peer, self.close_timeout)
            self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class WebSocketProtocol(ProtocolCore, asyncio.BufferedProtocol):
    """An :class:`asyncio.BufferedProtocol` for one connection (asyncio's own
    transports check that base class; uvloop only needs the methods)."""
