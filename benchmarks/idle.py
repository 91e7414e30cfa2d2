"""Memory per idle connection: open N WebSocket connections to a server
process and hold them; report the server's RSS growth per connection.

    python -m benchmarks.idle [N] [--server fastframe|websockets|...]
                              [--deflate [--send] [--stdlib-zlib]] [--json FILE]

The server runs in its own process (file descriptors: N each side); the
clients are raw sockets that complete the handshake and then stay silent.
With ``--deflate`` the servers turn permessage-deflate on and the clients
offer it as Chrome does (a 101 that does not accept it is an error): the
memory of a browser's connection that is open and quiet.  ``--send`` has
each client send one compressed 1 KiB text message first and check its echo
(so that both of the server's zlib streams exist, as on a connection in
use); ``--stdlib-zlib`` runs the server with zlib-ng hidden, so that
fastframe compresses with the standard library's zlib.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import zlib
from typing import Any

from fastframe import encode_frame

from .common import save_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
UPGRADE_DEFLATE = UPGRADE[:-2] + b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
# What --send sends: about 1 KiB of JSON-like text, compressed (RFC 7692,
# the 00 00 ff ff tail stripped), in a masked text frame with RSV1.
TEXT = b"".join(b'{"id": %d, "user": "user%d", "price": %d.5}, ' % (i, i % 13, i * 7 % 1000) for i in range(25))[:1024]


def compressed_frame() -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = (c.compress(TEXT) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    return encode_frame(1, body, rsv1=True, mask=True)


def check_echo(frame: bytes) -> None:
    """The server's echo of TEXT: a compressed or plain text frame."""
    if frame[0] & 0x0F != 1 or frame[1] & 0x80:
        raise RuntimeError(f"unexpected echo {frame[:8]!r}")
    payload = frame[2:]
    if frame[0] & 0x40:
        payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
    if payload != TEXT:
        raise RuntimeError("the echo differs from what was sent")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def raise_fd_limit(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n + 1000))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def open_many(port: int, n: int, deflate: bool = False, send: bool = False) -> list[Any]:
    writers = []
    sem = asyncio.Semaphore(200)
    frame = compressed_frame() if send else b""

    async def one() -> None:
        async with sem:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(UPGRADE_DEFLATE if deflate else UPGRADE)
            head = await r.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101 "):
                raise RuntimeError(head[:60])
            if deflate and b"permessage-deflate" not in head.lower():
                raise RuntimeError("the server did not accept permessage-deflate")
            if send:
                w.write(frame)
                first = await r.readexactly(2)
                size = first[1] & 0x7F
                if size == 126:
                    size = int.from_bytes(await r.readexactly(2), "big")
                check_echo(first + await r.readexactly(size))
            writers.append(w)

    await asyncio.gather(*(one() for _ in range(n)))
    return writers


def measure(server: str, n: int, env: dict[str, str] | None = None, deflate: bool = False,
            send: bool = False, stdlib_zlib: bool = False) -> dict[str, Any]:
    raise_fd_limit(n)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    full_env = dict(os.environ, **(env or {}))
    extra = ",'deflate'" if deflate else ""
    code = (
        # A None entry in sys.modules makes the import fail: fastframe falls
        # back on the standard zlib (fastframe.deflate.backend).
        ("import sys;sys.modules['zlib_ng']=None;" if stdlib_zlib else "")
        + "import resource,sys;"
        "s,h=resource.getrlimit(resource.RLIMIT_NOFILE);"
        f"resource.setrlimit(resource.RLIMIT_NOFILE,(min(h,{n}+1000),h));"
        f"sys.argv=['x','{server}','{port}'{extra}];"
        "from benchmarks.e2e.servers import main; main()"
    )
    if not env or "FASTFRAME_NO_EXTENSIONS" not in env:
        full_env.pop("FASTFRAME_NO_EXTENSIONS", None)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=full_env)
    try:
        assert proc.stdout is not None and "listening" in proc.stdout.readline()

        async def go() -> dict[str, Any]:
            warm = await open_many(port, 100, deflate, send)  # allocator and caches warm
            await asyncio.sleep(0.5)
            before = rss_kib(proc.pid)
            writers = await open_many(port, n, deflate, send)
            await asyncio.sleep(1.0)
            after = rss_kib(proc.pid)
            # Still serving: one more connection echoes.
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(UPGRADE)
            await r.readuntil(b"\r\n\r\n")
            w.write(b"\x82\x82abcd" + bytes([ord("h") ^ ord("a"), ord("i") ^ ord("b")]))
            echo = await asyncio.wait_for(r.readexactly(4), 10)
            for x in writers + warm + [w]:
                x.close()
            return {"server": server, "connections": n, "deflate": deflate, "send": send,
                    "stdlib_zlib": stdlib_zlib,
                    "rss_before_kib": before, "rss_after_kib": after,
                    "kib_per_connection": (after - before) / n, "echo_ok": echo == b"\x82\x02hi"}

        return asyncio.run(go())
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("n", nargs="?", type=int, default=10000)
    ap.add_argument("--server", default="fastframe,websockets,picows,aiohttp")
    ap.add_argument("--deflate", action="store_true", help="permessage-deflate negotiated on every connection")
    ap.add_argument("--send", action="store_true", help="with --deflate: one compressed message echoed first")
    ap.add_argument("--stdlib-zlib", action="store_true", help="hide zlib-ng from the server")
    ap.add_argument("--json")
    args = ap.parse_args()
    results = []
    for server in args.server.split(","):
        r = measure(server, args.n, deflate=args.deflate, send=args.send and args.deflate,
                    stdlib_zlib=args.stdlib_zlib)
        results.append(r)
        how = " (deflate" + (", one message" if r["send"] else "") + (", standard zlib" if args.stdlib_zlib else "") + ")"
        print(f"{server:12s} {args.n} idle connections{how if args.deflate else ''}: "
              f"{r['kib_per_connection']:.1f} KiB each "
              f"(RSS {r['rss_before_kib'] / 1024:.0f} -> {r['rss_after_kib'] / 1024:.0f} MiB), "
              f"still echoing: {r['echo_ok']}")
    save_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
