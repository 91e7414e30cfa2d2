"""10,000 idle connections are held, and the server keeps serving.

A stress test (marked ``stress``; the README's test command runs it): the
CLI's echo server in a process of its own (file descriptors), 10,000
connections opened and left idle, then one more that must still echo.  The
memory figure per connection is the benchmark's (``python -m
benchmarks.idle``, docs/benchmarks.md); this only guards against a gross
regression.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest
from conftest import free_port

# Holding 10,000 sockets needs RLIMIT_NOFILE (POSIX); Windows wheels skip it.
resource = pytest.importorskip("resource", reason="needs POSIX file descriptor limits")

N = 10_000
UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def open_many(port: int, n: int) -> list[asyncio.StreamWriter]:
    writers: list[asyncio.StreamWriter] = []
    sem = asyncio.Semaphore(200)

    async def one() -> None:
        async with sem:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(UPGRADE)
            head = await r.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 "), head[:60]
            writers.append(w)

    await asyncio.gather(*(one() for _ in range(n)))
    return writers


@pytest.mark.stress
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ten_thousand_idle_connections(impl: Any) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < N + 1000:
        pytest.skip(f"the file descriptor limit ({hard}) is below {N + 1000}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 2 * N + 1000)), hard))
    port = free_port()
    env = dict(os.environ)
    if impl.__name__.endswith("_py"):
        env["FASTFRAME_NO_EXTENSIONS"] = "1"
    code = ("import resource, sys\n"
            "s, h = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
            f"resource.setrlimit(resource.RLIMIT_NOFILE, (min(h, {N + 1000}), h))\n"
            "from fastframe.__main__ import main\n"
            f"sys.exit(main(['serve', '--mode', 'echo', '--port', '{port}', '--log-level', 'warning']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and "listening" in proc.stdout.readline()

        async def go() -> tuple[int, int, bool]:
            warm = await open_many(port, 100)  # allocator and caches warm
            await asyncio.sleep(0.5)
            before = rss_kib(proc.pid)
            writers = await open_many(port, N)
            await asyncio.sleep(1.0)
            after = rss_kib(proc.pid)
            # Still serving: one more connection echoes (a masked "hi").
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(UPGRADE)
            await r.readuntil(b"\r\n\r\n")
            w.write(b"\x82\x82abcd" + bytes([ord("h") ^ ord("a"), ord("i") ^ ord("b")]))
            echo = await asyncio.wait_for(r.readexactly(4), 10)
            for x in [*writers, *warm, w]:
                x.close()
            return before, after, echo == b"\x82\x02hi"

        before, after, echo_ok = asyncio.run(go())
        assert echo_ok
        assert (after - before) / N < 20, (before, after)
    finally:
        proc.terminate()
        proc.wait(10)
