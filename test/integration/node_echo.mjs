// Echo tests through the Node `ws` client.
// Usage: node node_echo.mjs ws://127.0.0.1:PORT/
// Prints one JSON line per test (results.mjs); exit 1 when any failed.
import crypto from 'node:crypto';
import { finish, run, withTimeout } from './results.mjs';
import { closeWith, nextMessage, open as openWs } from './ws_client.mjs';

const url = process.argv[2];
if (!url) { console.error('usage: node node_echo.mjs URL'); process.exit(2); }
const SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20];

const open = () => openWs(url, { perMessageDeflate: false });
const test = (name, fn) => run(name, fn, 60000);

function textOf(n) {
  if (n < 8) return 'a'.repeat(n);
  return '\u{1F600}\u2713x' + crypto.randomBytes(n).toString('base64').slice(0, n - 8);
}

function label(n) { return n >= (1 << 20) ? `${n >> 20} MiB` : `${n} B`; }
for (const kind of ['text', 'binary']) {
  for (const n of SIZES) {
    await test(`${kind} echo ${label(n)}`, async () => {
      const ws = await open();
      const msg = kind === 'text' ? textOf(n) : crypto.randomBytes(n);
      if (kind === 'text' && Buffer.byteLength(msg) !== n) throw new Error('generator bug');
      ws.send(msg);
      const { data, isBinary } = await nextMessage(ws);
      if (isBinary !== (kind === 'binary')) throw new Error(`echo isBinary=${isBinary} for ${kind}`);
      const want = Buffer.isBuffer(msg) ? msg : Buffer.from(msg);
      if (!Buffer.from(data).equals(want)) throw new Error(`echo differs: ${data.length} bytes, want ${want.length}`);
      const code = await closeWith(ws, 1000);
      if (code !== 1000) throw new Error(`close code ${code}`);
    });
  }
}

await test('fragmented text (fin: false) echoed whole', async () => {
  const ws = await open();
  const parts = ['frag-one ', 'frag-\u2713-two ', 'three'.repeat(5000)];
  parts.forEach((p, i) => ws.send(p, { fin: i === parts.length - 1 }));
  const { data, isBinary } = await nextMessage(ws);
  if (isBinary) throw new Error('binary echo for text');
  if (data.toString() !== parts.join('')) throw new Error('fragmented text echo differs');
  await closeWith(ws, 1000);
});

await test('fragmented binary (fin: false) echoed whole', async () => {
  const ws = await open();
  const parts = [crypto.randomBytes(10), crypto.randomBytes(70000), crypto.randomBytes(1)];
  parts.forEach((p, i) => ws.send(p, { fin: i === parts.length - 1, binary: true }));
  const { data, isBinary } = await nextMessage(ws);
  if (!isBinary) throw new Error('text echo for binary');
  if (!Buffer.from(data).equals(Buffer.concat(parts))) throw new Error('fragmented binary echo differs');
  await closeWith(ws, 1000);
});

await test('ping answered with pong carrying the payload', async () => {
  const ws = await open();
  for (const payload of [Buffer.alloc(0), Buffer.from('node-ping'), crypto.randomBytes(125)]) {
    const got = await withTimeout(new Promise((resolve) => { ws.once('pong', resolve); ws.ping(payload); }), 5000, 'pong');
    if (!Buffer.from(got).equals(payload)) throw new Error(`pong payload differs (${got.length} vs ${payload.length})`);
  }
  ws.send('after ping');
  const { data } = await nextMessage(ws);
  if (data.toString() !== 'after ping') throw new Error('echo after ping');
  await closeWith(ws, 1000);
});

await test('close 3000 echoed', async () => {
  const ws = await open();
  const code = await closeWith(ws, 3000);
  if (code !== 3000) throw new Error(`close code ${code}, want 3000`);
});

await test('50 concurrent ws clients x 10 messages', async () => {
  const clients = await Promise.all(Array.from({ length: 50 }, () => open()));
  await Promise.all(clients.map(async (ws, i) => {
    for (let j = 0; j < 10; j++) {
      const m = `c${i}m${j}`.repeat(j + 1);
      ws.send(m);
      const { data } = await nextMessage(ws);
      if (data.toString() !== m) throw new Error(`client ${i} message ${j} differs`);
    }
  }));
  await Promise.all(clients.map((ws) => closeWith(ws, 1000)));
});

finish();
