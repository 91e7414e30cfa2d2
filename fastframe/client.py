"""``fastframe.connect``: the client side, with the same WebSocket object.

    async with fastframe.connect("ws://127.0.0.1:8080/ws") as ws:
        await ws.send("hello")
        print(await ws.recv())
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import urllib.parse
from typing import Any

from .connection import StreamProtocol, WebSocket
from .deflate import DeflateConfig
from .exceptions import HandshakeTimeout, InvalidResponse, InvalidStatus, InvalidURI
from .protocol import Connection, Rejected

__all__ = ["InvalidURI", "connect"]


def parse_url(url: str) -> tuple[bool, str, int, str, str]:
    """Return (secure, host, port, resource, Host header) for a ws/wss URL.

    A URL may be an IRI (RFC 3987): a non-ASCII host name is given in its
    IDNA form (RFC 3987 §3.1, as websockets does), and the resource is
    percent-encoded when the request is built (``handshake.build_request``).
    """
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("ws", "wss") or not u.hostname:
        raise InvalidURI(f"{url!r} is not a ws:// or wss:// URL")
    secure = u.scheme == "wss"
    port = u.port or (443 if secure else 80)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    host = u.hostname
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidURI(f"{url!r} has a host name that IDNA cannot encode") from None
    host_header = f"[{host}]" if ":" in host else host
    if u.port and u.port != (443 if secure else 80):
        host_header += f":{u.port}"
    return secure, host, port, path, host_header


class _Connect:
    def __init__(self, url: str, kw: Any) -> None:
        self.url = url
        self.kw = kw
        self.ws: WebSocket | None = None

    async def _open(self) -> WebSocket:
        kw = self.kw
        secure, host, port, path, host_header = parse_url(self.url)
        ssl = kw["ssl"]
        if secure and ssl is None:
            ssl = ssl_module.create_default_context()
        if not secure:
            ssl = None
        loop = asyncio.get_running_loop()
        conn = Connection(
            client=True, max_message_size=kw["max_size"], subprotocols=kw["subprotocols"],
            compression=kw["compression"], extra_headers=kw["extra_headers"], defer_failure=True,
        )
        conn.connect(host_header, path, origin=kw["origin"])
        proto = StreamProtocol(
            conn, loop=loop, write_limit=kw["write_limit"], max_write_buffer=kw["max_write_buffer"],
            max_queue=kw["max_queue"], close_timeout=kw["close_timeout"],
            ping_interval=kw["ping_interval"], ping_timeout=kw["ping_timeout"],
        )
        ws = WebSocket(proto)
        await asyncio.wait_for(
            loop.create_connection(lambda: proto, host, port, ssl=ssl,
                                   server_hostname=host if ssl is not None else None),
            kw["open_timeout"],
        )
        try:
            rejected = await asyncio.wait_for(asyncio.shield(ws.opened), kw["open_timeout"])
        except asyncio.TimeoutError:
            proto.abort()
            raise HandshakeTimeout(0, "timed out waiting for the handshake response") from None
        if isinstance(rejected, Rejected):
            proto.abort()
            response = conn.response
            if response is not None:
                if response.status != 101:
                    raise InvalidStatus(response.status, rejected.reason)
                raise InvalidResponse(101, rejected.reason)  # a 101 that does not answer our request
            if conn.close_code == 1006:  # the connection ended before a whole answer
                raise HandshakeTimeout(0, rejected.reason)
            raise InvalidResponse(0, rejected.reason)  # not an HTTP response
        self.ws = ws
        return ws

    def __await__(self):  # type: ignore[no-untyped-def]
        return self._open().__await__()

    async def __aenter__(self) -> WebSocket:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await asyncio.wait_for(self.ws.close(), self.kw["close_timeout"] * 2)


def connect(
    url: str,
    *,
    max_size: int | None = 1 << 20,
    subprotocols: list[str] | None = None,
    compression: DeflateConfig | None = DeflateConfig(),
    ssl: ssl_module.SSLContext | None = None,
    origin: str | None = None,
    extra_headers: list[tuple[str, str]] | None = None,
    open_timeout: float = 10.0,
    close_timeout: float = 10.0,
    write_limit: int = 64 * 1024,
    max_write_buffer: int | None = 16 * 1024 * 1024,
    max_queue: int = 32,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
) -> _Connect:
    """Open a client connection; ``async with connect(url) as ws`` or ``ws = await connect(url)``.

    ``ping_interval``/``ping_timeout`` (websockets' defaults, 20 s each): a
    ping after that long without inbound bytes, and close with 1011 when
    nothing arrives for ``ping_timeout`` after it; None turns either off.

    Raises:
        InvalidURI: not a ws:// or wss:// URL.
        InvalidStatus: the server answered with another status than 101.
        InvalidResponse: a 101 that is not a valid upgrade for the request.
        HandshakeTimeout: no answer within ``open_timeout``, or the
            connection ended before one (all three are HandshakeError).
        OSError: the TCP connection failed.
        asyncio.TimeoutError: no connection within ``open_timeout``.
    """
    return _Connect(url, {
        "max_size": max_size, "subprotocols": subprotocols, "compression": compression, "ssl": ssl, "origin": origin,
        "extra_headers": extra_headers, "open_timeout": open_timeout, "close_timeout": close_timeout,
        "write_limit": write_limit, "max_write_buffer": max_write_buffer, "max_queue": max_queue,
        "ping_interval": ping_interval, "ping_timeout": ping_timeout,
    })
