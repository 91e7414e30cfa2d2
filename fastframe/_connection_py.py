"""The asyncio layer: the one transport core, and the connection object
handlers use (``async for message in ws``).

Rules of this module: :class:`StreamCore` moves bytes between an asyncio
transport and the sans-I/O :class:`~fastframe.protocol.Connection`, under
the server, the client and the uvicorn adapter; everything RFC 6455 is
decided in the Connection, and what events mean to an application is decided
by a front end (:class:`WebSocket` here, the ASGI mapping in the uvicorn
adapter).  The read path is an :class:`asyncio.BufferedProtocol` that
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
import weakref
from collections import deque
from collections.abc import Awaitable, Generator, Sequence
from typing import Any, Callable, Union

from ._impl import load
from .exceptions import ConcurrencyError, ConnectionClosed, LocalProtocolError
from .handshake import Headers, Request
from .protocol import Closed, Connection, Failing, Message, Opened, Ping, Pong, Rejected, State

__all__ = [
    "KEEPALIVE_PING",
    "KEEPALIVE_TIMEOUT",
    "KEEPALIVE_WAIT",
    "READ_SIZE",
    "ConnectionClosed",
    "Listener",
    "StreamCore",
    "StreamProtocol",
    "Ticker",
    "WebSocket",
    "Writer",
    "direct_send_fd",
    "keepalive_action",
    "shared_read_buffer",
    "tick_period",
    "ticker_for",
    "writelines_pauses",
]

log = logging.getLogger("fastframe")

_OPEN = State.OPEN
_CONNECTING = State.CONNECTING
_CLOSED = State.CLOSED
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
    StreamCore.close(proto, 1011, "internal error")


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
    records, never our bytes.  Why send ourselves: docs/performance.md
    ("Direct send").
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
        # The transport may hold bytes (ask it before sending past it): at
        # first, whatever its previous owner wrote (an HTTP server that
        # handed the connection over after a response), later what a send
        # left for it.
        self.pending = True
        self.writelines = writelines_pauses(transport)

    def write(self, out: list[bytes]) -> int:
        """Write the byte strings ``out``, in order, after what went before;
        nothing once the transport is closing.  Returns how many of the
        bytes went into the transport's buffer (0: all sent at once)."""
        t = self.transport
        if t.is_closing():
            # Also a must for the direct path: uvloop closes the socket at
            # once, and its number may already belong to a new connection.
            return 0
        if self.fd >= 0 and (not self.pending or t.get_write_buffer_size() == 0):
            # One send() instead of the loop's write(); the order holds, as
            # the transport has nothing queued.
            self.pending = False
            rest = _try_send(self.fd, out)
            if rest is None:
                return 0
            # The rest, and any error, are the transport's to deal with.
            self.pending = True
            t.write(rest)
            return len(rest)
        if len(out) == 1:
            data = out[0]
            t.write(data)
            return len(data)
        if self.writelines:
            t.writelines(out)
            return sum(map(len, out))
        data = b"".join(out)
        t.write(data)
        return len(data)


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


