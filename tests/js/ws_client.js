// Node `ws` as a client of a fastframe echo server.
// usage: node ws_client.js URL DEFLATE(0|1)  -> prints a JSON report, exit 0 on success
"use strict";
const WebSocket = require("ws");
const [url, deflate] = process.argv.slice(2);
const ws = new WebSocket(url, { perMessageDeflate: deflate === "1" });
const expected = [];
const got = [];
const big = Buffer.alloc(200000, 7);
ws.on("open", () => {
  expected.push("hello from node", big.toString("base64"), "fragmented message");
  ws.send("hello from node");
  ws.send(big);
  ws.send("fragmented ", { fin: false });
  ws.send("message", { fin: true });
});
ws.on("message", (data, isBinary) => {
  got.push(isBinary ? Buffer.from(data).toString("base64") : data.toString());
  if (got.length === expected.length) ws.close(1000, "done");
});
ws.on("close", (code) => {
  const ok = JSON.stringify(got) === JSON.stringify(expected) && code === 1000;
  console.log(JSON.stringify({ ok, code, extensions: ws.extensions, count: got.length }));
  process.exit(ok ? 0 : 1);
});
ws.on("error", (e) => { console.log(JSON.stringify({ ok: false, error: String(e) })); process.exit(1); });
setTimeout(() => { console.log(JSON.stringify({ ok: false, error: "timeout", count: got.length })); process.exit(1); }, 20000);
