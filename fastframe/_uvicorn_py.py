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
pauses past it), ``ws_ping_interval`` / ``ws_ping_timeout`` (keepalive),
``ws_per_message_deflate``, ``root_path``, the server's default headers, its
set of connections and its graceful shutdown (close 1012).  Reading,
writing, flow control, keepalive and the close timeout are the transport
core's (:class:`~fastframe.connection.StreamCore`), as for fastframe's own
server; this module is the ASGI mapping only.

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

from .connection import StreamCore, StreamProtocol
from .deflate import DeflateConfig
from .exceptions import ClientDisconnected
from .protocol import Closed, Connection, Failing, Message, Rejected, Requested, State

__all__ = ["CLOSE_TIMEOUT", "AsgiFront", "ClientDisconnected", "Protocol"]

log = logging.getLogger("uvicorn.error")

#: Seconds to wait for the peer's close frame after ours (uvicorn uses 10).
CLOSE_TIMEOUT = 10.0

ASGIMessage = MutableMapping[str, Any]

# Methods of the core called per message, looked up once: the core is a
# Python subclass (StreamProtocol), whose methods a compiled caller in another
# module would otherwise check for a Python override on every call.
_core_flush = StreamCore.flush
_core_taken = StreamCore.taken


def _address(transport: asyncio.BaseTransport, name: str) -> tuple[str, int] | None:
    info = transport.get_extra_info(name)
    if isinstance(info, (list, tuple)) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None


def _to_app(front: AsgiFront, data: str | bytes) -> None:
    """A message for the app (the core's sink)."""
    if type(data) is str:
        AsgiFront._put(front, {"type": "websocket.receive", "text": data})
    else:
        AsgiFront._put(front, {"type": "websocket.receive", "bytes": data})


def _to_app_failed(front: AsgiFront, exc: Exception) -> None:  # pragma: no cover - _put cannot fail
    log.error("cannot queue a message for the app", exc_info=exc)


def _discard(front: AsgiFront, data: str | bytes) -> None:
    """Past websocket.close, nothing more is delivered (but all is read)."""


# The core's sinks (C globals when compiled: _uvicorn_c.pxd).
_on_app_message = _to_app
_on_app_message_error = _to_app_failed
_on_late_message = _discard


