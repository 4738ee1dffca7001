// Headless-Chromium check of the web page's sign-in (runtime/src/api/web/index.html) against a
// service that asks for tokens.
//
// Usage (from the repo root):
//   SIGNIN_OPERATOR_TOKEN=... SIGNIN_VIEWER_TOKEN=... node tests/web/signin.mjs BASE_URL PIPELINE SCREENSHOT.png
//
// SCREENSHOT.png: the page at the end; SCREENSHOT-form.png: the form with the wrong token's error.
// PIPELINE is an Active live pipeline. The tokens come from the environment (not the command
// line, which any process can read). The script opens BASE_URL/ in a fresh browser (no cookie)
// and prints one JSON line per phase on stdout:
//   {"phase":"signin", "page":{...}, "api":[...]}     the form, before any sign-in
//   {"phase":"rejected", "page", "api", "cookies"}    after a wrong token: the form and its error
//   {"phase":"viewer", "page", "api", "cookies", "forcedClick":{...}}
//                                                      signed in with the viewer token: PIPELINE's
//                                                      row, its button disabled; a forced click on
//                                                      it calls nothing. Then it waits for a line
//                                                      on stdin (the caller checks the service)
//   {"phase":"signedout", "page", "api", "sentAfterLogout", "cookies", "probe":{status, error}}
//                                                      after Sign out: the form again, no request
//                                                      sent once the logout was answered, the
//                                                      cookie gone, the page's own fetch of
//                                                      /api/pipelines answered (401)
//   {"phase":"operator", "page", "api"}               signed in with the operator token, then the
//                                                      page reloaded (still signed in)
//   {"phase":"done", "page", "api", "errors":[...]}   after a click on Deactivate, once the page
//                                                      shows PIPELINE Inactive          -> exit 0
//   {"phase":"error", "error":"...", ...}              a step failed or timed out      -> exit 1
// "page": {form, tokenField: {type, visible, filled}, submit, error, account, signOut,
//          pipelinesPane, mainPane, rows: [{name, topology, state, button: {text, action,
//          disabled, title}, events: [kind]}], shown: [the given names found in the page's text]}.
// "api": the page's requests to /api/ since the previous phase: [{method, path, status}].
// Needs playwright-core (scripts/setup-web.sh installs it under target/web-tools; override with
// PLAYWRIGHT_DIR) and a system Chromium (/usr/bin/chromium; override with CHROMIUM).
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';

const require = createRequire(import.meta.url);
const TOTAL_TIMEOUT_MS = Number(process.env.SIGNIN_TIMEOUT_MS || 120_000);
const WRONG_TOKEN = 'not-a-token-of-this-service-0000';

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
  finish(1, { phase: 'error', error: String(message), ...(out.last ? { page: out.last } : {}) });
}

process.on('unhandledRejection', (e) => fail(e && e.stack ? e.message : e));
process.on('uncaughtException', (e) => fail(e && e.message ? e.message : e));
setTimeout(() => fail(`timed out after ${TOTAL_TIMEOUT_MS} ms`), TOTAL_TIMEOUT_MS).unref();

// What the page shows (runs in the page). `names`: strings that must not be on a signed-out page.
function snapshotInPage(names) {
  const vis = (e) => !!e && e.checkVisibility();
  const q = (sel) => document.querySelector(sel);
  const text = (sel) => {
    const e = q(sel);
    return e && vis(e) ? e.textContent.trim() : null;
  };
  const input = q('#signin-token');
  const shownText = document.body.innerText;
  return {
    form: vis(q('#signin-form')),
    tokenField: input ? { type: input.type, visible: vis(input), filled: input.value.length > 0 } : null,
    submit: text('#signin-submit'),
    error: text('#signin-error'),
    account: text('#account-role'),
    signOut: vis(q('#signout')),
    pipelinesPane: vis(q('#pipelines-pane')),
    mainPane: vis(q('#main')),
    rows: Array.from(document.querySelectorAll('#pipelines tbody.pipeline')).map((tb) => {
      const b = tb.querySelector('.p-action button');
      const t = (sel) => {
        const e = tb.querySelector(sel);
        return e ? e.textContent.trim() : null;
      };
      return {
        name: tb.getAttribute('data-name'),
        visible: vis(tb),
        topology: t('.p-topology'),
        state: t('.p-state .state'),
        button: b ? { text: b.textContent.trim(), action: b.getAttribute('data-action'), disabled: b.disabled,
          title: b.getAttribute('title') || '' } : null,
        events: Array.from(tb.querySelectorAll('.p-event')).map((li) => li.getAttribute('data-kind')),
      };
    }),
    shown: names.filter((n) => shownText.includes(n)),
  };
}

