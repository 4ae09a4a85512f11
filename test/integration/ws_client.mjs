// A Node `ws` client for the test scripts: open, wait for the next message, close.
import WebSocket from 'ws';
import { withTimeout } from './results.mjs';

// Opens url; options go to `ws` (perMessageDeflate...).
export function open(url, options = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: 64 << 20, ...options });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  }), 10000, 'open');
}

// The next message as { data, isBinary }; a close meanwhile is an error.
export function nextMessage(ws, ms = 30000) {
  return withTimeout(new Promise((resolve, reject) => {
    const onMsg = (data, isBinary) => { cleanup(); resolve({ data, isBinary }); };
    const onClose = (code) => { cleanup(); reject(new Error(`closed with ${code} while waiting for a message`)); };
    const cleanup = () => { ws.off('message', onMsg); ws.off('close', onClose); };
    ws.on('message', onMsg); ws.on('close', onClose);
  }), ms, 'message');
}

// Sends Close code; resolves with the code of the close handshake.
export function closeWith(ws, code) {
  return withTimeout(new Promise((resolve) => { ws.once('close', (c) => resolve(c)); ws.close(code); }), 10000, 'close');
}
