"""Exceptions raised by fastframe.

One tree, pure Python, shared by the compiled core and its pure twin::

    FastFrameError
    ├── LocalProtocolError        the caller misused the API (nothing was sent)
    └── ProtocolError             the peer broke RFC 6455; carries ``close_code``
        ├── PayloadTooBig         a frame or message exceeds a limit (1009)
        └── InvalidUTF8           text that is not valid UTF-8 (1007)

``RemoteProtocolError`` is an alias of ``ProtocolError`` for readers used to
h11 and wsproto.

When :meth:`FrameParser.feed` fails, the frames it had completed in that call
before the error are attached to the exception as ``frames`` so that nothing
the peer sent correctly before the violation is lost.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConcurrencyError",
    "FastFrameError",
    "InvalidUTF8",
    "LocalProtocolError",
    "PayloadTooBig",
    "ProtocolError",
    "RemoteProtocolError",
]


class FastFrameError(Exception):
    """Root of every exception fastframe raises on purpose."""


class ConcurrencyError(FastFrameError, RuntimeError):
    """Two coroutines waited for the next message of one connection at once
    (its messages are a single stream: read them from one task)."""


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
