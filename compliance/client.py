"""fastframe's client against Autobahn's fuzzingserver (client-mode conformance).

    python compliance/client.py ws://127.0.0.1:9001 AGENT

Reads the case count, runs every case (echoing each message until the
server closes), then asks the server to write its reports.
"""

from __future__ import annotations

import asyncio
import sys

import fastframe
from fastframe import ConnectionClosed


async def echo_case(url: str) -> None:
    try:
        async with fastframe.connect(url, max_size=64 << 20, close_timeout=2) as ws:
            async for message in ws:
                await ws.send(message)
    except (ConnectionClosed, OSError, fastframe.HandshakeError, asyncio.TimeoutError):
        pass


async def main(base: str, agent: str) -> None:
    async with fastframe.connect(f"{base}/getCaseCount") as ws:
        count = int(await ws.recv())
    for i in range(1, count + 1):
        sys.stderr.write(f"\rcase {i}/{count}")
        await asyncio.wait_for(echo_case(f"{base}/runCase?case={i}&agent={agent}"), 120)
    sys.stderr.write("\n")
    async with fastframe.connect(f"{base}/updateReports?agent={agent}") as ws:
        try:
            await ws.recv()
        except ConnectionClosed:
            pass


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
