// Headless-Chromium check of the "Recent clips" panel of Vigil's web page.
//
// Usage (from the repo root): node tests/web/clips.mjs BASE_URL PIPELINE COUNT SCREENSHOT.png
//
// Opens BASE_URL/, waits for COUNT clips (of any pipeline) with their thumbnails loaded, picks
// PIPELINE in the pipeline filter, clicks the first clip's "play" and waits until the player
// plays it; prints one JSON line:
//   {"phase":"done", "all":[clip...], "filtered":[clip...], "played":{src, currentTime, paused},
//    "download":{href, download}, "errors":[...]}                                 -> exit 0
//   {"phase":"error", "error":"...", "errors":[...]}                              -> exit 1
// Each clip: {id, pipeline, title, meta, thumb: {src, width} | null}.
// Needs playwright-core (scripts/setup-web.sh) and /usr/bin/chromium (override with CHROMIUM).
import { finish, openPage, run } from './browser.mjs';

function clipsInPage() {
  return Array.from(document.querySelectorAll('#clips li.clip')).map((li) => {
    const img = li.querySelector('img.thumb');
    return {
      id: li.getAttribute('data-id'),
      pipeline: li.getAttribute('data-pipeline'),
      title: li.querySelector('.c-title').textContent,
      meta: li.querySelector('.c-meta').textContent,
      thumb: img ? { src: img.getAttribute('src'), width: img.complete ? img.naturalWidth : 0 } : null,
    };
  });
}

async function main() {
  const [baseArg, pipeline, countArg, shot] = process.argv.slice(2);
  const base = baseArg.replace(/\/+$/, '');
  const count = Number(countArg);
  const page = await openPage(base);
  await page.waitForFunction(`(${clipsInPage.toString()})().filter((c) => c.thumb && c.thumb.width > 0).length >= ${count}`,
    null, { timeout: 40_000, polling: 250 });
  const all = await page.evaluate(clipsInPage);
  await page.selectOption('#clips-pipeline', pipeline);
  await page.waitForFunction(
    `(${clipsInPage.toString()})().length > 0 && (${clipsInPage.toString()})().every((c) => c.pipeline === ${JSON.stringify(pipeline)})`,
    null, { timeout: 15_000, polling: 200 });
  const filtered = await page.evaluate(clipsInPage);
  await page.click('#clips li.clip .c-play');
  await page.waitForFunction(() => {
    const v = document.getElementById('player');
    return !v.paused && v.currentTime > 0.5 && v.readyState >= 2;
  }, null, { timeout: 20_000, polling: 200 });
  const played = await page.evaluate(() => {
    const v = document.getElementById('player');
    return { src: v.currentSrc, currentTime: v.currentTime, paused: v.paused };
  });
  const download = await page.evaluate(() => {
    const a = document.querySelector('#clips li.clip .c-download');
    return { href: a.getAttribute('href'), download: a.getAttribute('download') };
  });
  await page.screenshot({ path: shot });
  finish(0, { phase: 'done', all, filtered, played, download });
}

run(main, 90);
