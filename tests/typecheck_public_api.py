"""A user's program, for ``mypy --strict`` (listed in pyproject's
``[tool.mypy] files``; not a test module, pytest does not collect it).

fastframe ships ``py.typed``, so what its top-level names look like to a type
checker is part of the API.  Every name here is reached as users reach it,
``fastframe.<name>``, through the lazily imported top level; a name that type
checkers saw as ``object`` (as a module ``__getattr__`` alone would make them)
fails this check.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

import fastframe


async def echo(ws: fastframe.WebSocket) -> None:
    assert ws.request is not None
    print(ws.id, ws.remote_address, ws.request.path, ws.subprotocol)
    async for message in ws:
        await ws.send(message)
    try:
        await ws.recv()
    except fastframe.ConnectionClosed as exc:
        print(exc.code, exc.reason)


class Chat(fastframe.Listener):
    members: ClassVar[set[fastframe.WebSocket]] = set()

    def on_open(self, ws: fastframe.WebSocket) -> None:
        self.members.add(ws)

    def on_message(self, ws: fastframe.WebSocket, message: str | bytes) -> None:
        fastframe.broadcast(self.members, message)

    def on_close(self, ws: fastframe.WebSocket, code: int, reason: str) -> None:
        self.members.discard(ws)


class Room(fastframe.Listener):
    def on_open(self, ws: fastframe.WebSocket) -> None:
        subscribed: bool = ws.subscribe("room")
        print(subscribed)

    def on_message(self, ws: fastframe.WebSocket, message: str | bytes) -> None:
        ws.server.publish("room", message)

    def on_close(self, ws: fastframe.WebSocket, code: int, reason: str) -> None:
        left: bool = ws.unsubscribe("room")
        print(left)


async def main() -> None:
    async with fastframe.serve(echo, "127.0.0.1", 0, compression=fastframe.DeflateConfig()) as server:
        assert isinstance(server, fastframe.Server)
        async with fastframe.connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as ws:
            await ws.send("hello")
            reply: str | bytes = await ws.recv()
            print(reply)
            await ws.close(1000, "bye")
    async with fastframe.serve(Chat, "127.0.0.1", 0):
        pass
    async with fastframe.serve(Room, "127.0.0.1", 0, broker=None) as rooms:
        queued: int = rooms.publish("room", b"to everyone in the room")
        print(queued, rooms.num_subscribers("room"), rooms.topics.topics_of)


def sans_io() -> None:
    conn = fastframe.Connection(client=False, handshake=False)
    for event in conn.receive_data(b"", -1):
        print(event)
    conn.send("text")
    out: list[bytes] = list(conn.data_to_send())
    frame: bytes = fastframe.encode_frame(fastframe.Opcode.TEXT, b"hi")
    parser = fastframe.FrameParser(expect_mask=False)
    print(out, parser.feed(frame), fastframe.IMPLEMENTATION)
    try:
        raise fastframe.HandshakeError(400, "no")
    except fastframe.FastFrameError:
        pass


if __name__ == "__main__":
    asyncio.run(main())
    sans_io()