class AsgiFront:
    """The ASGI side of one connection: the scope, ``receive`` and ``send``,
    on the transport core ``core`` (its front end)."""

    def __init__(self, core: StreamCore, config: Any, server_state: Any, app_state: dict[str, Any]) -> None:
        self.core = core
        self.conn = core.conn
        self.config = config
        self.app: Callable[..., Awaitable[object]] = config.loaded_app
        self.loop = core.loop
        self.app_state = app_state
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = list(server_state.default_headers)
        self.scope: dict[str, Any] = {}
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        # Events for receive(), and the receive() waiting for one.
        self._queue: collections.deque[ASGIMessage] = collections.deque()
        self._waiter: asyncio.Future[ASGIMessage] | None = None
        self._disconnect: ASGIMessage | None = None  # the last event, once known
        self._accepted = False  # the 101 (or a denial) was sent
        self._close_sent = False  # the app is past websocket.close (or we failed)
        self._denial: tuple[int, list[tuple[str, str]], bytearray] | None = None
        core.attach(self, _on_app_message, _on_app_message_error, self._queue)

    @property
    def _lost(self) -> bool:
        return bool(self.core.finished)

    # -- the core's front end ---------------------------------------------------------

    def connected(self, transport: asyncio.BaseTransport) -> None:
        self.connections.add(self.core)
        self.client = _address(transport, "peername")
        self.server = _address(transport, "sockname")

    def _on_events(self, events: Sequence[Any]) -> None:
        for ev in events:
            t = type(ev)
            if t is Message:
                if not self._close_sent:  # past websocket.close, nothing more is delivered
                    _to_app(self, ev.data)
            elif t is Requested:
                self._start_app(ev)
            elif t is Failing:
                # The peer broke the protocol: the app takes what came
                # before, then the connection fails: now if the app is
                # waiting in receive() with nothing handed to it, else at its
                # next receive() (or within the close timeout).
                if not self._queue and self._waiter is not None:
                    self.core.fail_now()
            elif t is Closed:
                self._on_closed(ev)
            elif t is Rejected:
                # A request refused before the app sees it (bad key or
                # version, or bytes piled up before accept): answered, hang up.
                self._hang_up()

    def _on_drain(self) -> None:
        """Nothing to do: send() awaits the core's drain itself."""

    def _on_lost(self) -> None:
        self.connections.discard(self.core)
        self._set_disconnect(1006, "")  # §7.1.5: no close frame came (unless one was recorded)

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
            self.core.close_transport()

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
        self._stop_delivery()
        self._set_disconnect(ev.code, ev.reason)
        self.core.finish()  # our echo (§5.5.1) or close frame goes, then TCP (server first, §7.1.1)

    def _start_app(self, ev: Requested) -> None:
        request = ev.request
        path, _, query = request.path.partition("?")
        root = self.config.root_path or ""
        transport = self.core.transport
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if transport is not None and transport.get_extra_info("sslcontext") else "ws",
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
        self.core.hold_reading = True
        self.core.pause_reading()
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
        if not queue and self.conn.failure is not None:
            self.core.fail_now()  # what came before the violation was taken
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
        _core_taken(self.core)
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
            core = self.core
            _core_flush(core)
            if core.paused_writing:
                await core.drain()
                if core.finished:
                    raise ClientDisconnected("the WebSocket connection was lost")
        elif kind == "websocket.close":
            self._app_close(message.get("code") or 1000, message.get("reason") or "")
        else:
            raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', but got {kind!r}.")

    def _send_before_accept(self, kind: str, message: ASGIMessage) -> None:
        if kind == "websocket.accept":
            headers = [(n.decode("latin-1"), v.decode("latin-1"))
                       for n, v in (*self.default_headers, *message.get("headers", ()))]
            core = self.core
            if core.transport is None or core.transport.is_closing():
                return
            events = self.conn.accept(message.get("subprotocol"), headers)
            self._accepted = True
            log.info('%s - "WebSocket %s" [accepted]', self._who(), self._target())
            core.opened()
            self._on_events(events[1:])  # frames that came with the request (events[0] is Opened)
            _core_flush(core)
            core.hold_reading = False
            _core_taken(core)
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

    def _stop_delivery(self) -> None:
        """Past websocket.close (or the end): the app gets nothing more."""
        self._close_sent = True
        core = self.core
        core.sink = _on_late_message
        core.inbox = None

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
        self._accepted = True
        self._stop_delivery()
        self._set_disconnect(1006, "")
        self.core.finish()

    def _app_close(self, code: int, reason: str) -> None:
        """§7.1.2: send our close frame, keep reading until the peer's comes back."""
        self._stop_delivery()
        self._set_disconnect(code, reason)
        self.core.close(code, reason)

    # -- logging ------------------------------------------------------------------------------

    def _who(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "-"

    def _target(self) -> str:
        qs = self.scope.get("query_string", b"")
        path = self.scope.get("path", "")
        return f"{path}?{qs.decode('ascii')}" if qs else path


class Protocol(StreamProtocol):
    """One WebSocket connection served to an ASGI application: the class
    uvicorn's ``--ws`` takes, built as ``Protocol(config=..., server_state=...,
    app_state=...)``.  The transport core with an :class:`AsgiFront`."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        if not config.loaded:
            config.load()
        conn = Connection(
            max_message_size=config.ws_max_size,
            compression=DeflateConfig() if config.ws_per_message_deflate else None,
            defer_accept=True, defer_failure=True,
        )
        super().__init__(
            conn, loop=_loop or asyncio.get_event_loop(), max_queue=config.ws_max_queue or 0,
            close_timeout=CLOSE_TIMEOUT, ping_interval=config.ws_ping_interval or None,
            ping_timeout=config.ws_ping_timeout or None,
        )
        self.asgi = AsgiFront(self, config, server_state, app_state)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.asgi.connected(transport)

    def shutdown(self) -> None:
        """uvicorn is shutting down: close with 1012 (service restart)."""
        self.asgi.shutdown()
