"""A minimal asyncio server on the sans-I/O Connection.

This module only moves bytes between a transport and a
:class:`~fastframe.protocol.Connection`: everything RFC 6455 lives there.
For now it serves one mode, echo, which is what the Autobahn conformance
suite drives; the handler API (``fastframe.serve``) builds on the same
protocol class.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, List, Optional

from .protocol import Closed, Connection, Message, Opened, Rejected, State

__all__ = ["EchoProtocol", "serve_echo"]

log = logging.getLogger("fastframe.server")

# What one message event becomes: the echo sends it back unchanged.
OnMessage = Callable[[Connection, Any], None]


class EchoProtocol(asyncio.Protocol):
    """One connection: feed the Connection, write what it produces."""

    def __init__(self, max_message_size: Optional[int]) -> None:
        self.conn = Connection(client=False, max_message_size=max_message_size)
        self.transport: Optional[asyncio.Transport] = None
        self.peer: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        try:
            events = conn.receive_data(data)
        except Exception:  # pragma: no cover - a bug, not the peer
            log.exception("internal error on connection from %s", self.peer)
            self._flush()
            self.transport.abort()  # type: ignore[union-attr]
            return
        done = False
        for ev in events:
            if type(ev) is Message:
                # A message that arrived in the same read as the peer's close
                # cannot be echoed: nothing may follow our close (§5.5.1).
                if conn.state is State.OPEN:
                    conn.send(ev.data)
            elif type(ev) is Opened:
                log.info("open %s %s", self.peer, ev.request.path)
            elif type(ev) is Closed or type(ev) is Rejected:
                done = True
                if type(ev) is Closed and ev.error is not None:
                    log.info("closing %s: %s (%d)", self.peer, ev.error, ev.code)
        self._flush()
        if done:
            # §7.1.1: the server closes the TCP connection first.
            self.transport.close()  # type: ignore[union-attr]

    def _flush(self) -> None:
        out: List[bytes] = self.conn.data_to_send()
        if out:
            if len(out) == 1:
                self.transport.write(out[0])  # type: ignore[union-attr]
            else:
                self.transport.writelines(out)  # type: ignore[union-attr]

    def eof_received(self) -> Optional[bool]:
        self.conn.receive_eof()
        return None

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        log.info("close %s", self.peer)


async def serve_echo(host: str, port: int, max_message_size: Optional[int] = 64 << 20) -> asyncio.AbstractServer:
    """Start an echo server; every text and binary message comes back as is."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: EchoProtocol(max_message_size), host, port)
