"""A Starlette echo app for the Autobahn run through uvicorn:

    uvicorn asgi_echo:app --app-dir compliance --ws fastframe.uvicorn:Protocol
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        pass  # the peer closed while we were answering: nothing left to do


app = Starlette(routes=[WebSocketRoute("/", echo)])
