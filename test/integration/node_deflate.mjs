// permessage-deflate through the Node `ws` client (perMessageDeflate), every offer it can make.
// Usage: node node_deflate.mjs ws://127.0.0.1:PORT/
// Prints one JSON line per test (results.mjs); exit 1 when any failed.
import crypto from 'node:crypto';
import { finish, run, withTimeout } from './results.mjs';
import { closeWith, nextMessage, open } from './ws_client.mjs';

const url = process.argv[2];
if (!url) { console.error('usage: node node_deflate.mjs URL'); process.exit(2); }
const SIZES = [0, 1, 125, 126, 4096, 65535, 65536, 1 << 20];

const words = 'the quick brown fox jumps over the lazy dog \u2713 ';
function payload(kind, n) {
  if (kind === 'compressible text') return words.repeat(Math.ceil(n / 46) + 1).slice(0, n);
  if (kind === 'random text') return crypto.randomBytes(n).toString('base64').slice(0, n);
  if (kind === 'compressible binary') return Buffer.from(words.repeat(Math.ceil(n / 46) + 1)).subarray(0, n);
  return crypto.randomBytes(n);
}

const OFFERS = [
  ['perMessageDeflate: true', true],
  ['threshold 0 (every message compressed)', { threshold: 0 }],
  ['clientNoContextTakeover', { threshold: 0, clientNoContextTakeover: true }],
  ['serverNoContextTakeover', { threshold: 0, serverNoContextTakeover: true }],
  ['serverMaxWindowBits 10', { threshold: 0, serverMaxWindowBits: 10 }],
  ['clientMaxWindowBits 9', { threshold: 0, clientMaxWindowBits: 9 }],
  ['serverMaxWindowBits 9 + both no takeover', { threshold: 0, serverMaxWindowBits: 9, serverNoContextTakeover: true,
                                                 clientNoContextTakeover: true }],
];

for (const [name, pmd] of OFFERS) {
  await run(`ws ${name}: text+binary 0 B..1 MiB, compressible+random, 200 in flight`, async () => {
    const ws = await open(url, { perMessageDeflate: pmd });
    if (!/permessage-deflate/.test(ws.extensions)) throw new Error(`not negotiated: ${JSON.stringify(ws.extensions)}`);
    for (const kind of ['compressible text', 'random text', 'compressible binary', 'random binary']) {
      for (const n of SIZES) {
        const msg = payload(kind, n);
        ws.send(msg);
        const { data, isBinary } = await nextMessage(ws);
        if (isBinary !== kind.endsWith('binary')) throw new Error(`${kind} ${n}: isBinary=${isBinary}`);
        const want = Buffer.isBuffer(msg) ? msg : Buffer.from(msg);
        if (!Buffer.from(data).equals(want)) throw new Error(`${kind} ${n}: echo differs (${data.length} bytes)`);
      }
    }
    // Many messages in flight at once: the context carries across them.
    const burst = Array.from({ length: 200 }, (_, i) => payload(i % 2 ? 'compressible text' : 'random binary', i * 37));
    const got = [];
    const done = new Promise((resolve) => ws.on('message', (d) => { got.push(d); if (got.length === burst.length) resolve(); }));
    burst.forEach((m) => ws.send(m));
    await withTimeout(done, 30000, 'burst');
    burst.forEach((m, i) => { if (!Buffer.from(got[i]).equals(Buffer.isBuffer(m) ? m : Buffer.from(m))) throw new Error(`burst ${i} differs`); });
    const code = await closeWith(ws, 1000);
    if (code !== 1000) throw new Error(`close code ${code}`);
  });
}

finish();
