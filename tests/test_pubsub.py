"""Topics in one process: ws.subscribe, ws.unsubscribe, server.publish.

Servers on ephemeral loopback ports, fastframe's client and raw sockets as
subscribers; a broker kept in memory stands in for Redis to test the
registry's side of the Broker interface (tests/test_pubsub_redis.py runs the
real one).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable
from typing import Any

import pytest

import fastframe
from fastframe import DeflateConfig, LocalProtocolError, connect, serve
from fastframe.pubsub import ENGINES, Broker, Receive, broker_from_url, join_payloads

UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


async def subscriber(ws: Any) -> None:
    """Subscribes to the topics named in its path (/a,b), then publishes
    what it receives to the first of them."""
    topics = [t for t in ws.path.strip("/").split(",") if t]
    for topic in topics:
        assert ws.subscribe(topic) is True
        assert ws.subscribe(topic) is False  # already
    async for message in ws:
        if message == "unsubscribe":
            assert ws.unsubscribe(topics[0]) is True
            assert ws.unsubscribe(topics[0]) is False
            await ws.send("unsubscribed")
        elif topics:
            ws.server.publish(topics[0], message)


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_subscribe_publish_text_and_binary_unsubscribe() -> None:
    async def go() -> None:
        async with serve(subscriber, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.port}"
            async with connect(f"{url}/news,all") as a, connect(f"{url}/news") as b, \
                    connect(f"{url}/sport") as c:
                await wait_for(lambda: server.num_subscribers("news") == 2)
                assert server.num_subscribers("sport") == 1 and server.num_subscribers("none") == 0
                assert sorted(server.topics) == ["all", "news", "sport"]
                assert server.publish("news", "héllo") == 2
                assert server.publish("news", b"\x00\xffbin") == 2
                assert server.publish("nobody", "x") == 0
                for ws in (a, b):
                    assert await ws.recv() == "héllo"
                    assert await ws.recv() == b"\x00\xffbin"
                # A client publishes through its handler: everyone in the topic, itself too.
                await b.send("from b")
                assert await a.recv() == "from b" and await b.recv() == "from b"
                server.publish("sport", bytearray(b"ba"))
                assert await c.recv() == b"ba"
                await a.send("unsubscribe")
                assert await a.recv() == "unsubscribed"
                assert server.num_subscribers("news") == 1
                assert server.publish("news", "only b") == 1
                assert await b.recv() == "only b"
                server.publish("all", "to a")
                assert await a.recv() == "to a"  # nothing of "news" came before it
                ws_a = next(ws for ws in server.connections if "all" in server.topics.topics_of(ws))
                assert server.topics.topics_of(ws_a) == frozenset({"all"})

    run(go())


def test_listener_subscribes_and_publishes() -> None:
    class Room(fastframe.Listener):
        def on_open(self, ws: Any) -> None:
            ws.subscribe("room")
            ws.server.publish("room", f"joined {ws.id}")

        def on_message(self, ws: Any, message: Any) -> None:
            ws.server.publish("room", message)

    async def go() -> None:
        async with serve(Room, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            async with connect(url) as a:
                assert (await a.recv()).startswith("joined")
                async with connect(url) as b:
                    assert (await a.recv()).startswith("joined")
                    assert (await b.recv()).startswith("joined")
                    for m in ["x", b"y" * 100_000, "z"]:
                        await a.send(m)
                    for ws in (a, b):
                        assert [await ws.recv() for _ in range(3)] == ["x", b"y" * 100_000, "z"]
                await wait_for(lambda: server.num_subscribers("room") == 1)

    run(go())


def test_closed_connections_leave_their_topics() -> None:
    async def go() -> None:
        async with serve(subscriber, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.port}"
            async with connect(f"{url}/t,u") as a:
                b = await connect(f"{url}/t")
                await wait_for(lambda: server.num_subscribers("t") == 2)
                await b.close()
                await wait_for(lambda: server.num_subscribers("t") == 1)
                # A peer that vanishes without a close frame leaves too.
                r, w = await asyncio.open_connection("127.0.0.1", server.port)
                w.write(UPGRADE.replace(b"GET / ", b"GET /t "))
                await r.readuntil(b"\r\n\r\n")
                await wait_for(lambda: server.num_subscribers("t") == 2)
                w.transport.abort()  # type: ignore[attr-defined]
                await wait_for(lambda: server.num_subscribers("t") == 1)
                assert server.publish("t", "left") == 1
                assert await a.recv() == "left"
            await wait_for(lambda: not list(server.topics))
            assert server.topics._topics_of == {}

    run(go())


def test_publish_keeps_the_order_of_a_connections_own_sends() -> None:
    """What a handler sends and what is published to its connection leave in
    the order they were made, whichever way each was queued."""

    async def handler(ws: Any) -> None:
        ws.subscribe("t")
        async for message in ws:
            await ws.send(f"{message} 1")
            ws.server.publish("t", f"{message} 2")
            ws.send_nowait(f"{message} 3")
            ws.server.publish("t", f"{message} 4")

    class Listener(fastframe.Listener):
        def on_open(self, ws: Any) -> None:
            ws.subscribe("t")

        def on_message(self, ws: Any, message: Any) -> None:
            ws.send_nowait(f"{message} 1")
            ws.server.publish("t", f"{message} 2")
            ws.send_nowait(f"{message} 3")
            ws.server.publish("t", f"{message} 4")

    async def go(h: Any) -> None:
        async with serve(h, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                for m in "abc":
                    await ws.send(m)
                got = [await ws.recv() for _ in range(12)]
                assert got == [f"{m} {i}" for m in "abc" for i in range(1, 5)]

    run(go(handler))
    run(go(Listener))


def test_compressed_subscribers_get_published_frames_uncompressed() -> None:
    async def go() -> None:
        async with serve(subscriber, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/t", compression=DeflateConfig()) as a:
                await a.send("compressed " * 100)  # through the handler: published
                assert await a.recv() == "compressed " * 100
                await wait_for(lambda: server.num_subscribers("t") == 1)
                server.publish("t", "x" * 10_000)
                assert await a.recv() == "x" * 10_000
                await a.send("after")  # the compressor's context is intact
                assert await a.recv() == "after"

    run(go())


def test_a_slow_subscriber_is_cut_off_and_the_others_keep_receiving() -> None:
    """A subscriber that stops reading is disconnected once its buffer passes
    max_write_buffer; publishing never waits for it, and the others get
    every message."""
    big = b"m" * 65536
    count = 300  # 19.7 MB: far past the cap and the kernel's socket buffers

    async def go() -> None:
        loop = asyncio.get_running_loop()
        async with serve(subscriber, "127.0.0.1", 0, max_write_buffer=1 << 20) as server:
            slow = socket.socket()
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.setblocking(False)
            await loop.sock_connect(slow, ("127.0.0.1", server.port))
            await loop.sock_sendall(slow, UPGRADE.replace(b"GET / ", b"GET /t "))
            head = b""
            while b"\r\n\r\n" not in head:
                head += await loop.sock_recv(slow, 1)  # the head only: nothing after it is read
            try:
                async with connect(f"ws://127.0.0.1:{server.port}/t", max_size=None) as fast:
                    await wait_for(lambda: server.num_subscribers("t") == 2)
                    received = 0
                    for _ in range(count):
                        t = loop.time()
                        server.publish("t", big)
                        assert loop.time() - t < 0.5  # never waits
                        assert await fast.recv() == big
                        received += 1
                    assert received == count
                    await wait_for(lambda: server.num_subscribers("t") == 1)
                    assert len(server.connections) == 1
            finally:
                slow.close()

    run(go())


def test_client_connections_have_no_topics() -> None:
    async def go() -> None:
        async with serve(subscriber, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                assert ws.server is None
                with pytest.raises(LocalProtocolError, match="server"):
                    ws.subscribe("t")
                with pytest.raises(LocalProtocolError):
                    ws.unsubscribe("t")
                await wait_for(lambda: len(server.connections) == 1)
                with pytest.raises(TypeError):
                    next(iter(server.connections)).subscribe(b"t")

    run(go())


# -- the registry's side of the broker interface ---------------------------------------


class MemoryBroker(Broker):
    """A broker in memory: what one registry publishes reaches every
    registry attached to the same hub (an engine in 30 lines)."""

    def __init__(self, hub: list[MemoryBroker]) -> None:
        self.where = "memory://"
        self.hub = hub
        self.topics: set[str] = set()
        self.published: list[tuple[str, bytes]] = []
        self.receive: Receive | None = None

    async def start(self, receive: Receive) -> None:
        self.receive = receive
        self.hub.append(self)

    def publish(self, topic: str, payload: bytes) -> None:
        self.published.append((topic, payload))
        for broker in self.hub:
            if topic in broker.topics and broker.receive is not None:
                # Later, as a message from a broker would come.
                asyncio.get_running_loop().call_soon(broker.receive, topic, payload)

    def subscribe(self, topic: str) -> None:
        self.topics.add(topic)

    def unsubscribe(self, topic: str) -> None:
        self.topics.discard(topic)

    async def aclose(self) -> None:
        self.hub.remove(self)


def test_a_broker_carries_publishes_between_servers_and_echoes_are_skipped() -> None:
    hub: list[MemoryBroker] = []

    async def go() -> None:
        a_broker, b_broker = MemoryBroker(hub), MemoryBroker(hub)
        async with serve(subscriber, "127.0.0.1", 0, broker=a_broker) as a_server, \
                serve(subscriber, "127.0.0.1", 0, broker=b_broker) as b_server:
            assert len(hub) == 2 and a_server.topics.broker is a_broker
            async with connect(f"ws://127.0.0.1:{a_server.port}/t") as a, \
                    connect(f"ws://127.0.0.1:{b_server.port}/t,u") as b:
                await wait_for(lambda: a_broker.topics == {"t"} and b_broker.topics == {"t", "u"})
                await a.send("from a")  # published on A: A delivers it, B gets it through the broker
                assert await a.recv() == "from a" and await b.recv() == "from a"
                b_server.publish("t", b"\x01from b")
                assert await a.recv() == b"\x01from b" and await b.recv() == b"\x01from b"
                a_server.publish("u", "only on b")
                assert await b.recv() == "only on b"
                # Each got each message once: A's own came back from the broker and was skipped.
                await a.send("last")
                assert await a.recv() == "last" and await b.recv() == "last"
                assert a_broker.published[0] == ("t", b"t" + a_server.topics.origin + b"from a")
            await wait_for(lambda: not a_broker.topics and not b_broker.topics)
        assert hub == []

    run(go())


def test_messages_not_in_the_format_are_never_put_on_the_wire(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        async with serve(subscriber, "127.0.0.1", 0) as server:
            topics = server.topics
            async with connect(f"ws://127.0.0.1:{server.port}/t") as ws:
                await wait_for(lambda: topics.num_subscribers("t") == 1)
                other = b"\x00" * 8
                for bad in [b"", b"t", b"x" + other + b"hi", b"t" + other + b"\xff\xfe", b"hello world"]:
                    topics.receive("t", bad)
                topics.receive("t", b"t" + other + "ok é".encode())
                topics.receive("t", b"b" + other + b"\xff")
                topics.receive("t", b"t" + topics.origin + b"mine")  # our own echo: skipped
                assert await ws.recv() == "ok é"
                assert await ws.recv() == b"\xff"
                assert topics.malformed == 5

    with caplog.at_level(logging.WARNING, logger="fastframe.pubsub"):
        run(go())
    assert sum("not in fastframe's format" in r.getMessage() for r in caplog.records) == 1


def test_joined_payloads_arrive_as_their_messages_in_order() -> None:
    other = b"\x07" * 8
    single = b"t" + other + b"alone"
    assert join_payloads([single]) is single  # one payload: as it is
    with pytest.raises(ValueError, match="one registry"):
        join_payloads([single, b"t" + b"\x08" * 8 + b"elsewhere"])
    with pytest.raises(ValueError, match="one registry"):
        join_payloads([single, b"t"])
    messages: list[Any] = ["first", b"\x00second", "", "th\u00efrd " * 50, b"", b"x" * 70_000]
    joined = join_payloads([(b"t" if isinstance(m, str) else b"b") + other
                            + (m.encode() if isinstance(m, str) else m) for m in messages])
    assert joined[:9] == b"m" + other

    async def go() -> None:
        async with serve(subscriber, "127.0.0.1", 0, max_size=1 << 20) as server:
            topics = server.topics
            async with connect(f"ws://127.0.0.1:{server.port}/t", max_size=1 << 20) as ws:
                await wait_for(lambda: topics.num_subscribers("t") == 1)
                topics.receive("t", joined)
                topics.receive("t", b"m" + topics.origin + joined[9:])  # our own: skipped
                topics.receive("t", single)
                assert [await ws.recv() for _ in range(len(messages) + 1)] == [*messages, "alone"]
                assert topics.malformed == 0

    run(go())


def test_malformed_joined_payloads_are_dropped_whole() -> None:
    other = b"\x07" * 8
    good = join_payloads([b"t" + other + b"one", b"b" + other + b"two"])

    async def go() -> None:
        async with serve(subscriber, "127.0.0.1", 0) as server:
            topics = server.topics
            async with connect(f"ws://127.0.0.1:{server.port}/t") as ws:
                await wait_for(lambda: topics.num_subscribers("t") == 1)
                bad = [
                    b"m" + other,                                      # no message in it
                    good[:-1],                                          # the last one cut short
                    good + b"t\x00\x00",                                # a length cut short
                    good + b"t\x00\x00\x00\x05abc",                     # a length past the end
                    good + b"x\x00\x00\x00\x01a",                       # an unknown kind
                    good + b"t\x00\x00\x00\x02\xff\xfe",                 # text that is not UTF-8
                    good + b"m\x00\x00\x00\x00",                        # no nesting
                ]
                for payload in bad:
                    topics.receive("t", payload)
                topics.receive("t", good)
                assert await ws.recv() == "one" and await ws.recv() == b"two"  # only the good one
                assert topics.malformed == len(bad)

    run(go())


def test_broker_engines_by_url_scheme() -> None:
    with pytest.raises(ValueError, match="no broker engine for 'nats'"):
        broker_from_url("nats://127.0.0.1:4222")
    assert ENGINES["redis"] == ("fastframe.brokers.redis", "RedisBroker")
    pytest.importorskip("redis")
    broker = broker_from_url("redis://user:secret@127.0.0.1:6379/2", prefix="app:")
    assert broker.where == "redis://127.0.0.1:6379/2"  # no password in logs
    assert broker.prefix == "app:"  # type: ignore[attr-defined]
