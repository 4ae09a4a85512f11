// ws_echo.mjs - WebSocket echo server on Node's `ws`, the "node" peer of
// tools/bench (not part of echo-ev).
//
// Usage: node tools/peers/ws_echo.mjs PORT [BIND_ADDR]   (default 127.0.0.1)
//
// `ws` comes from the integration suite's lockfile (test/package.json,
// test/package-lock.json): run `npm ci --prefix test` once. Set WS_MODULE to a
// path to use another copy.
//
// Every message goes back as it came (text stays text, binary stays binary);
// permessage-deflate is off (WS_DEFLATE=1 turns it on), as in the other servers; maxPayload is 64 MiB so
// 16 MiB messages pass. ws applies no back-pressure of its own: when a
// client's unsent output passes 4 MiB we pause reading it until it drains.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../test/package.json', import.meta.url));
const { WebSocketServer } = require(process.env.WS_MODULE || 'ws');

const port = Number(process.argv[2]);
const host = process.argv[3] || '127.0.0.1';
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node ws_echo.mjs PORT [BIND_ADDR]');
  process.exit(2);
}

const HIGH_WATER = 4 << 20;

const wss = new WebSocketServer({
  host,
  port,
  backlog: 4096,
  maxPayload: 64 << 20,
  // WS_DEFLATE=1: permessage-deflate as `perMessageDeflate: true` (the
  // deflate comparison of tools/deflate-bench); off otherwise.
  perMessageDeflate: process.env.WS_DEFLATE === '1',
  clientTracking: false,
});

wss.on('connection', (ws) => {
  const sock = ws._socket;
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
    if (ws.bufferedAmount > HIGH_WATER && !ws.isPaused) {
      ws.pause();
      sock.once('drain', () => ws.resume());
    }
  });
  ws.on('error', () => {});
});

wss.on('listening', () => console.error(`ws_echo listening on ${host}:${port}`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
