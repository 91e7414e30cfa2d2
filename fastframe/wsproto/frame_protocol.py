"""Opcodes, close codes and frame constants of wsproto's ``frame_protocol``.

The framing itself is fastframe's codec (see :mod:`.connection`); this
module keeps the names consumers import: :class:`CloseReason` (with
wsproto's members, no more), :class:`Opcode`, :class:`ParseFailed` and the
RFC 6455 §5.2 and §7.4 constants.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

__all__ = [
    "LOCAL_ONLY_CLOSE_REASONS",
    "MAX_CLOSE_REASON",
    "MAX_FRAME_PAYLOAD",
    "MAX_PAYLOAD_EIGHT_BYTE",
    "MAX_PAYLOAD_NORMAL",
    "MAX_PAYLOAD_TWO_BYTE",
    "MIN_CLOSE_REASON",
    "CloseReason",
    "Frame",
    "Opcode",
    "ParseFailed",
    "RsvBits",
]


class Opcode(IntEnum):
    """RFC 6455 §5.2: frame opcodes."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA

    def iscontrol(self) -> bool:
        """True for CLOSE, PING and PONG (§5.5)."""
        return bool(self & 0x08)


class CloseReason(IntEnum):
    """RFC 6455 §7.4.1 status codes, and 1012/1013 (IANA), as wsproto names
    them.  A received code that is not a member (3000-4999, 1014) comes back
    as a plain int."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005  # never on the wire
    ABNORMAL_CLOSURE = 1006  # never on the wire
    INVALID_FRAME_PAYLOAD_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXT = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    TLS_HANDSHAKE_FAILED = 1015  # never on the wire


#: Codes that mean something locally and are never sent (§7.4.1).
LOCAL_ONLY_CLOSE_REASONS = (
    CloseReason.NO_STATUS_RCVD,
    CloseReason.ABNORMAL_CLOSURE,
    CloseReason.TLS_HANDSHAKE_FAILED,
)

# RFC 6455 §7.4.2: status code ranges.
MIN_CLOSE_REASON = 1000
MIN_PROTOCOL_CLOSE_REASON = 1000
MAX_PROTOCOL_CLOSE_REASON = 2999
MIN_LIBRARY_CLOSE_REASON = 3000
MAX_LIBRARY_CLOSE_REASON = 3999
MIN_PRIVATE_CLOSE_REASON = 4000
MAX_PRIVATE_CLOSE_REASON = 4999
MAX_CLOSE_REASON = 4999

# RFC 6455 §5.2: payload lengths.
PAYLOAD_LENGTH_TWO_BYTE = 126
PAYLOAD_LENGTH_EIGHT_BYTE = 127
MAX_PAYLOAD_NORMAL = 125
MAX_PAYLOAD_TWO_BYTE = 2**16 - 1
MAX_PAYLOAD_EIGHT_BYTE = 2**64 - 1
MAX_FRAME_PAYLOAD = MAX_PAYLOAD_EIGHT_BYTE


class ParseFailed(Exception):
    """The peer broke RFC 6455; ``code`` is the close code to answer with.

    Not raised out of the connection: it becomes the
    :class:`~.events.CloseConnection` event that ends ``events()``.
    """

    def __init__(self, msg: str, code: int = CloseReason.PROTOCOL_ERROR) -> None:
        super().__init__(msg)
        self.code = code


class RsvBits(NamedTuple):
    """The three reserved bits of a frame header."""

    rsv1: bool
    rsv2: bool
    rsv3: bool


class Frame(NamedTuple):
    """A frame, or the part of one, as wsproto describes it."""

    opcode: Opcode
    payload: bytes | str | tuple[int, str]
    frame_finished: bool
    message_finished: bool
