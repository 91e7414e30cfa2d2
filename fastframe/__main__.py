"""Command line.

    python -m fastframe serve [--host 127.0.0.1] [--port 8080] [--mode chat|echo]
                              [--allow-origin ORIGIN]... [--any-origin]
                              [--workers N] [--redis redis://127.0.0.1:6379/0]
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
import socket
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


#: A chat room's name, from ``/ws?room=NAME`` (the page passes its own
#: ``?room=``); each room is a topic, ``chat:NAME``.
_ROOM = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_DEFAULT_ROOM = "lobby"


def _room(path: str) -> str | None:
    """The room a chat connection asks for (the default one when it names
    none), or None for a name that is not allowed."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    room = query.get("room", [_DEFAULT_ROOM])[0] or _DEFAULT_ROOM
    return room if _ROOM.fullmatch(room) else None


async def _serve(args: argparse.Namespace) -> int:
    from . import IMPLEMENTATION
    from .deflate import DeflateConfig
    from .server import serve

    page = _chat_page()
    # Users are named by connection id, which counts per process: with
    # several processes (workers, or servers sharing a broker) a short
    # random tag of this process keeps two users apart.
    tag = f"-{os.urandom(2).hex()}" if args.redis or args.worker_id else ""

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async def chat(ws: Any) -> None:
        # A room is a topic; with --redis it spans every server attached to
        # the same Redis.  Text goes to the room as JSON, the sender's short
        # id apart from what they wrote (so that no text can pass for
        # another user's line): {"user": "user3", "text": "..."}, and
        # {"user": ..., "event": "joined"} or "left"; binary is echoed to the
        # sender only.
        name = f"user{ws.id}{tag}"
        topic = "chat:" + (_room(ws.path) or _DEFAULT_ROOM)
        server = ws.server
        ws.subscribe(topic)
        server.publish(topic, json.dumps({"user": name, "event": "joined"}))
        try:
            async for message in ws:
                if isinstance(message, str):
                    server.publish(topic, json.dumps({"user": name, "text": message}, ensure_ascii=False))
                else:
                    await ws.send(message)
        finally:
            ws.unsubscribe(topic)
            server.publish(topic, json.dumps({"user": name, "event": "left"}))

    def process_request(request: Any) -> tuple[int, list[tuple[str, str]], bytes] | None:
        if args.mode != "chat":
            return None
        path = request.path.split("?", 1)[0]
        if path == "/ws":
            if not _origin_allowed(request.headers.get("Origin"), request.headers.get("Host"),
                                   args.allow_origin, args.any_origin):
                return (403, [], b"Origin not allowed; see --allow-origin and --any-origin\n")
            if _room(request.path) is None:
                return (400, [], b"a room name is 1 to 64 letters, digits, '_', '-' or '.'\n")
            return None
        if path in ("/", "/index.html") and request.method == "GET":
            return (200, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-cache")], page)
        return (404, [], b"not found; the chat page is at / and its WebSocket at /ws\n")

    max_size = args.max_size if args.max_size != -1 else (64 << 20 if args.mode == "echo" else 1 << 20)
    where: dict[str, Any] = {"host": args.host, "port": args.port}
    if args.worker_fd is not None:  # a worker on the supervisor's socket
        where = {"host": None, "sock": socket.socket(fileno=args.worker_fd)}
    elif args.worker_id:  # a worker on a port shared with SO_REUSEPORT
        where["reuse_port"] = True
    server = await serve(
        echo if args.mode == "echo" else chat,
        max_size=max_size,
        compression=None if args.no_compression else DeflateConfig(),
        process_request=process_request,
        max_connections=args.max_connections,
        ping_interval=args.ping_interval or None,
        broker=args.redis,
        **where,
    )
    addrs = ", ".join("{}:{}".format(*s.getsockname()[:2]) for s in server.sockets)
    where_text = f"http://{addrs}/ (WebSocket at /ws)" if args.mode == "chat" else f"ws://{addrs}/"
    log.info("fastframe %s server on %s, implementation %s%s", args.mode, where_text, IMPLEMENTATION,
             f", topics through {server.topics.broker.where}" if server.topics.broker else "")
    print(f"listening on {where_text}", flush=True)
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
    if args.worker_id:
        _stop_with_supervisor(loop, on_signal)
    await stop
    log.info("shutting down: closing %d connections with 1001", len(server.connections))
    await server.aclose()
    return 0


# -- workers ---------------------------------------------------------------------------

#: Where each worker can bind the port itself and the kernel spreads new
#: connections over the workers' sockets.  Elsewhere (macOS and the BSDs
#: accept SO_REUSEPORT but do not balance with it) the supervisor listens
#: and the workers accept from its socket.
REUSE_PORT = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _stop_with_supervisor(loop: asyncio.AbstractEventLoop, stop: Any) -> None:
    """A worker reads its stdin, a pipe from the supervisor: at its end
    (the supervisor is gone, however it died) the worker shuts down too."""
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:  # pragma: no cover - spurious wake-up
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            log.info("the supervisor is gone: shutting down")
            stop()

    os.set_blocking(fd, False)
    loop.add_reader(fd, readable)


def _bind(host: str | None, port: int, listen: bool) -> list[socket.socket]:
    """One socket per address of ``host``, all on one port (for port 0, the
    one the first socket got).  With ``listen`` false they only hold the
    port (SO_REUSEPORT: a socket that does not listen gets no connections)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    socks: list[socket.socket] = []
    seen = set()
    try:
        for family, kind, proto, _, addr in infos:
            if addr in seen:
                continue
            seen.add(addr)
            s = socket.socket(family, kind, proto)
            socks.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if REUSE_PORT:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(socks) > 1:
                addr = (addr[0], socks[0].getsockname()[1], *addr[2:])
            s.bind(addr)
            if listen:
                s.listen(1024)
                s.set_inheritable(True)
                break  # the workers share one socket: the first address
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


class _Supervisor:
    """``serve --workers N``: N worker processes on one port, each a whole
    server (``serve`` with the same options), restarted when one dies;
    SIGINT or SIGTERM stops them all gracefully."""

    def __init__(self, args: argparse.Namespace, argv: list[str]) -> None:
        self.args = args
        self.argv = argv
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.stopping = False
        self.restarts = 0

    async def run(self) -> int:
        args = self.args
        loop = asyncio.get_running_loop()
        try:
            # Linux: sockets that only hold the port, so that it stays ours
            # while a worker restarts.  Elsewhere: the socket the workers share.
            self.socks = _bind(args.host, args.port, listen=not REUSE_PORT)
        except OSError as exc:
            print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        self.port = int(self.socks[0].getsockname()[1])
        stop = loop.create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, stop)
        ready: list[asyncio.Future[str | None]] = [loop.create_future() for _ in range(args.workers)]
        keepers = [loop.create_task(self._keep(i + 1, ready[i])) for i in range(args.workers)]
        failed: list[str] = []
        while not stop.done() and not failed and not all(f.done() for f in ready):
            await asyncio.wait([stop, *[f for f in ready if not f.done()]],
                               return_when=asyncio.FIRST_COMPLETED)
            failed = [r for r in (f.result() for f in ready if f.done()) if r is not None]
        code = 0
        if failed and not stop.done():
            print(f"error: a worker could not start ({failed[0]}); see its log above", file=sys.stderr)
            code = 1
        elif not stop.done():
            where = f"http://{args.host}:{self.port}/ (WebSocket at /ws)" if args.mode == "chat" \
                else f"ws://{args.host}:{self.port}/"
            how = "SO_REUSEPORT" if REUSE_PORT else "one shared socket"
            log.info("%d workers on %s (%s): pids %s", args.workers, where, how,
                     " ".join(str(p.pid) for p in self.procs.values()))
            print(f"listening on {where} with {args.workers} workers", flush=True)
            await stop
        await self._stop_all()
        for task in keepers:
            task.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
        for s in self.socks:
            s.close()
        return code

    def _on_signal(self, stop: asyncio.Future[None]) -> None:
        # Workers run in sessions of their own (a Ctrl-C at the terminal
        # reaches the supervisor alone).  The first signal stops them
        # gracefully (_stop_all sends each one SIGTERM); a second one is
        # passed on, and they stop at once, as one server does.
        if not stop.done():
            stop.set_result(None)
            return
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)

    async def _stop_all(self) -> None:
        self.stopping = True
        procs = [p for p in self.procs.values() if p.returncode is None]
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        if procs:
            # Each closes its connections within its close timeout (10 s).
            await asyncio.wait([asyncio.ensure_future(p.wait()) for p in procs], timeout=20)
            for proc in procs:
                if proc.returncode is None:
                    log.warning("worker pid %d did not stop in time: killed", proc.pid)
                    proc.kill()
                    await proc.wait()

    async def _keep(self, index: int, ready: asyncio.Future[str | None]) -> None:
        """Run worker ``index``, and again whenever it dies (after a pause
        that grows while it keeps dying young)."""
        loop = asyncio.get_running_loop()
        pause = 0.5
        fds = [] if REUSE_PORT else [self.socks[0].fileno()]
        while not self.stopping:
            cmd = [sys.executable, "-m", "fastframe", "serve", *self.argv,
                   "--workers", "1", "--port", str(self.port), "--worker-id", str(index)]
            if fds:
                cmd += ["--worker-fd", str(fds[0])]
            started = loop.time()
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                start_new_session=True, pass_fds=fds)
            self.procs[index] = proc
            assert proc.stdout is not None
            line = (await proc.stdout.readline()).decode(errors="replace")
            if "listening" in line:
                if not ready.done():
                    ready.set_result(None)
                elif self.restarts:
                    log.info("worker %d restarted (pid %d)", index, proc.pid)
                drain = loop.create_task(proc.stdout.read())
            else:
                drain = None
            code = await proc.wait()
            if drain is not None:
                drain.cancel()
            if self.stopping:
                return
            if not ready.done():
                ready.set_result(f"worker {index} exited with code {code}")
                return
            how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            log.warning("worker %d (pid %d) %s: restarting it", index, proc.pid, how)
            self.restarts += 1
            if loop.time() - started < 5:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)
            else:
                pause = 0.5


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
    s.add_argument("--workers", type=int, default=1, metavar="N",
                   help="run N processes on the port (SO_REUSEPORT on Linux, else one shared socket); "
                        "a worker that dies is restarted; with --mode chat, needs --redis")
    s.add_argument("--redis", default=None, metavar="URL",
                   help="topics through Redis pub/sub (redis://host:6379/0): chat rooms span every "
                        "server and worker attached to the same Redis (pip install \"fastframe[redis]\")")
    # Set by the supervisor of --workers on each worker's command line.
    s.add_argument("--worker-id", type=int, default=0, help=argparse.SUPPRESS)
    s.add_argument("--worker-fd", type=int, default=None, help=argparse.SUPPRESS)
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
    who = f"worker{args.worker_id}[%(process)d] " if getattr(args, "worker_id", 0) else ""
    logging.basicConfig(level=args.log_level.upper(),
                        format=f"%(asctime)s %(levelname)s {who}%(name)s: %(message)s")
    if args.command == "serve":
        problem = _check_serve(args)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    try:
        if args.command == "serve" and args.workers > 1:
            return _run(_Supervisor(args, argv[argv.index("serve") + 1:]).run())
        return _run(_serve(args) if args.command == "serve" else _client(args))
    except KeyboardInterrupt:
        return 130


def _check_serve(args: argparse.Namespace) -> str | None:
    """What makes ``serve``'s options unusable, said plainly; None if nothing."""
    if args.workers < 1:
        return "--workers takes a number of processes, 1 or more"
    if args.workers > 1 and args.mode == "chat" and not args.redis:
        return (f"--mode chat with --workers {args.workers} needs --redis URL: each worker sees only "
                "its own connections, so a message would reach only the users of the worker that "
                "received it (run redis-server and pass --redis redis://127.0.0.1:6379/0)")
    if args.workers > 1 and sys.platform == "win32":
        return ("--workers needs a POSIX system (SO_REUSEPORT, or a listening socket the workers "
                "inherit); on Windows run one server per port behind a load balancer")
    if args.redis:
        try:
            from .pubsub import broker_from_url

            broker_from_url(args.redis)
        except (ImportError, ValueError) as exc:
            return f"--redis {args.redis}: {exc}"
    return None


if __name__ == "__main__":
    sys.exit(main())
