// Headless Chromium (puppeteer-core, system /usr/bin/chromium) driving the test console at GET /.
// Usage: node browser.mjs PORT SHOTDIR
// The server runs with --protocol chat. Prints one JSON line per test: {"name":..., "ok":bool,
// "detail":...}; asks the parent (test_browser.py) to stop or restart the server with
// {"need":"stop"} / {"need":"start"} and waits for its "ok" line on stdin. Saves a screenshot of
// each state in SHOTDIR. Exit 1 when any test failed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import puppeteer from 'puppeteer-core';

const port = Number(process.argv[2]);
const shotdir = process.argv[3] || fs.mkdtempSync(path.join(os.tmpdir(), 'echo-ev-shots-'));
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const slow = process.env.EEV_SANITIZED === '1' ? 3 : 1;
const T = (ms) => ms * slow;
const origin = `http://127.0.0.1:${port}`;
let failures = 0;
function emit(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }
function report(name, ok, detail = '') {
  if (!ok) failures++;
  emit({ name, ok, detail: String(detail) });
}
async function run(name, fn) {
  const t0 = Date.now();
  try { await fn(); report(name, true); } catch (e) { report(name, false, (e && e.stack) || e); }
  process.stderr.write(`${name}: ${Date.now() - t0} ms\n`);
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }

