"""Sans-I/O WebSocket connection: bytes in, events and bytes out (RFC 6455).

:class:`Connection` is the public class; it keeps the state, the close
handshake, control frames and sending, and hands each other concern to a
class of its own:

* :class:`ServerHandshake` or :class:`ClientHandshake`, the opening
  handshake of each side (§4.1, §4.2), while the connection is CONNECTING;
* :class:`MessageAssembler`, which makes messages of data frames (§5.4,
  §5.6), with permessage-deflate (RFC 7692), UTF-8 and the size limit.

Rules of this module:

* No I/O and no clock: nothing here imports asyncio or socket.  The caller
  feeds received bytes to :meth:`Connection.receive_data`, acts on the events
  it returns, and writes what :meth:`Connection.data_to_send` hands back.
* One transition table, ``_TRANSITIONS``, holds every state change; an event
  that has no entry for the current state is the caller's mistake and raises
  :class:`LocalProtocolError` with the state unchanged.  The handshake
  objects change the connection's state only through
  ``Connection._transition``; the assembler neither sends nor changes it.
* A peer that breaks the protocol never raises out of ``receive_data``: the
  connection queues the close frame with the right code (§7.1.7 "fail the
  WebSocket connection"), moves to CLOSED and returns a :class:`Closed` event
  whose ``error`` says what happened.
* The whole-message rule (a final text or binary frame without RSV1, with no
  message open, is a whole message) is written once in this layer, in
  :meth:`MessageAssembler.frame`; the codec's ``feed_messages`` applies it
  in its own code on the per-message path of :meth:`Connection.receive_into`.
* The per-frame path is kept short: the compiled FrameParser does framing,
  masking and limits; this layer only assembles messages.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

from ._impl import codec
from .deflate import DeflateConfig, PerMessageDeflate, accept_client, negotiate_server
from .exceptions import (
    HandshakeError,
    InvalidUTF8,
    LocalProtocolError,
    PayloadTooBig,
    ProtocolError,
)
from .handshake import (
    Request,
    RequestParser,
    Response,
    ResponseParser,
    accept_key,
    build_request,
    build_response,
    check_request,
    check_response,
    generate_key,
    parse_header_tokens,
)

__all__ = [
    "Closed",
    "Connection",
    "Event",
    "Failing",
    "Fragment",
    "Message",
    "Opened",
    "Ping",
    "Pong",
    "Rejected",
    "Requested",
    "State",
    "is_valid_close_code",
]

_encode_frame = codec.encode_frame
_encode_header = codec.encode_header
_Utf8Validator = codec.Utf8Validator
_FrameParser = codec.FrameParser
# Called with the parser as first argument: compiled, a call by name would
# look the method up on every read.
_feed_messages = _FrameParser.feed_messages

# Opcodes as plain ints: compared once per frame (RFC 6455 §5.2).
_CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0, 1, 2, 8, 9, 10

# Most bytes held after a request that awaits accept() (defer_accept).
_PENDING_MAX = 1 << 16

# Above this size a frame is sent as header + payload (no copy).
_WRITELINES_MIN = 8192
#: receive_into's answer when every frame read was a message, delivered.
_NO_EVENTS: tuple[Event, ...] = ()


class State(enum.IntEnum):
    """RFC 6455 §4.1 and §7: the life of a connection."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2  # a close frame was sent; waiting for the peer's
    CLOSED = 3


# Module-level aliases: read on every call of the hot path, where an
# attribute lookup on the enum class would cost more than the test (C
# globals when compiled: _protocol_c.pxd).
_OPEN = State.OPEN
_CLOSING = State.CLOSING
_CLOSED = State.CLOSED

# (state, what happened) -> new state.  The only place states change.
_TRANSITIONS: dict[tuple[State, str], State] = {
    (State.CONNECTING, "accept"): State.OPEN,
    (State.CONNECTING, "reject"): State.CLOSED,
    (State.CONNECTING, "fail"): State.CLOSED,
    (State.CONNECTING, "eof"): State.CLOSED,
    (State.OPEN, "send_close"): State.CLOSING,
    (State.OPEN, "recv_close"): State.CLOSED,  # we echo at once (§5.5.1)
    (State.OPEN, "fail"): State.CLOSED,
    (State.OPEN, "eof"): State.CLOSED,
    (State.CLOSING, "recv_close"): State.CLOSED,
    (State.CLOSING, "fail"): State.CLOSED,
    (State.CLOSING, "eof"): State.CLOSED,
}


