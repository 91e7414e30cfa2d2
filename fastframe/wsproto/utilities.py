"""Exceptions and small helpers of wsproto's ``utilities`` module."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..exceptions import FastFrameError
from ..handshake import GUID, accept_key

if TYPE_CHECKING:
    from .events import Event

__all__ = [
    "ACCEPT_GUID",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "generate_accept_token",
    "generate_nonce",
    "normed_header_dict",
    "split_comma_header",
]

#: RFC 6455 §1.3: the GUID appended to the key before hashing.
ACCEPT_GUID = GUID


class ProtocolError(FastFrameError):
    """Base of the two errors below (as in wsproto; also a
    :class:`fastframe.FastFrameError`)."""


class LocalProtocolError(ProtocolError):
    """The caller asked for something the state or RFC 6455 does not allow;
    nothing was sent and the state is unchanged."""


class RemoteProtocolError(ProtocolError):
    """The peer's opening handshake is not valid.

    ``event_hint`` is the event to send it in answer (a
    :class:`~.events.RejectConnection`), or None.
    """

    def __init__(self, message: str, event_hint: Event | None = None) -> None:
        self.event_hint = event_hint
        super().__init__(message)


def normed_header_dict(headers: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Headers as a dict; repeated names are joined with ", " (which is
    right for every header but Set-Cookie, which the handshake never reads)."""
    joined: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        joined.setdefault(name, []).append(value)
    return {name: b", ".join(values) for name, values in joined.items()}


def split_comma_header(value: bytes) -> list[str]:
    """Split a comma-separated header value into stripped strings.

    Like wsproto, quoted strings are not parsed: a comma inside one splits
    too (harmless for subprotocols and the permessage-deflate parameters).
    """
    return [piece.decode("ascii").strip() for piece in value.split(b",")]


def generate_nonce() -> bytes:
    """A fresh Sec-WebSocket-Key: 16 random bytes in base64 (§4.1)."""
    return base64.b64encode(os.urandom(16))


def generate_accept_token(token: bytes) -> bytes:
    """The Sec-WebSocket-Accept value for the key ``token`` (§4.2.2)."""
    return accept_key(token).encode("ascii")