def keepalive_action(now: float, ping_sent: float, answered: bool, frame_arriving: bool,
                     interval: float, timeout: float | None) -> int:
    """The keepalive rule (StreamCore.keepalive: the server, the client and
    the uvicorn adapter alike).

    RFC 6455 §5.5.2 lets either side ping to check that the peer is still
    responsive, and §5.5.3 has the peer answer with a pong carrying the
    ping's payload.  A ping goes every ``interval`` seconds, and only its own
    pong answers it: other traffic, unsolicited pongs included, does not, so
    a peer that sends but never reads cannot keep a connection (and what
    waits for it in our buffer) alive.  One allowance: while a frame from the
    peer is arriving (``frame_arriving``: begun, and bytes of it came since
    the ping), the pong may be queued behind it at the peer, so the timeout
    waits for the frame.  ``ping_sent`` is when the last keepalive ping left
    (before the first, when the connection opened), ``answered`` whether its
    pong came (True before the first).
    """
    if not answered:
        if timeout is not None and now - ping_sent >= timeout and not frame_arriving:
            return KEEPALIVE_TIMEOUT
        return KEEPALIVE_WAIT
    if now - ping_sent >= interval:
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

    Back-pressure, as uWebSockets gives it: ``ws.send_nowait`` returns False
    once the peer is slow (the write buffer is over ``write_limit``; the
    message is queued all the same), ``ws.buffered_amount`` says how much
    waits, and ``on_drain`` runs when the buffer is back under the mark.  A
    listener that goes on sending to a peer that does not read is cut off
    at ``max_write_buffer``.
    """

    def on_open(self, ws: WebSocket) -> None:
        """The connection is open."""

    def on_message(self, ws: WebSocket, message: Data) -> None:
        """A message arrived: ``str`` for text, ``bytes`` for binary."""

    def on_drain(self, ws: WebSocket) -> None:
        """The write buffer is back under ``write_limit`` after a
        ``send_nowait`` returned False: sending may go on."""

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

    #: The Server this connection belongs to (``ws.server.publish``); None
    #: on a client.  The server sets it on its connections.
    def __init__(
        self,
        proto: StreamCore,
        on_open: Callable[[WebSocket], None] | None = None,
        on_finish: Callable[[WebSocket], None] | None = None,
    ) -> None:
        self._proto = proto
        self.id = next(_ids)
        self._messages: deque[Data] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._pong_waiters: list[tuple[bytes, asyncio.Future[float]]] = []
        self._on_open = on_open
        self._on_finish = on_finish
        #: The Server this connection belongs to (None for a client): its
        #: topics (subscribe/unsubscribe).
        self.server: Any = None
        self.listener: Listener | None = None
        #: Set when the opening handshake ends: None once open, the
        #: Rejected event when it was refused or lost.
        self.opened: asyncio.Future[Rejected | None] = proto.loop.create_future()
        # This object is the core's front end; the handler's queue is where
        # the parser hands whole messages, and the core's inbox.
        proto.attach(self, _deliver, _on_listener_error, self._messages)

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
            if proto.conn.failure is not None:
                proto.fail_now()  # everything before the violation was taken
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
        if proto.paused_reading:
            StreamCore.taken(proto)
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

    # -- the core's front end ---------------------------------------------------------

    def set_listener(self, listener: Listener) -> None:
        """Hand this connection's messages to ``listener`` from now on."""
        self.listener = listener
        proto = self._proto
        proto.sink = listener.on_message
        proto.inbox = None

    def _on_events(self, events: Sequence[Any]) -> None:
        """What a read produced besides the messages the sink took."""
        proto = self._proto
        listener = self.listener
        for ev in events:
            t = type(ev)
            if t is Message:
                if listener is None:
                    self._deliver(ev.data)
                else:
                    try:
                        listener.on_message(self, ev.data)
                    except Exception as exc:  # noqa: BLE001 - user code: report, close with 1011
                        _listener_failed(self, exc)
            elif t is Ping:
                pass  # the pong is already queued by the Connection
            elif t is Pong:
                self._pong(ev.payload)
            elif t is Failing:
                # The peer broke the protocol.  What came before it is
                # delivered (a listener has had it; a handler takes it from
                # its queue and may answer it), then the connection fails:
                # now if the handler is idle, waiting for a message, else
                # when it asks for the next one (_next_message), or within
                # the close timeout (StreamCore.tick).
                if listener is not None or (not self._messages and self._waiter is not None):
                    proto.fail_now()
            elif t is Opened:
                proto.opened()
                if not self.opened.done():
                    self.opened.set_result(None)
                if self._on_open is not None:
                    self._on_open(self)
                # Frames can follow the handshake in the same read: a
                # listener installed by on_open must receive them.
                listener = self.listener
            elif t is Closed:
                if ev.error is not None:
                    log.info("%s failed the connection: %s (close %d)", proto.peer, ev.error, ev.code)
                proto.finish()
            elif t is Rejected:
                if not self.opened.done():
                    self.opened.set_result(ev)
                if ev.status >= 400:
                    log.info("%s: HTTP %d instead of an upgrade: %s", proto.peer, ev.status,
                             ev.reason.splitlines()[0] if ev.reason else "")
                else:
                    log.info("%s: HTTP %d", proto.peer, ev.status)
                proto.finish()

    def _on_lost(self) -> None:
        """The transport is gone: wake whoever waits, tell the listener."""
        proto = self._proto
        self._wake()
        if not self.opened.done():
            self.opened.set_result(Rejected(0, "connection lost during the handshake"))
        conn = proto.conn
        if self.listener is not None and self.opened.result() is None:
            try:
                self.listener.on_close(self, conn.close_code or 1006, conn.close_reason)
            except Exception:
                log.exception("listener error in on_close on #%d %s", self.id, proto.peer)
        if self._on_finish is not None:
            self._on_finish(self)

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

    def send_nowait(self, message: Data, compress: bool | None = None) -> bool:
        """Queue a message without waiting for the buffer to drain.

        Returns:
            True while the peer keeps up; False when the write buffer is over
            ``write_limit`` (the message is queued all the same): wait for
            ``Listener.on_drain`` (or ``await ws.drain()``) before sending more.

        Raises:
            ConnectionClosed: the connection is closing or closed.
        """
        proto = self._proto
        conn = proto.conn
        if conn.state is not _OPEN:
            raise self._closed()
        conn.send(message, compress)
        if proto.in_read:
            # The write at the end of the read takes it; past write_limit
            # (a listener sending much from one read), write now, so that
            # flow control, and this call's answer, see it.
            proto.queued += len(message)
            if proto.queued > proto.write_limit:
                StreamCore.flush(proto)
        else:
            StreamCore.after_send(proto, self._messages)
        return not proto.paused_writing

    @property
    def buffered_amount(self) -> int:
        """Bytes sent but not yet handed to the kernel: queued by this
        connection and held in the transport's buffer."""
        proto = self._proto
        queued = sum(len(b) for b in proto.conn.output)
        t = proto.transport
        return queued + (t.get_write_buffer_size() if t is not None and not proto.finished else 0)

    async def drain(self) -> None:
        """Wait until the write buffer is under ``write_limit``."""
        await self._proto.drain()

    def _on_drain(self) -> None:
        """The core's buffer went back under the high-water mark."""
        listener = self.listener
        if listener is not None:
            try:
                listener.on_drain(self)
            except Exception as exc:  # noqa: BLE001 - user code: report, close with 1011
                _listener_failed(self, exc)

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
        StreamCore.schedule_flush(proto)
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

    # -- topics (docs/pubsub.md) ------------------------------------------------------

    def subscribe(self, topic: str) -> bool:
        """Receive what is published to ``topic`` until unsubscribed or
        closed; False if already subscribed.  Server connections only."""
        return bool(_topics(self).subscribe(self, topic))

    def unsubscribe(self, topic: str) -> bool:
        """Stop receiving ``topic``; False if not subscribed."""
        return bool(_topics(self).unsubscribe(self, topic))


