// What the Node and Chromium test scripts share: one JSON line per test on stdout,
// {"name":..., "ok":bool, "detail":...} (read by eevtest.node_results), time limits,
// and the exit status (1 when any test failed).
let failures = 0;

export function report(name, ok, detail = '') {
  if (!ok) failures++;
  process.stdout.write(JSON.stringify({ name, ok, detail: String(detail) }) + '\n');
}

// p, or a rejection naming `what` after ms.
export function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

// Runs one test and reports it; ms bounds it (none: fn bounds itself).
export async function run(name, fn, ms) {
  try { await (ms ? withTimeout(fn(), ms, name) : fn()); report(name, true); }
  catch (e) { report(name, false, e && e.stack || e); }
}

export function finish() {
  process.exit(failures ? 1 : 0);
}