def is_valid_close_code(code: int) -> bool:
    """RFC 6455 §7.4: codes a peer may send in a close frame.

    1000-1003 and 1007-1011 from §7.4.1, 1012-1014 registered with IANA
    (§11.7; sent by servers restarting or overloaded, so refusing them would
    fail good peers), and 3000-4999 for libraries and applications.  1004,
    1005, 1006 and 1015 are reserved and never sent.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _close_payload(code: int | None, reason: str) -> bytes:
    """§5.5.1: the payload of a close frame we send."""
    if code is None:
        return b""
    if not is_valid_close_code(code):
        raise LocalProtocolError(f"close code {code} may not be sent (RFC 6455 §7.4)")
    raw = reason.encode("utf-8")
    if len(raw) > 123:
        raise LocalProtocolError("close reason longer than 123 bytes (RFC 6455 §5.5)")
    return struct.pack("!H", code) + raw


def _frame_parser(client: bool, max_message_size: int | None, compressed: bool) -> Any:
    """The frame parser for one side of a connection (§5.1: a server gets
    masked frames, a client unmasked ones), within the message limit; it
    checks the text of uncompressed messages as it arrives (§8.1), which the
    connection's assembler then does not do again."""
    limit = plain = max_message_size
    if compressed and limit is not None:
        # A compressed frame may be a little larger than what it holds
        # (stored blocks); the message budget is enforced after inflating.
        # An uncompressed text or binary frame (RFC 7692 §6.1: no RSV1)
        # is message bytes: the parser keeps it to the limit itself, so
        # no path (the message sink of receive_into included) sees it.
        limit = limit + (limit >> 7) + 1024
    return _FrameParser(expect_mask=not client, max_frame_size=limit,
                        allow_rsv1=compressed, max_uncompressed_frame_size=plain,
                        check_utf8=True)


# -- events --------------------------------------------------------------------


class Event:
    """Base of the events ``receive_data`` returns."""

    __slots__ = ()


@dataclass(frozen=True)
class Opened(Event):
    """The opening handshake succeeded (``response`` is set on the client side)."""

    request: Request | None
    subprotocol: str | None
    response: Response | None = None
    compression: bool = False


@dataclass(frozen=True)
class Requested(Event):
    """A valid upgrade request awaits :meth:`Connection.accept` or
    :meth:`Connection.reject` (server side, with ``defer_accept``).

    ``subprotocols`` are the ones the client offered, in its order.
    """

    request: Request
    subprotocols: list[str]


@dataclass(frozen=True)
class Rejected(Event):
    """The opening handshake was refused with ``status``; the connection is closed."""

    status: int
    reason: str


class Message(Event):
    """A complete message: ``str`` for text, ``bytes`` for binary.

    A plain class rather than a frozen dataclass: one is made per message,
    and a frozen dataclass's ``__init__`` costs several times more.
    """

    __slots__ = ("data",)

    def __init__(self, data: str | bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and other.data == self.data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Message({self.data!r})"


class Fragment(Event):
    """Part of a message, when ``deliver_fragments`` is on (large messages).

    ``data`` is the next bytes of the message (decompressed if need be; for
    text, UTF-8 bytes already validated so far), ``first``/``last`` mark its
    ends and ``text`` says whether the message is text.
    """

    __slots__ = ("data", "first", "last", "text")

    def __init__(self, data: bytes, first: bool, last: bool, text: bool) -> None:
        self.data = data
        self.first = first
        self.last = last
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fragment) and (other.data, other.first, other.last, other.text) == (
            self.data, self.first, self.last, self.text)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Fragment({self.data[:32]!r}, first={self.first}, last={self.last}, text={self.text})"


@dataclass(frozen=True)
class Ping(Event):
    """The peer pinged; the pong was queued automatically (§5.5.2)."""

    payload: bytes


@dataclass(frozen=True)
class Pong(Event):
    """A pong arrived; ``ack`` is True if it answers a ping we sent."""

    payload: bytes
    ack: bool


@dataclass(frozen=True)
class Failing(Event):
    """The peer broke the protocol (``error``, to be closed with ``code``),
    with ``defer_failure`` on: everything that came before the violation was
    handed over already (earlier events, or messages), input is ignored from
    here on, and the connection stays OPEN for sending until the caller
    calls :meth:`Connection.fail`, which sends the close frame (§7.1.7) and
    gives the :class:`Closed` event.  This lets an application answer the
    messages that came before the violation first."""

    code: int
    reason: str
    error: Exception


@dataclass(frozen=True)
class Closed(Event):
    """The connection is closed (or failed); close the transport after flushing.

    ``code``/``reason`` are what the peer sent (1005 when it sent no code), or,
    when we failed the connection, the code we sent; ``error`` is then the
    exception that made us fail it, and 1006 means the transport ended
    without a close frame.
    """

    code: int
    reason: str
    error: Exception | None = None


# -- message assembly ----------------------------------------------------------


