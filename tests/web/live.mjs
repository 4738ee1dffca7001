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
import { finish, openPage, run } from './browser.mjs';

async function main() {
  const [baseArg, pipeline, shot] = process.argv.slice(2);
  const base = baseArg.replace(/\/+$/, '');
  const page = await openPage(base);
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

run(main, 90);
