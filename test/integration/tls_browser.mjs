// Headless Chromium loads the page over https:// and echoes through wss://.
// Usage: node tls_browser.mjs TLS_PORT SPKI_HASHES
// (SPKI_HASHES: base64 SHA-256 of the test certificates' public keys, comma-separated,
// trusted with --ignore-certificate-errors-spki-list: no CA is installed anywhere.)
// Prints one JSON line per test (results.mjs); exit 1 when any failed.
import { withChromium } from './chromium.mjs';
import { finish, run } from './results.mjs';

const port = Number(process.argv[2]);
const spki = process.argv[3];

await withChromium('launch headless chromium trusting the test certificate by SPKI',
                   [`--ignore-certificate-errors-spki-list=${spki}`], async (browser) => {
  const page = await browser.newPage();
  page.setDefaultTimeout(10000);
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  const sockets = [];
  cdp.on('Network.webSocketCreated', (e) => sockets.push(e.url));
  const handshake = new Promise((resolve) => {
    cdp.on('Network.webSocketHandshakeResponseReceived', (e) => resolve(e.response.status));
  });

  await run('GET https://127.0.0.1:PORT/ loads the page', async () => {
    const resp = await page.goto(`https://127.0.0.1:${port}/`, { waitUntil: 'load', timeout: 15000 });
    if (!resp || resp.status() !== 200) throw new Error(`status ${resp && resp.status()}`);
    const sec = resp.securityDetails();
    if (!sec || !/^TLS 1\.[23]$/.test(sec.protocol())) throw new Error(`security details ${sec && sec.protocol()}`);
  });

  await run("the page's own socket is wss:// and upgrades (101)", async () => {
    const status = await Promise.race([handshake, new Promise((r) => setTimeout(() => r('none within 10 s'), 10000))]);
    if (status !== 101) throw new Error(`page WebSocket handshake: ${status}`);
    if (!sockets.length || !sockets[0].startsWith(`wss://127.0.0.1:${port}/`)) throw new Error(`sockets ${JSON.stringify(sockets)}`);
  });

  await run('text and binary (70000 B) echo through wss:// from the page', async () => {
    const ok = await page.evaluate((p) => new Promise((resolve, reject) => {
      const ws = new WebSocket(`wss://127.0.0.1:${p}/`);
      ws.binaryType = 'arraybuffer';
      const data = new Uint8Array(70000).map((_, i) => (i * 31) & 255);
      const t = setTimeout(() => reject(new Error('no echo within 10 s')), 10000);
      let step = 0;
      ws.onopen = () => ws.send('hello over wss');
      ws.onmessage = (ev) => {
        if (step++ === 0) {
          if (ev.data !== 'hello over wss') reject(new Error(`text echo ${ev.data}`));
          ws.send(data);
          return;
        }
        clearTimeout(t);
        const got = new Uint8Array(ev.data);
        ws.close(1000);
        resolve(got.length === data.length && got.every((v, i) => v === data[i]));
      };
      ws.onerror = () => { clearTimeout(t); reject(new Error('WebSocket error')); };
    }), port);
    if (!ok) throw new Error('binary echo differs');
  });
});
finish();
