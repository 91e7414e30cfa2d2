"""wsproto's ``Connection`` (RFC 6455 after the handshake) on fastframe's codec.

What a consumer of wsproto sees is kept: ``receive_data`` only stores the
bytes; ``events()`` is a generator that parses while it is iterated; a data
frame comes out in pieces as its bytes arrive (``frame_finished`` False until
its last byte), messages are never assembled, pings and closes are not
answered automatically, the state moves to REMOTE_CLOSING when the close
event is yielded, and a peer's protocol violation is a final
``CloseConnection`` event, not an exception.  Frames sent are wsproto's
byte for byte (client frames differ only by their random mask).

How bytes are parsed.  The frames that have arrived whole go through the
codec's ``FrameParser`` (compiled: framing, unmasking and the RFC 6455 §5
header rules in one call); it is only ever fed whole frames, so it holds
nothing between calls.  A data frame whose payload has not all arrived is
streamed here instead: its header is checked by the codec, its payload is
unmasked with ``apply_mask`` piece by piece and handed over as it comes, as
wsproto does.  So a connection holds no message and no frame: at most a
frame header or a control frame (131 bytes) beyond what the caller fed and
did not iterate.  Inflating is bounded too: one event carries at most
``MAX_EVENT_SIZE`` inflated bytes, and the rest is inflated only when the
caller asks for the next event (a deflate bomb costs what the caller reads).

Where fastframe is stricter than wsproto it stays so: text is validated
fail-fast (``Utf8Validator``); RSV1 on a control or continuation frame, or
without permessage-deflate, fails with 1002; close codes follow
:func:`fastframe.protocol.is_valid_close_code` (1014 is accepted, which
wsproto refuses); a close code that may not be sent raises
:class:`LocalProtocolError`.  docs/wsproto.md lists every difference.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Generator
from enum import Enum
from typing import Any

from .. import FrameParser, Utf8Validator, apply_mask, encode_frame
from ..exceptions import ProtocolError as _CodecError
from ..protocol import is_valid_close_code
from .events import BytesMessage, CloseConnection, Event, Message, Ping, Pong, TextMessage
from .extensions import Extension, PerMessageDeflate, frame_hooks_overridden
from .frame_protocol import LOCAL_ONLY_CLOSE_REASONS, CloseReason, Opcode, ParseFailed
from .utilities import LocalProtocolError

__all__ = ["CLIENT", "SERVER", "Connection", "ConnectionState", "ConnectionType"]


class ConnectionState(Enum):
    """RFC 6455 §4 and §7: the life of a connection, as wsproto names it."""

    CONNECTING = 0
    OPEN = 1
    REMOTE_CLOSING = 2
    LOCAL_CLOSING = 3
    CLOSED = 4
    REJECTING = 5


class ConnectionType(Enum):
    """Which end this is."""

    CLIENT = 1
    SERVER = 2


CLIENT = ConnectionType.CLIENT
SERVER = ConnectionType.SERVER

#: The most inflated bytes one event carries; the rest waits for the next.
MAX_EVENT_SIZE = 1 << 20

_CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0, 1, 2, 8, 9, 10
_OPEN = ConnectionState.OPEN
_LOCAL_CLOSING = ConnectionState.LOCAL_CLOSING
_REMOTE_CLOSING = ConnectionState.REMOTE_CLOSING
_CLOSED = ConnectionState.CLOSED
_TAIL = b"\x00\x00\xff\xff"
_REASONS: dict[int, int] = {int(member): member for member in CloseReason}
_new = object.__new__


def _whole_frames(data: bytes, pos: int, end: int) -> int:
    """Where the last frame that lies whole in ``data[pos:end]`` ends
    (``pos`` when none does).  Only lengths are read here; the codec checks
    everything else."""
    while end - pos >= 2:
        b1 = data[pos + 1]
        length = b1 & 0x7F
        if length < 126:
            start = pos + 2
        elif length == 126:
            if end - pos < 4:
                break
            length = (data[pos + 2] << 8) | data[pos + 3]
            start = pos + 4
        else:
            if end - pos < 10:
                break
            length = int.from_bytes(data[pos + 2 : pos + 10], "big")
            start = pos + 10
        if b1 & 0x80:
            start += 4
        if start + length > end:
            break
        pos = start + length
    return pos


def _header_size(data: bytes, pos: int, end: int) -> int:
    """The size of the header at ``pos``, or 0 while its bytes that give the
    size have not arrived."""
    if end - pos < 2:
        return 0
    b1 = data[pos + 1]
    length = b1 & 0x7F
    size = 2 if length < 126 else 4 if length == 126 else 10
    return size + 4 if b1 & 0x80 else size


class _Stream:
    """The data frame whose payload is arriving in pieces."""

    __slots__ = ("fin", "key", "left", "offset", "op", "rsv1")

    def __init__(self, op: int, fin: bool, rsv1: bool, key: bytes, left: int) -> None:
        self.op = op
        self.fin = fin
        self.rsv1 = rsv1
        self.key = key
        self.left = left
        self.offset = 0


class Connection:
    """A WebSocket connection after the opening handshake (wsproto's API).

    Args:
        connection_type: ``CLIENT`` (frames sent masked) or ``SERVER``.
        extensions: the negotiated extensions; the enabled
            :class:`~.extensions.PerMessageDeflate` among them compresses.
        trailing_data: bytes that arrived after the handshake.

    Raises:
        NotImplementedError: an enabled extension with per-frame hooks other
            than permessage-deflate (fastframe does not run custom hooks).
    """

    def __init__(
        self,
        connection_type: ConnectionType,
        extensions: list[Extension] | None = None,
        trailing_data: bytes = b"",
    ) -> None:
        self.client = connection_type is ConnectionType.CLIENT
        self._state = ConnectionState.OPEN
        deflate: PerMessageDeflate | None = None
        for extension in extensions or ():
            if not extension.enabled():
                continue
            hooks = frame_hooks_overridden(extension)
            if hooks:
                raise NotImplementedError(
                    f"fastframe.wsproto runs permessage-deflate only; the extension "
                    f"{extension.name!r} ({type(extension).__name__}) overrides {', '.join(hooks)}"
                )
            if isinstance(extension, PerMessageDeflate) and deflate is None:
                deflate = extension
        self._deflate = deflate
        self._mask: bool | None = True if self.client else None
        self._parser = self._new_parser()
        # Events of receive_data(None), yielded first (as wsproto does).
        self._events: deque[Event] = deque()
        # Events parsed and not yet yielded (a caller that stops iterating
        # finds them at its next events()).
        self._parsed: deque[Event] = deque()
        # Bytes received and not yet parsed.
        self._in: list[bytes] = []
        # Frames the codec parsed whose events wait behind a bounded inflate.
        self._frames: deque[Any] = deque()
        self._stream: _Stream | None = None
        # The message being received: its opcode (-1: none), whether it is
        # compressed, and for text the validator and the decoder.
        self._msg = -1
        self._msg_z = False
        self._utf8: Any = None
        self._decoder: Any = None
        # Inflating left for the next event: (input, frame_finished, fin).
        self._inflating: tuple[bytes, bool, bool] | None = None
        # A close frame or a violation ends parsing for good.
        self._done = False
        # A violation the codec found, reported after the frames before it.
        self._error: tuple[int, str] | None = None
        self._close_event: CloseConnection | None = None
        self._out_op = -1
        self.receive_data(trailing_data)

    def _new_parser(self) -> Any:
        return FrameParser(expect_mask=not self.client, max_frame_size=None, allow_rsv1=self._deflate is not None)

    @property
    def state(self) -> ConnectionState:
        return self._state

    # -- sending -----------------------------------------------------------------

    def send(self, event: Event) -> bytes:
        """The bytes that carry ``event`` to the peer.

        Raises:
            LocalProtocolError: the event cannot be sent in this state, or a
                close code that may not be sent (RFC 6455 §7.4); nothing
                changes.
            TypeError: message data that is neither str nor bytes-like, or
                of another type than the message it continues.
            ValueError: a ping or pong payload over 125 bytes.
        """
        state = self._state
        cls = type(event)
        if cls is BytesMessage or cls is TextMessage or isinstance(event, Message):
            if state is _OPEN:
                return self._send_data(event.data, event.message_finished)  # type: ignore[attr-defined]
        elif isinstance(event, (Ping, Pong)):
            if state is _OPEN:
                payload = event.payload
                if len(payload) > 125:
                    raise ValueError("payload too long for control frame")
                return encode_frame(_PING if isinstance(event, Ping) else _PONG, payload, mask=self._mask)
        elif isinstance(event, CloseConnection) and (state is _OPEN or state is _REMOTE_CLOSING):
            data = encode_frame(_CLOSE, _close_payload(event.code, event.reason), mask=self._mask)
            self._state = _CLOSED if state is _REMOTE_CLOSING else _LOCAL_CLOSING
            return data
        raise LocalProtocolError(f"Event {event} cannot be sent in state {state}.")

    def _send_data(self, data: Any, fin: bool) -> bytes:
        cls = type(data)
        if cls is bytes or cls is bytearray or cls is memoryview or isinstance(data, (bytes, bytearray, memoryview)):
            op = _BINARY
        elif isinstance(data, str):
            op = _TEXT
            data = data.encode("utf-8")
        else:
            raise TypeError("Must provide bytes or text")
        if fin and self._out_op < 0 and self._deflate is None:
            return encode_frame(op, data, mask=self._mask)  # a whole message: the common case
        first = self._out_op
        if first < 0:
            self._out_op = op
        elif first != op:
            raise TypeError("Data type mismatch inside message")
        else:
            op = _CONT
        if fin:
            self._out_op = -1
        deflate = self._deflate
        if deflate is None:
            return encode_frame(op, data, fin=fin, mask=self._mask)
        return encode_frame(
            op, deflate._compress(self.client, bytes(data), fin), fin=fin, rsv1=op != _CONT, mask=self._mask
        )

    # -- receiving ---------------------------------------------------------------

    def receive_data(self, data: bytes | None) -> None:
        """Store bytes from the peer (parsed by :meth:`events`); None means
        the transport closed (a ``CloseConnection(1006)`` event, state
        CLOSED).

        Raises:
            LocalProtocolError: the connection is CLOSED.
        """
        if data is None:
            self._events.append(CloseConnection(code=CloseReason.ABNORMAL_CLOSURE))
            self._state = _CLOSED
            return
        state = self._state
        if state is _OPEN or state is _LOCAL_CLOSING:
            # After a close or a violation nothing is parsed: nor kept.
            if data and not self._done and self._error is None:
                # Copied unless immutable: the caller may reuse its buffer.
                self._in.append(data if type(data) is bytes else bytes(data))
        elif state is _CLOSED:
            raise LocalProtocolError("Connection already closed.")

    def events(self) -> Generator[Event, None, None]:
        """Yield the events of the bytes received so far, parsing as it goes."""
        pending = self._events
        while pending:
            yield pending.popleft()
        parsed = self._parsed
        while True:
            while parsed:
                event = parsed.popleft()
                if event is self._close_event:
                    self._close_event = None
                    self._state = _CLOSED if self._state is _LOCAL_CLOSING else _REMOTE_CLOSING
                yield event
            chunks = self._in
            if self._done or not (chunks or self._frames or self._inflating is not None or self._error):
                return
            stream = self._stream
            if stream is not None and len(chunks) == 1 and self._msg == _BINARY and not self._msg_z:
                # The next read of a binary frame still arriving (a large
                # message read in pieces): yielded without the queue.
                data = chunks[0]
                if len(data) <= stream.left:
                    self._in = []
                    piece = self._unmask(stream, data)
                    done = stream.left == 0
                    last = done and stream.fin
                    if done:
                        self._stream = None
                        if last:
                            self._msg = -1
                    event = _new(BytesMessage)
                    fields = event.__dict__
                    fields["data"] = piece
                    fields["frame_finished"] = done
                    fields["message_finished"] = last
                    yield event
                    continue
            elif len(chunks) == 1 and stream is None and not self._frames and self._msg < 0:
                # The common read: whole frames, often one whole binary
                # message, which is yielded without the queue.
                data = chunks[0]
                if _whole_frames(data, 0, len(data)) == len(data):
                    self._in = []
                    try:
                        frames = self._parser.feed(data)
                    except _CodecError as exc:
                        self._frames.extend(exc.frames)
                        self._error = (exc.close_code, str(exc))
                        continue
                    if len(frames) == 1:
                        frame = frames[0]
                        if frame.opcode == _BINARY and frame.fin and not frame.rsv1:
                            event = _new(BytesMessage)
                            fields = event.__dict__
                            fields["data"] = frame.payload
                            fields["frame_finished"] = True
                            fields["message_finished"] = True
                            yield event
                            continue
                    self._frames.extend(frames)
            if not self._parse():
                return

    def _parse(self) -> bool:
        """Turn received bytes into events in ``_parsed``; False when none
        could be made."""
        out = self._parsed
        try:
            while not self._done:
                if self._inflating is not None:
                    self._inflate_more(out)
                elif self._frames:
                    self._on_frames(self._frames, out)
                elif self._error is not None:
                    self._fail(*self._error)
                elif self._in:
                    self._on_bytes(out)
                    if not out and self._error is None:
                        break  # a frame's first bytes: it waits for the rest
                else:
                    break
                if out:
                    break
        except ParseFailed as exc:
            self._fail(exc.code, str(exc))
        except _CodecError as exc:
            self._fail(exc.close_code, str(exc))
        return bool(out)

    def _fail(self, code: int, reason: str) -> None:
        self._parsed.append(CloseConnection(code=_REASONS.get(code, code), reason=reason))
        self._done = True
        self._in = []
        self._frames.clear()
        self._inflating = None

    def _on_bytes(self, out: deque[Event]) -> None:
        chunks = self._in
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._in = []
        pos = 0
        end = len(data)
        while pos < end:
            stream = self._stream
            if stream is not None:
                take = min(stream.left, end - pos)
                # Unmasking copies: a view is enough for it (server side).
                if stream.key:
                    piece: Any = memoryview(data)[pos : pos + take] if take < end - pos or pos else data
                else:
                    piece = data[pos : pos + take] if take < end - pos or pos else data
                pos += take
                self._on_piece(stream, piece, out)
            else:
                whole = _whole_frames(data, pos, end)
                if whole > pos:
                    view = data if pos == 0 and whole == end else memoryview(data)[pos:whole]
                    pos = whole
                    try:
                        frames = self._parser.feed(view)
                    except _CodecError as exc:
                        # The frames before the violation count (and are
                        # yielded first); nothing after it is read.
                        self._frames.extend(exc.frames)
                        self._error = (exc.close_code, str(exc))
                        self._on_frames(self._frames, out)
                        return
                    self._frames.extend(frames)
                    self._on_frames(self._frames, out)
                else:
                    start = self._start_stream(data, pos, end)
                    if start < 0:
                        # A header, or a control frame, not yet whole: kept.
                        self._in = [data[pos:] if pos else data]
                        return
                    pos = start
            if self._done or self._inflating is not None or self._frames:
                # A close, or a bounded inflate: the rest waits.
                if pos < end and not self._done:
                    self._in = [data[pos:]]
                return

    def _start_stream(self, data: bytes, pos: int, end: int) -> int:
        """Begin streaming the data frame at ``pos``, whose payload has not
        all arrived; return where its payload starts, or -1 when the frame
        must wait whole (its header is incomplete, or it is a control
        frame)."""
        size = _header_size(data, pos, end)
        # The codec checks the header (opcode, RSV bits, mask, the control
        # frame rules, the length) as soon as its first bytes are here.
        self._new_parser().feed(memoryview(data)[pos : min(end, pos + size) if size else end])
        if not size or end - pos < size or data[pos] & 0x08:
            return -1
        b0 = data[pos]
        b1 = data[pos + 1]
        length = b1 & 0x7F
        if length == 126:
            length = (data[pos + 2] << 8) | data[pos + 3]
        elif length == 127:
            length = int.from_bytes(data[pos + 2 : pos + 10], "big")
        key = data[pos + size - 4 : pos + size] if b1 & 0x80 else b""
        stream = _Stream(b0 & 0x0F, bool(b0 & 0x80), bool(b0 & 0x40), key, length)
        self._begin(stream.op, stream.rsv1)
        self._stream = stream
        return pos + size

    def _on_piece(self, stream: _Stream, piece: Any, out: deque[Event]) -> None:
        """The next bytes of a streamed frame's payload."""
        piece = self._unmask(stream, piece)
        done = stream.left == 0
        if done:
            self._stream = None
        self._data(piece, done, stream.fin, out)

    @staticmethod
    def _unmask(stream: _Stream, piece: Any) -> bytes:
        """The piece unmasked (RFC 6455 §5.3), from where the frame's key
        stands after the bytes before it; counts it off the frame."""
        key = stream.key
        if key:
            shift = stream.offset & 3
            piece = apply_mask(piece, key[shift:] + key[:shift] if shift else key)
        n = len(piece)
        stream.offset += n
        stream.left -= n
        return piece  # type: ignore[no-any-return]

    def _begin(self, op: int, rsv1: bool) -> None:
        """A data frame starts: the rules of RFC 6455 §5.4 and RFC 7692 §6.1."""
        if op == _CONT:
            if self._msg < 0:
                raise ParseFailed("unexpected CONTINUATION")
            if rsv1:
                raise ParseFailed("RSV1 set on a continuation frame")
            return
        if self._msg >= 0:
            raise ParseFailed(f"expected CONTINUATION, got {Opcode(op)!r}")
        self._msg = op
        self._msg_z = rsv1
        if op == _TEXT:
            self._utf8 = Utf8Validator()
            self._decoder = _utf8_decoder()

    def _on_frames(self, frames: deque[Any], out: deque[Event]) -> None:
        """Events of frames the codec parsed whole, until a close or a
        bounded inflate (whose frames after it stay in ``frames``)."""
        append = out.append
        event: Any
        while frames:
            frame = frames.popleft()
            op = frame.opcode
            payload = frame.payload
            if op <= _BINARY:
                if frame.fin and self._msg < 0 and not frame.rsv1:
                    # A whole, uncompressed message: the common case.
                    if op == _BINARY:
                        event = _new(BytesMessage)
                    elif op == _TEXT:
                        try:
                            payload = payload.decode("utf-8")
                        except UnicodeDecodeError as exc:
                            raise ParseFailed(str(exc), CloseReason.INVALID_FRAME_PAYLOAD_DATA) from None
                        event = _new(TextMessage)
                    else:
                        raise ParseFailed("unexpected CONTINUATION")
                    fields = event.__dict__
                    fields["data"] = payload
                    fields["frame_finished"] = True
                    fields["message_finished"] = True
                    append(event)
                    continue
                self._begin(op, frame.rsv1)
                self._data(payload, True, frame.fin, out)
                if self._inflating is not None:
                    return
                continue
            # RFC 7692 §6.1: control frames are never compressed.
            if frame.rsv1:
                raise ParseFailed("RSV1 set on a control frame")
            if op == _PING:
                append(Ping(payload=payload))
            elif op == _PONG:
                append(Pong(payload=payload))
            else:
                close = _received_close(payload)
                self._close_event = close
                self._done = True
                append(close)
                frames.clear()
                return

    def _data(self, payload: bytes, frame_done: bool, fin: bool, out: deque[Event]) -> None:
        """Data of the open message: inflated and decoded as needed."""
        last = frame_done and fin
        if self._msg_z:
            payload, left = self._inflate(payload, last, 0)
            if left:
                self._inflating = (left, frame_done, fin)
                frame_done = last = False
        self._emit(payload, frame_done, last, out)

    def _inflate_more(self, out: deque[Event]) -> None:
        assert self._inflating is not None
        data, frame_done, fin = self._inflating
        self._inflating = None
        last = frame_done and fin
        payload, left = self._inflate(data, last, 1)
        if left:
            self._inflating = (left, frame_done, fin)
            frame_done = last = False
        self._emit(payload, frame_done, last, out)

    def _inflate(self, data: bytes, last: bool, resumed: int) -> tuple[bytes, bytes]:
        """Inflate the next bytes of a compressed message, at most
        MAX_EVENT_SIZE of them; return them and the input left for later.

        ``last`` ends the message: the tail the sender stripped is put back
        (RFC 7692 §7.2.2) unless ``resumed`` (it is in ``data`` already).
        """
        deflate = self._deflate
        assert deflate is not None
        client = self.client
        d = deflate._inflater(client)
        if last and not resumed:
            data += _TAIL
        try:
            out: bytes = d.decompress(data, MAX_EVENT_SIZE)
            while d.eof:
                # RFC 7692 §7.2.3.4: a BFINAL block ended the sender's
                # stream; what follows it begins a new one.
                rest = d.unused_data
                if last and rest.endswith(_TAIL):
                    rest = rest[:-4]
                d = deflate._new_stream(client)
                if not rest:
                    break
                if last:
                    rest += _TAIL
                out += d.decompress(rest, MAX_EVENT_SIZE - len(out) or 1)
            left: bytes = d.unconsumed_tail
            if not left and last:
                out += d.flush()
        except Exception as exc:  # noqa: BLE001 - zlib.error, or a window the peer broke
            raise ParseFailed(f"invalid compressed data: {exc}") from None
        if last and not left:
            deflate._message_done(client)
        return out, left

    def _emit(self, data: bytes, frame_done: bool, last: bool, out: deque[Event]) -> None:
        event: Message[Any]
        if self._msg == _TEXT:
            try:
                self._utf8.feed(data, last)
            except _CodecError as exc:
                raise ParseFailed(str(exc), CloseReason.INVALID_FRAME_PAYLOAD_DATA) from None
            event = _new(TextMessage)
            fields = event.__dict__
            fields["data"] = self._decoder(data, last)
        else:
            event = _new(BytesMessage)
            fields = event.__dict__
            fields["data"] = data
        fields["frame_finished"] = frame_done
        fields["message_finished"] = last
        out.append(event)
        if last:
            self._msg = -1
            self._msg_z = False
            self._utf8 = self._decoder = None


def _utf8_decoder() -> Any:
    import codecs

    return codecs.getincrementaldecoder("utf-8")().decode


def _received_close(payload: bytes) -> CloseConnection:
    """The event of a received close frame (RFC 6455 §5.5.1, §7.4)."""
    if not payload:
        return CloseConnection(code=CloseReason.NO_STATUS_RCVD, reason="")
    if len(payload) == 1:
        raise ParseFailed("CLOSE with 1 byte payload")
    code = (payload[0] << 8) | payload[1]
    if not is_valid_close_code(code):
        raise ParseFailed(f"CLOSE with invalid code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseFailed(
            f"Error decoding CLOSE reason: {exc}", CloseReason.INVALID_FRAME_PAYLOAD_DATA
        ) from None
    return CloseConnection(code=_REASONS.get(code, code), reason=reason)


def _close_payload(code: int | None, reason: str | None) -> bytes:
    """wsproto's close payload: 1005 (the member) sends no code; 1006 and
    1015 send 1000; the reason is cut to 123 bytes on a character boundary.

    Raises:
        TypeError: a reason without a code.
        LocalProtocolError: a code RFC 6455 §7.4 forbids on the wire.
    """
    if code is CloseReason.NO_STATUS_RCVD:
        code = None
    if code is None:
        if reason:
            raise TypeError("cannot specify a reason without a code")
        return b""
    if code in LOCAL_ONLY_CLOSE_REASONS:
        code = CloseReason.NORMAL_CLOSURE
    if not is_valid_close_code(code):
        raise LocalProtocolError(f"close code {code} may not be sent (RFC 6455 §7.4)")
    payload = struct.pack("!H", code)
    if reason:
        raw = reason.encode("utf-8")
        if len(raw) > 123:
            raw = raw[:123].decode("utf-8", "ignore").encode("utf-8")
        payload += raw
    return payload