class MessageAssembler:
    """Data frames in, messages out (RFC 6455 §5.4, §5.6; RFC 7692 §6).

    At most one message is open at a time (``op``: its opcode, -1 when none
    is).  :meth:`frame` takes each text, binary or continuation frame: a
    whole message is delivered at once; any other frame opens a message or
    adds to it, inflated when it is compressed, counted against
    ``max_size`` as its bytes arrive (1009 at the byte that passes it),
    text validated as it comes (1007 at the first bad byte, §8.1: here, or
    by the connection's frame parser for uncompressed text, see
    ``utf8_checked``), then delivered as one :class:`Message` or, with
    ``deliver_fragments``, piece by piece as :class:`Fragment` events.  A
    whole message is not counted here: the connection's frame parser keeps
    an uncompressed frame within the limit.  A peer's mistake raises :class:`ProtocolError` (a
    subclass carries the close code): the :class:`Connection` fails on it.

    Args:
        max_size: the largest message, in bytes (None: no limit).
        deliver_fragments: hand data over as :class:`Fragment` events as
            it arrives instead of holding the message.
        deflate: the negotiated permessage-deflate, which inflates the
            messages sent with RSV1 (None: none was negotiated).
        utf8_checked: the frames come from a ``FrameParser`` made with
            ``check_utf8``, which checks the text of uncompressed
            fragmented messages as it arrives: only inflated text is
            validated here (a whole message is decoded either way).
    """

    def __init__(
        self, max_size: int | None = 1 << 20, deliver_fragments: bool = False,
        deflate: PerMessageDeflate | None = None, utf8_checked: bool = False,
    ) -> None:
        self.max_size = max_size
        self.deliver_fragments = deliver_fragments
        self.deflate = deflate
        self.utf8_checked = utf8_checked
        # The open message (§5.4): its opcode (-1: none), whether it is
        # compressed, its bytes so far (held, or counted once delivered as
        # fragments), whether no Fragment of it went out yet, its validator.
        self.op = -1
        self._compressed = False
        self._buf = bytearray()
        self._len = 0
        self._first = False
        self._utf8: Any = None

    def frame(self, op: int, payload: bytes, fin: bool, rsv1: bool, events: list[Event]) -> None:
        """A text, binary or continuation frame: add it; the message or
        fragment it completes goes to ``events``.

        Raises:
            ProtocolError: the frame breaks §5.4 or RFC 7692 §6.1, or its
                data is not valid compressed data.
            InvalidUTF8: text that is not UTF-8 (1007).
            PayloadTooBig: the message grew past ``max_size`` (1009).
        """
        if op == _CONT:
            if self.op < 0:
                raise ProtocolError("continuation frame without a message to continue")
            # RFC 7692 §6.1: RSV1 is set on the first frame only.
            if rsv1:
                raise ProtocolError("RSV1 set on a continuation frame")
            self._on_data(payload, fin, events)
            return
        # §5.4: a new data frame while a message is open is an error.
        if self.op >= 0:
            raise ProtocolError("new message started before the previous one finished")
        if fin and not rsv1:
            # The whole-message rule, the one place of it in this layer: a
            # final text or binary frame without RSV1 (RFC 7692 §6.1: not
            # compressed), with no message open, is a whole message; text
            # is decoded, and fails with 1007 if it is not UTF-8 (§8.1).
            # The codec's FrameParser.feed_messages applies the same rule
            # in its own code as the per-message fast path of receive_into,
            # and leaves everything else (bad UTF-8 too) to this method.
            if op == _TEXT:
                try:
                    events.append(Message(payload.decode("utf-8")))
                except UnicodeDecodeError:
                    raise InvalidUTF8("text message is not valid UTF-8") from None
            else:
                events.append(Message(payload))
            return
        self.op = op
        self._compressed = rsv1
        self._buf = bytearray()
        self._len = 0
        self._first = True
        # Text is validated here unless the parser did it as it arrived
        # (uncompressed, utf8_checked); compressed text once inflated.
        self._utf8 = _Utf8Validator() if op == _TEXT and (rsv1 or not self.utf8_checked) else None
        self._on_data(payload, fin, events)

    def _on_data(self, payload: bytes, fin: bool, events: list[Event]) -> None:
        """Add a fragment's data to the open message; emit it when final."""
        limit = self.max_size
        if self._compressed:
            budget = None if limit is None else limit - self._len
            payload = self.deflate.decompress(payload, budget, fin)  # type: ignore[union-attr]
        # The budget counts the bytes held; a bytearray keeps no per-fragment
        # overhead, so many tiny fragments cost their bytes and nothing more.
        elif limit is not None and self._len + len(payload) > limit:
            raise PayloadTooBig(f"message exceeds max_message_size {limit}")
        self._len += len(payload)
        if self._utf8 is not None:
            self._utf8.feed(payload, fin)  # fail fast (§8.1)
        if self.deliver_fragments:
            events.append(Fragment(payload, self._first, fin, self.op == _TEXT))
            self._first = False
            if fin:
                self._utf8 = None
                self.op = -1
            return
        self._buf += payload
        if fin:
            data = bytes(self._buf)
            self._buf = bytearray()
            if self.op == _TEXT:
                self._utf8 = None
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:  # only if utf8_checked was claimed wrongly
                    raise InvalidUTF8("text message is not valid UTF-8") from None
                events.append(Message(text))
            else:
                events.append(Message(data))
            self.op = -1

    def clear(self) -> None:
        """Drop the open message, if any (the connection failed)."""
        self.op = -1
        self._buf = bytearray()
        self._utf8 = None


# -- the opening handshake -----------------------------------------------------
#
# One object per side, held by the Connection while it is CONNECTING and
# dropped when it opens.  Each method is given the connection it works for
# (no reference back, so no cycle to collect): the settings are read from
# it when they are needed, what is sent goes to its output, and its state
# changes only through Connection._transition.


