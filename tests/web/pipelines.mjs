// Headless-Chromium check of the Pipelines panel of Vigil's web page (runtime/src/api/web/index.html).
//
// Usage (from the repo root):
//   node tests/web/pipelines.mjs BASE_URL TOGGLED OTHER BROKEN SCREENSHOT.png
//
// TOGGLED and OTHER are Active pipelines with a camera; BROKEN is an Inactive pipeline whose
// activation fails. The script opens BASE_URL/ and prints one JSON line per phase on stdout:
//   {"phase":"listed", "rows":[...]}       every row shown, TOGGLED and OTHER Active with their
//                                          camera connected, a lifecycle or session event in
//                                          TOGGLED's row
//   {"phase":"deactivated", "rows":[...]}  after a click on TOGGLED's Deactivate, once the page
//                                          shows it Inactive; then it waits for a line on stdin
//                                          (the caller checks the service meanwhile)
//   {"phase":"done", "rows":[...], "reactivated":{...}, "brokenError":"...", "errors":[...]}
//                                          after a click on TOGGLED's Activate (Active again, a
//                                          new LivePipelineActivated in its row) and a click on
//                                          BROKEN's Activate (the error shown in its row)  -> exit 0
//   {"phase":"error", "error":"...", ...}  a step failed or timed out                   -> exit 1
// Each row: {name, topology, state, status, camera, button: {text, action, disabled},
//            events: [{kind, time, text}] (as shown, newest first), error}.
// Needs playwright-core (scripts/setup-web.sh installs it under target/web-tools; override with
// PLAYWRIGHT_DIR) and a system Chromium (/usr/bin/chromium; override with CHROMIUM).
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';

const require = createRequire(import.meta.url);
const TOTAL_TIMEOUT_MS = Number(process.env.PIPELINES_TIMEOUT_MS || 150_000);

const out = { errors: [], ignored: [] };
let browser = null;
let finished = false;

function emit(obj) {
  return new Promise((resolve) => process.stdout.write(JSON.stringify(obj) + '\n', resolve));
}

function finish(code, extra) {
  if (finished) return;
  finished = true;
  emit({ ...extra, errors: out.errors, ignored: out.ignored }).then(() => {
    const close = browser ? browser.close().catch(() => {}) : Promise.resolve();
    Promise.race([close, new Promise((r) => setTimeout(r, 3000))]).then(() => process.exit(code));
  });
}

function fail(message) {
  finish(1, { phase: 'error', error: String(message), ...(out.last ? { rows: out.last } : {}) });
}

process.on('unhandledRejection', (e) => fail(e && e.stack ? e.message : e));
process.on('uncaughtException', (e) => fail(e && e.message ? e.message : e));
setTimeout(() => fail(`timed out after ${TOTAL_TIMEOUT_MS} ms`), TOTAL_TIMEOUT_MS).unref();

// The rows as the page shows them (runs in the page).
function snapshotInPage() {
  const text = (root, sel) => {
    const e = root.querySelector(sel);
    return e ? e.textContent.trim() : null;
  };
  return Array.from(document.querySelectorAll('#pipelines tbody.pipeline')).map((tb) => {
    const b = tb.querySelector('.p-action button');
    const errRow = tb.querySelector('.p-error-row');
    return {
      name: tb.getAttribute('data-name'),
      topology: text(tb, '.p-topology'),
      state: text(tb, '.p-state .state'),
      status: text(tb, '.p-status'),
      camera: text(tb, '.p-camera .camera'),
      button: b ? { text: b.textContent.trim(), action: b.getAttribute('data-action'), disabled: b.disabled } : null,
      events: Array.from(tb.querySelectorAll('.p-event')).map((li) => ({
        kind: li.getAttribute('data-kind'), time: li.getAttribute('data-time'), text: li.textContent.trim(),
      })),
      error: errRow && !errRow.hidden ? text(errRow, '.msg') : null,
    };
  });
}

