"""Value types shared by both implementations."""

from __future__ import annotations

import enum

__all__ = ["CONTROL_OPCODES", "DATA_OPCODES", "CloseCode", "Opcode"]


class Opcode(enum.IntEnum):
    """Frame opcodes, RFC 6455 §5.2 (values 3-7 and 0xB-0xF are reserved)."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


#: RFC 6455 §5.5: control frames have the high bit of the opcode set.
CONTROL_OPCODES = frozenset({Opcode.CLOSE, Opcode.PING, Opcode.PONG})
DATA_OPCODES = frozenset({Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY})


class CloseCode(enum.IntEnum):
    """Close codes, RFC 6455 §7.4.1 and the IANA registry (§11.7)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005  # never on the wire
    ABNORMAL_CLOSURE = 1006  # never on the wire
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # never on the wire