// The parent's answers to our requests, one line each.
const answers = [];
let waiter = null;
readline.createInterface({ input: process.stdin }).on('line', (l) => {
  if (waiter) { const w = waiter; waiter = null; w(l); } else answers.push(l);
});
async function ask(need) {
  emit({ need });
  const line = answers.length ? answers.shift()
    : await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no answer to ${need}`)), T(30000));
      waiter = (l) => { clearTimeout(t); resolve(l); };
    });
  if (line !== 'ok') throw new Error(`${need}: ${line}`);
}

fs.mkdirSync(shotdir, { recursive: true });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'echo-ev-chromium-'));
let browser;
const pageErrors = [];
const foreign = [];     // requests to anything but the server
const httpErrors = [];  // responses >= 400
try {
  await run('launch headless chromium', async () => {
    browser = await puppeteer.launch({
      executablePath,
      headless: true,
      timeout: T(30000),
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
             '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`],
    });
  });
  if (!browser) process.exit(1);
  const page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 900 });
  page.setDefaultTimeout(T(10000));
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !/WebSocket connection to/.test(m.text())) pageErrors.push(m.text()); });
  page.on('request', (r) => { if (!r.url().startsWith(origin + '/')) foreign.push(r.url()); });
  page.on('response', (r) => { if (r.status() >= 400) httpErrors.push(`${r.status()} ${r.url()}`); });
  // Watch the page's WebSocket traffic, so what the log shows must match what crossed the wire.
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  const framesIn = [], framesOut = [];
  cdp.on('Network.webSocketFrameReceived', (e) => framesIn.push(e.response));
  cdp.on('Network.webSocketFrameSent', (e) => framesOut.push(e.response));
  const handshakes = []; // the 101 responses' headers, lower-cased names
  cdp.on('Network.webSocketHandshakeResponseReceived', (e) => handshakes.push(
    Object.fromEntries(Object.entries(e.response.headers).map(([k, v]) => [k.toLowerCase(), v]))));

  let n = 0;
  const shot = async (name, fullPage = true) => {
    const file = path.join(shotdir, `${String(++n).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage });
    assert(fs.statSync(file).size > 1000, `screenshot ${file} is empty`);
  };
  const state = () => page.$eval('#state', (e) => [e.dataset.state, e.textContent]);
  const waitState = (s, timeout = T(10000)) =>
    page.waitForFunction((want) => document.querySelector('#state').dataset.state === want, { timeout }, s);
  const waitEcho = (text) => page.waitForFunction((t) => [...document.querySelectorAll('#log li.in .body')]
    .some((b) => b.textContent === t), {}, text);
  const entry = (cls, text) => page.evaluate((c, t) => {
    const li = [...document.querySelectorAll(`#log li.${c}`)].find((l) => l.querySelector('.body').textContent === t);
    if (!li) return null;
    const q = (s) => { const e = li.querySelector(s); return e ? e.textContent : null; };
    return { kind: q('.kind'), size: q('.size'), rtt: q('.rtt'), verdict: q('.verdict'), time: q('.time') };
  }, cls, text);
  // Types text into #msg and presses Enter. Long texts are pasted (typing key
  // by key takes seconds per thousand characters); Enter is always a key press.
  async function typeAndEnter(text) {
    await page.click('#msg', { clickCount: 3 });
    await page.$eval('#msg', (e, v) => { e.value = v; }, text.length > 100 ? text : '');
    if (text.length <= 100) await page.type('#msg', text);
    await page.keyboard.press('Enter');
  }

  await run('GET / loads the console: URL defaults to the page origin, state shown, connects', async () => {
    const resp = await page.goto(`${origin}/`, { waitUntil: 'load', timeout: T(15000) });
    assert(resp && resp.status() === 200, `status ${resp && resp.status()}`);
    const url = await page.$eval('#url', (e) => e.value);
    assert(url === `ws://127.0.0.1:${port}/`, `URL field ${url}`);
    await waitState('open');
    const [, text] = await state();
    assert(text.includes(`ws://127.0.0.1:${port}/`), `state text ${text}`);
    // The negotiated extensions shown are the server's Sec-WebSocket-Extensions answer.
    const ext = await page.$eval('#extensions', (e) => e.textContent);
    const answered = handshakes.length ? handshakes[0]['sec-websocket-extensions'] || 'none' : '(no 101 seen)';
    assert(ext === answered, `extensions shown ${ext}, server answered ${answered}`);
    // The page's own CSP forbids fetch() to http:, so the icon is fetched from here.
    const href = await page.$eval('link[rel=icon]', (e) => e.href);
    for (const u of [href, `${origin}/favicon.ico`]) {
      const r = await fetch(u);
      assert(r.status === 200 && r.headers.get('content-type') === 'image/svg+xml', `${u}: ${r.status}`);
    }
    await shot('open');
  });

  await run('text: Enter sends; log shows direction, time, size, RTT and the checked echo', async () => {
    const text = 'hello from chromium \u2713';
    await typeAndEnter(text);
    await waitEcho(text);
    const out = await entry('out', text), got = await entry('in', text);
    assert(out && out.kind === 'text' && out.size === '23 B', `sent entry ${JSON.stringify(out)}`);
    assert(got && got.size === '23 B' && /^rtt \d/.test(got.rtt) && got.verdict === 'echo ok', `echo entry ${JSON.stringify(got)}`);
    assert(/^\d\d:\d\d:\d\d\.\d{3}$/.test(got.time), `timestamp ${got.time}`);
    assert(framesOut.some((f) => f.opcode === 1 && f.payloadData === text), 'no such text frame was sent');
    assert(framesIn.some((f) => f.opcode === 1 && f.payloadData === text), 'no such text frame came from the server');
    assert((await page.$eval('#msg', (e) => e.value)) === '', 'input not cleared after sending');
    const long = 'x'.repeat(3000);
    await typeAndEnter(long);
    await waitEcho(long);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert(overflow <= 0, `a long line overflows the page by ${overflow}px`);
    await shot('text');
  });

  await run('binary: hex in, hex view of the echo; bad hex refused visibly', async () => {
    await page.click('#kind-binary');
    await typeAndEnter('de ad be ef 00 01 02 03 04');
    const hex = 'de ad be ef 00 01 02 03  04';
    await waitEcho(hex);
    const got = await entry('in', hex);
    assert(got && got.kind === 'binary' && got.size === '9 B' && got.verdict === 'echo ok', `echo entry ${JSON.stringify(got)}`);
    const b64 = Buffer.from('deadbeef0001020304', 'hex').toString('base64');
    assert(framesIn.some((f) => f.opcode === 2 && f.payloadData === b64), 'no such binary frame came from the server');
    const before = framesOut.length;
    await typeAndEnter('not hex');
    const notice = await page.$eval('#notice', (e) => e.textContent);
    assert(/not sent/.test(notice) && /hex/.test(notice), `notice ${notice}`);
    assert((await page.$eval('#msg', (e) => e.value)) === 'not hex', 'refused input was cleared');
    assert(framesOut.length === before, 'a frame was sent for bad hex');
    await shot('binary');
  });

  await run('burst: 2000 binary and 500 text messages, every echo checked, throughput shown', async () => {
    for (const [kind, count, size] of [['binary', 2000, 1000], ['text', 500, 3000]]) {
      await page.click(`#kind-${kind}`);
      await page.$eval('#burst-count', (e, v) => { e.value = v; }, String(count));
      await page.$eval('#burst-size', (e, v) => { e.value = v; }, String(size));
      const inBefore = framesIn.length;
      await page.click('#burst');
      await page.waitForFunction(() => /verified|differed|aborted/.test(document.querySelector('#burst-result').textContent),
        { timeout: T(30000) });
      const res = await page.$eval('#burst-result', (e) => [e.className, e.textContent]);
      assert(res[0] === 'ok' && res[1].includes(`${count} of ${count} echoes verified`), `burst result ${res}`);
      assert(/ [1-9]\d* msg\/s, \d+\.\d\d MB\/s/.test(res[1]), `no throughput in ${res[1]}`);
      const got = framesIn.slice(inBefore).filter((f) => f.opcode === (kind === 'text' ? 1 : 2)).length;
      assert(got >= count, `only ${got} ${kind} frames came back`);
    }
    await shot('burst');
  });

  await run('disconnect with code 4001 "bye": close shown, state closed', async () => {
    await page.$eval('#close-code', (e) => { e.value = '4001'; });
    await page.$eval('#close-reason', (e) => { e.value = 'bye'; });
    await page.click('#disconnect');
    await waitState('closed');
    const info = await page.$eval('#close-info', (e) => e.textContent);
    assert(/^4001, clean; we sent 4001 "bye"$/.test(info), `close info ${info}`);
    await typeAndEnter('after close');
    const notice = await page.$eval('#notice', (e) => e.textContent);
    assert(notice === 'not sent: the connection is closed', `notice ${notice}`);
    await shot('closed-4001');
  });

  await run('subprotocols: offering "chat, other" negotiates chat', async () => {
    await page.$eval('#protocols', (e) => { e.value = 'chat, other'; });
    await page.click('#connect');
    await waitState('open');
    const proto = await page.$eval('#protocol', (e) => e.textContent);
    assert(proto === 'chat' && handshakes.at(-1)['sec-websocket-protocol'] === 'chat', `negotiated ${proto}`);
    await page.click('#kind-text');
    await typeAndEnter('with a subprotocol');
    await waitEcho('with a subprotocol');
    await shot('subprotocol');
  });

  await run('server shutdown: state shows 1001, sending refused with the reason, nothing sent', async () => {
    await ask('stop');
    await waitState('closed');
    const info = await page.$eval('#close-info', (e) => e.textContent);
    assert(info.startsWith('1001'), `close info ${info}`);
    const before = framesOut.length;
    await typeAndEnter('after shutdown');
    const notice = await page.$eval('#notice', (e) => e.textContent);
    assert(notice === 'not sent: the connection is closed', `notice ${notice}`);
    assert((await page.$eval('#msg', (e) => e.value)) === 'after shutdown', 'refused input was cleared');
    const refused = await page.$$eval('#log li.error .body', (l) => l.map((e) => e.textContent));
    assert(refused.includes('not sent: the connection is closed'), 'refusal not in the log');
    assert(framesOut.length === before, 'a frame was sent while closed');
    await shot('server-gone');
  });

  await run('auto-reconnect: backoff grows while the server is down, reconnects when it is back', async () => {
    await page.click('#reconnect');
    await page.click('#connect');
    await page.waitForFunction(() => /attempt 2\b/.test(document.querySelector('#state').textContent), { timeout: T(15000) });
    const [st] = await state();
    assert(st === 'reconnecting', `state ${st}`);
    await shot('reconnecting');
    await ask('start');
    await waitState('open', T(40000));
    const delays = await page.$$eval('#log li.event .body', (l) => l.map((e) => e.textContent)
      .map((t) => /^reconnecting in ([\d.]+) s/.exec(t)).filter(Boolean).map((m) => Number(m[1])).reverse());
    assert(delays.length >= 2 && delays.every((d, i) => i === 0 || d > delays[i - 1]), `backoff delays ${delays}`);
    await page.click('#msg', { clickCount: 3 });
    await page.$eval('#msg', (e) => { e.value = ''; });
    await typeAndEnter('back again');
    await waitEcho('back again');
    await shot('reconnected');
  });

  await run('380 px wide: no horizontal scrolling, long messages wrap', async () => {
    await page.setViewport({ width: 380, height: 900 });
    const long = 'y'.repeat(2000);
    await typeAndEnter(long);
    await waitEcho(long);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert(overflow <= 0, `page scrolls sideways by ${overflow}px at 380 px`);
    await shot('narrow-380');
  });

  await run("README's snippet new WebSocket('ws://localhost:PORT/') echoes", async () => {
    const got = await page.evaluate((p) => new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://localhost:${p}/`);
      const t = setTimeout(() => reject(new Error('no echo within 10 s')), 10000);
      ws.onopen = () => ws.send('tutorial echo');
      ws.onmessage = (ev) => { clearTimeout(t); ws.close(1000); resolve(ev.data); };
      ws.onerror = () => { clearTimeout(t); reject(new Error('WebSocket error')); };
    }), port);
    assert(got === 'tutorial echo', `got ${JSON.stringify(got)}`);
  });

  await run('no page errors, no HTTP errors, no request to another origin', async () => {
    assert(!pageErrors.length, pageErrors.join('\n'));
    assert(!httpErrors.length, httpErrors.join('\n'));
    assert(!foreign.length, foreign.join('\n'));
  });
  process.stderr.write(`screenshots: ${shotdir}\n`);
} finally {
  if (browser) await browser.close().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(failures ? 1 : 0);
