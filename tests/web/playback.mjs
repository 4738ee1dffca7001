// Headless-Chromium check of Vigil's web page (runtime/src/api/web/index.html).
//
// Usage (from the repo root): node tests/web/playback.mjs BASE_URL VIDEO_NAME SCREENSHOT.png
//
// Opens BASE_URL/, waits for VIDEO_NAME in the video list, selects it, waits for the timeline's
// ranges and the markers of the events that made its clips, clicks the first range, waits until
// the <video id="player"> has played >= 1 s, reads the UTC time shown under the player (#clock),
// saves a full-page screenshot and prints ONE JSON line:
//   {"videos":[...],"ranges":N,"rangeStart":ISO,"rangeEnd":ISO,"clipMarks":[ISO...],
//    "currentTime":s,"shownTime":ISO,"events":N,"errors":[...]}  -> exit 0
//   {"error":"...", ...what was known so far}                     -> exit 1
// Needs playwright-core (scripts/setup-web.sh installs it under target/web-tools; override with
// PLAYWRIGHT_DIR) and a system Chromium (/usr/bin/chromium; override with CHROMIUM).
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const TOTAL_TIMEOUT_MS = Number(process.env.PLAYBACK_TIMEOUT_MS || 90_000);

const out = { videos: [], ranges: 0, rangeStart: null, rangeEnd: null, clipMarks: [], currentTime: 0, shownTime: null, events: 0, errors: [] };
let browser = null;
let finished = false;

function finish(code, extra) {
  if (finished) return;
  finished = true;
  const line = JSON.stringify(extra ? { ...extra, ...out, errors: out.errors } : out);
  process.stdout.write(line + '\n', () => {
    const close = browser ? browser.close().catch(() => {}) : Promise.resolve();
    Promise.race([close, new Promise((r) => setTimeout(r, 3000))]).then(() => process.exit(code));
  });
}

function fail(message) {
  finish(1, { error: String(message) });
}

process.on('unhandledRejection', (e) => fail(e && e.stack ? e.message : e));
process.on('uncaughtException', (e) => fail(e && e.message ? e.message : e));
setTimeout(() => fail(`timed out after ${TOTAL_TIMEOUT_MS} ms`), TOTAL_TIMEOUT_MS).unref();

async function main() {
  const [baseArg, videoName, shotPath] = process.argv.slice(2);
  if (!baseArg || !videoName || !shotPath) {
    throw new Error('usage: node tests/web/playback.mjs BASE_URL VIDEO_NAME SCREENSHOT.png');
  }
  const base = baseArg.replace(/\/+$/, '');

  const pwDir = path.resolve(process.cwd(), process.env.PLAYWRIGHT_DIR || 'target/web-tools/node_modules/playwright-core');
  let chromium;
  try {
    ({ chromium } = require(pwDir));
  } catch (e) {
    throw new Error(`cannot load playwright-core from ${pwDir} (run scripts/setup-web.sh): ${String(e.message).split('\n')[0]}`);
  }

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // The background-networking flags keep Chromium from calling out of a closed network.
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio',
           '--disable-gpu', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') {
      const loc = m.location();
      out.errors.push(`console: ${m.text()}${loc && loc.url ? ` (${loc.url})` : ''}`);
    }
  });
  page.on('pageerror', (e) => out.errors.push(`pageerror: ${e.message}`));

  const step = async (what, fn) => {
    try {
      return await fn();
    } catch (e) {
      throw new Error(`${what}: ${String(e.message).split('\n')[0]}`);
    }
  };

  try {
    await step(`open ${base}/`, () => page.goto(base + '/', { waitUntil: 'load', timeout: 15_000 }));

    const videoSel = `#videos .video[data-name=${JSON.stringify(videoName)}]`;
    await step(`wait for video ${videoName} in the list`, () => page.waitForSelector(videoSel, { timeout: 15_000 }));
    out.videos = await page.$$eval('#videos .video', (els) => els.map((e) => e.getAttribute('data-name')));

    await step(`select ${videoName}`, () => page.locator(videoSel).click({ timeout: 10_000 }));
    await step('wait for the video to be selected', () =>
      page.waitForFunction((n) => window.vigil && window.vigil.state.selected === n, videoName, { timeout: 10_000 }));

    await step('wait for a .range in #timeline', () => page.waitForSelector('#timeline .range', { timeout: 15_000 }));
    const ranges = page.locator('#timeline .range');
    out.ranges = await ranges.count();
    const first = ranges.first();
    out.rangeStart = await first.getAttribute('data-start');
    out.rangeEnd = await first.getAttribute('data-end');
    // The events that made the clips, marked on the timeline (from the clips' explanations).
    await step('wait for a .infmark in #timeline', () => page.waitForSelector('#timeline .infmark', { timeout: 10_000 }));
    out.clipMarks = await page.$$eval('#timeline .infmark', (els) => els.map((e) => e.getAttribute('data-time')));

    const t0 = await page.$eval('#player', (v) => v.currentTime);
    await step('click the first range', () => first.click({ timeout: 10_000 }));
    await step('wait for playback of the clicked range to start', () =>
      page.waitForFunction((s) => window.vigil.state.playing && window.vigil.state.playing.start === s,
        out.rangeStart, { timeout: 10_000 }));

    try {
      await page.waitForFunction((t) => {
        const v = document.getElementById('player');
        return v.currentTime - t >= 1.0;
      }, t0, { timeout: 30_000, polling: 100 });
    } catch (e) {
      const st = await page.evaluate(() => {
        const v = document.getElementById('player');
        return { currentTime: v.currentTime, readyState: v.readyState, paused: v.paused, error: v.error && v.error.code,
          hlsErrors: window.vigil.state.errors, warnings: window.vigil.state.warnings };
      }).catch(() => ({}));
      out.currentTime = st.currentTime || 0;
      throw new Error(`player did not advance 1 s in 30 s: ${JSON.stringify(st)}`);
    }

    await step('wait for #clock (the frame on screen has no EXT-X-PROGRAM-DATE-TIME?)', () => page.waitForFunction(() => {
      if (window.vigil.updateClock) window.vigil.updateClock();
      return (document.getElementById('clock').textContent || '').trim() !== '';
    }, null, { timeout: 5_000, polling: 100 }));
    const snap = await page.evaluate(() => {
      if (window.vigil.updateClock) window.vigil.updateClock();
      return {
        currentTime: document.getElementById('player').currentTime,
        shownTime: document.getElementById('clock').textContent.trim(),
      };
    });
    out.currentTime = Math.round(snap.currentTime * 1000) / 1000;
    out.shownTime = snap.shownTime;
    out.events = await page.locator('#events .event').count();
    const hlsErrors = await page.evaluate(() => window.vigil.state.errors.slice());
    out.errors.push(...hlsErrors);

    await step(`screenshot ${shotPath}`, () => page.screenshot({ path: shotPath, fullPage: true }));
  } catch (e) {
    try {
      if (!out.videos.length) {
        out.videos = await page.$$eval('#videos .video', (els) => els.map((x) => x.getAttribute('data-name')));
      }
      const hlsErrors = await page.evaluate(() => (window.vigil ? window.vigil.state.errors.slice() : []));
      out.errors.push(...hlsErrors);
      await page.screenshot({ path: shotPath, fullPage: true, timeout: 5_000 });
    } catch { /* best effort */ }
    throw e;
  }
}

main().then(() => finish(0), (e) => fail(e && e.message ? e.message : e));
