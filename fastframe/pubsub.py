"""Topics: publish a message once, deliver it to every subscriber.

    async def handler(ws):
        ws.subscribe("news")                 # until unsubscribed or closed
        async for message in ws:
            ws.server.publish("news", message)

    async with fastframe.serve(handler, broker="redis://127.0.0.1:6379/0") as server:
        server.publish("news", "hello")      # str: text, bytes: binary

Each server has one :class:`Topics` registry (``server.topics``).  A publish
encodes its frame once and queues that same byte string on every local
subscriber; what a loop iteration queues for a connection leaves in one write
at its end, after what the connection sent before (the order of a
connection's messages is kept).  Nothing waits for a subscriber: one whose
write buffer passes ``max_write_buffer`` is disconnected, as with
``broadcast``.  Frames go out uncompressed, which RFC 7692 allows per
message, so nothing is compressed per subscriber.

With a :class:`Broker` (``serve(..., broker=URL)``), every publish also goes to
the broker, tagged with this registry's origin id, and every server attached
to the same broker delivers it to its own subscribers; a server delivers its
own publishes at once and skips them when they come back.  Delivery through a
broker is at most once: docs/pubsub.md says what is lost when.

A broker engine is one small class (:class:`Broker`): it publishes bytes to a
topic, subscribes to the topics that have local subscribers, and hands what
arrives to the registry.  Engines live one per module in
``fastframe/brokers/`` and are found by URL scheme in :data:`ENGINES`.
"""

from __future__ import annotations

import abc
import importlib
import logging
import os
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable

from ._impl import codec
from .exceptions import LocalProtocolError
from .protocol import State

if TYPE_CHECKING:
    from .connection import StreamCore, WebSocket

__all__ = ["ENGINES", "Broker", "Topics", "broker_from_url", "join_payloads"]

log = logging.getLogger("fastframe.pubsub")

_OPEN = State.OPEN
# What the broker carries: one kind byte, the publisher's origin id, then the
# message's bytes (UTF-8 for text).  Kind "m" carries several messages of one
# topic (join_payloads): after the origin, each as its kind byte, its length
# (4 bytes, big-endian) and its bytes.
_TEXT_KIND, _BINARY_KIND, _MANY_KIND = b"t", b"b", b"m"
_ORIGIN_SIZE = 8
_HEADER_SIZE = 1 + _ORIGIN_SIZE
_LENGTH = struct.Struct(">I")

#: Broker engines by URL scheme: (module, class).  One module per engine.
ENGINES: dict[str, tuple[str, str]] = {
    "redis": ("fastframe.brokers.redis", "RedisBroker"),
    "rediss": ("fastframe.brokers.redis", "RedisBroker"),
    "unix": ("fastframe.brokers.redis", "RedisBroker"),
}

#: What a broker hands the registry: the topic and the message as published.
Receive = Callable[[str, bytes], None]


class Broker(abc.ABC):
    """The interface between a server's topics and a message broker.

    An engine (Redis pub/sub, and one day NATS, Valkey or Postgres
    LISTEN/NOTIFY) implements these five methods; the registry does the rest
    (the envelope, skipping its own echoes, encoding, delivery).  An engine
    that queues publishes may send consecutive ones of a topic as one
    message, made with :func:`join_payloads`.  None of the
    synchronous methods may block or wait for the network: they record what
    is wanted and return, and the engine's own task does the I/O, reconnects
    after a failure (logging the outage once, not per message) and applies
    the subscriptions again.  Publishes made while the broker is unreachable
    are held in a bounded queue, and dropped (and counted) when it is full.
    """

    #: The broker's address as logs show it (no password).
    where: str = ""

    @abc.abstractmethod
    async def start(self, receive: Receive) -> None:
        """Start the engine's task; messages of subscribed topics go to
        ``receive(topic, payload)``.  Returns after the first connection
        attempt, whether it succeeded or not (a server starts either way)."""

    @abc.abstractmethod
    def publish(self, topic: str, payload: bytes) -> None:
        """Send ``payload`` to every server subscribed to ``topic``; never waits."""

    @abc.abstractmethod
    def subscribe(self, topic: str) -> None:
        """Receive ``topic`` (it has local subscribers now); never waits."""

    @abc.abstractmethod
    def unsubscribe(self, topic: str) -> None:
        """Stop receiving ``topic`` (its last local subscriber left); never waits."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Send what is queued if the broker is reachable (briefly), then disconnect."""

    def stats(self) -> dict[str, Any]:
        """Counters: at least ``connected`` (bool), ``published``
        (messages), ``received`` (broker messages, which may each carry
        several), ``dropped`` (publishes lost to a full queue or a broken
        connection) and ``outages``."""
        return {}


