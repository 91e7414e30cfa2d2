"""Events of a WebSocket connection, as wsproto 1.3 defines them.

Frozen dataclasses with wsproto's fields in wsproto's order, so that
positional construction, equality, ``repr`` and ``dataclasses.replace``
behave as consumers expect.  A frozen dataclass's ``__init__`` sets each
field through ``object.__setattr__`` and costs about three times as much as
filling the instance dict: the message events, made once per message (by
the connection when received, by the consumer when sent), get an
``__init__`` with the same arguments that fills the dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, Union

if TYPE_CHECKING:
    from .extensions import Extension
    from .typing import Headers

__all__ = [
    "AcceptConnection",
    "BytesMessage",
    "CloseConnection",
    "Event",
    "Message",
    "Ping",
    "Pong",
    "RejectConnection",
    "RejectData",
    "Request",
    "TextMessage",
]


class Event:
    """Base class of the events: what the peer did, or what to send.

    wsproto makes it an ``abc.ABC`` with no abstract method; here it is a
    plain class, because every ``isinstance(event, Message)`` a consumer
    makes per message goes through ``ABCMeta.__instancecheck__`` otherwise.
    """


@dataclass(frozen=True)
class Request(Event):
    """The opening handshake request: received by a server, sent by a client.

    ``extra_headers`` are the request's headers but Host,
    Sec-WebSocket-Extensions and Sec-WebSocket-Protocol (names lower-cased
    when received); ``extensions`` are the offers received (strings) or the
    :class:`~.extensions.Extension` objects to offer.
    """

    host: str
    target: str
    extensions: Sequence[Extension] | Sequence[str] = field(default_factory=list)
    extra_headers: Headers = field(default_factory=list)
    subprotocols: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AcceptConnection(Event):
    """The upgrade is accepted: sent by a server, received by a client."""

    subprotocol: str | None = None
    extensions: list[Extension] = field(default_factory=list)
    extra_headers: Headers = field(default_factory=list)


@dataclass(frozen=True)
class RejectConnection(Event):
    """The upgrade is refused with an HTTP response.

    With ``has_body`` the body follows as :class:`RejectData` events (the
    sender then gives Content-Length or Transfer-Encoding in ``headers``).
    A client receives ``has_body`` True and at least one RejectData, except
    for an informational (1xx) status other than 101.
    """

    status_code: int = 400
    headers: Headers = field(default_factory=list)
    has_body: bool = False


@dataclass(frozen=True)
class RejectData(Event):
    """A piece of the body of a rejection; the last has ``body_finished``."""

    data: bytes
    body_finished: bool = True


@dataclass(frozen=True)
class CloseConnection(Event):
    """A close frame (received or to send).

    As in wsproto, a received close is not answered automatically: send
    :meth:`response` while the connection's state is REMOTE_CLOSING.  Codes
    wsproto knows come back as :class:`~.frame_protocol.CloseReason` members.
    """

    code: int
    reason: str | None = None

    def response(self) -> CloseConnection:
        """The close frame that answers this one (RFC 6455 §5.5.1)."""
        return CloseConnection(code=self.code, reason=self.reason)


T = TypeVar("T", Union[bytes, bytearray], str)


@dataclass(frozen=True)
class Message(Event, Generic[T]):
    """Data of a message: one frame, or the part of one that has arrived.

    ``message_finished`` is True on the last piece of a message;
    ``frame_finished`` is True on the last piece of a frame (wsproto hands a
    frame over in pieces as its bytes arrive).  Reassemble the pieces to get
    the message.
    """

    data: T
    frame_finished: bool = True
    message_finished: bool = True


@dataclass(frozen=True)
class TextMessage(Message[str]):
    """Data of a text message, decoded (a piece may be empty when it ends
    inside a character)."""


@dataclass(frozen=True)
class BytesMessage(Message[Union[bytearray, bytes]]):
    """Data of a binary message."""


@dataclass(frozen=True)
class Ping(Event):
    """A ping; not answered automatically: send :meth:`response`."""

    payload: bytes = b""

    def response(self) -> Pong:
        """The pong that answers this ping (RFC 6455 §5.5.2)."""
        return Pong(payload=self.payload)


@dataclass(frozen=True)
class Pong(Event):
    """A pong."""

    payload: bytes = b""


def _message_init(self: Message[Any], data: Any, frame_finished: bool = True, message_finished: bool = True) -> None:
    # The same arguments as the dataclass's own __init__, filling the
    # instance dict directly (a frozen dataclass's __init__ goes through
    # object.__setattr__ once per field): consumers make one per message
    # they send.
    fields = self.__dict__
    fields["data"] = data
    fields["frame_finished"] = frame_finished
    fields["message_finished"] = message_finished


for _cls in (Message, TextMessage, BytesMessage):
    _cls.__init__ = _message_init  # type: ignore[method-assign]
