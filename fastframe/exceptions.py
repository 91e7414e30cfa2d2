"""Exceptions raised by fastframe.

One tree, pure Python, shared by the compiled modules and their pure twins
(so that an ``except`` clause works with either)::

    FastFrameError
    ├── LocalProtocolError        the caller misused the API (nothing was sent)
    ├── ProtocolError             the peer broke RFC 6455; carries ``close_code``
    │   ├── PayloadTooBig         a frame or message exceeds a limit (1009)
    │   └── InvalidUTF8           text that is not valid UTF-8 (1007)
    ├── HandshakeError            the opening handshake failed; carries ``status``
    │   ├── InvalidStatus         client: the server answered with another status than 101
    │   ├── InvalidResponse       client: a 101 that is not a valid upgrade for our request
    │   └── HandshakeTimeout      client: no answer in time, or the connection ended first
    ├── ConnectionClosed          the connection is closed; ``code`` and ``reason``
    ├── ConcurrencyError          two coroutines read one connection at once
    ├── InvalidURI                not a ws:// or wss:// URL (also a ValueError)
    └── ClientDisconnected        uvicorn adapter: ``send`` after the end (also an OSError)

``RemoteProtocolError`` is an alias of ``ProtocolError`` for readers used to
h11 and wsproto.

When :meth:`FrameParser.feed` fails, the frames it had completed in that call
before the error are attached to the exception as ``frames`` so that nothing
the peer sent correctly before the violation is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ClientDisconnected",
    "ConcurrencyError",
    "ConnectionClosed",
    "FastFrameError",
    "HandshakeError",
    "HandshakeTimeout",
    "InvalidResponse",
    "InvalidStatus",
    "InvalidURI",
    "InvalidUTF8",
    "LocalProtocolError",
    "PayloadTooBig",
    "ProtocolError",
    "RemoteProtocolError",
]


class FastFrameError(Exception):
    """Root of every exception fastframe raises on purpose."""


class LocalProtocolError(FastFrameError):
    """The caller asked for something RFC 6455 forbids; state is unchanged."""


class ProtocolError(FastFrameError):
    """The peer broke RFC 6455; the connection must be failed with ``close_code``.

    Attributes:
        close_code: the close code to send to the peer (RFC 6455 §7.4.1).
        frames: frames completed before the error in the failing ``feed`` call.
    """

    close_code: int = 1002

    def __init__(self, message: str, *args: Any) -> None:
        super().__init__(message, *args)
        self.frames: list[Any] = []


RemoteProtocolError = ProtocolError


class PayloadTooBig(ProtocolError):
    """A frame or message is larger than the configured limit (close 1009)."""

    close_code = 1009


class InvalidUTF8(ProtocolError):
    """A text message or close reason is not valid UTF-8 (close 1007)."""

    close_code = 1007


class HandshakeError(FastFrameError):
    """The opening handshake failed.

    Server side, the request is refused with ``status``; client side, one of
    the subclasses says why the upgrade did not happen.

    Attributes:
        status: the HTTP status to answer with (server side), or the status
            received (client side; 0 when none was).
        headers: extra response headers to send with the status.
    """

    def __init__(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = list(headers)


class InvalidStatus(HandshakeError):
    """Client side: the server answered the upgrade request with ``status``
    (not 101); the answer's first line of body, if any, is the message."""


class InvalidResponse(HandshakeError):
    """Client side: the server answered 101 but the response is not a valid
    upgrade for our request (RFC 6455 §4.2.2: accept key, subprotocol or
    extension it was not offered); ``status`` is 101."""


class HandshakeTimeout(HandshakeError, TimeoutError):
    """Client side: no complete answer to the upgrade request within
    ``open_timeout``, or the connection ended before one came; ``status`` is 0."""


class ConnectionClosed(FastFrameError):
    """The connection is closed; ``code`` and ``reason`` say how (1006: it
    ended without a close frame)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"connection closed: {code} {reason}".strip())
        self.code = code
        self.reason = reason


class ConcurrencyError(FastFrameError, RuntimeError):
    """Two coroutines waited for the next message of one connection at once
    (its messages are a single stream: read them from one task)."""


class InvalidURI(FastFrameError, ValueError):
    """The URL is not a ws:// or wss:// URL."""


class ClientDisconnected(FastFrameError, OSError):
    """The uvicorn adapter's ``send`` on a connection that is gone.

    The ASGI spec asks for a server-specific subclass of ``OSError`` here;
    Starlette turns it into ``WebSocketDisconnect(1006)``.
    """
