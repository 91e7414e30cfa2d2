// Node `ws` echo server for fastframe's client.
// usage: node ws_server.js DEFLATE(0|1)  -> prints the port, echoes until killed
"use strict";
const WebSocket = require("ws");
const deflate = process.argv[2] === "1";
const wss = new WebSocket.Server({ host: "127.0.0.1", port: 0, perMessageDeflate: deflate });
wss.on("listening", () => console.log(wss.address().port));
wss.on("connection", (ws, req) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