def _topics(ws: WebSocket) -> Any:
    if ws.server is None:
        raise LocalProtocolError("topics are a server's: a client connection has none")
    return ws.server.topics


# The unbound method the parser calls as sink(ws, message) for the handler's
# queue: looked up on the type once, at import, and shared by every
# connection.  Compiled (binding=False), it is the type's method descriptor,
# which checks that it is given a WebSocket.
_deliver = getattr(WebSocket, "_deliver")  # noqa: B009
# The coroutine __anext__ falls back on, looked up once the same way.
_wait_next: Callable[[WebSocket], Awaitable[Data]] = getattr(WebSocket, "_next_message")  # noqa: B009


class Ticker:
    """One timer per event loop that runs every connection's timeouts.

    Each :class:`StreamCore` of the loop is added while it lives; every
    ``period`` seconds (a quarter of the shortest timeout among them, see
    :func:`tick_period`) the ticker calls its ``tick``.  One timer for all
    connections instead of one or more per connection: an idle connection
    costs a set entry, not a scheduled callback.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.cores: set[StreamCore] = set()
        self.period = 1.0
        self.handle: asyncio.TimerHandle | None = None

    def add(self, core: StreamCore) -> None:
        self.cores.add(core)
        period = tick_period(core.ping_interval, core.ping_timeout, core.open_timeout, core.close_timeout)
        if self.handle is None or period < self.period:
            self.period = period
            if self.handle is not None:
                self.handle.cancel()
            self.handle = self.loop.call_later(period, self._tick)

    def discard(self, core: StreamCore) -> None:
        self.cores.discard(core)
        if not self.cores and self.handle is not None:
            self.handle.cancel()
            self.handle = None
            self.period = 1.0

    def _tick(self) -> None:
        now = self.loop.time()
        for core in list(self.cores):
            core.tick(now)
        self.handle = self.loop.call_later(self.period, self._tick) if self.cores else None


def ticker_for(loop: asyncio.AbstractEventLoop) -> Ticker:
    """The ticker of ``loop`` (made on first use)."""
    ticker: Ticker | None = _tickers.get(loop)
    if ticker is None:
        ticker = _tickers[loop] = Ticker(loop)
    return ticker


_tickers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Ticker] = weakref.WeakKeyDictionary()


def _discard_message(arg: object, message: Data) -> None:
    """A sink that drops what it is given (a front end past its close)."""


def _log_sink_error(arg: object, exc: Exception) -> None:  # pragma: no cover - front ends set their own
    log.error("message sink failed", exc_info=exc)


class StreamCore:
    """The one transport core: moves bytes between an asyncio transport and a
    sans-I/O :class:`~fastframe.protocol.Connection`, under the server, the
    client and the uvicorn adapter alike.

    It owns the read path (the shared read buffer, ``Connection.receive_into``
    with the front end's message sink), write coalescing (everything the
    connection queued in ``conn.output`` leaves in one write per read, or per
    loop iteration for sends from tasks; see :class:`Writer`), flow control
    (the high-water mark and ``drain``, the hard cap ``max_write_buffer``,
    and pausing reading while the front end's ``inbox`` holds ``max_queue``
    messages), keepalive, and the opening and closing timeouts (through the
    loop's :class:`Ticker`).  What the events mean to an application is the
    front end's: an object with ``_on_events(events)`` (every event the read
    produced besides the messages handed to ``sink``) and ``_on_lost()``
    (the transport is gone).  All of the asyncio protocol but its base class,
    which a compiled class cannot have: :class:`StreamProtocol` adds it.
    """

    def __init__(
        self,
        conn: Connection,
        *,
        loop: asyncio.AbstractEventLoop,
        write_limit: int = 64 * 1024,
        max_write_buffer: int | None = 16 * 1024 * 1024,
        max_queue: int = 32,
        close_timeout: float = 10.0,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        open_timeout: float | None = None,
    ) -> None:
        self.conn = conn
        self.loop = loop
        self.front: Any = None
        # Where the parser hands whole messages during a read: sink(arg, m),
        # and sink_error(arg, exc) when the sink raised.
        self.sink: Callable[[Any, Data], object] = _discard_message
        self.sink_error: Callable[[Any, Exception], object] = _log_sink_error
        self.sink_arg: Any = None
        # The front end's queue of received messages, if it has one: reading
        # pauses while it holds max_queue of them (back-pressure to the peer
        # through TCP, as websockets does), and resumes at half of that.
        self.inbox: deque[Any] | None = None
        self.max_queue = max_queue
        self.hold_reading = False  # the front end keeps reading paused
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.write_limit = write_limit
        self.max_write_buffer = max_write_buffer
        self.close_timeout = close_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.open_timeout = open_timeout
        self.flush_scheduled = False
        self.queued = 0  # about the bytes sent during the current read
        # At most how many of the bytes in the transport's buffer are ours
        # (what we wrote into it since it was last seen under the low-water
        # mark): the hard cap counts only those.  Under uvicorn the HTTP
        # server may still be writing a response of its own there.
        self.ours = 0
        self.in_read = False
        self.paused_writing = False
        self.paused_reading = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self.finished = False
        self.closed_future: asyncio.Future[None] = loop.create_future()
        self.created = loop.time()
        self.reads = 0  # reads so far; reads_at_ping is the count when the last ping left
        self.reads_at_ping = 0
        self.close_started: float | None = None
        # The last keepalive ping (before the first: when the connection
        # opened), its payload, and whether its pong came.
        self.ping_sent = self.created
        self.ping_payload = b""
        self.ping_answered = True
        self._buffer = shared_read_buffer()
        self._writer: Writer | None = None
        self._ticker: Ticker | None = None

    def attach(self, front: Any, sink: Callable[[Any, Data], object],
               sink_error: Callable[[Any, Exception], object], inbox: deque[Any] | None) -> None:
        """Make ``front`` this core's front end: whole messages go to
        ``sink(front, message)`` (``sink_error(front, exc)`` if it raises),
        events to ``front._on_events``, the end to ``front._on_lost``; reading
        pauses while ``inbox`` (None: no queue) holds ``max_queue`` items."""
        self.front = front
        self.sink = sink
        self.sink_error = sink_error
        self.sink_arg = front
        self.inbox = inbox

    # -- transport callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")
        self._writer = Writer(transport)
        transport.set_write_buffer_limits(high=self.write_limit)  # type: ignore[attr-defined]
        self._ticker = ticker_for(self.loop)
        self._ticker.add(self)
        # A client's request, or a refusal queued before the connection
        # started (max_connections, shutting down): it leaves now, and a
        # refused connection is hung up at once.
        StreamCore.flush(self)
        if self.conn.state is _CLOSED:
            transport.close()

    def get_buffer(self, sizehint: int) -> bytearray:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        StreamCore._received(self, self._buffer, nbytes)

    def data_received(self, data: Any) -> None:
        StreamCore._received(self, data, -1)

    def _received(self, data: Any, size: int) -> None:
        """The bytes read: all of ``data``, or its first ``size`` bytes."""
        # A count, not a clock read per read (keepalive: a frame arriving).
        self.reads += 1
        # The per-message fast path: messages go from the parser straight to
        # the sink, with no event object in between; what the front end
        # sends meanwhile leaves in one write below.
        # An exception here is a bug in fastframe, not the peer's doing: the
        # loop logs it and aborts the transport ("protocol.buffer_updated()
        # call failed"), as a handler here would, at no cost per read.
        self.in_read = True
        try:
            events = self.conn.receive_into(data, self.sink, self.sink_error, self.sink_arg, size)
            # Pings, pongs, a close, and messages that came after them: what
            # the front end sends while it handles them joins the same write.
            # (A list when there are any, else the empty tuple: a type check,
            # not a truth test, per read.)
            if type(events) is list:
                if not self.ping_answered:
                    StreamCore._look_for_pong(self, events)
                self.front._on_events(events)
            inbox = self.inbox
            if inbox is not None and self.max_queue and len(inbox) >= self.max_queue:
                StreamCore.pause_reading(self)
        finally:
            self.in_read = False
        StreamCore.flush(self)

    def eof_received(self) -> bool | None:
        events = self.conn.receive_eof()
        if events:
            self.front._on_events(events)
        return None  # let the transport close

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.conn.state is not _CLOSED:
            self.conn.receive_eof()  # §7.1.5: 1006
        self.finished = True
        if self._ticker is not None:
            self._ticker.discard(self)
        for w in self._drain_waiters:
            if not w.done():
                w.set_result(None)
        self._drain_waiters.clear()
        if not self.closed_future.done():
            self.closed_future.set_result(None)
        if self.front is not None:
            self.front._on_lost()

    # -- timers: opening handshake, keepalive, closing -----------------------------------

    def tick(self, now: float) -> None:
        """One check of this connection's timeouts (the loop's Ticker)."""
        if self.finished:
            return
        state = self.conn.state
        if state is _OPEN:
            if self.conn.failure is not None:
                # A deferred failure (Failing) the front end has not
                # completed: its application is not taking what came before
                # the violation; fail now, within the close timeout.
                if self.close_started is None:
                    self.close_started = now
                elif now - self.close_started > self.close_timeout:
                    self.fail_now()
            elif self.ping_interval is not None:
                self.keepalive(now)
        elif state is _CONNECTING:
            # A handshake that does not finish in time (slowloris) is cut.
            if self.open_timeout is not None and now - self.created > self.open_timeout:
                log.info("%s: opening handshake timed out", self.peer)
                self.abort()
        else:
            # CLOSING (our close frame sent), or CLOSED with the transport
            # not gone yet (bytes queued for a peer that may have stopped
            # reading): §7.1.1 waits for the peer, but not for ever.
            if self.close_started is None:
                self.close_started = now
            elif now - self.close_started > self.close_timeout:
                log.info("%s: connection not closed within %.1f s, aborting", self.peer, self.close_timeout)
                self.abort()

    def opened(self) -> None:
        """The opening handshake is over: keepalive counts from now."""
        self.ping_sent = self.loop.time()
        self.ping_answered = True

    def keepalive(self, now: float) -> None:
        """One keepalive check of an OPEN connection (keepalive_action): a
        ping (§5.5.2) every ``ping_interval`` seconds, and close with 1011
        and abort when its pong has not come ``ping_timeout`` seconds later."""
        arriving = self.reads != self.reads_at_ping and self.conn.frame_in_progress
        action = keepalive_action(now, self.ping_sent, self.ping_answered, arriving,
                                  self.ping_interval, self.ping_timeout)  # type: ignore[arg-type]
        if action == KEEPALIVE_TIMEOUT:
            log.info("%s: keepalive ping timeout", self.peer)
            self.close(1011, "keepalive ping timeout")
            self.abort()  # a peer that answers nothing will not answer a close either
        elif action == KEEPALIVE_PING:
            self.ping_sent = now
            self.ping_answered = False
            self.reads_at_ping = self.reads
            self.ping_payload = b"ka" + int(now * 1000).to_bytes(8, "big")
            self.conn.send_ping(self.ping_payload)
            StreamCore.flush(self)

    def _look_for_pong(self, events: Sequence[Any]) -> None:
        # §5.5.3: the pong that answers our ping carries its payload.
        for ev in events:
            if type(ev) is Pong and ev.payload == self.ping_payload:
                self.ping_answered = True

    # -- flow control ------------------------------------------------------------------

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        if self.transport is not None:
            self.ours = min(self.ours, self.transport.get_write_buffer_size())
        for w in self._drain_waiters:
            if not w.done():
                w.set_result(None)
        self._drain_waiters.clear()
        if self.front is not None and not self.finished:
            self.front._on_drain()

    async def drain(self) -> None:
        """Wait while the transport's buffer is over the high-water mark."""
        if self.paused_writing and not self.finished:
            w = self.loop.create_future()
            self._drain_waiters.append(w)
            await w

    def pause_reading(self) -> None:
        if self.transport is not None and not self.paused_reading:
            self.paused_reading = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and self.paused_reading and not self.hold_reading:
            self.paused_reading = False
            self.transport.resume_reading()

    def taken(self) -> None:
        """The front end took a message from its inbox: resume reading once
        it is down to half of ``max_queue`` (empty, for a max_queue of 1)."""
        if self.paused_reading:
            inbox = self.inbox
            if inbox is None or not self.max_queue or len(inbox) <= self.max_queue // 2:
                StreamCore.resume_reading(self)

    # -- writing ------------------------------------------------------------------------

    def after_send(self, more_coming: object) -> None:
        """Decide when what a front end just sent leaves.

        While a task still has received messages to answer (``more_coming``
        true), it will likely answer them in the same step, so the write waits
        for the end of the loop iteration (one write for the batch); else it
        leaves now, without the extra loop iteration a deferred flush costs.
        Inside a read, the write at its end takes it.
        """
        if self.in_read or self.flush_scheduled:
            return  # the read, or the scheduled flush, writes it
        if more_coming:
            StreamCore.schedule_flush(self)
        else:
            StreamCore.flush(self)

    def schedule_flush(self) -> None:
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what the connection queued (``conn.output``), in one write."""
        self.flush_scheduled = False
        self.queued = 0
        conn = self.conn
        out = conn.output
        if not out:
            return
        if self.finished:  # the transport is gone: nowhere to write, ever
            out.clear()
            return
        t = self.transport
        if t is None:  # not connected yet: connection_made writes it
            return
        # The hard cap, checked before writing: what earlier writes left in
        # the buffer is still over it, so the peer is not reading (one large
        # message to a peer that reads passes, however large).  The buffer
        # can only be over it once past the high-water mark, which
        # pause_writing() reported: check only then.
        cap = self.max_write_buffer
        if (self.paused_writing and cap is not None and not t.is_closing()
                and self.ours > cap and t.get_write_buffer_size() > cap):
            # A peer that stops reading is cut off here: it cannot read a
            # close frame either, so the transport is aborted (1006 for it).
            log.warning("%s: write buffer over %d bytes, closing the connection", self.peer, cap)
            out.clear()
            self.abort()
            return
        # The list is emptied and kept (not replaced per write); the writer
        # copies what it hands on.  Emptied whatever happens: a byte string
        # written twice would corrupt the stream.
        try:
            self.ours += self._writer.write(out)  # type: ignore[union-attr]  # set with the transport
        finally:
            out.clear()

    def write_raw(self, data: bytes) -> None:
        """Write pre-encoded frame bytes (broadcast) after what is queued."""
        self.conn.output.append(data)
        StreamCore.flush(self)

    # -- closing ----------------------------------------------------------------------------

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake (§7.1.2), or refuse a handshake still
        under way with 503; the peer has ``close_timeout`` to answer."""
        conn = self.conn
        if conn.state is _OPEN:
            try:
                conn.send_close(code, reason)
            except LocalProtocolError:
                # A code that may not be sent (1005, 1006, 1015, ...).
                conn.send_close(1000, "")
            self.close_started = self.loop.time()
            # Whatever was paused must flow again, or the peer's close frame
            # is never read.
            self.hold_reading = False
            StreamCore.resume_reading(self)
            StreamCore.flush(self)
        elif conn.state is _CONNECTING and not conn.client:
            conn.reject(503, "server shutting down")
            StreamCore.flush(self)
            self.close_transport()

    def fail_now(self) -> None:
        """Complete a deferred failure (a Failing event, §7.1.7): the close
        frame with the violation's code goes out, and the front end gets the
        Closed event."""
        conn = self.conn
        if conn.failure is not None and conn.state is _OPEN:
            events = conn.fail()
            if events:
                self.front._on_events(events)
            StreamCore.flush(self)

    def finish(self) -> None:
        """The close handshake is over or the connection failed (a Closed or
        Rejected event): write what is left and end TCP, server first
        (§7.1.1: the client waits a little for the server to close it)."""
        StreamCore.flush(self)
        if self.close_started is None:
            self.close_started = self.loop.time()
        if self.transport is not None:
            if self.conn.client:
                self.loop.call_later(self.close_timeout / 10, self.close_transport)
            else:
                self.transport.close()

    def close_transport(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class StreamProtocol(StreamCore, asyncio.BufferedProtocol):
    """:class:`StreamCore` as an :class:`asyncio.BufferedProtocol` (asyncio's
    own transports check that base class; uvloop only needs the methods)."""
