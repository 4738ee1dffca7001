// Headless-Chromium check of the live view on Vigil's web page.
//
// Usage (from the repo root): node tests/web/live.mjs BASE_URL PIPELINE SCREENSHOT.png
//
// Opens BASE_URL/, clicks PIPELINE's "live" button in the Pipelines panel, waits until the
// player has played 4 s of it, samples how far behind the camera it plays (the page's
// vigil.liveLag(): now minus the UTC of the frame shown, from the playlist's program date)
// ten times over 5 s, and prints one JSON line:
//   {"phase":"done", "played":{start, end}, "lags":[ms...], "errors":[...]}   -> exit 0
//   {"phase":"error", "error":"...", "errors":[...]}                          -> exit 1
// Needs playwright-core (scripts/setup-web.sh) and /usr/bin/chromium (override with CHROMIUM).
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const errors = [];
let browser = null;

function finish(code, obj) {
  process.stdout.write(JSON.stringify({ ...obj, errors }) + '\n', () => {
    const close = browser ? browser.close().catch(() => {}) : Promise.resolve();
    Promise.race([close, new Promise((r) => setTimeout(r, 3000))]).then(() => process.exit(code));
  });
}
setTimeout(() => finish(1, { phase: 'error', error: 'timed out after 90 s' }), 90_000).unref();

async function main() {
  const [baseArg, pipeline, shot] = process.argv.slice(2);
  const base = baseArg.replace(/\/+$/, '');
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
  await page.goto(base + '/', { waitUntil: 'load', timeout: 15_000 });
  const button = `#pipelines tbody.pipeline[data-name=${JSON.stringify(pipeline)}] .p-live`;
  await page.waitForSelector(button, { state: 'visible', timeout: 30_000 });
  await page.click(button);
  await page.waitForFunction(() => {
    const v = document.getElementById('player');
    return !v.paused && v.readyState >= 2 && v.currentTime > 0;
  }, null, { timeout: 30_000, polling: 200 });
  const start = await page.evaluate(() => document.getElementById('player').currentTime);
  await page.waitForFunction((s) => document.getElementById('player').currentTime > s + 4,
    start, { timeout: 30_000, polling: 200 });
  const lags = [];
  for (let i = 0; i < 10; i++) {
    lags.push(await page.evaluate(() => window.vigil.liveLag()));
    await new Promise((r) => setTimeout(r, 500));
  }
  const end = await page.evaluate(() => document.getElementById('player').currentTime);
  await page.screenshot({ path: shot });
  finish(0, { phase: 'done', played: { start, end }, lags });
}

main().catch((e) => finish(1, { phase: 'error', error: String(e && e.message ? e.message : e).split('\n')[0] }));
