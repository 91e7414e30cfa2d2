"""The pure-Python twin of ``_codec_c``: same names, same behaviour, same exceptions.

This is what runs where no compiled wheel or compiler is available, or when
``FASTFRAME_NO_EXTENSIONS=1`` is set.  It favours whole-buffer operations that
CPython runs in C (``int.from_bytes`` for masking, ``bytes.decode`` for UTF-8)
over byte loops.  ``tests/test_parity.py`` proves it agrees with the compiled
core on random input.
"""

from __future__ import annotations

import codecs
import operator
import os
import struct
from typing import Any, Callable, Union

from .exceptions import InvalidUTF8, LocalProtocolError, PayloadTooBig, ProtocolError
from .types import Opcode

__all__ = [
    "Frame",
    "FrameParser",
    "Utf8Validator",
    "apply_mask",
    "encode_frame",
    "encode_header",
    "mask_inplace",
    "validate_utf8",
]

BytesLike = Union[bytes, bytearray, memoryview]

# Opcode members by value, so that a parsed frame carries the enum member.
_OPCODES = {int(op): op for op in Opcode}

# RFC 6455 §5.2: a payload length of 126 announces a 16-bit length, 127 a
# 64-bit length whose most significant bit must be 0.
_LEN16 = 126
_LEN64 = 127
_MAX_LEN64 = (1 << 63) - 1
# RFC 6455 §5.5: all control frames have a payload of 125 bytes or less.
_MAX_CONTROL = 125

_pack_h2 = struct.Struct("!BB").pack
_pack_h4 = struct.Struct("!BBH").pack
_pack_h10 = struct.Struct("!BBQ").pack


def _to_bytes(data: Any) -> bytes:
    if type(data) is bytes:
        return data
    try:
        out: bytes = memoryview(data).tobytes()
        return out
    except TypeError:
        raise TypeError(
            f"a bytes-like object is required, not {type(data).__name__!r}"
        ) from None


def _mask_bytes(mask: Any) -> bytes:
    key = _to_bytes(mask)
    if len(key) != 4:
        raise ValueError(f"mask must be 4 bytes long, not {len(key)}")
    return key


