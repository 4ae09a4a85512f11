// Headless Chromium (always offers permessage-deflate) echoing through echo-ev.
// Usage: node browser_deflate.mjs PORT
// Prints one JSON line per test (results.mjs); exit 1 when any failed.
import { withChromium } from './chromium.mjs';
import { finish, run } from './results.mjs';

const port = Number(process.argv[2]);

await withChromium('launch headless chromium', [], async (browser) => {
  const page = await browser.newPage();
  page.setDefaultTimeout(30000);
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  const extensions = [];
  cdp.on('Network.webSocketHandshakeResponseReceived', (e) => {
    const h = e.response.headers || {};
    extensions.push(h['Sec-WebSocket-Extensions'] || h['sec-websocket-extensions'] || '');
  });
  await page.goto(`http://127.0.0.1:${port}/healthz`);

  await run('chromium negotiates permessage-deflate; text+binary 0 B..1 MiB, compressible+random echo', async () => {
    const res = await page.evaluate((p) => new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${p}/`);
      ws.binaryType = 'arraybuffer';
      const t = setTimeout(() => reject(new Error('timed out')), 60000);
      const sizes = [0, 1, 125, 126, 4096, 65536, 1 << 20];
      const words = 'the quick brown fox jumps over the lazy dog \u2713 ';
      const cases = [];
      for (const n of sizes) {
        const rnd = new Uint8Array(n);
        for (let i = 0; i < n; i += 65536) crypto.getRandomValues(rnd.subarray(i, Math.min(n, i + 65536)));
        const comp = new TextEncoder().encode(words.repeat(Math.ceil(n / 40) + 1)).slice(0, n);
        cases.push(['compressible binary', comp], ['random binary', rnd],
                   ['compressible text', words.repeat(Math.ceil(n / 46) + 1).slice(0, n)],
                   ['random text', Array.from(rnd.subarray(0, n), (b) => String.fromCharCode(33 + (b % 90))).join('')]);
      }
      let i = 0;
      const same = (a, b) => {
        if (typeof a === 'string') return a === b;
        if (!(b instanceof ArrayBuffer) || b.byteLength !== a.length) return false;
        const v = new Uint8Array(b);
        for (let k = 0; k < a.length; k++) if (v[k] !== a[k]) return false;
        return true;
      };
      ws.onopen = () => ws.send(cases[0][1]);
      ws.onmessage = (ev) => {
        if (!same(cases[i][1], ev.data)) { clearTimeout(t); reject(new Error(`${cases[i][0]} #${i} differs`)); return; }
        if (++i === cases.length) { clearTimeout(t); ws.close(1000); resolve({ n: i, ext: ws.extensions }); return; }
        ws.send(cases[i][1]);
      };
      ws.onerror = () => { clearTimeout(t); reject(new Error('WebSocket error')); };
    }), port);
    if (!/^permessage-deflate/.test(res.ext)) throw new Error(`ws.extensions = ${JSON.stringify(res.ext)}`);
    if (!extensions.some((e) => /permessage-deflate/.test(e))) throw new Error(`handshake headers: ${JSON.stringify(extensions)}`);
  });
});
finish();
