"""A trio-websocket echo server: the trio server of the fastframe.wsproto
benchmark.

    python trio_echo.py PORT                            on the real wsproto
    python -m fastframe.wsproto -m trio_echo PORT       on fastframe.wsproto

Prints "listening" once it accepts connections.
"""

from __future__ import annotations

import sys
from functools import partial

import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket


async def echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    try:
        while True:
            await ws.send_message(await ws.get_message())
    except ConnectionClosed:
        pass


async def main(port: int) -> None:
    async with trio.open_nursery() as nursery:
        # 64 MiB messages at most, as the other echo servers of the benchmarks.
        await nursery.start(partial(serve_websocket, echo, "127.0.0.1", port, ssl_context=None,
                                    max_message_size=64 << 20))
        print("listening", flush=True)


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]))
