"""Topics through a real Redis: servers in one process and in several, the
chat page in Chromium across two servers, Redis killed and restarted, and
``serve --workers``.

Each test starts ``redis-server`` (Debian's package; scripts/test.sh installs
it) on a free loopback port and stops it.  Without the binary or redis-py the
tests skip and say why, except in CI (``CI=true``, as .ci/run sets), where
they fail: there they must run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterator
from typing import Any, Callable

import pytest
from conftest import free_port

from fastframe import ConnectionClosed, connect, serve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JS = os.path.join(ROOT, "tests", "js")
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="stops the CLI with SIGINT")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def run(coro: Awaitable[Any], timeout: float = 90) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


def need_redis() -> str:
    missing = []
    binary = shutil.which("redis-server")
    if binary is None:
        missing.append("redis-server (Debian's redis-server package)")
    try:
        import redis  # noqa: F401
    except ImportError:
        missing.append('redis-py (pip install "fastframe[redis]")')
    if missing:
        why = " and ".join(missing) + " not installed; scripts/test.sh installs both"
        if IN_CI:
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    assert binary is not None
    return binary


class RedisServer:
    """``redis-server`` on a free loopback port, with nothing saved to disk."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            assert self.proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(need_redis())
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def until(step: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> float:
    """Repeat ``step`` until it returns True; the seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not await step():
        assert loop.time() - start < timeout, "timed out"
    return loop.time() - start


async def until_subscribed(client: Any, expected: dict[str, int]) -> None:
    """Until Redis counts ``expected`` subscribers on each channel."""
    async def step() -> bool:
        counts = dict(await client.pubsub_numsub(*expected))
        await asyncio.sleep(0.01)
        return all(counts[channel.encode()] == n for channel, n in expected.items())

    await until(step)


async def recv_or_none(ws: Any, timeout: float) -> Any:
    try:
        return await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        return None


async def until_message(ws: Any, expected: Any, timeout: float) -> bool:
    """Whether ``ws`` receives ``expected`` within ``timeout`` (others skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await recv_or_none(ws, deadline - loop.time()) == expected:
            return True
    return False


async def drain(*clients: Any) -> None:
    for ws in clients:
        while await recv_or_none(ws, 0.05) is not None:
            pass


async def room(ws: Any) -> None:
    """Subscribes to the topic of its path; publishes what it receives there."""
    topic = ws.path.strip("/")
    ws.subscribe(topic)
    async for message in ws:
        ws.server.publish(topic, message)


# -- servers in one process ------------------------------------------------------------


def test_two_servers_share_topics_through_redis(redis_server: RedisServer) -> None:
    import redis.asyncio

    async def go() -> None:
        async with serve(room, "127.0.0.1", 0, broker=redis_server.url) as a_server, \
                serve(room, "127.0.0.1", 0, broker=redis_server.url) as b_server:
            client = redis.asyncio.Redis.from_url(redis_server.url)
            async with connect(f"ws://127.0.0.1:{a_server.port}/t") as a, \
                    connect(f"ws://127.0.0.1:{b_server.port}/t") as b, \
                    connect(f"ws://127.0.0.1:{b_server.port}/u") as u:
                await until_subscribed(client, {"fastframe:t": 2, "fastframe:u": 1})
                for message in ["héllo from a", b"\x00binary from a"]:
                    await a.send(message)
                    assert await a.recv() == message and await b.recv() == message
                b_server.publish("t", "from server b")
                assert await a.recv() == "from server b" and await b.recv() == "from server b"
                # Each message came once: the echoes of their own were skipped.
                assert await recv_or_none(a, 0.2) is None and await recv_or_none(b, 0.01) is None
                assert await recv_or_none(u, 0.01) is None  # another topic
                assert a_server.topics.broker.stats()["published"] == 2  # type: ignore[union-attr]
                # Many published in one go on A, t and u interleaved: in
                # order, and consecutive ones of a topic in one Redis message.
                received = b_server.topics.broker.stats()["received"]  # type: ignore[union-attr]
                expected: dict[str, list[Any]] = {"t": [], "u": []}
                for i in range(500):
                    topic, message = ("u", f"u{i}") if i % 50 == 7 else ("t", f"t{i}" if i % 2 else b"t%d" % i)
                    a_server.publish(topic, message)
                    expected[topic].append(message)
                assert [await a.recv() for _ in expected["t"]] == expected["t"]
                assert [await b.recv() for _ in expected["t"]] == expected["t"]
                assert [await u.recv() for _ in expected["u"]] == expected["u"]
                assert await recv_or_none(b, 0.1) is None
                assert a_server.topics.broker.stats()["published"] == 502  # type: ignore[union-attr]
                more = b_server.topics.broker.stats()["received"] - received  # type: ignore[union-attr]
                assert more <= 2 * len(expected["u"]) + 1
            # The last subscriber gone, the servers unsubscribe from Redis.
            await until_subscribed(client, {"fastframe:t": 0, "fastframe:u": 0})
            await client.aclose()

    run(go())


def test_runs_of_a_channel_keep_the_order_and_a_size_bound() -> None:
    from fastframe.brokers import redis as engine

    one = b"t" + b"\x01" * 8
    batch = [(b"a", one + b"1"), (b"a", one + b"2"), (b"b", one + b"3"), (b"a", one + b"4")]
    assert engine._runs(batch) == [(b"a", [one + b"1", one + b"2"]), (b"b", [one + b"3"]), (b"a", [one + b"4"])]
    big = one + b"x" * (engine._JOIN_BYTES // 2)
    assert [len(p) for _, p in engine._runs([(b"a", big)] * 5)] == [1, 1, 1, 1, 1]
    small = [(b"a", one + b"y" * 1000)] * 600
    runs = engine._runs(small)
    assert sum(len(p) for _, p in runs) == 600 and len(runs) == 3
    assert all(sum(map(len, p)) <= engine._JOIN_BYTES for _, p in runs)


def test_redis_outage_local_delivery_goes_on_and_cross_server_delivery_resumes(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    from fastframe.brokers.redis import RedisBroker

    async def go() -> None:
        loop = asyncio.get_running_loop()
        a_broker = RedisBroker(redis_server.url, max_pending=4096, backoff=(0.05, 0.5))
        b_broker = RedisBroker(redis_server.url, backoff=(0.05, 0.5))
        async with serve(room, "127.0.0.1", 0, broker=a_broker) as a_server, \
                serve(room, "127.0.0.1", 0, broker=b_broker) as b_server:
            async with connect(f"ws://127.0.0.1:{a_server.port}/t") as a1, \
                    connect(f"ws://127.0.0.1:{a_server.port}/t") as a2, \
                    connect(f"ws://127.0.0.1:{b_server.port}/t") as b:
                pings = iter(range(1000))

                async def across() -> bool:
                    """A publish on A reaches B (what else B gets is skipped)."""
                    ping = f"ping {next(pings)}"
                    a_server.publish("t", ping)
                    return await until_message(b, ping, 0.3)

                await until(across)
                await drain(a1, a2)
                redis_server.kill()
                await until(lambda: asyncio.sleep(0.01, not a_broker.connected and not b_broker.connected))
                # Redis is gone: publishing neither waits nor grows memory,
                # and local subscribers get everything.
                worst = 0.0
                for i in range(2000):
                    t = loop.time()
                    a_server.publish("t", f"{i:04d}" + "x" * 96)
                    worst = max(worst, loop.time() - t)
                assert worst < 0.05
                for ws in (a1, a2):
                    assert [await ws.recv() for _ in range(2000)][-1].startswith("1999")
                assert a_broker._pending_bytes <= 4096
                assert a_broker.stats()["dropped"] >= 1900
                # Both servers still accept connections and deliver locally.
                async with connect(f"ws://127.0.0.1:{b_server.port}/t") as b2:
                    await b2.send("local on b")
                    assert await b2.recv() == "local on b" and await b.recv() == "local on b"
                await asyncio.sleep(1.5)  # several reconnection attempts, each failing
                redis_server.start()  # the same port
                took = await until(across, timeout=15)
                assert took < 10
                assert a_broker.stats()["outages"] == 1 and a_broker.connected
                await b.send("from b, after")  # and B to A
                assert await until_message(a1, "from b, after", 5)

    with caplog.at_level(logging.DEBUG, logger="fastframe.pubsub"):
        run(go())
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("unreachable" in m for m in warnings) == 2, warnings  # once per server
    assert sum("is back after" in m for m in warnings) == 2, warnings
    assert sum("dropping the oldest" in m for m in warnings) == 1, warnings
    assert sum("reconnection failed" in r.getMessage() for r in caplog.records) >= 2


# -- the command line: servers in processes of their own -------------------------------


class Served:
    """A CLI server: its port, its process, and its log (stderr)."""

    def __init__(self, port: int, proc: subprocess.Popen[str], log: Any) -> None:
        self.port, self.proc, self._log, self._final = port, proc, log, None

    def log(self) -> str:
        if self._final is not None:
            return self._final
        self._log.flush()
        self._log.seek(0)
        text: str = self._log.read()
        return text


@contextlib.contextmanager
def cli_server(*args: str) -> Iterator[Served]:
    """``python -m fastframe serve ARGS`` on a free port until the block
    ends, then Ctrl-C; its log stays readable after."""
    port = free_port()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastframe", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
        served = Served(port, proc, log)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "listening" in line, (line, served.log())
            yield served
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                served._final = served.log()  # type: ignore[assignment]


def wait_subscribed(redis_url: str, channel: str, count: int = 1, timeout: float = 10) -> None:
    """Wait until ``count`` servers subscribe to ``channel``: a server
    subscribes when its first local subscriber arrives, and what is
    published elsewhere before its SUBSCRIBE reaches Redis never reaches it
    (at most once; docs/pubsub.md)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout
        while dict(client.pubsub_numsub(channel)).get(channel.encode(), 0) < count:
            assert time.monotonic() < deadline, f"{channel} has not {count} subscribers"
            time.sleep(0.01)
    finally:
        client.close()


@contextlib.contextmanager
def two_chat_servers(redis_url: str) -> Iterator[tuple[Served, Served]]:
    """Two ``serve --mode chat`` processes sharing the Redis at ``redis_url``."""
    with cli_server("--mode", "chat", "--redis", redis_url) as a_server, \
            cli_server("--mode", "chat", "--redis", redis_url) as b_server:
        yield a_server, b_server


async def chat_message(ws: Any, timeout: float = 5.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def until_text(ws: Any, text: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next chat message of ``ws`` with this text (others are skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        m = await chat_message(ws, max(0.01, deadline - loop.time()))
        if m.get("text") == text:
            return dict(m)


@posix_only
def test_chat_across_two_servers_sharing_redis(redis_server: RedisServer) -> None:
    with two_chat_servers(redis_server.url) as (a_server, b_server):
        port_a, port_b = a_server.port, b_server.port

        async def go() -> None:
            async with connect(f"ws://127.0.0.1:{port_b}/ws") as b, \
                    connect(f"ws://127.0.0.1:{port_b}/ws?room=other") as other:
                b_name = (await chat_message(b))["user"]
                await chat_message(other)  # its own join
                wait_subscribed(redis_server.url, "fastframe:chat:lobby")
                async with connect(f"ws://127.0.0.1:{port_a}/ws") as a:
                    a_name = (await chat_message(a))["user"]
                    assert a_name != b_name  # the processes' tags keep users apart
                    assert await chat_message(b) == {"user": a_name, "event": "joined"}
                    await a.send("typed on server A")
                    assert await until_text(b, "typed on server A") == {"user": a_name, "text": "typed on server A"}
                    await b.send("typed on server B")
                    assert (await until_text(a, "typed on server B"))["user"] == b_name
                assert await until_text(b, "typed on server B") == {"user": b_name, "text": "typed on server B"}
                assert await chat_message(b) == {"user": a_name, "event": "left"}
                assert await recv_or_none(other, 0.2) is None  # another room heard nothing

        run(go())


@posix_only
def test_redis_killed_under_two_chat_servers(redis_server: RedisServer) -> None:
    with two_chat_servers(redis_server.url) as (a_server, b_server):
        port_a, port_b = a_server.port, b_server.port

        async def go() -> None:
            async with connect(f"ws://127.0.0.1:{port_b}/ws") as b:
                await chat_message(b)
                wait_subscribed(redis_server.url, "fastframe:chat:lobby")
                async with connect(f"ws://127.0.0.1:{port_a}/ws") as a:
                    await chat_message(a)
                    await chat_message(b)  # a joined
                    redis_server.kill()
                    await asyncio.sleep(0.5)
                    # Both servers stay up, accept connections and deliver locally.
                    for port, old in ((port_a, a), (port_b, b)):
                        async with connect(f"ws://127.0.0.1:{port}/ws") as new:
                            name = (await chat_message(new))["user"]
                            assert (await chat_message(old))["event"] == "joined"
                            await new.send("while Redis is down")
                            assert await until_text(old, "while Redis is down") == {
                                "user": name, "text": "while Redis is down"}
                        assert (await chat_message(old))["event"] == "left"
                    await asyncio.sleep(1.0)
                    redis_server.start()  # the same port: no server is restarted

                    async def across() -> bool:
                        await a.send("is Redis back?")
                        while True:
                            m = await recv_or_none(b, 0.3)
                            if m is None:
                                return False
                            if json.loads(m).get("text") == "is Redis back?":
                                return True

                    assert await until(across, timeout=15) < 10

        run(go())
        assert a_server.proc.poll() is None and b_server.proc.poll() is None
    for text in (a_server.log(), b_server.log()):  # the servers have stopped
        assert text.count("unreachable") == 1, text  # one line for the whole outage
        assert text.count("is back after") == 1, text


@posix_only
def test_chromium_chat_page_across_two_servers(redis_server: RedisServer) -> None:
    if not os.path.exists("/usr/bin/chromium"):
        if IN_CI:
            pytest.fail("Debian's chromium is not installed (scripts/test.sh installs it)")
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)")
    if shutil.which("node") is None or not os.path.isdir(os.path.join(JS, "node_modules", "playwright-core")):
        pytest.skip("node and playwright-core are needed (scripts/test.sh runs npm install in tests/js)")
    with two_chat_servers(redis_server.url) as (a_server, b_server):
        out = subprocess.run(["node", os.path.join(JS, "chromium_chat_two_servers.js"),
                              f"http://127.0.0.1:{a_server.port}/", f"http://127.0.0.1:{b_server.port}/"],
                             capture_output=True, text=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    assert lines, out.stderr
    report = json.loads(lines[-1])
    assert report["ok"], report


# -- workers -----------------------------------------------------------------------------


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False  # a zombie: exited, not yet reaped
    return True


@posix_only
@linux_only
def test_workers_share_one_port_and_the_chat(redis_server: RedisServer) -> None:
    with cli_server("--mode", "chat", "--workers", "2", "--redis", redis_server.url) as served:
        port, proc = served.port, served.proc
        workers = children(proc.pid)
        assert len(workers) == 2, served.log()

        async def go() -> None:
            url = f"ws://127.0.0.1:{port}/ws"
            clients: list[Any] = []
            tags: set[str] = set()
            try:
                # Connections land on both processes (each tags its users).
                while len(tags) < 2:
                    assert len(clients) < 60, tags
                    ws = await connect(url)
                    clients.append(ws)
                    tags.add((await until_join(ws))["user"].rsplit("-", 1)[1])
                wait_subscribed(redis_server.url, "fastframe:chat:lobby", count=2)
                await clients[0].send("to every worker's clients")
                for ws in clients:
                    assert (await until_text(ws, "to every worker's clients"))["user"].startswith("user")
            finally:
                for ws in clients:
                    await ws.close()

        async def until_join(ws: Any) -> dict[str, Any]:
            while True:
                m = await chat_message(ws)
                if m.get("event") == "joined":
                    return dict(m)

        run(go())
        # A worker that dies is replaced, and the port keeps serving.
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while len(children(proc.pid) - {victim}) < 2 or alive(victim):
            assert time.monotonic() < deadline, served.log()
            time.sleep(0.1)
        workers = children(proc.pid)
        assert victim not in workers and len(workers) == 2

        async def still_serving() -> None:
            for _ in range(6):
                async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                    await chat_message(ws)
                    await ws.send("hi")
                    await until_text(ws, "hi")

        run(still_serving())

        async def graceful() -> None:
            # SIGINT to the supervisor: each worker closes its connections with 1001.
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await chat_message(ws)
                proc.send_signal(signal.SIGINT)
                with pytest.raises(ConnectionClosed):
                    while True:
                        await ws.recv()
            assert ws.close_code == 1001

        run(graceful())
        assert proc.wait(30) == 0
        text = served.log()
    assert f"worker 1 (pid {victim}) killed by signal 9: restarting it" in text or \
        f"(pid {victim}) killed by signal 9: restarting it" in text, text
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in workers):  # SIGINT left no process behind
        assert time.monotonic() < deadline, [pid for pid in workers if alive(pid)]
        time.sleep(0.05)


@posix_only
def test_chat_with_workers_and_no_redis_refuses_to_start() -> None:
    out = subprocess.run([sys.executable, "-m", "fastframe", "serve", "--mode", "chat", "--workers", "2",
                          "--port", str(free_port())], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert out.returncode == 2
    assert "needs --redis" in out.stderr and "each worker sees only its own connections" in out.stderr
    # Echo needs no broker: its workers have nothing to share.
    with cli_server("--mode", "echo", "--workers", "2") as served:
        async def go() -> None:
            async with connect(f"ws://127.0.0.1:{served.port}/") as ws:
                await ws.send("echo")
                assert await ws.recv() == "echo"

        run(go())
