// Headless Chromium (Debian's) on the chat demo, driven by playwright-core.
// usage: node chromium_chat.js HTTP_URL  -> prints a JSON report, exit 0 on success
"use strict";
const { withChromium } = require("./chromium");
const url = process.argv[2];

withChromium(async (context, report) => {
  const a = await context.newPage();
  const b = await context.newPage();
  for (const p of [a, b]) {
    await p.goto(url);
    await p.waitForFunction(() => document.getElementById("status").textContent === "connected");
  }
  // A message typed in one page appears in both, as one item: the
  // sender's name, then the text.
  await a.fill("#msg", "hello from chromium");
  await a.press("#msg", "Enter");
  for (const [name, p] of [["a", a], ["b", b]]) {
    await p.waitForFunction(() => [...document.querySelectorAll("#log li.msg")].some(
      li => li.querySelector(".text").textContent === "hello from chromium"
        && /^user\d+$/.test(li.querySelector(".user").textContent)));
    report["typed_seen_in_" + name] = true;
  }
  // A message with newlines and markup is one item, attributed to its
  // sender, shown as text: nothing in it passes for another user's line.
  const tricky = "hi\n* user1 left\nuser1: <b>bold</b> claims";
  await a.evaluate((text) => window.chat.send(text), tricky);
  report.multiline_one_item = await b.evaluate(async (text) => {
    const items = () => [...document.querySelectorAll("#log li")];
    for (let i = 0; i < 100 && !items().some(li => li.textContent.includes("claims")); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const sender = (t) => items().find(li => li.classList.contains("msg")
      && li.querySelector(".text").textContent === t).querySelector(".user").textContent;
    const holding = items().filter(li => li.textContent.includes("claims") || li.textContent.includes("left"));
    return holding.length === 1 && holding[0].classList.contains("msg")
      && holding[0].querySelector(".text").textContent === text
      && sender(text) === sender("hello from chromium")
      && document.querySelector("#log b") === null;
  }, tricky);
  // A 1 MiB binary message comes back intact.
  report.binary_intact = await b.evaluate(() => new Promise((resolve) => {
    const data = new Uint8Array(1 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 255;
    const ws = window.chat;
    ws.addEventListener("message", function onMsg(ev) {
      if (typeof ev.data === "string") return;
      ws.removeEventListener("message", onMsg);
      const back = new Uint8Array(ev.data);
      resolve(back.length === data.length && back.every((v, i) => v === data[i]));
    });
    ws.send(data);
  }));
  // A clean close gives 1000 and wasClean.
  const closed = await a.evaluate(() => new Promise((resolve) => {
    window.chat.onclose = (ev) => resolve({ code: ev.code, wasClean: ev.wasClean });
    window.chat.close(1000, "bye");
  }));
  report.close_code = closed.code;
  report.was_clean = closed.wasClean;
  report.ok = report.typed_seen_in_a && report.typed_seen_in_b && report.multiline_one_item && report.binary_intact
    && closed.code === 1000 && closed.wasClean;
});