def broker_from_url(url: str, **options: Any) -> Broker:
    """The broker engine for ``url``'s scheme (see :data:`ENGINES`), made
    with ``options``."""
    scheme = url.split(":", 1)[0].lower()
    try:
        module, name = ENGINES[scheme]
    except KeyError:
        raise ValueError(f"no broker engine for {scheme!r} URLs (known: {', '.join(sorted(ENGINES))})") from None
    cls: Callable[..., Broker] = getattr(importlib.import_module(module), name)
    return cls(url, **options)


class Topics:
    """The topics of one server: which connections subscribe to what, and
    publishing to them (locally, and through the broker if there is one)."""

    def __init__(self, broker: Broker | None = None) -> None:
        self.broker = broker
        #: This registry's id on the broker: its own publishes come back
        #: with it and are skipped (they were delivered locally at once).
        self.origin = os.urandom(_ORIGIN_SIZE)
        # topic -> {connection: its transport core}, and connection -> topics.
        self._subscribers: dict[str, dict[WebSocket, StreamCore]] = {}
        self._topics_of: dict[WebSocket, set[str]] = {}
        self.malformed = 0

    # -- subscriptions ----------------------------------------------------------------

    def subscribe(self, ws: WebSocket, topic: str) -> bool:
        """Deliver what is published to ``topic`` to ``ws``; False when it
        already was subscribed, or its connection is gone."""
        if not isinstance(topic, str):
            raise TypeError(f"a topic is a str, not {type(topic).__name__}")
        proto = ws._proto
        if proto.conn.client:
            raise LocalProtocolError("topics are a server's: a client connection cannot subscribe")
        if proto.finished:
            return False  # it would never leave again
        subscribers = self._subscribers.get(topic)
        if subscribers is None:
            subscribers = self._subscribers[topic] = {}
            if self.broker is not None:
                self.broker.subscribe(topic)
        elif ws in subscribers:
            return False
        subscribers[ws] = proto
        topics = self._topics_of.get(ws)
        if topics is None:
            topics = self._topics_of[ws] = set()
        topics.add(topic)
        return True

    def unsubscribe(self, ws: WebSocket, topic: str) -> bool:
        """Stop delivering ``topic`` to ``ws``; False when it was not subscribed."""
        subscribers = self._subscribers.get(topic)
        if subscribers is None or subscribers.pop(ws, None) is None:
            return False
        topics = self._topics_of[ws]
        topics.discard(topic)
        if not topics:
            del self._topics_of[ws]
        if not subscribers:
            self._drop(topic)
        return True

    def leave(self, ws: WebSocket) -> None:
        """``ws`` is closed: take it out of every topic."""
        for topic in self._topics_of.pop(ws, ()):
            subscribers = self._subscribers[topic]
            del subscribers[ws]
            if not subscribers:
                self._drop(topic)

    def _drop(self, topic: str) -> None:
        del self._subscribers[topic]
        if self.broker is not None:
            self.broker.unsubscribe(topic)

    def topics_of(self, ws: WebSocket) -> frozenset[str]:
        """The topics ``ws`` subscribes to."""
        return frozenset(self._topics_of.get(ws, ()))

    def num_subscribers(self, topic: str) -> int:
        """How many connections of this server subscribe to ``topic``."""
        subscribers = self._subscribers.get(topic)
        return len(subscribers) if subscribers is not None else 0

    def __iter__(self) -> Any:
        """The topics with at least one local subscriber."""
        return iter(list(self._subscribers))

    # -- publishing -------------------------------------------------------------------

    def publish(self, topic: str, message: str | bytes) -> int:
        """Send ``message`` (``str``: text, bytes-like: binary) to every
        subscriber of ``topic``, here and, with a broker, on every server
        attached to it.  Never waits.  Returns how many local connections it
        was queued for."""
        if isinstance(message, str):
            data: Any = message.encode("utf-8")
            opcode, kind = 1, _TEXT_KIND
        else:
            data = message
            opcode, kind = 2, _BINARY_KIND
        if self.broker is not None:
            self.broker.publish(topic, b"".join((kind, self.origin, data)))
        subscribers = self._subscribers.get(topic)
        if not subscribers:
            return 0
        return _deliver(subscribers, codec.encode_frame(opcode, data))

    def receive(self, topic: str, payload: bytes) -> None:
        """A message from the broker: deliver it unless it is our own."""
        if payload.startswith(self.origin, 1):
            return  # delivered when it was published
        subscribers = self._subscribers.get(topic)
        if not subscribers:
            return
        frames = _frames(payload)
        if frames is None:
            # Not written by a fastframe server: never put on the wire.
            self.malformed += 1
            if self.malformed == 1:
                log.warning("broker %s: dropping a message on topic %r that is not in fastframe's "
                            "format (docs/pubsub.md); further ones are counted, not logged",
                            self.broker.where if self.broker else "", topic)
            return
        _deliver(subscribers, frames)

    # -- life -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.broker is not None:
            await self.broker.start(self.receive)

    async def aclose(self) -> None:
        if self.broker is not None:
            await self.broker.aclose()


