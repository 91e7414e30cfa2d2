"""Typed surface of the compiled core; ``_codec_py`` has the same one."""

from typing import Any, Callable

from typing_extensions import TypeAlias

from .types import Opcode

BytesLike: TypeAlias = bytes | bytearray | memoryview

class Frame:
    """One WebSocket frame with its payload unmasked (RFC 6455 §5.2)."""

    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: Opcode
    payload: bytes
    def __init__(
        self,
        opcode: int,
        payload: bytes = ...,
        fin: bool = ...,
        rsv1: bool = ...,
        rsv2: bool = ...,
        rsv3: bool = ...,
    ) -> None: ...

class FrameParser:
    """Incremental frame parser enforcing RFC 6455 §5.1-§5.5.

    Args:
        expect_mask: True on the server side (client frames must be masked).
        max_frame_size: the largest payload accepted, None for no limit; a
            larger frame is refused from its header alone (1009).
        allow_rsv1: accept RSV1 (permessage-deflate negotiated).
        max_uncompressed_frame_size: a lower limit for text and binary
            frames without RSV1, the start of an uncompressed message
            (RFC 7692 §6.1); None: ``max_frame_size``.
        check_utf8: fail fast on text that is not UTF-8 (RFC 6455 §8.1):
            the text of an uncompressed message is checked as its bytes
            are parsed, across its frames, and the parser raises
            ``InvalidUTF8`` at the call that brings the first invalid byte
            (or the final frame of a message that ends inside a
            character).  A text message of one frame whose payload is
            parsed in one call is not checked: decoding it, as its user
            must, checks it in the same call.  Compressed messages (RSV1)
            and frames that break §5.4 are not checked.  Off by default.
    """

    expect_mask: bool
    allow_rsv1: bool
    check_utf8: bool
    max_frame_size: int
    max_uncompressed_frame_size: int
    failed: bool
    #: True while a frame has begun and has not ended.
    in_frame: bool
    def __init__(
        self, *, expect_mask: bool, max_frame_size: int | None = ..., allow_rsv1: bool = ...,
        max_uncompressed_frame_size: int | None = ..., check_utf8: bool = ...,
    ) -> None: ...
    def feed(self, data: BytesLike) -> list[Frame]:
        """Consume ``data``; return the frames it completes, in order.

        Raises:
            ProtocolError: RFC 6455 violation (1002); ``frames`` on the
                exception holds the frames completed before it.
            PayloadTooBig: a frame over ``max_frame_size`` (1009).
            InvalidUTF8: with ``check_utf8``, text that is not UTF-8 (1007).
            TypeError: ``data`` is not bytes-like.

        After any error but TypeError (a ProtocolError, or one that is not
        the peer's, as MemoryError) the parser is failed: every later call
        raises the same error again.
        """
    def feed_messages(
        self,
        data: BytesLike,
        on_message: Callable[[Any, str | bytes], object],
        on_error: Callable[[Any, Exception], object],
        arg: Any,
        size: int = -1,
    ) -> list[Frame]:
        """Like ``feed``, but whole messages (final, uncompressed text or
        binary frames) parsed before the first other frame go to
        ``on_message(arg, message)`` as they complete; exceptions from it go
        to ``on_error(arg, exc)``.  Returns the other frames, in order.
        With ``size`` >= 0 only the first ``size`` bytes of ``data`` count."""

class Utf8Validator:
    """Incremental, fail-fast UTF-8 validation."""

    def feed(self, data: BytesLike, final: bool = ...) -> None:
        """Raises: InvalidUTF8 as soon as the input cannot be valid UTF-8."""
    def reset(self) -> None: ...

def apply_mask(data: BytesLike, mask: BytesLike) -> bytes:
    """Return ``data`` XORed with the 4-byte ``mask`` (RFC 6455 §5.3).

    Raises:
        ValueError: ``mask`` is not 4 bytes long.
        TypeError: an argument is not bytes-like.
    """

def mask_inplace(buf: BytesLike, mask: BytesLike) -> None:
    """XOR the writable, contiguous ``buf`` with ``mask`` in place.

    Raises:
        TypeError: ``buf`` is read-only or not bytes-like.
        BufferError: ``buf`` is not contiguous.
        ValueError: ``mask`` is not 4 bytes long.
    """

def encode_frame(
    opcode: int,
    payload: BytesLike,
    *,
    fin: bool = ...,
    rsv1: bool = ...,
    mask: bool | BytesLike | None = ...,
) -> bytes:
    """Return one frame; ``mask=True`` draws a fresh random key (§5.3).

    Raises:
        LocalProtocolError: reserved opcode, or control frame fragmented or
            over 125 bytes (§5.5).
    """

def encode_header(opcode: int, length: int, *, fin: bool = ..., rsv1: bool = ...) -> bytes:
    """Return the header of an unmasked frame of ``length`` payload bytes."""

def validate_utf8(data: BytesLike) -> bool:
    """Return True if ``data`` is valid UTF-8."""