async function main() {
  const [baseArg, toggled, other, broken, shotPath] = process.argv.slice(2);
  if (!baseArg || !toggled || !other || !broken || !shotPath) {
    throw new Error('usage: node tests/web/pipelines.mjs BASE_URL TOGGLED OTHER BROKEN SCREENSHOT.png');
  }
  const base = baseArg.replace(/\/+$/, '');
  const stdin = readline.createInterface({ input: process.stdin });
  const lines = stdin[Symbol.asyncIterator]();

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
    args: ['--no-sandbox', '--mute-audio', '--disable-gpu', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--disable-quic'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.addInitScript(`window.__pipelineRows = ${snapshotInPage.toString()};`);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const loc = m.location();
    const url = (loc && loc.url) || '';
    const line = `console: ${m.text()}${url ? ` (${url})` : ''}`;
    // Chromium logs every non-2xx fetch. Expected here: /api/videos answers 404 (this service
    // has no archive) and BROKEN's activation answers 400; the page must show both itself.
    if (/^Failed to load resource/.test(m.text()) &&
        (/\/api\/videos$/.test(url) || /\/api\/methods\/livePipelineActivate$/.test(url))) {
      if (!out.ignored.includes(line)) out.ignored.push(line);
      return;
    }
    out.errors.push(line);
  });
  page.on('pageerror', (e) => out.errors.push(`pageerror: ${e.message}`));

  const snapshot = () => page.evaluate(() => window.__pipelineRows());
  const step = async (what, fn) => {
    try {
      return await fn();
    } catch (e) {
      out.last = await snapshot().catch(() => undefined);
      throw new Error(`${what}: ${String(e.message).split('\n')[0]}`);
    }
  };
  // Waits until `pred(rows, arg)` holds for the rows shown (pred runs in the page).
  const waitRows = (what, pred, arg, timeout) => step(what, () => page.waitForFunction(
    `(${pred.toString()})(window.__pipelineRows(), ${JSON.stringify(arg)})`, null, { timeout, polling: 200 }));
  const rowSel = (name) => `#pipelines tbody.pipeline[data-name=${JSON.stringify(name)}]`;

  try {
    await step(`open ${base}/`, () => page.goto(base + '/', { waitUntil: 'load', timeout: 15_000 }));

    // 1. Every pipeline listed; the two Active, their cameras connected, an event in the row.
    await waitRows('wait for the three rows, two Active with the camera connected and a session event',
      (rows, a) => {
        const by = Object.fromEntries(rows.map((r) => [r.name, r]));
        const up = (n) => by[n] && by[n].state === 'Active' && by[n].camera === 'connected' &&
          by[n].button && by[n].button.text === 'Deactivate' && !by[n].button.disabled;
        return up(a.toggled) && up(a.other) && by[a.broken] && by[a.broken].state === 'Inactive' &&
          by[a.toggled].events.some((e) => e.kind === 'LivePipelineActivated' || e.kind === 'MediaSessionEstablished');
      }, { toggled, other, broken }, 40_000);
    await emit({ phase: 'listed', rows: await snapshot() });

    // 2. Deactivate TOGGLED with its button; the page shows it Inactive.
    await step(`click Deactivate of ${toggled}`, () =>
      page.locator(`${rowSel(toggled)} button.p-button[data-action="deactivate"]`).click({ timeout: 10_000 }));
    await waitRows(`wait for ${toggled} Inactive with an Activate button`, (rows, n) => {
      const r = rows.find((x) => x.name === n);
      return r && r.state === 'Inactive' && r.button && r.button.text === 'Activate' && !r.button.disabled &&
        r.events.length > 0 && r.events[0].kind === 'LivePipelineDeactivated';
    }, toggled, 40_000);
    const deactivated = await snapshot();
    await emit({ phase: 'deactivated', rows: deactivated });
    await step('wait for the caller (a line on stdin)', async () => {
      const next = await lines.next();
      if (next.done) throw new Error('stdin closed');
    });

    // 3. Activate it again: Active, and a new LivePipelineActivated shown first in its row.
    const before = deactivated.find((r) => r.name === toggled).events[0].time;
    await step(`click Activate of ${toggled}`, () =>
      page.locator(`${rowSel(toggled)} button.p-button[data-action="activate"]`).click({ timeout: 10_000 }));
    await waitRows(`wait for ${toggled} Active again with a new LivePipelineActivated`, (rows, a) => {
      const r = rows.find((x) => x.name === a.n);
      return r && r.state === 'Active' && r.button && r.button.text === 'Deactivate' &&
        r.events.some((e) => e.kind === 'LivePipelineActivated' && Date.parse(e.time) >= Date.parse(a.before));
    }, { n: toggled, before }, 40_000);
    const reactivated = (await snapshot()).find((r) => r.name === toggled);

    // 4. BROKEN's activation fails: the service's error is shown in its row.
    await step(`click Activate of ${broken}`, () =>
      page.locator(`${rowSel(broken)} button.p-button[data-action="activate"]`).click({ timeout: 10_000 }));
    await waitRows(`wait for the error in ${broken}'s row`, (rows, n) => {
      const r = rows.find((x) => x.name === n);
      return r && r.error && r.button && r.button.text === 'Activate';
    }, broken, 20_000);
    const rows = await snapshot();
    const brokenError = rows.find((r) => r.name === broken).error;
    const videosNote = await page.$eval('#videos', (e) => e.textContent.trim());
    const status = await page.$eval('#status', (e) => e.textContent.trim());
    await step(`screenshot ${shotPath}`, () => page.screenshot({ path: shotPath, fullPage: true }));
    finish(0, { phase: 'done', rows, reactivated, brokenError, videosNote, status });
  } catch (e) {
    try {
      await page.screenshot({ path: shotPath, fullPage: true, timeout: 5_000 });
    } catch { /* best effort */ }
    throw e;
  }
}

main().catch((e) => fail(e && e.message ? e.message : e));