class ServerHandshake:
    """The server's side of the opening handshake (RFC 6455 §4.2).

    :meth:`receive` parses the request, hands it to ``process_request``,
    checks it and its Origin, then answers 101 (:meth:`accept`) or refuses
    (:meth:`reject`); with ``defer_accept`` it gives a :class:`Requested`
    event and holds what follows the request until the application calls
    :meth:`Connection.accept` or :meth:`Connection.reject`.
    """

    def __init__(self) -> None:
        self.parser: RequestParser | None = RequestParser()
        #: The client's Sec-WebSocket-Key, once the request was checked.
        self.key = ""
        #: Bytes that followed a request that awaits accept(): held (at most
        #: _PENDING_MAX) and parsed once the connection is open; None when
        #: no request awaits.
        self.pending: bytearray | None = None

    def receive(self, conn: Connection, data: bytes | bytearray | memoryview) -> list[Event]:
        """Bytes received while CONNECTING."""
        if self.pending is not None:
            return self._hold(conn, data)
        assert self.parser is not None
        try:
            parsed = self.parser.feed_request(bytes(data))
            if parsed is None:
                return []
            request, rest = parsed
            if conn.process_request is not None:
                answer = conn.process_request(request)
                if answer is not None:
                    status, headers, body = answer
                    return self.reject(conn, status, body, list(headers))
            key = check_request(request)
            # §10.2: a server may refuse a browser's request by its Origin.
            if conn.origins is not None and request.headers.get("Origin") not in conn.origins:
                raise HandshakeError(403, "Origin not allowed")
        except HandshakeError as exc:
            return self.reject(conn, exc.status, str(exc) + "\n", exc.headers)
        offered = parse_header_tokens(request.headers.get_all("Sec-WebSocket-Protocol"))
        conn.request = request
        self.key = key
        self.parser = None
        # §4.2.2: the server may take any time to decide; meanwhile nothing
        # but the handshake's answer may be sent.
        if conn.defer_accept:
            self.pending = bytearray()
            return [Requested(request, offered), *self._hold(conn, rest)]
        chosen = next((p for p in conn.subprotocols if p.lower() in offered), None)
        return self.accept(conn, chosen, (), rest)

    def _hold(self, conn: Connection, data: bytes | bytearray | memoryview) -> list[Event]:
        """Keep bytes that arrive before accept(), within a bound.

        RFC 6455 §4.1: the client must not send frames before the 101, so
        anything here is a pipelining client; past _PENDING_MAX it is refused.
        """
        assert self.pending is not None
        self.pending += data
        if len(self.pending) > _PENDING_MAX:
            return self.reject(conn, 400, "data sent before the handshake completed\n")
        return []

    def accept(
        self, conn: Connection, chosen: str | None, extra_headers: Sequence[tuple[str, str]], rest: bytes
    ) -> list[Event]:
        """Queue the 101 response (§4.2.2) and open the connection; then
        the bytes that followed the request."""
        request = conn.request
        assert request is not None
        headers = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept_key(self.key)),
        ]
        if chosen:
            headers.append(("Sec-WebSocket-Protocol", chosen))
        deflate = None
        config = conn.compression
        if config is not None:
            # RFC 7692 §5: the first offer this server can take.
            agreed = negotiate_server(request.headers.get_all("Sec-WebSocket-Extensions"), config)
            if agreed is not None:
                headers.append(("Sec-WebSocket-Extensions", agreed[0]))
                deflate = PerMessageDeflate(agreed[1], client=False, level=config.level, mem_level=config.mem_level)
        headers.extend(conn.extra_headers)
        headers.extend(extra_headers)
        conn.output.append(build_response(101, headers))
        conn.subprotocol = chosen
        self.pending = None
        return conn._opened(request, None, deflate, rest)

    def reject(
        self, conn: Connection, status: int, body: str | bytes = "", headers: Sequence[tuple[str, str]] = ()
    ) -> list[Event]:
        """Answer with ``status`` instead of upgrading (§4.2.2: any status
        but 101 ends the handshake); the connection is closed."""
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        conn.output.append(build_response(status, list(headers), raw))
        conn._transition("reject")
        self.pending = None
        return [Rejected(status, raw[:200].decode("utf-8", "replace").strip())]