def _xor(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask`` (RFC 6455 §5.3)."""
    n = len(data)
    if n == 0:
        return b""
    # One big-integer XOR instead of a byte loop: int.from_bytes and to_bytes
    # run in C, so this costs a few passes over the data, not n bytecodes.
    key = mask * ((n >> 2) + 1)
    if len(key) != n:
        key = key[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(
        n, "little"
    )


def apply_mask(data: BytesLike, mask: BytesLike) -> bytes:
    """Return ``data`` XORed with the 4-byte ``mask`` (RFC 6455 §5.3)."""
    return _xor(_to_bytes(data), _mask_bytes(mask))


def mask_inplace(buf: Any, mask: BytesLike) -> None:
    """XOR the writable buffer ``buf`` with the 4-byte ``mask`` in place."""
    view = memoryview(buf)
    if not view.c_contiguous:
        raise BufferError("mask_inplace() needs a C-contiguous buffer")
    if view.readonly:
        raise TypeError("mask_inplace() needs a writable buffer")
    mask = _mask_bytes(mask)
    view = view.cast("B")
    view[:] = _xor(bytes(view), mask)


class _MaskPool:
    """Hands out 4-byte keys from one ``os.urandom`` draw (RFC 6455 §5.3).

    ``os.urandom(4)`` is a system call per frame; drawing 4 KiB at a time
    amortises it over 1024 frames while keeping a strong source.
    """

    __slots__ = ("_block", "_pos")

    def __init__(self) -> None:
        self._block = b""
        self._pos = 0

    def next(self) -> bytes:
        pos = self._pos
        if pos >= len(self._block):
            self._block = os.urandom(4096)
            pos = 0
        self._pos = pos + 4
        return self._block[pos : pos + 4]


_mask_pool = _MaskPool()


def _header(opcode: int, length: int, fin: bool, rsv1: bool, masked: bool) -> bytes:
    try:
        op = operator.index(opcode)
    except TypeError:
        raise TypeError(f"opcode must be an int, not {type(opcode).__name__!r}") from None
    if op not in _OPCODES:
        raise LocalProtocolError(f"invalid opcode {op:#x} (RFC 6455 §5.2)")
    # RFC 6455 §5.5: control frames are never fragmented and carry ≤ 125 bytes.
    if op & 0x8:
        if not fin:
            raise LocalProtocolError(
                f"control frame {Opcode(op).name} must not be fragmented (RFC 6455 §5.5)"
            )
        if length > _MAX_CONTROL:
            raise LocalProtocolError(
                f"control frame {Opcode(op).name} payload is {length} bytes, "
                f"over the 125-byte limit (RFC 6455 §5.5)"
            )
    b0 = op | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    m = 0x80 if masked else 0
    # RFC 6455 §5.2: the minimal number of bytes must be used for the length.
    if length < _LEN16:
        return _pack_h2(b0, m | length)
    if length < 0x10000:
        return _pack_h4(b0, m | _LEN16, length)
    if length > _MAX_LEN64:
        raise LocalProtocolError("payload too long for a WebSocket frame")
    return _pack_h10(b0, m | _LEN64, length)


def encode_header(
    opcode: int, length: int, *, fin: bool = True, rsv1: bool = False
) -> bytes:
    """Return the header of an unmasked frame carrying ``length`` bytes."""
    length = operator.index(length)
    if length < 0:
        raise ValueError("length must not be negative")
    return _header(opcode, length, fin, rsv1, False)


def encode_frame(
    opcode: int,
    payload: BytesLike,
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bool | BytesLike | None = None,
) -> bytes:
    """Return one complete frame (RFC 6455 §5.2)."""
    data = _to_bytes(payload)
    if mask is None or mask is False:
        return _header(opcode, len(data), fin, rsv1, False) + data
    if mask is True:
        key = _mask_pool.next()
    else:
        key = _mask_bytes(mask)
    return _header(opcode, len(data), fin, rsv1, True) + key + _xor(data, key)


class Frame:
    """One WebSocket frame with its payload unmasked (RFC 6455 §5.2)."""

    __slots__ = ("fin", "opcode", "payload", "rsv1", "rsv2", "rsv3")

    def __init__(
        self,
        opcode: int,
        payload: bytes = b"",
        fin: bool = True,
        rsv1: bool = False,
        rsv2: bool = False,
        rsv3: bool = False,
    ) -> None:
        self.opcode = _OPCODES.get(opcode, opcode)
        self.payload = payload
        self.fin = fin
        self.rsv1 = rsv1
        self.rsv2 = rsv2
        self.rsv3 = rsv3

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return (
            self.opcode == other.opcode
            and self.fin == other.fin
            and self.rsv1 == other.rsv1
            and self.rsv2 == other.rsv2
            and self.rsv3 == other.rsv3
            and self.payload == other.payload
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return _frame_repr(self)


def _frame_repr(f: Any) -> str:
    try:
        name = Opcode(f.opcode).name
    except ValueError:
        name = hex(f.opcode)
    flags = "".join(
        s for s, on in (("fin", f.fin), (" rsv1", f.rsv1), (" rsv2", f.rsv2), (" rsv3", f.rsv3)) if on
    ).strip()
    payload = f.payload
    shown = repr(payload[:32]) + ("..." if len(payload) > 32 else "")
    return f"<Frame {name} [{flags}] {len(payload)} bytes {shown}>"


# The same first-byte table as the compiled core: 1 where the opcode is known
# (§5.2), RSV2/RSV3 are clear, RSV1 is clear unless allowed (RFC 7692 §6) and
# a control frame is final (§5.5).
def _b0_table(allow_rsv1: bool) -> bytes:
    return bytes(
        1
        if (b0 & 0x0F) in _OPCODES
        and not b0 & 0x30
        and (allow_rsv1 or not b0 & 0x40)
        and (not b0 & 0x08 or b0 & 0x80)
        else 0
        for b0 in range(256)
    )


_B0_OK = _b0_table(False)
_B0_OK_RSV1 = _b0_table(True)
_OPCODE_BY_BYTE = tuple(_OPCODES.get(i, i) for i in range(16))

# Parser states.  Module-level ints rather than an enum: they are compared on
# every call and the compiled twin uses the same numbers.
_S_HEADER = 0
_S_PAYLOAD = 1
_S_FAILED = 2
# check_utf8: the message the parser follows (_msg): none open, uncompressed
# text (checked as its bytes arrive), or any other (binary, compressed, or
# opened by a frame that breaks RFC 6455 §5.4, which the caller refuses).
_MSG_NONE = 0
_MSG_TEXT = 1
_MSG_OTHER = 2
# How the payload of a frame is checked (_ftext): not at all; a frame of a
# fragmented text message, whole or in pieces; the one frame of a text
# message, only when its payload arrives over more than one call (else
# decoding it checks it in that call).
_FT_NONE = 0
_FT_FRAG = 1
_FT_SINGLE = 2


def _dispatch(
    frames: list[Frame],
    on_message: Callable[[Any, str | bytes], object],
    on_error: Callable[[Any, Exception], object],
    arg: Any,
) -> list[Frame]:
    """feed_messages: hand the whole messages at the head of ``frames`` to
    the sink; return the frames from the first other one on.

    The whole-message rule is the protocol layer's, written once there in
    ``MessageAssembler.frame`` (``_protocol_py.py``); this is its fast path,
    which leaves every other frame, bad UTF-8 included, to that method."""
    for i, f in enumerate(frames):
        op = f.opcode
        if not f.fin or f.rsv1 or (op != Opcode.TEXT and op != Opcode.BINARY):
            return frames[i:]
        message: str | bytes = f.payload
        if op == Opcode.TEXT:
            try:
                message = f.payload.decode("utf-8")
            except UnicodeDecodeError:
                return frames[i:]
        try:
            on_message(arg, message)
        except Exception as exc:  # noqa: BLE001 - the sink is user code: report, go on
            on_error(arg, exc)
    return []


class FrameParser:
    """Incremental frame parser enforcing RFC 6455 §5.1-§5.5.

    Args:
        expect_mask: True on the server side, where every frame from the
            client must be masked (§5.1); False on the client side, where
            frames from the server must not be.
        max_frame_size: the largest payload accepted, or None for no limit.
            A larger frame is refused from its header alone (1009).
        allow_rsv1: accept RSV1, set when permessage-deflate was negotiated.
        max_uncompressed_frame_size: a lower limit for text and binary
            frames without RSV1 (None: ``max_frame_size``).  With
            permessage-deflate, ``max_frame_size`` leaves room for the
            overhead of compressed data; a text or binary frame without
            RSV1 starts an uncompressed message (RFC 7692 §6.1), whose
            bytes count whole towards the message limit.
        check_utf8: fail fast on text that is not UTF-8 (RFC 6455 §8.1):
            the text of an uncompressed message is checked as its bytes are
            parsed, across its frames, and :class:`InvalidUTF8` (1007) is
            raised by the call that brings the first invalid byte (or the
            final frame of a message that ends inside a character).  A text
            message of one frame whose payload is parsed in one call is not
            checked: decoding it, as its user must, checks it in the same
            call.  Compressed messages (RSV1) and frames that break §5.4
            are not checked.  Off by default: framing alone, for callers
            that do not read the text (the connection turns it on).
    """

    def __init__(
        self,
        *,
        expect_mask: bool,
        max_frame_size: int | None = 1 << 20,
        allow_rsv1: bool = False,
        max_uncompressed_frame_size: int | None = None,
        check_utf8: bool = False,
    ) -> None:
        if max_frame_size is None:
            max_frame_size = _MAX_LEN64
        elif max_frame_size < 0:
            raise ValueError("max_frame_size must be >= 0 or None")
        if max_uncompressed_frame_size is None:
            max_uncompressed_frame_size = max_frame_size
        elif max_uncompressed_frame_size < 0:
            raise ValueError("max_uncompressed_frame_size must be >= 0 or None")
        self.expect_mask = bool(expect_mask)
        self.max_frame_size = min(int(max_frame_size), _MAX_LEN64)
        self.max_uncompressed_frame_size = min(int(max_uncompressed_frame_size), self.max_frame_size)
        self.allow_rsv1 = bool(allow_rsv1)
        self._state = _S_HEADER
        # Bytes of a header that has not arrived whole (at most 13).
        self._hdr = b""
        # The frame whose payload is arriving: first byte, key, length, and
        # the pieces received so far (joined once, when it is complete).
        self._b0 = 0
        self._key = b""
        self._len = 0
        self._have = 0
        self._chunks: list[bytes] = []
        self._error: BaseException | None = None
        # check_utf8: the message followed (_MSG_*), the validator of its
        # text (reset for each text message), how the frame in progress is
        # checked (_FT_*).
        self.check_utf8 = bool(check_utf8)
        self._msg = _MSG_NONE
        self._ftext = _FT_NONE
        self._u8: Any = Utf8Validator() if self.check_utf8 else None

    @property
    def failed(self) -> bool:
        """True once the parser has raised; every later ``feed`` raises again."""
        return self._state == _S_FAILED

    @property
    def in_frame(self) -> bool:
        """True while a frame has begun (some of its header or payload
        arrived) and has not ended."""
        return self._state == _S_PAYLOAD or (self._state == _S_HEADER and len(self._hdr) > 0)

    def _fail(self, exc: Any, frames: list[Frame] | None) -> Any:
        self._state = _S_FAILED
        self._error = exc
        self._hdr = b""
        self._chunks = []
        if frames is not None:
            exc.frames = frames
        return exc

    def _frame_text(self, b0: int) -> int:
        """check_utf8: how the payload of the frame with first byte ``b0``,
        whose header is complete and whose payload does not come whole, is
        checked (_FT_*); follows the message.  (The parse loop tests the
        case of a whole frame itself and calls _track for the others.)"""
        if self._msg == _MSG_NONE and b0 & 0x80:
            # A final frame with no message open: a whole message or a
            # control frame; it opens none.
            return _FT_SINGLE if b0 == 0x81 and self.check_utf8 else _FT_NONE
        return self._track(b0)

    def _track(self, b0: int) -> int:
        """_frame_text for a frame that may open, continue or end a message:
        the rules of MessageAssembler.frame (RFC 6455 §5.4, RFC 7692 §6.1).
        A frame that breaks them is not checked (the caller refuses it, with
        1002) and the message it opens is not either."""
        op = b0 & 0x0F
        ft = _FT_NONE
        if not self.check_utf8 or op & 0x08:
            return _FT_NONE  # control frames belong to no message
        if op == 0:
            if self._msg == _MSG_TEXT and not b0 & 0x40:
                ft = _FT_FRAG
            elif self._msg != _MSG_OTHER:
                self._msg = _MSG_OTHER  # nothing to continue, or RSV1 on a continuation
                self._u8.reset()
        elif self._msg != _MSG_NONE:
            self._msg = _MSG_OTHER  # a new message while one is open
            self._u8.reset()
        elif op == 1 and not b0 & 0x40:
            self._msg = _MSG_TEXT
            self._u8.reset()
            ft = _FT_FRAG if not b0 & 0x80 else _FT_SINGLE
        else:
            self._msg = _MSG_OTHER  # binary, or compressed (checked once inflated)
        if b0 & 0x80:
            self._msg = _MSG_NONE
        return ft

    def _check_text(self, data: bytes, fin: bool, frames: list[Frame]) -> None:
        """Validate more unmasked bytes of the text message (RFC 6455 §8.1:
        fail at the first byte that cannot be UTF-8); with ``fin`` the
        message ends here and must not end inside a character."""
        try:
            self._u8.feed(data)
        except InvalidUTF8:
            raise self._fail(InvalidUTF8("text message is not valid UTF-8"), frames) from None
        if fin:
            try:
                self._u8.feed(b"", True)
            except InvalidUTF8:
                raise self._fail(
                    InvalidUTF8("text message ends inside a UTF-8 sequence"), frames
                ) from None

    def _add(self, chunk: bytes, frames: list[Frame]) -> None:
        """More payload of the frame in progress; text to check is unmasked
        as it comes (at its offset in the frame) and checked now, but not a
        one-frame message whose payload comes in this call alone (a header
        split across calls): decoding it checks it in this call."""
        if self._ftext:
            key = self._key
            if key:
                r = self._have & 3
                chunk = _xor(chunk, key[r:] + key[:r])
            if self._ftext == _FT_FRAG or self._have or len(chunk) != self._len:
                self._check_text(chunk, False, frames)
        self._chunks.append(chunk)
        self._have += len(chunk)

    def _emit(self, payload: bytes, frames: list[Frame]) -> None:
        if self._key and not self._ftext:  # checked text was unmasked by _add
            payload = _xor(payload, self._key)
        b0 = self._b0
        frames.append(
            Frame(
                b0 & 0x0F, payload, b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x20 != 0, b0 & 0x10 != 0
            )
        )

    def feed_messages(
        self,
        data: BytesLike,
        on_message: Callable[[Any, str | bytes], object],
        on_error: Callable[[Any, Exception], object],
        arg: Any,
        size: int = -1,
    ) -> list[Frame]:
        """Like :meth:`feed`, but each whole message parsed before the first
        frame that must be returned goes to ``on_message(arg, message)``
        (``str`` for text, ``bytes`` for binary); an exception from it goes
        to ``on_error(arg, exc)`` and parsing goes on.  Returns the other
        frames, in order.  The caller must not have a fragmented message
        open (its continuation frames would be overtaken).  With ``size``
        >= 0 only the first ``size`` bytes of ``data`` count (a read buffer
        and the length read, without a slice object per read).

        A whole message is a final, uncompressed text or binary frame; text
        that is not valid UTF-8 stays a frame, for the caller to fail (1007).
        """
        # A view holds a bytearray against resizing for the call, as the
        # compiled parser holds it; released however the call ends (a failed
        # parser keeps its error, whose traceback would keep the view).
        view = None
        if size >= 0:
            data = view = memoryview(data)[:size]
        elif type(data) is bytearray:
            data = view = memoryview(data)
        try:
            try:
                frames = self.feed(data)
            except ProtocolError as exc:
                exc.frames = _dispatch(exc.frames, on_message, on_error, arg)
                raise
            try:
                return _dispatch(frames, on_message, on_error, arg)
            except BaseException as exc:
                # on_error raised: the compiled parser stops mid-read there,
                # where the stream's position is lost; failed for good, as it.
                if self._state != _S_FAILED:
                    self._fail(exc, None)
                raise
        finally:
            if view is not None:
                view.release()

    def feed(self, data: BytesLike) -> list[Frame]:
        """Consume ``data`` and return the frames it completes, in order.

        Raises:
            ProtocolError: the stream breaks RFC 6455 (1002); its ``frames``
                holds the frames completed before the error.
            PayloadTooBig: a frame is longer than ``max_frame_size`` (1009).
            TypeError: ``data`` is not bytes-like.

        After any error but TypeError (a ProtocolError, or one that is not
        the peer's, as MemoryError) the parser is failed: every later call
        raises the same error again.
        """
        if self._state == _S_FAILED:
            err = self._error
            assert err is not None
            raise type(err)(*err.args)
        if type(data) is not bytes:
            data = _to_bytes(data)
        try:
            return self._parse(data)
        except BaseException as exc:
            # A ProtocolError failed the parser already; anything else
            # (MemoryError) stopped it where the stream's position is lost.
            if self._state != _S_FAILED:
                self._fail(exc, None)
            raise

    def _parse(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        if self._state == _S_PAYLOAD:
            need = self._len - self._have
            if len(data) < need:
                if data:
                    self._add(data, frames)
                return frames
            if need:
                self._add(data[:need], frames)
            if self._ftext and self._b0 & 0x80:
                self._check_text(b"", True, frames)
            payload = b"".join(self._chunks)
            self._chunks = []
            self._emit(payload, frames)
            self._state = _S_HEADER
            data = data[need:]
        elif self._hdr:
            data = self._hdr + data
            self._hdr = b""
        pos = 0
        end = len(data)
        # Locals for the loop: attribute and global lookups cost more than
        # the work per small frame.
        ok = _B0_OK_RSV1 if self.allow_rsv1 else _B0_OK
        mask_bit = 0x80 if self.expect_mask else 0
        limit = self.max_frame_size
        plain_limit = self.max_uncompressed_frame_size
        append = frames.append
        opcodes = _OPCODE_BY_BYTE
        new_frame = Frame.__new__
        check = self.check_utf8
        while end - pos >= 2:
            b0 = data[pos]
            b1 = data[pos + 1]
            # One table lookup for the §5.2/§5.5 rules on the first byte, as
            # the compiled core does; the slow path names the error.
            if not ok[b0] or (b1 & 0x80) != mask_bit or (b0 & 0x08 and b1 & 0x7F > _MAX_CONTROL):
                raise self._fail(self._check_header(b0, b1), frames)
            length = b1 & 0x7F
            if length < _LEN16:
                hlen = 2
            elif length == _LEN16:
                hlen = 4
            else:
                hlen = 10
            if mask_bit:
                hlen += 4
            if end - pos < hlen:
                break
            if length == _LEN16:
                # RFC 6455 §5.2 asks senders for the minimal encoding but does
                # not make a longer one invalid; like the peers, accept it.
                length = (data[pos + 2] << 8) | data[pos + 3]
            elif length == _LEN64:
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                # RFC 6455 §5.2: the most significant bit MUST be 0.
                if length > _MAX_LEN64:
                    raise self._fail(
                        ProtocolError("64-bit payload length has its most significant bit set"),
                        frames,
                    )
            if length > plain_limit:
                # RFC 7692 §6.1: a text or binary frame without RSV1 is not
                # compressed; its payload is message bytes (RFC 6455 §10.4).
                cap = plain_limit if (b0 & 0x4F) in (0x01, 0x02) else limit
                if length > cap:
                    raise self._fail(
                        PayloadTooBig(f"frame of {length} bytes exceeds max_frame_size {cap}"), frames
                    )
            start = pos + hlen
            if end - start < length:
                self._b0 = b0
                self._key = data[start - 4 : start] if mask_bit else b""
                self._state = _S_PAYLOAD
                self._len = length
                self._ftext = self._frame_text(b0) if check else _FT_NONE
                self._have = 0
                self._chunks = []
                if start < end:
                    self._add(data[start:], frames)
                return frames
            # A frame of a fragmented message (or a control frame within
            # one) is followed; a final frame with no message open costs
            # this one test.
            ftext = self._track(b0) if check and (not b0 & 0x80 or self._msg) else _FT_NONE
            payload = data[start : start + length]
            if mask_bit and length:
                key = data[start - 4 : start]
                k = key * ((length >> 2) + 1)
                payload = (
                    int.from_bytes(payload, "little") ^ int.from_bytes(k[:length], "little")
                ).to_bytes(length, "little")
            if ftext == _FT_FRAG:
                # A fragment of a text message; a whole one-frame message is
                # left to decoding, which checks it in this call too (and
                # _track says _FT_SINGLE for none here).
                self._check_text(payload, b0 & 0x80 != 0, frames)
            f = new_frame(Frame)
            f.opcode = opcodes[b0 & 0x0F]
            f.payload = payload
            f.fin = b0 & 0x80 != 0
            f.rsv1 = b0 & 0x40 != 0
            f.rsv2 = b0 & 0x20 != 0
            f.rsv3 = b0 & 0x10 != 0
            append(f)
            pos = start + length
        if pos < end:
            self._hdr = data[pos:]
        return frames

    def _check_header(self, b0: int, b1: int) -> ProtocolError | None:
        # The order of these checks is part of the parity contract with the
        # compiled core: the first failing rule names the error.
        opcode = b0 & 0x0F
        # RFC 6455 §5.2: opcodes 3-7 and 0xB-0xF are reserved.
        if opcode not in _OPCODES:
            return ProtocolError(f"reserved opcode {opcode:#x}")
        # RFC 6455 §5.2: RSV bits must be 0 unless an extension defines them;
        # RFC 7692 §6 gives RSV1 to permessage-deflate.
        if b0 & 0x30 or (b0 & 0x40 and not self.allow_rsv1):
            return ProtocolError("reserved bit set without a negotiated extension")
        # RFC 6455 §5.5: control frames are not fragmented and carry ≤ 125 bytes.
        if opcode & 0x8:
            if not b0 & 0x80:
                return ProtocolError("fragmented control frame")
            if b1 & 0x7F > _MAX_CONTROL:
                return ProtocolError("control frame payload longer than 125 bytes")
        # RFC 6455 §5.1: a client masks every frame, a server never does.
        if bool(b1 & 0x80) != self.expect_mask:
            if self.expect_mask:
                return ProtocolError("unmasked frame from a client")
            return ProtocolError("masked frame from a server")
        return None


class Utf8Validator:
    """Incremental, fail-fast UTF-8 validation (RFC 3629, RFC 6455 §8.1).

    ``feed`` raises :class:`InvalidUTF8` as soon as the bytes seen so far
    cannot begin a valid UTF-8 string; surrogates, overlong forms and code
    points above U+10FFFF are invalid.
    """

    __slots__ = ("_decoder", "_failed")

    def __init__(self) -> None:
        # CPython's incremental decoder is strict in exactly this way: it
        # rejects a truncated sequence as soon as its next byte is out of
        # range, not only when the sequence ends.
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._failed = False

    def feed(self, data: BytesLike, final: bool = False) -> None:
        """Validate the next bytes; with ``final`` the string must end here.

        Raises:
            InvalidUTF8: the bytes so far are not a prefix of valid UTF-8
                (or, with ``final``, not valid UTF-8).
        """
        if self._failed:
            raise InvalidUTF8("invalid UTF-8")
        if type(data) is not bytes:
            data = _to_bytes(data)
        try:
            self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            self._failed = True
            raise InvalidUTF8(f"invalid UTF-8: {exc.reason}") from None
        # CPython's decoder accepts ED A0..BF as the start of a sequence and
        # rejects it only at the third byte; that prefix can only become a
        # surrogate (U+D800-U+DFFF), so fail now, as the compiled core does.
        pending = self._decoder.getstate()[0]
        if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
            self._failed = True
            raise InvalidUTF8("invalid UTF-8: surrogate")

    def reset(self) -> None:
        """Forget everything seen, to validate a new string."""
        self._decoder.reset()
        self._failed = False


def validate_utf8(data: BytesLike) -> bool:
    """Return True if ``data`` is valid UTF-8 as a whole."""
    if type(data) is not bytes:
        data = _to_bytes(data)
    try:
        codecs.utf_8_decode(data, "strict", True)
    except UnicodeDecodeError:
        return False
    return True
