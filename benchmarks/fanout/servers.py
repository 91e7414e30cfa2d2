"""The fan-out servers the benchmark runs, one per process:

    python -m benchmarks.fanout.servers fastframe PORT [--redis URL] [--reuse-port]
    python -m benchmarks.fanout.servers socketify PORT

Each subscribes every connection made to /sub to the topic "bench", and
publishes every message that a connection to /pub sends to it: the same
work in each, through each library's own pub/sub.  Keepalive and
compression are off in both; each peer may buffer up to 16 MiB per
subscriber before it gives up on it (fastframe's max_write_buffer, uWS's
maxBackpressure).  Prints "ready" once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
from typing import Any

TOPIC = "bench"
BACKLOG_CAP = 16 << 20


def _more_files() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def fastframe_server(port: int, redis: str | None, reuse_port: bool) -> None:
    import fastframe

    class Fan(fastframe.Listener):
        def on_open(self, ws: Any) -> None:
            if ws.path.startswith("/sub"):
                ws.subscribe(TOPIC)

        def on_message(self, ws: Any, message: Any) -> None:
            ws.server.publish(TOPIC, message)

    async def main() -> None:
        async with fastframe.serve(Fan, "127.0.0.1", port, compression=None, ping_interval=None,
                                   max_size=1 << 20, max_write_buffer=BACKLOG_CAP, broker=redis,
                                   reuse_port=reuse_port) as server:
            print("ready", flush=True)
            await server.serve_forever()

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with the bench extra
        asyncio.run(main())
    else:
        uvloop.run(main())


def socketify_server(port: int) -> None:
    from socketify import App, CompressOptions, OpCode

    app = App()

    def publish(ws: Any, message: Any, opcode: Any) -> None:
        app.publish(TOPIC, message, OpCode.BINARY)

    common = {"compression": CompressOptions.DISABLED, "max_payload_length": 1 << 20,
              "idle_timeout": 960, "max_backpressure": BACKLOG_CAP}
    app.ws("/sub", {**common, "open": lambda ws: ws.subscribe(TOPIC)})
    app.ws("/pub", {**common, "message": publish})
    app.listen({"port": port, "host": "127.0.0.1"}, lambda config: print("ready", flush=True))
    app.run()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("server", choices=["fastframe", "socketify"])
    ap.add_argument("port", type=int)
    ap.add_argument("--redis", default=None)
    ap.add_argument("--reuse-port", action="store_true")
    args = ap.parse_args(argv)
    _more_files()
    if args.server == "fastframe":
        fastframe_server(args.port, args.redis, args.reuse_port)
    else:
        socketify_server(args.port)


if __name__ == "__main__":
    sys.exit(main())