def join_payloads(payloads: Sequence[bytes]) -> bytes:
    """Consecutive payloads of one topic, published by one registry, as one
    broker message (kind "m"); :meth:`Topics.receive` delivers its messages
    in order, with one write per subscriber for all of them.  One payload
    comes back as it is.

    Raises:
        ValueError: the payloads are not all from the same registry.
    """
    if len(payloads) == 1:
        return payloads[0]
    origin = payloads[0][1:_HEADER_SIZE]
    parts: list[Any] = [_MANY_KIND, origin]
    for payload in payloads:
        if len(payload) < _HEADER_SIZE or not payload.startswith(origin, 1):
            raise ValueError("join_payloads takes the payloads of one registry")
        parts += (payload[:1], _LENGTH.pack(len(payload) - _HEADER_SIZE), memoryview(payload)[_HEADER_SIZE:])
    return b"".join(parts)


def _frames(payload: bytes) -> bytes | None:
    """The WebSocket frames of a broker message (one, or several for kind
    "m"), or None when it is not in the format or its text is not UTF-8."""
    kind = payload[:1]
    size = len(payload)
    if size < _HEADER_SIZE:
        return None
    if kind != _MANY_KIND:
        return _frame(kind, memoryview(payload)[_HEADER_SIZE:])
    view = memoryview(payload)
    frames = []
    at = _HEADER_SIZE
    while at < size:
        if size - at < 5:
            return None
        (length,) = _LENGTH.unpack_from(payload, at + 1)
        end = at + 5 + length
        if end > size:
            return None
        frame = _frame(payload[at:at + 1], view[at + 5:end])
        if frame is None:
            return None
        frames.append(frame)
        at = end
    return b"".join(frames) if frames else None


def _frame(kind: bytes, data: memoryview) -> bytes | None:
    if kind == _BINARY_KIND:
        return codec.encode_frame(2, data)
    if kind == _TEXT_KIND and codec.validate_utf8(data):
        return codec.encode_frame(1, data)
    return None


def _deliver(subscribers: dict[WebSocket, StreamCore], frame: bytes) -> int:
    """Queue ``frame`` (one encoded frame, or several back to back) on every
    open connection of ``subscribers``.

    The frame joins what the connection has queued (``conn.output``), so it
    leaves after what was sent before it; the core's flush at the end of the
    loop iteration writes everything a connection got in the iteration at
    once, and disconnects a peer past its hard cap (``max_write_buffer``).
    """
    n = 0
    for proto in subscribers.values():
        conn = proto.conn
        if conn.state is _OPEN:
            conn.output.append(frame)
            if not proto.flush_scheduled:
                proto.schedule_flush()
            n += 1
    return n