async function main() {
  const [baseArg, pipeline, shotPath] = process.argv.slice(2);
  const operator = process.env.SIGNIN_OPERATOR_TOKEN;
  const viewer = process.env.SIGNIN_VIEWER_TOKEN;
  if (!baseArg || !pipeline || !shotPath || !operator || !viewer) {
    throw new Error('usage: SIGNIN_OPERATOR_TOKEN=... SIGNIN_VIEWER_TOKEN=... node tests/web/signin.mjs BASE_URL PIPELINE SCREENSHOT.png');
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
  await context.addInitScript(`window.__signinPage = ${snapshotInPage.toString()};`);
  const page = await context.newPage();

  // The page's requests to /api/, in the order sent; `sent` and `answered` number the moments
  // (one counter for both). Each phase reports those sent since the previous one.
  const api = [];
  const byRequest = new Map();
  let moment = 0;
  let apiFrom = 0;
  const apiSince = () => {
    const part = api.slice(apiFrom).map(({ method, path: p, status }) => ({ method, path: p, status }));
    apiFrom = api.length;
    return part;
  };
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith('/api/')) return;
    const entry = { method: r.method(), path: u.pathname, status: null, sent: ++moment, answered: null };
    api.push(entry);
    byRequest.set(r, entry);
  });
  page.on('response', (r) => {
    const entry = byRequest.get(r.request());
    if (entry) { entry.status = r.status(); entry.answered = ++moment; }
  });
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const loc = m.location();
    const url = (loc && loc.url) || '';
    const line = `console: ${m.text()}${url ? ` (${url})` : ''}`;
    // Chromium logs every non-2xx fetch. Expected here: /api/videos answers 404 (this service has
    // no archive), the wrong token's /api/login 401, and the probe of /api/pipelines after sign
    // out 401. The page must show the first two itself.
    if (/^Failed to load resource/.test(m.text()) &&
        (/\/api\/videos$/.test(url) || /\/api\/login$/.test(url) || /\/api\/pipelines$/.test(url))) {
      if (!out.ignored.includes(line)) out.ignored.push(line);
      return;
    }
    out.errors.push(line);
  });
  page.on('pageerror', (e) => out.errors.push(`pageerror: ${e.message}`));

  const names = [pipeline, 'DoorSensorToFiles'];
  const snapshot = () => page.evaluate((n) => window.__signinPage(n), names);
  const step = async (what, fn) => {
    try {
      return await fn();
    } catch (e) {
      out.last = await snapshot().catch(() => undefined);
      throw new Error(`${what}: ${String(e.message).split('\n')[0]}`);
    }
  };
  // Waits until `pred(page, arg)` holds for what the page shows (pred runs in the page).
  const waitPage = (what, pred, arg, timeout) => step(what, () => page.waitForFunction(
    `(${pred.toString()})(window.__signinPage(${JSON.stringify(names)}), ${JSON.stringify(arg)})`,
    null, { timeout, polling: 100 }));
  const cookies = async () => (await context.cookies(base)).map((c) => ({
    name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite, path: c.path,
  }));
  const signIn = async (what, token) => {
    await step(`${what}: type the token`, () => page.fill('#signin-token', token, { timeout: 5_000 }));
    await step(`${what}: click Sign in`, () => page.click('#signin-submit', { timeout: 5_000 }));
  };
  const rowSel = `#pipelines tbody.pipeline[data-name=${JSON.stringify(pipeline)}] button.p-button`;
  const signedInAs = (p, a) => {
    const r = p.rows.find((x) => x.name === a.pipeline);
    return !p.form && p.account === a.role && p.signOut && r && r.visible && r.state === 'Active' &&
      r.button && r.button.text === 'Deactivate';
  };

  try {
    // (a) No cookie yet: the form, nothing of the service's data.
    await step(`open ${base}/`, () => page.goto(base + '/', { waitUntil: 'load', timeout: 15_000 }));
    await waitPage('wait for the sign-in form', (p) => p.form && p.tokenField && p.tokenField.visible, null, 10_000);
    // Longer than a poll of the pipelines (2 s): a page that polled anyway would show it here.
    await page.waitForTimeout(2_500);
    await emit({ phase: 'signin', page: await snapshot(), api: apiSince() });

    // (b) A wrong token: the service's error by the form, still signed out.
    await signIn('the wrong token', WRONG_TOKEN);
    await waitPage('wait for the error of the wrong token', (p) => p.form && !!p.error, null, 10_000);
    await page.waitForTimeout(500);
    const formShot = shotPath.replace(/(\.png)?$/, '-form.png');
    await step(`screenshot ${formShot}`, () => page.screenshot({ path: formShot, fullPage: true }));
    await emit({ phase: 'rejected', page: await snapshot(), api: apiSince(), cookies: await cookies() });

    // (c) The viewer token: the pipeline shown, its button disabled.
    await signIn('the viewer token', viewer);
    await waitPage('wait for the pipeline shown to the viewer', signedInAs, { pipeline, role: 'viewer' }, 20_000);
    const viewerPage = await snapshot();
    const viewerApi = apiSince();
    // A click that ignores the disabled state (as a user's would be): no method is called.
    await step('force a click on the disabled button', () => page.click(rowSel, { force: true, timeout: 5_000 }));
    await page.waitForTimeout(1_000);
    const afterClick = apiSince();
    const forcedClick = {
      methodCalls: afterClick.filter((c) => c.path.startsWith('/api/methods/')),
      page: await snapshot(),
    };
    await emit({ phase: 'viewer', page: viewerPage, api: viewerApi, cookies: await cookies(), forcedClick });
    await step('wait for the caller (a line on stdin)', async () => {
      const next = await lines.next();
      if (next.done) throw new Error('stdin closed');
    });

    // (d) Sign out: the form again, the data gone; the cookie gone (the page's fetch is refused).
    apiSince();
    await step('click Sign out', () => page.click('#signout', { timeout: 5_000 }));
    await waitPage('wait for the form after sign out', (p) => p.form && p.rows.length === 0, null, 10_000);
    await page.waitForTimeout(2_500);   // longer than a poll: none may be sent once signed out
    const signedOutPage = await snapshot();
    const logout = api.filter((c) => c.path === '/api/logout').pop();
    const sentAfterLogout = logout && logout.answered != null
      ? api.filter((c) => c.sent > logout.answered).map((c) => `${c.method} ${c.path}`) : null;
    const signedOutApi = apiSince();
    const probe = await page.evaluate(() => fetch('/api/pipelines', { cache: 'no-store' }).then((r) =>
      r.json().catch(() => null).then((b) => ({ status: r.status, error: b && b.error }))));
    apiSince();
    await emit({ phase: 'signedout', page: signedOutPage, api: signedOutApi, sentAfterLogout, cookies: await cookies(), probe });

    // (e) The operator token: the button enabled, also after a reload; Deactivate works.
    await signIn('the operator token', operator);
    await waitPage('wait for the pipeline shown to the operator', (p, a) => {
      const r = p.rows.find((x) => x.name === a.pipeline);
      return p.account === a.role && !p.form && r && r.state === 'Active' && r.button && !r.button.disabled;
    }, { pipeline, role: 'operator' }, 20_000);
    await step('reload the page', () => page.reload({ waitUntil: 'load', timeout: 15_000 }));
    await waitPage('wait for the pipeline after the reload', (p, a) => {
      const r = p.rows.find((x) => x.name === a.pipeline);
      return p.account === a.role && !p.form && r && r.state === 'Active' && r.button && !r.button.disabled;
    }, { pipeline, role: 'operator' }, 20_000);
    await emit({ phase: 'operator', page: await snapshot(), api: apiSince() });

    await step('click Deactivate', () => page.click(`${rowSel}[data-action="deactivate"]`, { timeout: 10_000 }));
    await waitPage('wait for the pipeline Inactive', (p, n) => {
      const r = p.rows.find((x) => x.name === n);
      return r && r.state === 'Inactive' && r.button && r.button.text === 'Activate' && !r.button.disabled;
    }, pipeline, 40_000);
    const done = await snapshot();
    await step(`screenshot ${shotPath}`, () => page.screenshot({ path: shotPath, fullPage: true }));
    finish(0, { phase: 'done', page: done, api: apiSince() });
  } catch (e) {
    try {
      await page.screenshot({ path: shotPath, fullPage: true, timeout: 5_000 });
    } catch { /* best effort */ }
    throw e;
  }
}

main().catch((e) => fail(e && e.message ? e.message : e));
