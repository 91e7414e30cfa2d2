"""Redis pub/sub as a broker: ``serve(..., broker="redis://host:6379/0")``.

Needs redis-py (``pip install "fastframe[redis]"``, which brings hiredis, the
parser redis-py uses when it is installed).  Two connections per server: one
that publishes (PUBLISH, pipelined: what queued while the last batch was in
flight goes in one round trip, consecutive messages of a topic in one
PUBLISH) and one subscribed to the channels of the
topics that have local subscribers (channel = ``prefix + topic``), plus a
private channel that keeps it subscribed, so that a Redis that goes away is
noticed at once.

Faults: one task owns both connections.  When either fails, the outage is
logged once (not once per message), both are dropped and the task reconnects
with exponential backoff (``backoff`` seconds, doubling, with jitter); on
reconnection it subscribes again to every topic that has local subscribers
and sends what was queued meanwhile.  ``publish`` never waits: it appends to
a queue bounded by ``max_pending`` bytes, which drops its oldest messages
(counted in ``stats()["dropped"]``, logged once per episode) when full.  Redis
pub/sub itself is at most once: a server that is not subscribed when a
message passes through Redis never gets it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import random
import urllib.parse
from collections import deque
from typing import Any

from ..pubsub import Broker, Receive, join_payloads

__all__ = ["RedisBroker"]

log = logging.getLogger("fastframe.pubsub")

# Consecutive publishes of a topic go in one PUBLISH up to this many bytes:
# redis-py's cost is per command, and each server then parses one message
# and writes once to each subscriber for all of them.
_JOIN_BYTES = 256 << 10


def _redis() -> tuple[Any, Any, Any]:
    """redis-py's asyncio client, its Retry and NoBackoff (imported on first
    use: an optional dependency)."""
    try:
        client = importlib.import_module("redis.asyncio")
        retry = importlib.import_module("redis.asyncio.retry")
        backoff = importlib.import_module("redis.backoff")
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError('the Redis broker needs redis-py: pip install "fastframe[redis]"') from exc
    return client, retry.Retry, backoff.NoBackoff


def _where(url: str) -> str:
    """``url`` without its credentials, for logs."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


