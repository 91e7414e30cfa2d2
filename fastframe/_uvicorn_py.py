"""fastframe as uvicorn's WebSocket implementation: ``uvicorn --ws fastframe.uvicorn:Protocol``.

uvicorn's ``ws`` setting takes the import string of an ``asyncio.Protocol``
class.  Its HTTP protocol builds one per upgrade request as
``Protocol(config=..., server_state=..., app_state=...)``, calls
``connection_made(transport)``, hands over the re-serialised request head
through ``data_received`` and then ``transport.set_protocol``.  From there
this class speaks the ASGI WebSocket protocol (spec 2.4, with the
``websocket.http.response`` denial extension) to the application, on
fastframe's sans-I/O :class:`~fastframe.protocol.Connection` and codec.

uvicorn settings honoured: ``ws_max_size`` (largest message, 1009 past it),
``ws_max_queue`` (messages received but not yet taken by the app; reading
pauses past it), ``ws_ping_interval`` / ``ws_ping_timeout`` (keepalive; any
bytes from the peer count as a sign of life, so a long frame in flight never
trips it), ``ws_per_message_deflate``, ``root_path``, the server's default
headers, its set of connections and its graceful shutdown (close 1012).

Two faults of uvicorn's older glue are avoided on purpose, and tested:

* A close the application starts (``websocket.close``) is a close
  *handshake* (RFC 6455 §7.1.2): the close frame goes out, reading goes on
  until the peer's close frame comes back (or ``CLOSE_TIMEOUT`` passes), and
  only then is TCP closed, by the server first (§7.1.1).
* ``send`` applies write flow control: when the transport's buffer is past
  its high-water mark (the peer reads slowly), ``send`` waits until it drains,
  so a slow reader holds the application back instead of growing memory.

This module does not import uvicorn: it only uses the attributes of the
objects uvicorn passes in, so fastframe has no dependency on it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, MutableMapping, Sequence
from typing import Any, Callable
from urllib.parse import unquote

from .connection import (
    KEEPALIVE_PING,
    KEEPALIVE_TIMEOUT,
    Writer,
    keepalive_action,
    shared_read_buffer,
)
from .deflate import DeflateConfig
from .exceptions import ClientDisconnected, LocalProtocolError
from .protocol import Closed, Connection, Message, Rejected, Requested, State

__all__ = ["CLOSE_TIMEOUT", "ClientDisconnected", "Protocol"]

log = logging.getLogger("uvicorn.error")

#: Seconds to wait for the peer's close frame after ours (uvicorn uses 10).
CLOSE_TIMEOUT = 10.0

ASGIMessage = MutableMapping[str, Any]


def _address(transport: asyncio.BaseTransport, name: str) -> tuple[str, int] | None:
    info = transport.get_extra_info(name)
    if isinstance(info, (list, tuple)) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None


def _to_app(proto: AdapterCore, data: str | bytes) -> None:
    """A message for the app (also Connection.receive_into's sink)."""
    if type(data) is str:
        AdapterCore._put(proto, {"type": "websocket.receive", "text": data})
    else:
        AdapterCore._put(proto, {"type": "websocket.receive", "bytes": data})


def _to_app_failed(proto: AdapterCore, exc: Exception) -> None:  # pragma: no cover - _put cannot fail
    log.error("cannot queue a message for the app", exc_info=exc)


# The two callbacks every read hands the parser (C globals when compiled:
# _uvicorn_c.pxd).
_on_app_message = _to_app
_on_app_message_error = _to_app_failed


class AdapterCore:
    """All of Protocol but its asyncio base class, which a compiled class
    cannot have (the compiled layer declares this one in _uvicorn_c.pxd)."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app: Callable[..., Awaitable[object]] = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.app_state = app_state
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = list(server_state.default_headers)
        self.conn = Connection(
            max_message_size=config.ws_max_size,
            compression=DeflateConfig() if config.ws_per_message_deflate else None,
            defer_accept=True,
        )
        self.max_queue: int = config.ws_max_queue or 0
        self.ping_interval: float | None = config.ws_ping_interval or None
        self.ping_timeout: float | None = config.ws_ping_timeout or None
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.scope: dict[str, Any] = {}
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self._buffer = shared_read_buffer()
        # Events for receive(), and the receive() waiting for one.
        self._queue: collections.deque[ASGIMessage] = collections.deque()
        self._waiter: asyncio.Future[ASGIMessage] | None = None
        self._disconnect: ASGIMessage | None = None  # the last event, once known
        self._accepted = False  # the 101 (or a denial) was sent
        self._close_sent = False  # the app is past websocket.close (or we failed)
        self._lost = False
        self._reading_paused = False
        self._writing_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._denial: tuple[int, list[tuple[str, str]], bytearray] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._ping_sent: float | None = None
        self._last_recv = 0.0
        # Reads counted, not timed: the keepalive timer turns a changed count
        # into _last_recv, which keeps the clock out of the read path.
        self._reads = 0
        self._seen_reads = 0
        self._writer: Writer | None = None  # set with the transport

    # -- transport callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._writer = Writer(transport)
        self.connections.add(self)
        self.client = _address(transport, "peername")
        self.server = _address(transport, "sockname")

    def get_buffer(self, sizehint: int) -> bytearray:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._received(self._buffer, nbytes)

    def data_received(self, data: Any) -> None:
        self._received(data, -1)

    def _received(self, data: Any, size: int) -> None:
        """The bytes read: all of ``data``, or its first ``size`` bytes."""
        self._reads += 1
        if self._accepted and not self._close_sent:
            # Open: messages go from the parser straight into the app's queue.
            self._dispatch(self.conn.receive_into(data, _on_app_message, _on_app_message_error, self, size))
        else:
            self._dispatch(self.conn.receive_data(data, size))
        AdapterCore._flush(self)  # pongs, close echoes, a 400 for a bad request
        if AdapterCore._queue_full(self) and not self._reading_paused:
            # ws_max_queue: the app is behind; stop reading until it catches up.
            self._reading_paused = True
            self.transport.pause_reading()

    def _dispatch(self, events: Sequence[Any]) -> None:
        for ev in events:
            if type(ev) is Message:
                if not self._close_sent:  # past websocket.close, nothing more is delivered
                    _to_app(self, ev.data)
            elif type(ev) is Requested:
                self._start_app(ev)
            elif type(ev) is Closed:
                self._on_closed(ev)
            elif type(ev) is Rejected:
                # A request refused before the app sees it (bad key or
                # version, or bytes piled up before accept): answered, hang up.
                self._hang_up()

    def eof_received(self) -> bool | None:
        for ev in self.conn.receive_eof():
            if type(ev) is Closed:
                self._set_disconnect(ev.code, ev.reason)
        return None  # let the transport close

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lost = True
        self.connections.discard(self)
        self._set_disconnect(1006, "")  # §7.1.5: no close frame came
        self._cancel_timers()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        if self.conn.state is not State.CLOSED:
            self.conn.receive_eof()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # -- uvicorn's server hooks -------------------------------------------------------

    def shutdown(self) -> None:
        """uvicorn is shutting down: close with 1012 (service restart)."""
        if self._lost:
            return
        if self.conn.state is State.OPEN:
            self._app_close(1012, "")
        elif not self._accepted:
            self._respond_status(503, "server shutting down\n")
        elif self._close_sent:
            self.transport.close()

    # -- incoming events -------------------------------------------------------------------

    def _put(self, message: ASGIMessage) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(message)
                return
        self._queue.append(message)

    def _set_disconnect(self, code: int, reason: str) -> None:
        if self._disconnect is None:
            self._disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
            self._put(self._disconnect)

    def _on_closed(self, ev: Closed) -> None:
        """The close handshake finished, or the peer broke the protocol (§7.1.7)."""
        self._flush()  # our echo (§5.5.1) or our close frame with the error's code
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self._close_sent = True
        self._set_disconnect(ev.code, ev.reason)
        # §7.1.1: the server closes the TCP connection first.
        self.transport.close()

    def _start_app(self, ev: Requested) -> None:
        request = ev.request
        path, _, query = request.path.partition("?")
        root = self.config.root_path or ""
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if self.transport.get_extra_info("sslcontext") else "ws",
            "server": self.server,
            "client": self.client,
            "root_path": root,
            "path": root + unquote(path),
            "raw_path": root.encode("ascii") + path.encode("ascii"),
            "query_string": query.encode("ascii"),
            "headers": [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in request.headers.items()],
            "subprotocols": ev.subprotocols,
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        # Nothing is read until the application accepts or denies.
        self._reading_paused = True
        self.transport.pause_reading()
        self._put({"type": "websocket.connect"})
        task = self.loop.create_task(self._run_app())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_app(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException as exc:
            log.exception("Exception in ASGI application")
            if not self._accepted:
                self._respond_status(500, "Internal Server Error\n")
            elif self.conn.state is State.OPEN:
                self._app_close(1011, "")  # §7.4.1: an unexpected condition
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return
        if result is not None:
            log.error("ASGI callable should return None, but returned %r.", result)
        if not self._accepted:
            log.error("ASGI callable returned without completing handshake.")
            self._respond_status(500, "Internal Server Error\n")
        elif self.conn.state is State.OPEN:
            # The app returned with the connection open: close it cleanly.
            self._app_close(1000, "")

    # -- the ASGI callables -----------------------------------------------------------------

    async def receive(self) -> ASGIMessage:
        queue = self._queue
        if queue:
            message = queue.popleft()
        elif self._disconnect is not None:
            return self._disconnect  # every receive after the end says so again
        else:
            waiter = self._waiter = self.loop.create_future()
            try:
                message = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    # _put had handed this event over when the app's task
                    # was cancelled: keep it for the next receive().
                    self._queue.appendleft(waiter.result())
                elif self._waiter is waiter:
                    self._waiter = None
                raise
        if self._reading_paused and self._accepted and not AdapterCore._queue_full(self):
            self._reading_paused = False
            self.transport.resume_reading()
        return message

    async def send(self, message: ASGIMessage) -> None:
        kind = message["type"]
        if self._lost or self._close_sent:
            if kind == "websocket.close" and not self._lost:
                return  # a second close: the handshake is already under way
            raise ClientDisconnected("the WebSocket connection is closed")
        if not self._accepted:
            self._send_before_accept(kind, message)
        elif self._denial is not None:
            self._send_denial_body(kind, message)
        elif kind == "websocket.send":
            data = message.get("text")
            if data is None:
                data = message.get("bytes")
                if data is None:
                    raise RuntimeError("websocket.send needs 'bytes' or 'text'")
            self.conn.send(data)  # str: text, bytes-like: binary
            AdapterCore._flush(self)
            if self._writing_paused:
                await self._drained()
        elif kind == "websocket.close":
            self._app_close(message.get("code") or 1000, message.get("reason") or "")
        else:
            raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', but got {kind!r}.")

    def _send_before_accept(self, kind: str, message: ASGIMessage) -> None:
        if kind == "websocket.accept":
            headers = [(n.decode("latin-1"), v.decode("latin-1"))
                       for n, v in (*self.default_headers, *message.get("headers", ()))]
            if self.transport.is_closing():
                return
            events = self.conn.accept(message.get("subprotocol"), headers)
            self._accepted = True
            log.info('%s - "WebSocket %s" [accepted]', self._who(), self._target())
            self._start_keepalive()
            self._dispatch(events[1:])  # frames that came with the request (events[0] is Opened)
            self._flush()
            if self._reading_paused and not self._queue_full():
                self._reading_paused = False
                self.transport.resume_reading()
        elif kind == "websocket.close":
            # ASGI: a close before accept is a 403.
            log.info('%s - "WebSocket %s" 403', self._who(), self._target())
            self._respond_status(403, "")
        elif kind == "websocket.http.response.start":
            status = int(message["status"])
            if not 100 <= status < 600:
                raise RuntimeError(f"Invalid HTTP status code {status} in response.")
            log.info('%s - "WebSocket %s" %d', self._who(), self._target(), status)
            headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in message.get("headers", ())
                       if n.lower() != b"content-length"]  # counted again from the body
            self._denial = (status, headers, bytearray())
            self._accepted = True
        else:
            raise RuntimeError(
                "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                f"'websocket.http.response.start' but got {kind!r}."
            )

    def _send_denial_body(self, kind: str, message: ASGIMessage) -> None:
        assert self._denial is not None
        if kind != "websocket.http.response.body":
            raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body' but got {kind!r}.")
        status, headers, body = self._denial
        body += message.get("body", b"")
        if not message.get("more_body", False):
            self.conn.reject(status, bytes(body), headers)
            self._hang_up()

    # -- helpers ----------------------------------------------------------------------------

    def _queue_full(self) -> bool:
        return bool(self.max_queue) and len(self._queue) >= self.max_queue

    def _flush(self) -> None:
        conn = self.conn
        out = conn.output  # data_to_send() without the call: this runs per message
        if not out:
            return
        conn.output = []
        if self._lost:
            return
        self._writer.write(out)  # type: ignore[union-attr]  # connection_made came first

    async def _drained(self) -> None:
        """Write flow control: wait until the transport is below its high-water mark."""
        while self._writing_paused and not self._lost:
            if self._drain is None or self._drain.done():
                self._drain = self.loop.create_future()
            await self._drain
        if self._lost:
            raise ClientDisconnected("the WebSocket connection was lost")

    def _respond_status(self, status: int, body: str) -> None:
        """An HTTP answer instead of the upgrade, then hang up."""
        if self._accepted or self.conn.state is not State.CONNECTING:
            return
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.default_headers]
        self.conn.reject(status, body, headers)
        self._hang_up()

    def _hang_up(self) -> None:
        """An HTTP answer went instead of the upgrade: send it, and end the
        connection (the app sees a disconnect with 1006, as ASGI asks)."""
        self._flush()
        self._accepted = self._close_sent = True
        self._set_disconnect(1006, "")
        self.transport.close()

    def _app_close(self, code: int, reason: str) -> None:
        """§7.1.2: send our close frame, keep reading until the peer's comes back."""
        try:
            self.conn.send_close(code, reason)
        except LocalProtocolError:
            # A code the RFC does not let us send (1005, 1006, 1015, ...).
            self.conn.send_close(1000, "")
        self._flush()
        self._close_sent = True
        self._set_disconnect(code, reason)
        self._stop_keepalive()
        # Whatever was paused must flow again, or the peer's close frame is never read.
        if self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()
        self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.transport.close)

    # -- keepalive --------------------------------------------------------------------------

    def _start_keepalive(self) -> None:
        if self.ping_interval:
            self._last_recv = self.loop.time()
            self._seen_reads = self._reads
            self._ping_timer = self.loop.call_later(self._keepalive_period(), self._keepalive)

    def _keepalive_period(self) -> float:
        assert self.ping_interval is not None
        return min(self.ping_interval, self.ping_timeout or self.ping_interval) / 2

    def _stop_keepalive(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None

    def _keepalive(self) -> None:
        self._ping_timer = None
        if self.conn.state is not State.OPEN or self._lost:
            return
        now = self.loop.time()
        assert self.ping_interval is not None
        if self._reads != self._seen_reads:
            self._seen_reads = self._reads
            self._last_recv = now
        action = keepalive_action(now, self._last_recv, self._ping_sent, self.ping_interval, self.ping_timeout)
        if action == KEEPALIVE_TIMEOUT:
            log.info('%s - "WebSocket %s" keepalive ping timeout', self._who(), self._target())
            self._app_close(1011, "keepalive ping timeout")
            # An unanswered peer will not answer our close either.
            self.transport.close()
            return
        if action == KEEPALIVE_PING:
            self.conn.send_ping(int(now * 1000).to_bytes(8, "big"))
            self._flush()
            self._ping_sent = now
        self._ping_timer = self.loop.call_later(self._keepalive_period(), self._keepalive)

    def _cancel_timers(self) -> None:
        self._stop_keepalive()
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    # -- logging ------------------------------------------------------------------------------

    def _who(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "-"

    def _target(self) -> str:
        qs = self.scope.get("query_string", b"")
        path = self.scope.get("path", "")
        return f"{path}?{qs.decode('ascii')}" if qs else path



class Protocol(AdapterCore, asyncio.BufferedProtocol):
    """One WebSocket connection served to an ASGI application (the class
    uvicorn's ``--ws`` takes).  asyncio's transports check the base class."""
