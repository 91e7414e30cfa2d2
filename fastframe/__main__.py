"""Command line.

    python -m fastframe serve [--host 127.0.0.1] [--port 8080] [--mode chat|echo]
    python -m fastframe client ws://127.0.0.1:8080/ws
    python -m fastframe bench [--full] [--plot FILE.png]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("fastframe")


def _size(text: str) -> int | None:
    if text.lower() in ("none", "unlimited"):
        return None
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    if text and text[-1].lower() in units:
        return int(text[:-1]) * units[text[-1].lower()]
    return int(text)


def _run(coro: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when it is installed (the ``uvloop`` extra), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    if hasattr(uvloop, "run"):
        result: int = uvloop.run(coro)
        return result
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # pragma: no cover - old uvloop
    return asyncio.run(coro)  # pragma: no cover


# -- serve -----------------------------------------------------------------------------


def _chat_page() -> bytes:
    with open(os.path.join(os.path.dirname(__file__), "static", "chat.html"), "rb") as f:
        return f.read()


async def _serve(args: argparse.Namespace) -> int:
    from . import IMPLEMENTATION
    from .deflate import DeflateConfig
    from .server import broadcast, serve

    page = _chat_page()
    server_ref: list[Any] = []

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async def chat(ws: Any) -> None:
        # Text goes to everyone, prefixed with the sender's short id (as in
        # the classic Socket.IO chat); binary is echoed to the sender only.
        name = f"user{ws.id}"
        server = server_ref[0]
        broadcast(server.connections, f"* {name} joined")
        try:
            async for message in ws:
                if isinstance(message, str):
                    broadcast(server.connections, f"{name}: {message}")
                else:
                    await ws.send(message)
        finally:
            broadcast([c for c in server.connections if c is not ws], f"* {name} left")

    def process_request(request: Any) -> tuple[int, list[tuple[str, str]], bytes] | None:
        if args.mode != "chat":
            return None
        path = request.path.split("?", 1)[0]
        if path == "/ws":
            return None
        if path in ("/", "/index.html") and request.method == "GET":
            return (200, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-cache")], page)
        return (404, [], b"not found; the chat page is at / and its WebSocket at /ws\n")

    max_size = args.max_size if args.max_size != -1 else (64 << 20 if args.mode == "echo" else 1 << 20)
    server = await serve(
        echo if args.mode == "echo" else chat,
        args.host,
        args.port,
        max_size=max_size,
        compression=None if args.no_compression else DeflateConfig(),
        process_request=process_request,
        max_connections=args.max_connections,
        ping_interval=args.ping_interval or None,
    )
    server_ref.append(server)
    addrs = ", ".join("{}:{}".format(*s.getsockname()[:2]) for s in server.sockets)
    where = f"http://{addrs}/ (WebSocket at /ws)" if args.mode == "chat" else f"ws://{addrs}/"
    log.info("fastframe %s server on %s, implementation %s", args.mode, where, IMPLEMENTATION)
    print(f"listening on {where}", flush=True)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            asyncio.get_running_loop().add_signal_handler(sig, lambda: None if stop.done() else stop.set_result(None))
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            pass
    await stop
    log.info("shutting down: closing %d connections with 1001", len(server.connections))
    await server.aclose()
    return 0


# -- client ----------------------------------------------------------------------------


async def _client(args: argparse.Namespace) -> int:
    from .client import connect
    from .deflate import DeflateConfig
    from .exceptions import ConnectionClosed

    loop = asyncio.get_running_loop()
    try:
        ws = await connect(args.url, compression=None if args.no_compression else DeflateConfig(),
                           max_size=args.max_size if args.max_size != -1 else 1 << 20)
    except Exception as exc:  # noqa: BLE001 - any failure to connect: say it plainly
        print(f"error: cannot connect to {args.url}: {exc}", file=sys.stderr)
        return 1
    last = [loop.time()]

    async def printer() -> None:
        async for message in ws:
            last[0] = loop.time()
            if isinstance(message, bytes):
                message = message.decode("utf-8", "replace")
            sys.stdout.write(message + "\n")
            sys.stdout.flush()

    reader = loop.create_task(printer())
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            if reader.done():
                break
            await ws.send(line.rstrip("\r\n"))
            last[0] = loop.time()
        # End of input: wait for replies still in flight (quiet for
        # --wait seconds, at most 10 times that), then close with 1000.
        deadline = loop.time() + 10 * args.wait
        while not reader.done() and loop.time() < deadline and loop.time() - last[0] < args.wait:
            await asyncio.sleep(args.wait / 10)
        if not reader.done():
            await ws.close(1000)
        await asyncio.wait_for(reader, 5)
    except ConnectionClosed:
        pass
    code = ws.close_code
    if code not in (1000, 1001, None):
        print(f"error: connection closed with {code} {ws.close_reason}".rstrip(), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fastframe", description="fastframe WebSocket tools")
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run a WebSocket server (chat demo or echo)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--mode", choices=["chat", "echo"], default="chat",
                   help="chat: page at / and WebSocket at /ws, text broadcast to all; "
                        "echo: every message back unchanged, on any path")
    s.add_argument("--max-size", type=_size, default=-1,
                   help="largest message in bytes (suffix k/m/g, or 'none'); default 1m for chat, "
                        "64m for echo (Autobahn 9.x sends 16 MiB messages)")
    s.add_argument("--max-connections", type=int, default=None)
    s.add_argument("--ping-interval", type=float, default=20.0, help="seconds; 0 disables keepalive")
    s.add_argument("--no-compression", action="store_true", help="refuse permessage-deflate")
    s.add_argument("--log-level", default="INFO")
    c = sub.add_parser("client", help="terminal client: stdin lines out, messages in")
    c.add_argument("url")
    c.add_argument("--wait", type=float, default=0.5,
                   help="at end of input, wait until no message came for this long (seconds)")
    c.add_argument("--max-size", type=_size, default=-1)
    c.add_argument("--no-compression", action="store_true")
    c.add_argument("--log-level", default="WARNING")
    sub.add_parser("bench", help="codec benchmark beside the installed peers (--full, --plot FILE.png)",
                   add_help=False)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        from ._bench.codec import bench_main

        return bench_main(argv[1:])
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return _run(_serve(args) if args.command == "serve" else _client(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
