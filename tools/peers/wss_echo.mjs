// wss_echo.mjs - WebSocket echo server on Node's `ws` over an https server:
// the "node-tls" peer of tools/bench (not part of echo-ev).
//
// Usage: node tools/peers/wss_echo.mjs PORT BIND_ADDR CERT.pem KEY.pem
//
// The same echo as ws_echo.mjs (text stays text, binary stays binary,
// permessage-deflate off, maxPayload 64 MiB, reading paused above 4 MiB of
// unsent output), with TLS from Node's https (OpenSSL).
import fs from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../test/package.json', import.meta.url));
const { WebSocketServer } = require(process.env.WS_MODULE || 'ws');

const [port, host, cert, key] = [Number(process.argv[2]), process.argv[3], process.argv[4], process.argv[5]];
if (!Number.isInteger(port) || !host || !cert || !key) {
  console.error('usage: node wss_echo.mjs PORT BIND_ADDR CERT.pem KEY.pem');
  process.exit(2);
}
const HIGH_WATER = 4 << 20;
const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), ALPNProtocols: ['http/1.1'] });
const wss = new WebSocketServer({ server, maxPayload: 64 << 20, perMessageDeflate: false, clientTracking: false });
wss.on('connection', (ws) => {
  const sock = ws._socket;
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
    if (sock.writableLength > HIGH_WATER && !sock.isPaused()) {
      sock.pause();
      sock.once('drain', () => sock.resume());
    }
  });
  ws.on('error', () => {});
});
server.listen({ port, host, backlog: 4096 });