class ClientHandshake:
    """The client's side of the opening handshake (RFC 6455 §4.1).

    :meth:`connect` queues the request; :meth:`receive` parses the answer,
    checks it (§4.1: the status, the accept key, the subprotocol) and
    accepts the extension the server agreed to (RFC 7692 §5), then opens
    the connection, or closes it with a :class:`Rejected` event.
    """

    def __init__(self) -> None:
        #: Our Sec-WebSocket-Key, once the request was made.
        self.key = ""
        #: Set by connect(): the response is awaited.
        self.parser: ResponseParser | None = None

    def connect(self, conn: Connection, host: str, path: str, origin: str | None) -> None:
        """Queue the request on ``conn``."""
        self.key = generate_key()
        config = conn.compression
        conn.output.append(
            build_request(
                host, path, self.key, subprotocols=conn.subprotocols,
                extensions=config.offer() if config is not None else None,
                origin=origin, extra_headers=conn.extra_headers,
            )
        )
        self.parser = ResponseParser()

    def receive(self, conn: Connection, data: bytes | bytearray | memoryview) -> list[Event]:
        """Bytes received while CONNECTING: the response, then frames."""
        if self.parser is None:
            raise LocalProtocolError("receive_data() before connect() on a client connection")
        deflate = None
        try:
            parsed = self.parser.feed_response(bytes(data))
            if parsed is None:
                return []
            response, rest = parsed
            conn.response = response
            conn.subprotocol = check_response(response, self.key, conn.subprotocols)
            ext = response.headers.get_all("Sec-WebSocket-Extensions")
            config = conn.compression
            # RFC 6455 §4.1 (step 5 of the response's checks): no extension
            # that was not asked for.
            if ext and config is None:
                raise HandshakeError(101, "server accepted an extension that was not offered")
            if config is not None:
                try:
                    params = accept_client(ext, config)
                except ProtocolError as exc:
                    raise HandshakeError(101, str(exc)) from None
                if params is not None:
                    deflate = PerMessageDeflate(params, client=True, level=config.level, mem_level=config.mem_level)
        except HandshakeError as exc:
            conn._transition("reject")
            return [Rejected(exc.status, str(exc))]
        self.parser = None
        return conn._opened(None, response, deflate, rest)


# -- the connection ------------------------------------------------------------