class RedisBroker(Broker):
    """Topics through Redis pub/sub (see the module's docstring).

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://``
            for TLS, or ``unix:///path/to/socket``, as redis-py reads them.
        prefix: put before each topic to make its channel name, so that
            topics share no name with other users of the same Redis.
        max_pending: bytes of publishes queued while Redis is slow or
            unreachable; past it the oldest are dropped.
        backoff: first and longest wait between reconnection attempts.
        connect_timeout: seconds for a connection attempt.
        timeout: seconds for Redis to answer a command (a stalled Redis is
            an outage too).
        health_interval: an idle publishing connection pings Redis this
            often, so that a silent network failure is noticed.
    """

    def __init__(self, url: str, *, prefix: str = "fastframe:", max_pending: int = 16 << 20,
                 backoff: tuple[float, float] = (0.1, 2.0), connect_timeout: float = 2.0,
                 timeout: float = 5.0, health_interval: float = 5.0) -> None:
        _redis()  # fail now, with the install hint, rather than at the first connection
        self.url = url
        self.where = _where(url)
        self.prefix = prefix
        self._prefix = prefix.encode()
        self.max_pending = max_pending
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.health_interval = health_interval
        self._receive: Receive | None = None
        self._wanted: set[str] = set()    # topics with local subscribers
        self._pending: deque[tuple[bytes, bytes]] = deque()
        self._pending_bytes = 0
        self._overflowing = False
        # What the writer waits on when it has nothing to do: resolved with
        # True by a publish or a change of subscriptions, False by the
        # health check's timer.  A future, not an Event under wait_for: on
        # Python 3.11 wait_for can swallow a cancellation that races with
        # its result, and the task would never end.
        self._waiter: asyncio.Future[bool] | None = None
        self._tried: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.connected = False
        self._reached = False
        self._down_since: float | None = None
        self._dropped_at_down = 0
        self.counts = {"published": 0, "received": 0, "dropped": 0, "outages": 0}

    # -- the Broker interface ----------------------------------------------------------

    async def start(self, receive: Receive) -> None:
        self._receive = receive
        loop = asyncio.get_running_loop()
        self._tried = loop.create_future()
        self._task = loop.create_task(self._run())
        # If it is still trying after that, the server starts anyway.
        await asyncio.wait([self._tried], timeout=self.connect_timeout + self.timeout)

    def publish(self, topic: str, payload: bytes) -> None:
        channel = self._prefix + topic.encode("utf-8")
        self._pending.append((channel, payload))
        self._pending_bytes += len(channel) + len(payload)
        if self._pending_bytes > self.max_pending:
            self._overflow()
        self._wake(True)

    def subscribe(self, topic: str) -> None:
        self._wanted.add(topic)
        self._wake(True)

    def unsubscribe(self, topic: str) -> None:
        self._wanted.discard(topic)
        self._wake(True)

    def _wake(self, value: bool) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(value)

    async def aclose(self) -> None:
        self._closing = True
        task = self._task
        if task is None:
            return
        loop = asyncio.get_running_loop()
        if self.connected and self._pending:
            # What the last connections published (a chat's "left") gets a
            # moment to leave.
            deadline = loop.time() + min(1.0, self.timeout)
            while self.connected and self._pending and loop.time() < deadline:
                await asyncio.sleep(0.01)
        # Asked until it ends: a cancellation can be lost in redis-py or in
        # wait_for (3.11) when it races with a result.
        while not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=0.5)

    def stats(self) -> dict[str, Any]:
        return {"connected": self.connected, "pending": len(self._pending), **self.counts}

    # -- the queue ---------------------------------------------------------------------

    def _overflow(self) -> None:
        """Over ``max_pending``: drop the oldest publishes until under it."""
        dropped = 0
        while self._pending_bytes > self.max_pending and self._pending:
            channel, payload = self._pending.popleft()
            self._pending_bytes -= len(channel) + len(payload)
            dropped += 1
        self.counts["dropped"] += dropped
        if not self._overflowing:
            self._overflowing = True
            log.warning("broker %s: more than %d bytes of publishes waiting for Redis; dropping the "
                        "oldest (counted, logged once until the queue empties)", self.where, self.max_pending)

    def _take(self, limit: int = 1024) -> list[tuple[bytes, bytes]]:
        pending = self._pending
        n = min(limit, len(pending))
        batch = [pending.popleft() for _ in range(n)]
        self._pending_bytes -= sum(len(c) + len(p) for c, p in batch)
        if not pending:
            self._overflowing = False
        return batch

    # -- the connection's life -------------------------------------------------------

    async def _run(self) -> None:
        assert self._tried is not None
        delay = self.backoff[0]
        while not self._closing:
            clients: list[Any] = []
            self._reached = False
            try:
                await self._session(clients)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of Redis or the network is an outage
                self._down(exc)
            finally:
                self.connected = False
                await self._close(clients)
                if not self._tried.done():
                    self._tried.set_result(None)
            if self._closing:
                break
            if self._reached:  # it was connected: the first retry comes soon
                delay = self.backoff[0]
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff[1])

    async def _session(self, clients: list[Any]) -> None:
        """Connect, then serve until either connection fails."""
        redis, Retry, NoBackoff = _redis()
        options = {"socket_connect_timeout": self.connect_timeout, "retry": Retry(NoBackoff(), 0)}
        publisher = redis.Redis.from_url(self.url, socket_timeout=self.timeout, **options)
        clients.append(publisher)
        # The subscriber's reads wait for messages as long as it takes.
        subscriber = redis.Redis.from_url(self.url, **options)
        clients.append(subscriber)
        pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
        clients.append(pubsub)
        await asyncio.wait_for(publisher.ping(), self.connect_timeout + self.timeout)
        private = f"{self.prefix}_broker:{random.getrandbits(64):016x}"
        await asyncio.wait_for(pubsub.subscribe(private), self.connect_timeout + self.timeout)
        self._up()
        applied: set[str] = set()
        reader = asyncio.ensure_future(self._read(pubsub))
        writer = asyncio.ensure_future(self._write(publisher, pubsub, applied))
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended the session
            raise ConnectionError("the Redis connection ended")  # pragma: no cover - both loop for ever
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)

    async def _read(self, pubsub: Any) -> None:
        prefix = self._prefix
        start = len(prefix)
        receive = self._receive
        assert receive is not None
        counts = self.counts
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            if channel.startswith(prefix):
                counts["received"] += 1
                try:
                    receive(channel[start:].decode("utf-8", "replace"), message["data"])
                except Exception:
                    log.exception("broker %s: delivering a message failed", self.where)

    async def _write(self, publisher: Any, pubsub: Any, applied: set[str]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # Subscriptions first, so that what follows is already received.
            add = self._wanted - applied
            if add:
                await pubsub.subscribe(*[self.prefix + t for t in add])
                applied |= add
            drop = applied - self._wanted
            if drop:
                await pubsub.unsubscribe(*[self.prefix + t for t in drop])
                applied -= drop
            if self._pending:
                batch = self._take()
                pipe = publisher.pipeline(transaction=False)
                for channel, payloads in _runs(batch):
                    pipe.publish(channel, join_payloads(payloads))
                try:
                    await pipe.execute(raise_on_error=False)
                except BaseException:
                    # Sent or not, they are not sent again: at most once.
                    self.counts["dropped"] += len(batch)
                    raise
                self.counts["published"] += len(batch)
                continue
            if self._wanted != applied:
                continue
            # Nothing to do (and no await since the checks above, so no
            # publish came in between): wait for one, or for the health check.
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(self.health_interval, self._wake, False)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
            if not waiter.result():
                await publisher.ping()  # a silent failure of the network or of Redis shows here

    def _up(self) -> None:
        self.connected = self._reached = True
        loop = asyncio.get_running_loop()
        if self._down_since is None:
            log.info("broker %s connected", self.where)
        else:
            log.warning("broker %s is back after %.1f s: cross-server delivery resumed "
                        "(%d publishes dropped meanwhile)", self.where, loop.time() - self._down_since,
                        self.counts["dropped"] - self._dropped_at_down)
            self._down_since = None
        if self._tried is not None and not self._tried.done():
            self._tried.set_result(None)

    def _down(self, exc: BaseException) -> None:
        """One log line per outage, however many attempts it takes."""
        if self._closing:
            return
        if self._down_since is None:
            self._down_since = asyncio.get_running_loop().time()
            self._dropped_at_down = self.counts["dropped"]
            self.counts["outages"] += 1
            log.warning("broker %s unreachable (%s: %s): delivering to local subscribers only, "
                        "reconnecting every %.1f to %.1f s", self.where, type(exc).__name__, exc,
                        self.backoff[0], self.backoff[1])
        else:
            log.debug("broker %s: reconnection failed: %s", self.where, exc)

    async def _close(self, clients: list[Any]) -> None:
        for client in reversed(clients):
            close = getattr(client, "aclose", None) or client.close
            try:
                await asyncio.wait_for(close(), 1.0)
            except Exception:  # noqa: BLE001 - it is being dropped anyway
                pass


def _runs(batch: list[tuple[bytes, bytes]]) -> list[tuple[bytes, list[bytes]]]:
    """``batch`` as runs of consecutive publishes to one channel, each at
    most ``_JOIN_BYTES`` (or one publish): the order of the messages, across
    channels too, is the order they were published in."""
    runs: list[tuple[bytes, list[bytes]]] = []
    last = None
    size = 0
    for channel, payload in batch:
        if channel == last and size + len(payload) <= _JOIN_BYTES:
            runs[-1][1].append(payload)
            size += len(payload)
        else:
            runs.append((channel, [payload]))
            last = channel
            size = len(payload)
    return runs
