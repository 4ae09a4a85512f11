// Headless Chromium (puppeteer-core, the system /usr/bin/chromium or $CHROMIUM) for the
// test scripts, with a throwaway profile removed afterwards.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { run } from './results.mjs';

// Launches Chromium as the test `name` (extra command-line args), runs body(browser)
// if it started, then closes it.
export async function withChromium(name, args, body) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'echo-ev-chromium-'));
  let browser;
  try {
    await run(name, async () => {
      browser = await puppeteer.launch({
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
        headless: true,
        timeout: 30000,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
               '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, ...args],
      });
    });
    if (browser) await body(browser);
  } finally {
    if (browser) await browser.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
}
