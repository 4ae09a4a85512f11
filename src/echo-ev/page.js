// The echo-ev test console: connect to any WebSocket URL, send text or binary
// messages, watch each echo come back with its round-trip time, run verified
// bursts. No framework and no external resources; the whole UI is page.html.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const el = {
    state: $('state'), url: $('url'), protocols: $('protocols'), reconnect: $('reconnect'),
    connect: $('connect'), disconnect: $('disconnect'), closeCode: $('close-code'), closeReason: $('close-reason'),
    protocol: $('protocol'), extensions: $('extensions'), closeInfo: $('close-info'),
    msg: $('msg'), kindBinary: $('kind-binary'), send: $('send'), notice: $('notice'),
    burstCount: $('burst-count'), burstSize: $('burst-size'), burst: $('burst'), burstResult: $('burst-result'),
    log: $('log'), counts: $('counts'), clear: $('clear'),
  };
  const MAX_LOG = 500;          // entries kept in the log (oldest dropped)
  const TEXT_SHOWN = 4096;      // characters of a text message shown
  const HEX_SHOWN = 1024;       // bytes of a binary message shown
  const MAX_PENDING = 100000;   // sent messages remembered for RTT when the peer does not echo
  const BURST_WINDOW = 4 << 20; // bytes a burst keeps in flight
  const RECONNECT_MIN = 500, RECONNECT_MAX = 30000; // backoff, ms
  const CLOSE_NAMES = {
    1000: 'normal', 1001: 'going away', 1002: 'protocol error', 1003: 'unsupported data', 1005: 'no status',
    1006: 'abnormal: no close frame', 1007: 'invalid data', 1008: 'policy violation', 1009: 'message too big',
    1010: 'extension required', 1011: 'internal error', 1012: 'service restart', 1013: 'try again later',
    1015: 'TLS handshake failed',
  };

  let ws = null;            // the current socket, or null
  let userClosed = false;   // Disconnect was pressed: do not reconnect
  let attempt = 0;          // reconnects since the last successful open
  let reconnectTimer = 0, countdownTimer = 0, reconnectAt = 0, lastClose = '', sentClose = '';
  let pending = [];         // sent, awaiting the echo; the server echoes in order
  let burst = null;
  let nSent = 0, nRecv = 0, countsQueued = false;

  // ---- helpers
  const now = () => performance.now();
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  function clock() {
    const d = new Date();
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }
  const ms = (t) => (t < 10 ? t.toFixed(2) : t < 100 ? t.toFixed(1) : t.toFixed(0)) + ' ms';
  function utf8Length(s) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) n += 1;
      else if (c < 0x800) n += 2;
      else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) { n += 4; i++; }
      else n += 3;
    }
    return n;
  }
  function sameBytes(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  function parseHex(s) {
    const hex = s.trim().split(/[\s,:]+/).filter(Boolean).map((t) => t.replace(/^0x/i, '')).join('');
    if (hex.length % 2 || /[^0-9a-f]/i.test(hex)) return null;
    const b = new Uint8Array(hex.length / 2);
    for (let i = 0; i < b.length; i++) b[i] = parseInt(hex.substr(2 * i, 2), 16);
    return b;
  }
  function hexView(b) {
    const shown = Math.min(b.length, HEX_SHOWN);
    let s = '';
    for (let i = 0; i < shown; i++) s += b[i].toString(16).padStart(2, '0') + (i % 8 === 7 ? '  ' : ' ');
    return [s.trimEnd(), b.length - shown];
  }
  function closeText(code, reason) {
    const name = CLOSE_NAMES[code];
    return String(code) + (name ? ` (${name})` : '') + (reason ? ` "${reason}"` : '');
  }
  function stateWord() {
    if (reconnectTimer) return 'reconnecting';
    if (!ws) return 'closed';
    return ['still connecting', 'open', 'closing', 'closed'][ws.readyState];
  }

  // ---- state, notices, log
  function setState(state, text) {
    el.state.dataset.state = state;
    el.state.textContent = text;
    const open = state === 'open';
    el.send.setAttribute('aria-disabled', String(!open));
    el.burst.setAttribute('aria-disabled', String(!open || !!burst));
    el.disconnect.setAttribute('aria-disabled', String(!ws && !reconnectTimer));
  }
  function notice(text) { el.notice.textContent = text; }
  function refuse(text) { notice(text); addEntry('error', '!', '', text); }

  function addEntry(cls, dir, meta, body) {
    const li = document.createElement('li');
    li.className = cls;
    const head = document.createElement('span');
    head.className = 'meta';
    const time = document.createElement('span');
    time.className = 'time';
    time.textContent = clock();
    const arrow = document.createElement('span');
    arrow.className = 'dir';
    arrow.textContent = ` ${dir} `;
    head.append(time, arrow, meta);
    const pre = document.createElement('pre');
    pre.className = 'body';
    if (typeof body === 'string') pre.textContent = body;
    else pre.append(...body);
    li.append(head, pre);
    el.log.prepend(li);
    while (el.log.childElementCount > MAX_LOG) el.log.lastElementChild.remove();
    return li;
  }
  function span(cls, text) {
    const s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    return s;
  }
  // One sent or received message: direction, kind, size, RTT and echo check, then the content.
  function logMessage(cls, data, len, rtt, verdict) {
    const isText = typeof data === 'string';
    const meta = [span('kind', isText ? 'text' : 'binary'), ' ', span('size', `${len} B`)];
    if (rtt !== undefined) meta.push(' ', span('rtt', 'rtt ' + ms(rtt)));
    if (verdict) meta.push(' ', span(verdict === 'echo ok' ? 'verdict' : 'verdict mismatch', verdict));
    const head = document.createElement('span');
    head.className = 'info';
    head.append(...meta);
    let body, more;
    if (isText) {
      body = data.length > TEXT_SHOWN ? data.slice(0, TEXT_SHOWN) : data;
      more = data.length > TEXT_SHOWN ? `… ${data.length - TEXT_SHOWN} more characters` : '';
    } else {
      const [hex, rest] = hexView(data);
      body = hex;
      more = rest ? `… ${rest} more bytes` : '';
    }
    const parts = [document.createTextNode(body)];
    if (more) parts.push(document.createTextNode(' '), span('more', more));
    addEntry(cls, cls === 'out' ? '→' : '←', head, parts);
  }
  function logEvent(text, cls = 'event') { addEntry(cls, '•', '', text); }
  function bumpCounts() {
    if (countsQueued) return;
    countsQueued = true;
    requestAnimationFrame(() => {
      countsQueued = false;
      el.counts.textContent = `${nSent} sent, ${nRecv} received`;
    });
  }

  // ---- connecting, closing, reconnecting
  function defaultUrl() {
    if (!/^https?:$/.test(location.protocol)) return 'ws://localhost:54398/'; // previewed from a file
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}${location.pathname.replace(/[^/]*$/, '')}`;
  }
  function clearReconnect() {
    clearTimeout(reconnectTimer);
    clearInterval(countdownTimer);
    reconnectTimer = countdownTimer = 0;
  }

  function connect(byUser) {
    if (ws) {
      refuse(`already ${stateWord()}: disconnect first`);
      return;
    }
    clearReconnect();
    if (byUser) attempt = 0;
    const url = el.url.value.trim();
    const protocols = el.protocols.value.split(/[\s,]+/).filter(Boolean);
    let sock;
    try {
      sock = new WebSocket(url, protocols);
    } catch (e) {
      refuse(`cannot connect: ${e.message}`);
      setState('closed', 'closed: bad URL or subprotocol');
      return;
    }
    ws = sock;
    sock.binaryType = 'arraybuffer';
    userClosed = false;
    notice('');
    setState('connecting', `connecting to ${url}…`);
    logEvent(`connecting to ${url}` + (protocols.length ? ` offering ${protocols.join(', ')}` : ''));
    sock.onopen = () => {
      if (sock !== ws) return;
      attempt = 0;
      el.protocol.textContent = sock.protocol || 'none';
      el.extensions.textContent = sock.extensions || 'none';
      setState('open', `open: ${sock.url}`);
      logEvent(`open: subprotocol ${sock.protocol || 'none'}, extensions ${sock.extensions || 'none'}`);
    };
    sock.onmessage = (e) => { if (sock === ws) received(e.data); };
    sock.onerror = () => { if (sock === ws) logEvent('error (the browser gives no detail; see its console)', 'error'); };
    sock.onclose = (e) => { if (sock === ws) closed(e); };
  }

  function closed(e) {
    ws = null;
    el.protocol.textContent = el.extensions.textContent = '–';
    pending = [];
    if (burst) finishBurst('connection closed');
    lastClose = closeText(e.code, e.reason) + (e.wasClean ? ', clean' : ', not clean') +
      (userClosed && sentClose ? `; we sent ${sentClose}` : '');
    el.closeInfo.textContent = lastClose;
    logEvent(`closed ${lastClose}`);
    if (el.reconnect.checked && !userClosed) scheduleReconnect();
    else setState('closed', `closed: ${lastClose}`);
  }

  function scheduleReconnect() {
    const delay = Math.min(RECONNECT_MAX, RECONNECT_MIN * 2 ** attempt);
    attempt++;
    reconnectAt = now() + delay;
    reconnectTimer = setTimeout(() => { reconnectTimer = 0; clearInterval(countdownTimer); connect(false); }, delay);
    const show = () => setState('reconnecting',
      `reconnecting in ${(Math.max(0, reconnectAt - now()) / 1000).toFixed(1)} s (attempt ${attempt}) after ${lastClose}`);
    show();
    countdownTimer = setInterval(show, 200);
    logEvent(`reconnecting in ${(delay / 1000).toFixed(1)} s (attempt ${attempt})`);
  }

  function disconnect() {
    if (reconnectTimer) {
      clearReconnect();
      setState('closed', `closed: ${lastClose}; auto-reconnect stopped`);
      logEvent('auto-reconnect stopped');
      return;
    }
    if (!ws) {
      refuse('not connected');
      return;
    }
    const code = Number(el.closeCode.value.trim() || '1000');
    if (!(code === 1000 || (Number.isInteger(code) && code >= 3000 && code <= 4999))) {
      refuse('close code must be 1000 or 3000-4999 (browsers send no other code)');
      return;
    }
    const reason = el.closeReason.value;
    if (utf8Length(reason) > 123) {
      refuse('close reason is limited to 123 bytes of UTF-8');
      return;
    }
    userClosed = true;
    sentClose = closeText(code, reason);
    ws.close(code, reason);
    setState('closing', `closing with ${sentClose}…`);
    logEvent(`→ close ${sentClose}`);
  }

  // ---- messages
  function sendMessage() {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      refuse(`not sent: the connection is ${stateWord()}`);
      return;
    }
    let data = el.msg.value;
    if (el.kindBinary.checked) {
      data = parseHex(data);
      if (!data) {
        refuse('not sent: binary messages are typed as hex bytes, e.g. "de ad be ef"');
        return;
      }
    }
    const len = typeof data === 'string' ? utf8Length(data) : data.length;
    ws.send(data);
    pending.push({ t: now(), data });
    if (pending.length > MAX_PENDING) pending.shift();
    nSent++;
    bumpCounts();
    logMessage('out', data, len);
    el.msg.value = '';
    notice('');
  }

  function received(data) {
    const t = now();
    const bytes = typeof data === 'string' ? null : new Uint8Array(data);
    const p = pending.shift();
    nRecv++;
    bumpCounts();
    if (p && p.burst) {
      burstEcho(p, data, bytes);
      return;
    }
    let verdict;
    if (p) {
      const same = bytes ? p.data instanceof Uint8Array && sameBytes(p.data, bytes) : p.data === data;
      verdict = same ? 'echo ok' : 'differs from what was sent';
    }
    logMessage('in', bytes || data, bytes ? bytes.length : utf8Length(data), p && t - p.t, verdict);
  }

  // ---- burst: N messages of S bytes, at most BURST_WINDOW in flight, every echo checked
  const ALPHABET = Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i)).join('');
  function payload(b, i) {
    if (b.text) return b.base.substr(i % 94, b.size);
    const off = i % 251;
    return b.base.subarray(off, off + b.size);
  }
  function startBurst() {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      refuse(`burst not started: the connection is ${stateWord()}`);
      return;
    }
    if (burst) {
      refuse('a burst is already running');
      return;
    }
    const n = Number(el.burstCount.value.trim()), size = Number(el.burstSize.value.trim());
    if (!Number.isInteger(n) || n < 1 || n > 1e6 || !Number.isInteger(size) || size < 0 || size > 64 << 20) {
      refuse('burst: 1 to 1000000 messages of 0 to 67108864 bytes');
      return;
    }
    if (n * size > 2 ** 30) {
      refuse('burst: at most 1 GiB in total');
      return;
    }
    const text = !el.kindBinary.checked;
    let base;
    if (text) {
      base = ALPHABET.repeat(Math.ceil((size + 94) / 94));
    } else {
      base = new Uint8Array(size + 251);
      for (let j = 0; j < base.length; j++) base[j] = j % 251;
    }
    burst = {
      n, size, text, base, sent: 0, got: 0, bad: 0, firstBad: -1, t0: now(), shown: 0,
      window: Math.max(1, Math.min(n, Math.floor(BURST_WINDOW / Math.max(size, 64)))),
    };
    setState('open', el.state.textContent);
    el.burstResult.className = '';
    el.burstResult.textContent = `burst: 0 of ${n} echoed`;
    logEvent(`burst: ${n} ${text ? 'text' : 'binary'} messages of ${size} B`);
    pumpBurst();
  }
  function pumpBurst() {
    const b = burst;
    while (b.sent < b.n && b.sent - b.got < b.window) {
      ws.send(payload(b, b.sent));
      pending.push({ burst: b, i: b.sent });
      b.sent++;
      nSent++;
    }
    bumpCounts();
  }
  function burstEcho(p, data, bytes) {
    const b = p.burst;
    if (b !== burst) return;
    const want = payload(b, p.i);
    const ok = b.text ? data === want : bytes !== null && sameBytes(bytes, want);
    if (!ok) {
      b.bad++;
      if (b.firstBad < 0) b.firstBad = p.i;
    }
    b.got++;
    if (b.got === b.n) {
      finishBurst();
      return;
    }
    if (now() - b.shown > 100) {
      b.shown = now();
      el.burstResult.textContent = `burst: ${b.got} of ${b.n} echoed`;
    }
    pumpBurst();
  }
  function finishBurst(abortReason) {
    const b = burst;
    burst = null;
    const secs = Math.max(now() - b.t0, 0.001) / 1000;
    const rate = `${Math.round(b.got / secs)} msg/s, ${(b.got * b.size / secs / 1e6).toFixed(2)} MB/s each way`;
    let text, good = false;
    if (abortReason) {
      text = `burst aborted (${abortReason}) after ${b.got} of ${b.n} echoes`;
    } else if (b.bad) {
      text = `burst: ${b.bad} of ${b.n} echoes differed (first: message #${b.firstBad}); ${rate}`;
    } else {
      text = `burst: ${b.n} of ${b.n} echoes verified in ${(secs * 1000).toFixed(1)} ms: ${rate}`;
      good = true;
    }
    el.burstResult.className = good ? 'ok' : 'bad';
    el.burstResult.textContent = text;
    logEvent(text, good ? 'event' : 'error');
    if (ws) setState(el.state.dataset.state, el.state.textContent);
  }

  // ---- wiring
  const onSubmit = (form, fn) => form.addEventListener('submit', (e) => { e.preventDefault(); fn(); });
  onSubmit($('connect-form'), () => connect(true));
  onSubmit($('send-form'), sendMessage);
  onSubmit($('burst-form'), startBurst);
  el.disconnect.addEventListener('click', disconnect);
  for (const radio of document.querySelectorAll('input[name=kind]')) {
    radio.addEventListener('change', () => {
      el.msg.placeholder = el.kindBinary.checked ? 'Hex bytes, e.g. de ad be ef' : 'Type a message';
    });
  }
  el.clear.addEventListener('click', () => { el.log.replaceChildren(); });
  el.msg.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendMessage();
    }
  });
  // Enter in the close fields closes (rather than submitting the form, which connects).
  for (const input of [el.closeCode, el.closeReason]) {
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        disconnect();
      }
    });
  }

  // ?url=…&protocols=…&reconnect=1&connect=0 preset the form (handy for bookmarks).
  const q = new URLSearchParams(location.search);
  el.url.value = q.get('url') || defaultUrl();
  el.protocols.value = q.get('protocols') || '';
  el.reconnect.checked = q.get('reconnect') === '1';
  setState('closed', 'closed');
  if (q.get('connect') !== '0') connect(true);
  el.msg.focus();
})();
