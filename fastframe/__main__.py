"""Command line.

    python -m fastframe serve [--host 127.0.0.1] [--port 8080] [--mode chat|echo]
                              [--allow-origin ORIGIN]... [--any-origin]
    python -m fastframe client ws://127.0.0.1:8080/ws
    python -m fastframe bench [--full] [--plot FILE.png]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
import urllib.parse
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


def _same_origin(origin: str, host: str) -> bool:
    """True when ``origin`` (RFC 6454 §7) names the site at ``host`` (the
    Host header, RFC 9110 §7.2): same host name and port, default ports
    filled in from the origin's scheme."""
    try:
        o = urllib.parse.urlsplit(origin)
        h = urllib.parse.urlsplit("//" + host)
        default = {"http": 80, "https": 443}.get(o.scheme)
        return (o.scheme in ("http", "https") and o.hostname is not None and not o.path
                and (o.hostname, o.port or default) == (h.hostname, h.port or default))
    except ValueError:
        return False


def _origin_allowed(origin: str | None, host: str | None, allowed: list[str], any_origin: bool) -> bool:
    """The chat's check against cross-site WebSocket hijacking (RFC 6455
    §10.2): a browser sends the page's Origin; one from another site than
    the server's own (or one given with --allow-origin) is refused.  Clients
    that are not browsers send none, and are let in."""
    return any_origin or origin is None or origin in allowed or (host is not None and _same_origin(origin, host))


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
        # Text goes to everyone as JSON, the sender's short id apart from
        # what they wrote (so that no text can pass for another user's line):
        # {"user": "user3", "text": "..."}, and {"user": ..., "event":
        # "joined"} or "left"; binary is echoed to the sender only.
        name = f"user{ws.id}"
        server = server_ref[0]
        broadcast(server.connections, json.dumps({"user": name, "event": "joined"}))
        try:
            async for message in ws:
                if isinstance(message, str):
                    broadcast(server.connections, json.dumps({"user": name, "text": message}, ensure_ascii=False))
                else:
                    await ws.send(message)
        finally:
            broadcast([c for c in server.connections if c is not ws], json.dumps({"user": name, "event": "left"}))

    def process_request(request: Any) -> tuple[int, list[tuple[str, str]], bytes] | None:
        if args.mode != "chat":
            return None
        path = request.path.split("?", 1)[0]
        if path == "/ws":
            if _origin_allowed(request.headers.get("Origin"), request.headers.get("Host"),
                               args.allow_origin, args.any_origin):
                return None
            return (403, [], b"Origin not allowed; see --allow-origin and --any-origin\n")
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
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def on_signal() -> None:
        # The first Ctrl-C (or SIGTERM) closes gracefully; a second one
        # stops at once: every connection aborted, every handler cancelled.
        if not stop.done():
            stop.set_result(None)
            return
        log.info("second signal: aborting %d connections", len(server.protocols))
        for proto in list(server.protocols):
            proto.abort()
        for task in list(server.tasks):
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            pass
    await stop
    log.info("shutting down: closing %d connections with 1001", len(server.connections))
    await server.aclose()
    return 0


# -- client ----------------------------------------------------------------------------

# C0 and C1 controls but newline and tab: a carriage return or an escape
# sequence would let a chat message redraw the terminal's other lines.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _visible(text: str) -> str:
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _chat_line(message: str) -> str:
    """A message of the chat (``serve --mode chat``) as the terminal shows
    it: ``user3: text``, with the text's further lines indented under it,
    or ``* user3 joined``; any other message as it is."""
    if not message.startswith("{"):
        return message
    try:
        m = json.loads(message)
    except ValueError:
        return message
    if not isinstance(m, dict) or not isinstance(m.get("user"), str):
        return message
    user = _visible(m["user"])
    if isinstance(m.get("text"), str):
        head = f"{user}: "
        return head + _visible(m["text"]).replace("\n", "\n" + " " * len(head))
    if isinstance(m.get("event"), str):
        return f"* {user} {_visible(m['event'])}"
    return message


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
            else:
                message = _chat_line(message)
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
    s.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="chat: also accept WebSocket connections from pages at ORIGIN (for example "
                        "https://example.com; repeatable); by default only the server's own origin "
                        "(that of its Host header) and clients that send no Origin are accepted")
    s.add_argument("--any-origin", action="store_true",
                   help="chat: accept WebSocket connections from pages of any site")
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
