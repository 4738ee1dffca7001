// What the small page checks (clips.mjs, live.mjs) share: Chromium through playwright-core, a
// page with its console errors collected, and one JSON line out at the end.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

// Errors the page logged (a failed fetch aside: the page shows those itself).
export const errors = [];
let browser = null;

// Prints `obj` (with `errors`) as one JSON line, closes the browser, exits with `code`.
export function finish(code, obj) {
  process.stdout.write(JSON.stringify({ ...obj, errors }) + '\n', () => {
    const close = browser ? browser.close().catch(() => {}) : Promise.resolve();
    Promise.race([close, new Promise((r) => setTimeout(r, 3000))]).then(() => process.exit(code));
  });
}

// Runs `main` with a watchdog of `seconds`; a failure ends as {"phase":"error"}.
export function run(main, seconds) {
  setTimeout(() => finish(1, { phase: 'error', error: `timed out after ${seconds} s` }), seconds * 1000).unref();
  main().catch((e) => finish(1, { phase: 'error', error: String(e && e.message ? e.message : e).split('\n')[0] }));
}

// A new page on `base`/ in headless Chromium (playwright-core from scripts/setup-web.sh, or
// PLAYWRIGHT_DIR; /usr/bin/chromium, or CHROMIUM), autoplay allowed.
export async function openPage(base) {
  const pwDir = path.resolve(process.cwd(), process.env.PLAYWRIGHT_DIR || 'target/web-tools/node_modules/playwright-core');
  const { chromium } = require(pwDir);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--mute-audio', '--disable-gpu', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--disable-quic', '--autoplay-policy=no-user-gesture-required'],
  });
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  await page.goto(base.replace(/\/+$/, '') + '/', { waitUntil: 'load', timeout: 15_000 });
  return page;
}
