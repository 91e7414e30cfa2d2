// Debian's Chromium, headless, driven by playwright-core (which never
// downloads a browser of its own): the start and end the page tests share.
"use strict";
const { chromium } = require("playwright-core");
const fs = require("fs");
const os = require("os");
const path = require("path");

// Runs `test(context, report)` in a fresh browser profile, then prints the
// report as one JSON line and exits 0 when report.ok, 1 otherwise.
async function withChromium(test) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "fastframe-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const report = {};
  try {
    await test(context, report);
  } catch (e) {
    report.ok = false;
    report.error = String(e);
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  console.log(JSON.stringify(report));
  process.exit(report.ok ? 0 : 1);
}

module.exports = { withChromium };
