// Headless Chromium (puppeteer-core, system /usr/bin/chromium) against the built-in page.
// Usage: node browser.mjs PORT SCREENSHOT.png
// Prints one JSON line per test: {"name":..., "ok":bool, "detail":...}; exit 1 when any failed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const port = Number(process.argv[2]);
const shot = process.argv[3] || path.join(os.tmpdir(), `echo-ev-${process.pid}.png`);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
let failures = 0;
function report(name, ok, detail = '') {
  if (!ok) failures++;
  process.stdout.write(JSON.stringify({ name, ok, detail: String(detail) }) + '\n');
}
async function run(name, fn) {
  try { await fn(); report(name, true); } catch (e) { report(name, false, e && e.stack || e); }
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'echo-ev-chromium-'));
let browser;
const pageErrors = [];
try {
  await run('launch headless chromium', async () => {
    browser = await puppeteer.launch({
      executablePath,
      headless: true,
      timeout: 30000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
             '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`],
    });
  });
  if (!browser) process.exit(1);
  const page = await browser.newPage();
  page.setDefaultTimeout(10000);
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  // Watch the page's WebSocket traffic, so an echo shown in #log must have come from the server.
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  const framesIn = [];
  cdp.on('Network.webSocketFrameReceived', (e) => framesIn.push(e.response.payloadData));
  const handshake = new Promise((resolve) => {
    cdp.on('Network.webSocketHandshakeResponseReceived', (e) => resolve(e.response.status));
  });

  await run('GET / loads the page with #msg, #send, #log', async () => {
    const resp = await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: 'load', timeout: 15000 });
    if (!resp || resp.status() !== 200) throw new Error(`status ${resp && resp.status()}`);
    for (const sel of ['#msg', '#send', '#log']) await page.waitForSelector(sel, { timeout: 5000 });
  });

  await run('type in #msg, click #send, echo appears in #log', async () => {
    // The page's own socket must be open before the click is meaningful.
    const status = await Promise.race([handshake, new Promise((r) => setTimeout(() => r('none within 10 s'), 10000))]);
    if (status !== 101) throw new Error(`page WebSocket handshake: ${status}`);
    for (const text of ['hello from chromium', 'second message \u2713']) {
      await page.click('#msg', { clickCount: 3 });
      await page.type('#msg', text);
      await page.click('#send');
      await page.waitForFunction(
        (t) => [...document.querySelectorAll('#log li')].some((li) => li.textContent.includes(t)),
        { timeout: 10000 }, text);
      if (!framesIn.includes(text)) throw new Error(`"${text}" shown in #log but no such frame came from the server`);
    }
  });

  await run("tutorial snippet new WebSocket('ws://localhost:PORT/') echoes", async () => {
    const got = await page.evaluate((p) => new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://localhost:${p}/`);
      const t = setTimeout(() => reject(new Error('no echo within 10 s')), 10000);
      ws.onopen = () => ws.send('tutorial echo');
      ws.onmessage = (ev) => { clearTimeout(t); ws.close(1000); resolve(ev.data); };
      ws.onerror = () => { clearTimeout(t); reject(new Error('WebSocket error')); };
    }), port);
    if (got !== 'tutorial echo') throw new Error(`got ${JSON.stringify(got)}`);
  });

  await run('binary echo from the page (ArrayBuffer, 70000 bytes)', async () => {
    const ok = await page.evaluate((p) => new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${p}/`);
      ws.binaryType = 'arraybuffer';
      const data = new Uint8Array(70000).map((_, i) => (i * 31) & 255);
      const t = setTimeout(() => reject(new Error('no echo within 10 s')), 10000);
      ws.onopen = () => ws.send(data);
      ws.onmessage = (ev) => {
        clearTimeout(t);
        const got = new Uint8Array(ev.data);
        resolve(got.length === data.length && got.every((v, i) => v === data[i]));
        ws.close();
      };
      ws.onerror = () => reject(new Error('WebSocket error'));
    }), port);
    if (!ok) throw new Error('binary echo differs');
  });

  await run('screenshot', async () => {
    await page.screenshot({ path: shot });
    const st = fs.statSync(shot);
    if (st.size < 1000) throw new Error(`screenshot only ${st.size} bytes`);
    process.stderr.write(`screenshot: ${shot}\n`);
  });

  await run('no uncaught errors in the page', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('\n'));
  });
} finally {
  if (browser) await browser.close().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(failures ? 1 : 0);
