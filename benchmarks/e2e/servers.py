"""Echo servers for the end-to-end benchmark, one per library, all on uvloop.

    python -m benchmarks.e2e.servers LIBRARY PORT [deflate]
    python -m benchmarks.e2e.servers uvicorn PORT WS_IMPL [deflate]

LIBRARY: fastframe (the coroutine handler API), fastframe_listener (the
callback API), both compiled or pure by FASTFRAME_NO_EXTENSIONS; picows,
aiohttp, websockets; uvicorn WS_IMPL (an ASGI echo app under uvicorn with
``--ws WS_IMPL``: fastframe.uvicorn:Protocol, websockets-sansio or wsproto).
Each echoes every message unchanged, with compression off unless
``deflate`` is given, and prints "listening" once it accepts connections.
Node's ws server is inlined in run.py.

``deflate`` turns permessage-deflate on, each library with its own default
settings (what a user who does not tune it gets): fastframe and websockets
limit both windows to 12 bits and compress at memLevel 5, aiohttp takes 15
bits and zlib's defaults, uvicorn's implementations their libraries'
defaults; every one keeps the context (takeover) and compresses every
message.  picows and uvloop_floor have no permessage-deflate.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys


async def fastframe_server(port: int, deflate: bool = False) -> None:
    import fastframe

    async def echo(ws: fastframe.WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    async with fastframe.serve(echo, "127.0.0.1", port, compression=fastframe.DeflateConfig() if deflate else None,
                               max_size=None, ping_interval=None):
        print("listening", flush=True)
        await asyncio.Event().wait()


async def fastframe_listener_server(port: int, deflate: bool = False) -> None:
    import fastframe

    class Echo(fastframe.Listener):
        def on_message(self, ws: fastframe.WebSocket, message: str | bytes) -> None:
            ws.send_nowait(message)

    async with fastframe.serve(Echo, "127.0.0.1", port, compression=fastframe.DeflateConfig() if deflate else None,
                               max_size=None, ping_interval=None):
        print("listening", flush=True)
        await asyncio.Event().wait()


async def picows_server(port: int, deflate: bool = False) -> None:
    import picows

    if deflate:
        raise SystemExit("picows has no permessage-deflate")

    class Echo(picows.WSListener):
        def on_ws_frame(self, transport, frame):  # type: ignore[no-untyped-def]
            if frame.msg_type == picows.WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
            elif frame.msg_type in (picows.WSMsgType.BINARY, picows.WSMsgType.TEXT):
                transport.send(frame.msg_type, frame.get_payload_as_memoryview())

    server = await picows.ws_create_server(lambda request: Echo(), "127.0.0.1", port)
    print("listening", flush=True)
    await server.serve_forever()


async def aiohttp_server(port: int, deflate: bool = False) -> None:
    from aiohttp import WSMsgType, web

    async def handler(request):  # type: ignore[no-untyped-def]
        # compress=True: aiohttp's default, a 15-bit window both ways.
        ws = web.WebSocketResponse(compress=deflate, max_msg_size=0)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("listening", flush=True)
    await asyncio.Event().wait()


async def websockets_server(port: int, deflate: bool = False) -> None:
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosedError

    async def echo(ws):  # type: ignore[no-untyped-def]
        # The idle benchmark drops its connections without a close frame,
        # which websockets reports as an error (the other servers end quietly).
        with contextlib.suppress(ConnectionClosedError):
            async for message in ws:
                await ws.send(message)

    async with serve(echo, "127.0.0.1", port, compression="deflate" if deflate else None, max_size=None,
                     ping_interval=None):
        print("listening", flush=True)
        await asyncio.Event().wait()


async def asgi_echo(scope, receive, send):  # type: ignore[no-untyped-def]
    """The plainest ASGI echo app: what every uvicorn implementation runs."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def uvicorn_server(port: int, ws: str, deflate: bool = False) -> None:
    import uvicorn

    config = uvicorn.Config(asgi_echo, host="127.0.0.1", port=port, ws=ws, loop="none", http="httptools",
                            lifespan="off", log_level="warning", ws_per_message_deflate=deflate,
                            ws_ping_interval=None, ws_ping_timeout=None)
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    print("listening", flush=True)
    await task


async def uvloop_floor_server(port: int, deflate: bool = False) -> None:
    """Not a WebSocket server: the least a Python server on uvloop can do per
    message (one protocol callback per read, one C call to unmask, one write),
    for the load client's frames only.  A reference line: what uvloop and the
    kernel cost before any WebSocket library runs."""
    from fastframe._codec_c import apply_mask

    if deflate:
        raise SystemExit("uvloop_floor has no permessage-deflate")
    response = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")

    class Floor(asyncio.Protocol):
        def connection_made(self, transport):  # type: ignore[no-untyped-def]
            self.transport = transport
            self.buf = b""
            self.open = False

        def data_received(self, data):  # type: ignore[no-untyped-def]
            buf = self.buf + data if self.buf else data
            if not self.open:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    self.buf = buf
                    return
                self.transport.write(response)
                self.open = True
                buf = buf[end + 4:]
            out = []
            pos, n = 0, len(buf)
            while n - pos >= 6:
                length, hdr = buf[pos + 1] & 0x7F, 2
                if length == 126:
                    if n - pos < 8:
                        break
                    length, hdr = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
                end = pos + hdr + 4 + length
                if end > n:
                    break
                out.append(bytes((0x82, length)) if hdr == 2 else b"\x82\x7e" + buf[pos + 2:pos + 4])
                out.append(apply_mask(buf[pos + hdr + 4:end], buf[pos + hdr:pos + hdr + 4]))
                pos = end
            if out:
                self.transport.write(b"".join(out))
            self.buf = buf[pos:]

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Floor, "127.0.0.1", port)
    print("listening", flush=True)
    await server.serve_forever()


SERVERS = {
    "fastframe": fastframe_server,
    "fastframe_listener": fastframe_listener_server,
    "picows": picows_server,
    "aiohttp": aiohttp_server,
    "websockets": websockets_server,
    "uvloop_floor": uvloop_floor_server,
}


def main() -> None:
    lib, port = sys.argv[1], int(sys.argv[2])
    rest = sys.argv[4:] if lib == "uvicorn" else sys.argv[3:]
    if rest not in ([], ["deflate"]):
        raise SystemExit(f"unexpected arguments {rest} (only 'deflate')")
    deflate = rest == ["deflate"]
    # A shell starts background jobs with SIGINT ignored, and children inherit
    # that; instructions.py stops servers with SIGINT (the clean exit callgrind
    # needs to write its totals), so take it back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import uvloop

    if lib == "uvicorn":
        uvloop.run(uvicorn_server(port, sys.argv[3], deflate))
    else:
        uvloop.run(SERVERS[lib](port, deflate))


if __name__ == "__main__":
    main()
