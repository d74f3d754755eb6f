// Drives the host's Chromium (Debian's /usr/bin/chromium) with playwright-core against a Vite
// dev server served through Warren's port proxy. Run by tests/integration/test_dev_server_browser.py:
//
//   node vite_hmr.mjs <url> <text before> <text after>
//   env: E2E_NODE_MODULES = the node_modules holding playwright-core (build/e2e-cache/...)
//
// Protocol on stdio (one JSON object per line): prints {"phase":"ready",...} once the page shows
// <text before>, Vite's HMR client reports "connected" and window.__marker is set; then waits
// for a line on stdin (the test edits the source file inside the sandbox meanwhile), waits for
// <text after>, and prints {"phase":"done",...}: what the page showed, whether window.__marker
// survived (no full reload), the main-frame navigations seen, and the console log.
import { createRequire } from "node:module";
import readline from "node:readline";

const [url, before, after] = process.argv.slice(2);
const require = createRequire((process.env.E2E_NODE_MODULES || ".") + "/");
const { chromium } = require("playwright-core");

const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const consoleLog = [];
let navigations = 0;
let browser;

const stdinLines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => stdinLines.once("line", resolve));

async function waitConsole(re, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (consoleLog.some((l) => re.test(l))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage();
  page.on("console", (m) => consoleLog.push(m.type() + ": " + m.text()));
  page.on("pageerror", (e) => consoleLog.push("pageerror: " + e.message));
  page.on("framenavigated", (f) => { if (f === page.mainFrame()) navigations++; });
  const wsUrls = [];
  page.on("websocket", (ws) => wsUrls.push(ws.url()));

  const resp = await page.goto(url, { waitUntil: "load", timeout: 60000 });
  await page.waitForFunction((t) => document.querySelector("#msg")?.textContent === t, before, { timeout: 30000 });
  const hmrConnected = await waitConsole(/\[vite\] connected/, 30000);
  await page.evaluate(() => { window.__marker = 1; });
  const navBefore = navigations;
  out({ phase: "ready", status: resp.status(), text: await page.textContent("#msg"), hmr_connected: hmrConnected,
        websockets: wsUrls, console: consoleLog });

  await nextLine();  // the test has edited the file in the sandbox
  let updated = true;
  try {
    await page.waitForFunction((t) => document.querySelector("#msg")?.textContent === t, after, { timeout: 30000 });
  } catch {
    updated = false;
  }
  out({
    phase: "done",
    updated,
    text: await page.textContent("#msg").catch(() => null),
    marker: await page.evaluate(() => window.__marker ?? null).catch(() => null),
    navigations_during_edit: navigations - navBefore,
    hot_updated: consoleLog.some((l) => /\[vite\] hot updated/.test(l)),
    websockets: wsUrls,
    console: consoleLog,
  });
} catch (e) {
  out({ phase: "error", error: String(e && e.stack || e), console: consoleLog });
  process.exitCode = 1;
} finally {
  stdinLines.close();
  if (browser) await browser.close();
}
