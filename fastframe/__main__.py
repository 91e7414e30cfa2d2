"""Command line: ``python -m fastframe serve --mode echo --host H --port P``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import List, Optional


def _size(text: str) -> Optional[int]:
    if text.lower() in ("none", "unlimited", "0"):
        return None
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    if text[-1].lower() in units:
        return int(text[:-1]) * units[text[-1].lower()]
    return int(text)


async def _serve(args: argparse.Namespace) -> None:
    from . import IMPLEMENTATION
    from .server import serve_echo

    server = await serve_echo(args.host, args.port, args.max_size)
    addrs = ", ".join(str(s.getsockname()) for s in server.sockets)
    logging.getLogger("fastframe").info(
        "fastframe %s serving mode=%s on %s (implementation %s)", "echo", args.mode, addrs, IMPLEMENTATION
    )
    print(f"listening on {addrs}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fastframe")
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run a WebSocket server")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--mode", choices=["echo"], default="echo",
                   help="echo: send every message back unchanged (the chat mode is not built yet)")
    s.add_argument("--max-size", type=_size, default=64 << 20,
                   help="largest message in bytes (suffix k/m/g, or 'none'); default 64m in echo "
                        "mode, since Autobahn 9.x sends 16 MiB messages")
    s.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