class Connection:
    """One WebSocket connection, server or client side, without I/O.

    Args:
        client: True for the client side (frames sent masked, frames received
            must not be); False for a server.
        max_message_size: largest message accepted, in bytes (None: no
            limit); a larger one fails the connection with 1009 as soon as
            the bytes that pass it arrive.
        subprotocols: server side, the subprotocols offered, in order of
            preference; the first one the client also offers is chosen.
        origins: server side, the accepted Origin values (None: any).
        compression: permessage-deflate settings (RFC 7692), or None to
            neither offer nor accept it.  On by default, as in websockets
            and aiohttp; it only applies when the peer also wants it.
        process_request: server side, called with the request before the
            upgrade; if it returns ``(status, headers, body)`` that response
            is sent instead and the connection ends (serve a page, or refuse
            with any status).
        deliver_fragments: hand the data of fragmented messages over as
            :class:`Fragment` events as it arrives instead of assembling
            the message (for large messages; nothing is held, the size limit
            still counts the whole message).
        handshake: False when the handshake was done elsewhere (for
            example by another server); the connection then starts OPEN,
            with ``deflate`` the negotiated compression if any.
        defer_accept: server side, a valid request gives a
            :class:`Requested` event and waits for :meth:`accept` (choosing
            the subprotocol and extra headers then) or :meth:`reject`; for
            frameworks where the application decides (ASGI).
        defer_failure: a peer that breaks the protocol while the connection
            is OPEN gives a :class:`Failing` event instead of failing it at
            once; the caller lets its application take (and answer) what came
            before, then calls :meth:`fail`.

    The connection leaves the opening handshake to a :class:`ServerHandshake`
    or :class:`ClientHandshake` while CONNECTING (they read the settings above
    from it when they need them), and data frames to a
    :class:`MessageAssembler`, which keeps ``max_message_size`` and
    ``deliver_fragments``.
    """

    def __init__(
        self,
        client: bool = False,
        *,
        max_message_size: int | None = 1 << 20,
        subprotocols: list[str] | None = None,
        origins: list[str] | None = None,
        extra_headers: list[tuple[str, str]] | None = None,
        compression: DeflateConfig | None = DeflateConfig(),
        handshake: bool = True,
        deflate: PerMessageDeflate | None = None,
        process_request: Callable[[Request], tuple[int, Sequence[tuple[str, str]], bytes] | None] | None = None,
        deliver_fragments: bool = False,
        defer_accept: bool = False,
        defer_failure: bool = False,
    ) -> None:
        self.client = client
        self.defer_failure = defer_failure
        #: The violation awaiting :meth:`fail` (``defer_failure``), else None.
        self.failure: Exception | None = None
        self.subprotocols = list(subprotocols or [])
        self.origins = origins
        self.extra_headers = list(extra_headers or [])
        self.state = State.CONNECTING if handshake else State.OPEN
        self.compression = compression
        self.process_request = process_request
        self.defer_accept = defer_accept
        self.subprotocol: str | None = None
        self.request: Request | None = None
        self.response: Response | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        #: The byte strings to write, in order: everything the connection
        #: sends leaves through this list.  A caller writes them and empties
        #: the list in place (``del conn.output[:]``), or calls
        #: :meth:`data_to_send`, which hands the list over and starts a new one.
        self.output: list[bytes] = []
        self._mask: bool | None = True if client else None
        # The codec's per-message functions, taken once per connection from
        # the module: compiled, a module global costs a dict lookup per use
        # on Python 3.12+ (Cython caches those through dict version tags,
        # which 3.12 deprecated), an attribute of the compiled class none.
        self._feed = _feed_messages
        self._encode = _encode_frame
        # Compression is used by both directions: sending here, receiving in
        # the assembler; both hold the one negotiated object.
        self._deflate = deflate
        # The parser checks uncompressed text as it arrives (§8.1, fail
        # fast); the assembler validates only what it inflates.
        self._assembler = MessageAssembler(max_message_size, deliver_fragments, deflate, True)
        self._parser = _frame_parser(client, max_message_size, deflate is not None)
        # The opening handshake, until the connection opens (§4).
        self._handshake: ServerHandshake | ClientHandshake | None = None
        if handshake:
            self._handshake = ClientHandshake() if client else ServerHandshake()
        self._pings: dict[bytes, int] = {}

    @property
    def max_message_size(self) -> int | None:
        """The largest message accepted, in bytes (None: no limit)."""
        return self._assembler.max_size

    @max_message_size.setter
    def max_message_size(self, value: int | None) -> None:
        self._assembler.max_size = value

    @property
    def deliver_fragments(self) -> bool:
        """Whether fragmented messages are handed over as :class:`Fragment` events."""
        return self._assembler.deliver_fragments

    @deliver_fragments.setter
    def deliver_fragments(self, value: bool) -> None:
        self._assembler.deliver_fragments = value

    # -- state ----------------------------------------------------------------

    def _transition(self, what: str) -> None:
        try:
            self.state = _TRANSITIONS[(self.state, what)]
        except KeyError:
            raise LocalProtocolError(f"cannot {what.replace('_', ' ')} in state {self.state.name}") from None

    def _opened(
        self, request: Request | None, response: Response | None, deflate: PerMessageDeflate | None, rest: bytes
    ) -> list[Event]:
        """The opening handshake succeeded (§4.1, §4.2.2): OPEN, with the
        compression it agreed on; then the frames that came right after it."""
        self._transition("accept")
        self._handshake = None
        if deflate is not None:
            self._deflate = deflate
            self._assembler.deflate = deflate
            self._parser = _frame_parser(self.client, self.max_message_size, True)
        events: list[Event] = [Opened(request, self.subprotocol, response, self._deflate is not None)]
        if rest:
            events.extend(self.receive_data(rest))
        return events

    # -- output -----------------------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        """Return the byte strings to write, in order, and forget them."""
        out = self.output
        self.output = []
        return out

    def _send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        if self._mask is None and len(payload) >= _WRITELINES_MIN:
            self.output.append(_encode_header(opcode, len(payload), fin=fin))
            self.output.append(payload)
        else:
            self.output.append(_encode_frame(opcode, payload, fin=fin, mask=self._mask))

    def _check_open(self, what: str) -> None:
        if self.state is not State.OPEN:
            raise LocalProtocolError(f"cannot {what} in state {self.state.name}")

    def _send_data(self, op: int, data: bytes, compress: bool | None) -> None:
        z = self._deflate
        if z is not None and compress is not False:
            # RFC 7692 §6: RSV1 on the (only) frame of a compressed message.
            self.output.append(_encode_frame(op, z.compress(data), rsv1=True, mask=self._mask))
        else:
            self._send_frame(op, data)

    def send_text(self, text: str, compress: bool | None = None) -> None:
        """Queue a text message; ``compress=False`` opts out of compression.

        Raises:
            LocalProtocolError: not OPEN (state unchanged).
            TypeError: ``text`` is not a str.
        """
        self._check_open("send a message")
        if not isinstance(text, str):
            raise TypeError(f"send_text() needs str, not {type(text).__name__}")
        self._send_data(_TEXT, text.encode("utf-8"), compress)

    def send_binary(self, data: bytes | bytearray | memoryview, compress: bool | None = None) -> None:
        """Queue a binary message; ``compress=False`` opts out of compression.

        Raises:
            LocalProtocolError: not OPEN (state unchanged).
            TypeError: ``data`` is not bytes-like.
        """
        self._check_open("send a message")
        if not isinstance(data, bytes):
            data = bytes(memoryview(data))
        self._send_data(_BINARY, data, compress)

    def send(self, message: str | bytes | bytearray | memoryview, compress: bool | None = None) -> None:
        """Queue ``message``: text for ``str``, binary for bytes-like."""
        # Fast path: server side, open, no compression, a small message.
        if self.state is _OPEN and self._deflate is None and self._mask is None:
            if type(message) is bytes:
                if len(message) < _WRITELINES_MIN:
                    self.output.append(self._encode(_BINARY, message))
                    return
            elif isinstance(message, str):
                raw = message.encode("utf-8")
                if len(raw) < _WRITELINES_MIN:
                    self.output.append(self._encode(_TEXT, raw))
                    return
        if isinstance(message, str):
            self.send_text(message, compress)
        else:
            self.send_binary(message, compress)

    @property
    def compressed(self) -> bool:
        """True when permessage-deflate was negotiated."""
        return self._deflate is not None

    @property
    def frame_in_progress(self) -> bool:
        """True while a frame from the peer has begun and not ended (a
        keepalive pong may be queued behind it at the peer)."""
        return bool(self._parser.in_frame)

    def send_ping(self, payload: bytes = b"") -> None:
        """Queue a ping; a later :class:`Pong` with ``ack`` True answers it."""
        self._check_open("send a ping")
        payload = bytes(payload)
        self._send_frame(_PING, payload)
        self._pings[payload] = self._pings.get(payload, 0) + 1

    def send_pong(self, payload: bytes = b"") -> None:
        """Queue an unsolicited pong (a heartbeat, §5.5.3)."""
        self._check_open("send a pong")
        self._send_frame(_PONG, bytes(payload))

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake (§7.1.2).

        Raises:
            LocalProtocolError: not OPEN, or a code that may not be sent, or a
                reason longer than 123 bytes (state unchanged).
        """
        if self.state is not State.OPEN:
            raise LocalProtocolError(f"cannot send close in state {self.state.name}")
        payload = _close_payload(code, reason)
        self._transition("send_close")
        self.output.append(_encode_frame(_CLOSE, payload, mask=self._mask))

    # -- input -------------------------------------------------------------------

    def receive_eof(self) -> list[Event]:
        """The transport ended: without a close frame this is 1006 (§7.1.5)."""
        if self.state is State.CLOSED:
            return []
        self._transition("eof")
        self.close_code = 1006
        return [Closed(1006, "", None)]

    def receive_data(self, data: bytes | bytearray | memoryview, size: int = -1) -> list[Event]:
        """Feed received bytes; return the events they complete.

        With ``size`` >= 0 only the first ``size`` bytes of ``data`` count
        (a reused read buffer and the length read into it).  Never raises for
        anything the peer sends; see the module rules.
        """
        if size >= 0:
            data = memoryview(data)[:size]
        state = self.state
        if state is State.CLOSED or self.failure is not None:
            return []  # §7.1.1: after the close (or a violation), data is ignored
        if state is State.CONNECTING:
            handshake = self._handshake
            assert handshake is not None  # CONNECTING: the handshake is not done
            return handshake.receive(self, data)
        events: list[Event] = []
        try:
            frames = self._parser.feed(data)
        except ProtocolError as exc:
            return self._after_violation(exc, events)
        for frame in frames:
            self._on_frame(frame, events)
            if self.state is _CLOSED or self.failure is not None:
                break
        return events

    def receive_into(
        self,
        data: bytes | bytearray | memoryview,
        on_message: Callable[[Any, str | bytes], object],
        on_error: Callable[[Any, Exception], object],
        arg: Any,
        size: int = -1,
    ) -> Sequence[Event]:
        """Like :meth:`receive_data`, but the messages that arrive before any
        other event go to ``on_message(arg, message)`` instead of becoming
        :class:`Message` events: whole single-frame messages straight from
        the parser as each is parsed, with no event object in between (the
        per-message fast path of the asyncio layer).  An exception from
        ``on_message`` goes to ``on_error(arg, exc)``.  Returns the events
        from the first other one on (later messages among them as
        :class:`Message`), so that everything keeps its order of arrival:
        a non-empty list, or an empty tuple when there are none (nothing to
        allocate per read, and a type check tells the two apart).
        With ``size`` >= 0 only the first ``size`` bytes of ``data`` count
        (the read buffer of a ``BufferedProtocol`` and the length read).
        """
        state = self.state
        events: list[Event]
        # The codec applies the whole-message rule itself (see
        # MessageAssembler.frame), which holds only while no message is open.
        if (state is _OPEN or state is _CLOSING) and self._assembler.op < 0 and self.failure is None:
            try:
                frames = self._feed(self._parser, data, on_message, on_error, arg, size)
            except ProtocolError as exc:
                events = self._after_violation(exc, [])
            else:
                if not frames:
                    return _NO_EVENTS  # the common case: every frame was a message, delivered
                events = []
                for frame in frames:
                    self._on_frame(frame, events)
                    if self.state is _CLOSED or self.failure is not None:
                        break
        else:
            events = self.receive_data(data, size)
        for i, ev in enumerate(events):
            if type(ev) is not Message:
                return events[i:]
            try:
                on_message(arg, ev.data)
            except Exception as exc:  # noqa: BLE001 - the sink is user code: report, go on
                on_error(arg, exc)
        return _NO_EVENTS

    def _after_violation(self, exc: ProtocolError, events: list[Event]) -> list[Event]:
        """The parser failed: the frames before the violation count, then
        the connection fails with the violation's code (§7.1.7)."""
        for frame in exc.frames:
            if self.state is _CLOSED or self.failure is not None:
                return events
            self._on_frame(frame, events)
        if self.state is not _CLOSED:
            self._fail(exc, events)
        return events

    def _fail(self, exc: Exception, events: list[Event]) -> None:
        """§7.1.7: send a close frame with the error's code, then close; or,
        with ``defer_failure``, leave that to :meth:`fail`."""
        code = getattr(exc, "close_code", 1002)
        if self.defer_failure and self.state is State.OPEN:
            if self.failure is None:
                self.failure = exc
                self._assembler.clear()
                events.append(Failing(code, str(exc), exc))
            return
        self._fail_now(exc, code, events)

    def fail(self) -> list[Event]:
        """Fail the connection for the violation a :class:`Failing` event
        reported (§7.1.7): queue the close frame with its code and close.
        Returns the :class:`Closed` event (nothing when the connection ended
        meanwhile).

        Raises:
            LocalProtocolError: no failure is pending.
        """
        exc = self.failure
        if exc is None:
            raise LocalProtocolError("no failure is pending")
        events: list[Event] = []
        if self.state is not State.CLOSED:
            self._fail_now(exc, getattr(exc, "close_code", 1002), events)
        return events

    def _fail_now(self, exc: Exception, code: int, events: list[Event]) -> None:
        if self.state is State.OPEN:
            reason = str(exc).encode("utf-8")[:123].decode("utf-8", "ignore")
            self.output.append(_encode_frame(_CLOSE, _close_payload(code, reason), mask=self._mask))
        self._transition("fail")
        self.close_code = code
        self.close_reason = str(exc)
        self._assembler.clear()
        events.append(Closed(code, str(exc), exc))

    def _on_frame(self, frame: object, events: list[Event]) -> None:
        op = frame.opcode  # type: ignore[attr-defined]  # an IntEnum: compares as int
        payload: bytes = frame.payload  # type: ignore[attr-defined]
        try:
            if op <= _BINARY:
                # §5.4, §5.6, RFC 7692 §6: text, binary and continuation
                # frames make messages.
                self._assembler.frame(op, payload, frame.fin, frame.rsv1, events)  # type: ignore[attr-defined]
                return
            # RFC 7692 §6.1: control frames are never compressed.
            if frame.rsv1:  # type: ignore[attr-defined]
                raise ProtocolError("RSV1 set on a control frame")
            if op == _PING:
                # §5.5.2: answer with a pong carrying the same payload, unless
                # we already sent a close (§5.5.1: no more frames after it).
                if self.state is State.OPEN:
                    self.output.append(_encode_frame(_PONG, payload, mask=self._mask))
                events.append(Ping(payload))
                return
            if op == _PONG:
                n = self._pings.get(payload, 0)
                if n:
                    if n == 1:
                        del self._pings[payload]
                    else:
                        self._pings[payload] = n - 1
                events.append(Pong(payload, n > 0))
                return
            # op == _CLOSE
            self._on_close(payload, events)
        except ProtocolError as exc:
            self._fail(exc, events)

    def _on_close(self, payload: bytes, events: list[Event]) -> None:
        # §5.5.1: a close payload is empty, or a 2-byte code and a UTF-8 reason.
        if len(payload) == 1:
            raise ProtocolError("close frame payload of 1 byte")
        if payload:
            code = struct.unpack("!H", payload[:2])[0]
            if not is_valid_close_code(code):
                raise ProtocolError(f"invalid close code {code}")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidUTF8("close reason is not valid UTF-8") from None
        else:
            code, reason = 1005, ""
        if self.state is State.OPEN:
            # §5.5.1: echo the status code back.
            echo = payload[:2] if payload else b""
            self.output.append(_encode_frame(_CLOSE, echo, mask=self._mask))
        self._transition("recv_close")
        self.close_code = code
        self.close_reason = reason
        events.append(Closed(code, reason, None))

    # -- the opening handshake, by the handshake objects -------------------------------

    def accept(self, subprotocol: str | None = None, extra_headers: Sequence[tuple[str, str]] = ()) -> list[Event]:
        """Complete a deferred handshake with 101 (server, ``defer_accept``).

        Returns the :class:`Opened` event and the events of bytes that
        arrived meanwhile.

        Raises:
            LocalProtocolError: no request awaits acceptance.
        """
        handshake = self._handshake
        if (not isinstance(handshake, ServerHandshake) or handshake.pending is None
                or self.state is not State.CONNECTING):
            raise LocalProtocolError(f"no request awaits acceptance in state {self.state.name}")
        return handshake.accept(self, subprotocol, extra_headers, bytes(handshake.pending))

    def reject(
        self, status: int, body: str | bytes = "", headers: Sequence[tuple[str, str]] = ()
    ) -> list[Event]:
        """Answer the handshake with ``status`` instead of upgrading (server side)."""
        handshake = self._handshake
        if self.client or self.state is not State.CONNECTING or not isinstance(handshake, ServerHandshake):
            raise LocalProtocolError(f"cannot reject in state {self.state.name}")
        return handshake.reject(self, status, body, headers)

    def connect(self, host: str, path: str = "/", *, origin: str | None = None) -> None:
        """Queue the opening handshake request (client side, §4.1)."""
        handshake = self._handshake
        if (not self.client or self.state is not State.CONNECTING
                or not isinstance(handshake, ClientHandshake) or handshake.parser is not None):
            raise LocalProtocolError("connect() is for a client connection that has not started")
        handshake.connect(self, host, path, origin)
