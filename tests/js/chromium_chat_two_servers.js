// Headless Chromium (Debian's) on the chat demo of two servers that share a
// Redis: a page on server A sees what a page on server B sends, and back.
// usage: node chromium_chat_two_servers.js HTTP_URL_A HTTP_URL_B  -> a JSON report, exit 0 on success
"use strict";
const { withChromium } = require("./chromium");
const [urlA, urlB] = process.argv.slice(2);

// The attributed messages (li.msg) of a page whose text is `text`, and who sent them.
function senders(page, text) {
  return page.evaluate((t) => [...document.querySelectorAll("#log li.msg")]
    .filter(li => li.querySelector(".text").textContent === t)
    .map(li => li.querySelector(".user").textContent), text);
}

withChromium(async (context, report) => {
  const b = await context.newPage();
  await b.goto(urlB);
  await b.waitForFunction(() => document.getElementById("status").textContent === "connected");
  const a = await context.newPage();
  await a.goto(urlA);
  await a.waitForFunction(() => document.getElementById("status").textContent === "connected");
  // Typed in one page, shown in both (each page waits: a page in the
  // background may show it a little later).
  const shown = (page, text, timeout = 10000) => page.waitForFunction((t) => [...document.querySelectorAll("#log li.msg .text")]
    .some(el => el.textContent === t), text, { timeout });
  // Server B subscribes to the room's channel when page b joins, and what is
  // published before its SUBSCRIBE reaches Redis never reaches it (at most
  // once): page a types until page b shows a line (a few ms at most).
  let fromAText = null;
  for (let i = 1; i <= 20 && fromAText === null; i++) {
    const text = "hello from server A #" + i;
    await a.fill("#msg", text);
    await a.press("#msg", "Enter");
    await shown(b, text, 500).then(() => { fromAText = text; }, () => {});
  }
  if (fromAText === null) throw new Error("page b never showed what page a typed");
  await shown(a, fromAText);
  await b.fill("#msg", "hello from server B");
  await b.press("#msg", "Enter");
  await shown(a, "hello from server B");
  await shown(b, "hello from server B");
  // Each page shows each message once, attributed to the same user on both.
  const fromA = [await senders(a, fromAText), await senders(b, fromAText)];
  const fromB = [await senders(a, "hello from server B"), await senders(b, "hello from server B")];
  report.from_a = fromA;
  report.from_b = fromB;
  const once = (pair) => pair[0].length === 1 && pair[1].length === 1 && pair[0][0] === pair[1][0];
  report.ok = once(fromA) && once(fromB) && fromA[0][0] !== fromB[0][0];
});
