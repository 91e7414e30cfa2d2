"""What a publish costs per subscriber, beside a send to each.

    python -m benchmarks.fanout.cost [--subscribers 1000] [--messages 50] [--size 64]

One process, one server, SUBSCRIBERS raw sockets subscribed to one topic and
not read during the measurement (their kernel buffers take what comes).  The
server's CPU time (time.process_time, the loop included, until every write
is made) per subscriber per message, for:

- ``publish, MESSAGES per loop iteration``: ``server.publish`` MESSAGES times,
  then the loop runs the flushes (what a Listener publishing a read's
  messages does);
- ``publish, 1 per loop iteration``: one publish, then the loop, MESSAGES
  times (each message its own write per subscriber);
- ``send_nowait to each``: for each message, ``ws.send_nowait`` to every
  subscriber, as a handler would broadcast by hand (each send is written
  at once, as a handler's send is when nothing else is queued).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import sys
import time
from typing import Any

import fastframe

UPGRADE = (
    b"GET /t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class Sub(fastframe.Listener):
    def on_open(self, ws: Any) -> None:
        ws.subscribe("t")


async def settle(server: Any) -> None:
    """Run the loop until no connection has anything left to write."""
    while any(p.conn.output or p.flush_scheduled for p in server.protocols):
        await asyncio.sleep(0)
    await asyncio.sleep(0)


async def measure(args: argparse.Namespace) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    message = b"x" * args.size
    results: dict[str, float] = {}
    async with fastframe.serve(Sub, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
        socks = []
        for _ in range(args.subscribers):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.setblocking(False)
            await loop.sock_connect(s, ("127.0.0.1", server.port))
            await loop.sock_sendall(s, UPGRADE)
            socks.append(s)
        while server.num_subscribers("t") < args.subscribers:
            await asyncio.sleep(0.01)
        for s in socks:  # the 101s
            while True:
                try:
                    s.recv(1 << 16)
                except BlockingIOError:
                    break
        connections = list(server.connections)
        n = args.subscribers * args.messages

        async def drained() -> None:
            await settle(server)
            for s in socks:  # empty the kernel's buffers between cases, outside the timing
                while True:
                    try:
                        if not s.recv(1 << 20):
                            break
                    except BlockingIOError:
                        break

        async def batched() -> None:
            for _ in range(args.messages):
                server.publish("t", message)
            await settle(server)

        async def one_per_iteration() -> None:
            for _ in range(args.messages):
                server.publish("t", message)
                await settle(server)

        async def sends() -> None:
            for _ in range(args.messages):
                for ws in connections:
                    ws.send_nowait(message)
                await settle(server)

        cases = {"publish, MESSAGES per loop iteration": batched, "publish, 1 per loop iteration": one_per_iteration,
                 "send_nowait to each": sends}
        for _ in range(2):  # the second round is the one kept (the first warms up)
            for name, case in cases.items():
                t = time.process_time()
                await case()
                results[name] = (time.process_time() - t) / n * 1e6
                await drained()
        for s in socks:
            s.close()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=50)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = asyncio.run(measure(args))
    print(f"fastframe {fastframe.IMPLEMENTATION}, {args.subscribers} subscribers, {args.messages} messages "
          f"of {args.size} B: server CPU per subscriber per message")
    send = results["send_nowait to each"]
    for name, us in results.items():
        print(f"  {name.replace('MESSAGES', str(args.messages)):>40}: {us:6.3f} us ({us / send:.2f}x a send)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
