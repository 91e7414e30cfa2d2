"""fastframe: a fast WebSocket (RFC 6455, RFC 7692) codec and protocol for Python."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._impl import IMPLEMENTATION
from ._impl import codec as _codec
from .exceptions import (
    ClientDisconnected,
    ConcurrencyError,
    ConnectionClosed,
    FastFrameError,
    HandshakeError,
    HandshakeTimeout,
    InvalidResponse,
    InvalidStatus,
    InvalidURI,
    InvalidUTF8,
    LocalProtocolError,
    PayloadTooBig,
    ProtocolError,
    RemoteProtocolError,
)
from .types import CloseCode, Opcode

# The asyncio layer is imported on first use, so that importing the codec
# alone stays cheap (and free of asyncio) for servers that only plug it in.
# Type checkers see the real names (a module __getattr__ alone would make
# them all ``object`` to users' code: py.typed promises better).
if TYPE_CHECKING:
    from .client import connect
    from .connection import Listener, WebSocket
    from .deflate import DeflateConfig
    from .protocol import Connection
    from .server import Server, broadcast, serve

_LAZY = {
    "serve": ("server", "serve"),
    "Server": ("server", "Server"),
    "broadcast": ("server", "broadcast"),
    "connect": ("client", "connect"),
    "WebSocket": ("connection", "WebSocket"),
    "Listener": ("connection", "Listener"),
    "Connection": ("protocol", "Connection"),
    "DeflateConfig": ("deflate", "DeflateConfig"),
}


def __getattr__(name: str) -> object:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'fastframe' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), attr)
    globals()[name] = value
    return value


__version__ = "0.1.0"

Frame = _codec.Frame
FrameParser = _codec.FrameParser
Utf8Validator = _codec.Utf8Validator
apply_mask = _codec.apply_mask
mask_inplace = _codec.mask_inplace
encode_frame = _codec.encode_frame
encode_header = _codec.encode_header
validate_utf8 = _codec.validate_utf8

__all__ = [
    "IMPLEMENTATION",
    "ClientDisconnected",
    "CloseCode",
    "ConcurrencyError",
    "Connection",
    "ConnectionClosed",
    "DeflateConfig",
    "FastFrameError",
    "Frame",
    "FrameParser",
    "HandshakeError",
    "HandshakeTimeout",
    "InvalidResponse",
    "InvalidStatus",
    "InvalidURI",
    "InvalidUTF8",
    "Listener",
    "LocalProtocolError",
    "Opcode",
    "PayloadTooBig",
    "ProtocolError",
    "RemoteProtocolError",
    "Server",
    "Utf8Validator",
    "WebSocket",
    "__version__",
    "apply_mask",
    "broadcast",
    "connect",
    "encode_frame",
    "encode_header",
    "mask_inplace",
    "serve",
    "validate_utf8",
]
