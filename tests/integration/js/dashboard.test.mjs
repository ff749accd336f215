// The dashboard (web/, docs/dashboard.md) in headless Chromium, driven by
// playwright-core with the system's chromium (no browser download):
// test_dashboard.sh starts the server and passes NSTACK_URL and CHROMIUM.
//
// Checks: the page loads with no console errors and no failed requests; a
// model loaded through the API shows up, and its tokens/s after a
// generation; session actions from the page; Tab reaches the model's Unload
// button and clicking it unloads the model; dark mode; a phone viewport has
// no horizontal scroll; an API error is shown in words. Prints the page
// weight and the paths of three screenshots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { url, demo, until } from './env.mjs';

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = process.env.NSTACK_ARTIFACTS || path.join(process.env.TMPDIR || os.tmpdir(), 'nstack-artifacts');
fs.mkdirSync(artifacts, { recursive: true });

async function api(method, p, body) {
  const res = await fetch(url + p, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json();
  assert.ok(res.ok, `${method} ${p}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}
const loadedNames = async () => (await api('GET', '/api/ps')).models.map((m) => m.name);

// Console errors, uncaught exceptions, failed requests and HTTP errors of a page.
function watch(page) {
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`); });
  return problems;
}

// The body bytes of the document and its assets (not the API's JSON or the
// event stream), from the page's network events during the first load.
function weigh(page) {
  const sizes = [];
  page.on('response', (r) => {
    if (!['document', 'stylesheet', 'script', 'image', 'font'].includes(r.request().resourceType())) return;
    sizes.push(r.body().then((b) => ({ url: r.url(), bytes: b.length })).catch(() => ({ url: r.url(), bytes: 0 })));
  });
  return async () => Promise.all(sizes);
}

const rowOf = (page, model) => page.locator(`#models-table tbody tr[data-model="${model}"]`);

test('dashboard in headless Chromium', { timeout: 180_000 }, async (t) => {
  const browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  t.after(() => browser.close());
  const shots = [];

  const desktop = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', colorScheme: 'light' });
  const page = await desktop.newPage();
  const problems = watch(page);
  const weights = weigh(page);
  let model; // the demo model's display name, from /api/ps

  await t.test('the page loads, its events stream connects', async () => {
    const res = await page.goto(url + '/', { waitUntil: 'load' });
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-security-policy'], /script-src 'self'/);
    await page.locator('#events-state', { hasText: 'live' }).waitFor({ timeout: 10_000 });
    await page.locator('#models-empty').waitFor({ state: 'visible', timeout: 10_000 });
    const parts = await weights();
    const total = parts.reduce((a, p) => a + p.bytes, 0);
    assert.ok(parts.length >= 3, 'document, css and js were fetched: ' + JSON.stringify(parts));
    console.log(`page weight: ${total} bytes (${parts.map((p) => `${new URL(p.url).pathname} ${p.bytes}`).join(', ')})`);
  });

  await t.test('a model loaded through the API shows up', async () => {
    await api('POST', '/api/load', { model: demo });
    model = (await loadedNames())[0];
    assert.ok(model, 'the model is loaded');
    await rowOf(page, model).waitFor({ state: 'visible', timeout: 5_000 });
  });

  await t.test("after generations the model's tokens/s is shown and > 0", async () => {
    for (let i = 0; i < 3; i++) {
      await api('POST', '/api/generate', { model: demo, prompt: 'Once upon a time', stream: false, options: { num_predict: 16 } });
    }
    await api('POST', '/api/generate', { model: demo, prompt: 'A session', session: 'dash-e2e', stream: false, options: { num_predict: 8 } });
    const cell = rowOf(page, model).locator('[data-field=tps]');
    const tps = await until(async () => {
      const v = Number((await cell.textContent()).replace(/,/g, ''));
      return v > 0 ? v : null;
    }, { tries: 80, ms: 100 });
    assert.ok(tps > 0, `tokens/s in the page: "${await cell.textContent()}"`);
    const ttft = await rowOf(page, model).locator('[data-field=ttft]').textContent();
    assert.match(ttft, /\d.*(ms|s)$/);
  });

  await t.test('session actions: save snapshot, truncate, clear', async () => {
    const row = page.locator('#sessions-table tbody tr[data-session="dash-e2e"]');
    await row.waitFor({ state: 'visible', timeout: 12_000 });
    await page.getByLabel('Snapshot name for session dash-e2e').fill('dash-e2e-snap');
    await page.getByRole('button', { name: 'Save a snapshot of session dash-e2e' }).click();
    await page.locator('#snapshots-table tbody th', { hasText: 'dash-e2e-snap' }).waitFor({ timeout: 5_000 });
    await page.getByLabel('Tokens to keep in session dash-e2e').fill('4');
    await page.getByRole('button', { name: 'Truncate session dash-e2e' }).click();
    const truncated = await until(async () => {
      const s = (await api('GET', '/api/sessions')).sessions.find((x) => x.id === 'dash-e2e');
      return s && s.tokens <= 4 && s.truncations >= 1;
    });
    assert.ok(truncated, 'the session was truncated');
    await page.getByRole('button', { name: 'Clear session dash-e2e' }).click();
    const cleared = await until(async () => {
      const s = (await api('GET', '/api/sessions')).sessions.find((x) => x.id === 'dash-e2e');
      return s && s.tokens === 0;
    });
    assert.ok(cleared, 'the session was cleared');
    assert.ok(page.getByRole('button', { name: 'Restore snapshot dash-e2e-snap' }), 'a restore button');
  });

  await t.test('desktop screenshot, light', async () => {
    await page.waitForTimeout(300);
    const file = path.join(artifacts, 'dashboard-desktop-light.png');
    await page.screenshot({ path: file, fullPage: true });
    shots.push(file);
  });

  await t.test('Tab reaches the Unload button', async () => {
    await page.locator('body').focus();
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = (await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))) === `Unload ${model}`;
    }
    assert.ok(reached, 'Tab reached the Unload button within 40 presses');
  });

  await t.test('dark mode renders', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const [r, g, b] = bg.match(/\d+/g).map(Number);
    assert.ok(0.2126 * r + 0.7152 * g + 0.0722 * b < 60, `dark background, got ${bg}`);
    const file = path.join(artifacts, 'dashboard-desktop-dark.png');
    await page.waitForTimeout(200);
    await page.screenshot({ path: file, fullPage: true });
    shots.push(file);
    // the toggle forces light over the system's dark
    await page.getByRole('button', { name: /^Theme: auto/ }).click();
    const forced = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.notEqual(forced, bg, 'the toggle changes the theme');
    await page.evaluate(() => localStorage.removeItem('nstack-theme'));
    await page.emulateMedia({ colorScheme: 'light' });
  });

  await t.test("clicking the model's Unload button unloads it", async () => {
    await page.getByRole('button', { name: `Unload ${model}` }).click();
    const gone = await until(async () => !(await loadedNames()).includes(model), { tries: 100, ms: 100 });
    assert.ok(gone, 'GET /api/ps no longer lists the model');
    await rowOf(page, model).waitFor({ state: 'detached', timeout: 5_000 });
  });

  await t.test('no console errors and no failed requests', () => {
    assert.deepEqual(problems, []);
  });

  await t.test('phone viewport: no horizontal scroll; an API error is shown in words', async () => {
    await api('POST', '/api/load', { model: demo });
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'en-US', hasTouch: true });
    const p = await phone.newPage();
    const phoneProblems = watch(p);
    await p.goto(url + '/', { waitUntil: 'load' });
    await rowOf(p, model).waitFor({ state: 'visible', timeout: 10_000 });
    await p.locator('#events-state', { hasText: 'live' }).waitFor({ timeout: 10_000 });
    const { sw, cw } = await p.evaluate(() => ({ sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth }));
    assert.ok(sw <= cw, `no horizontal scroll: scrollWidth ${sw} > clientWidth ${cw}`);
    const file = path.join(artifacts, 'dashboard-phone.png');
    await p.screenshot({ path: file, fullPage: true });
    shots.push(file);
    assert.deepEqual(phoneProblems, []);

    await p.getByLabel('Model name').fill('no-such-model');
    await p.getByRole('button', { name: 'Load', exact: true }).click();
    await p.locator('#errors', { hasText: /Load no-such-model: model .no-such-model. not found \(HTTP 404\)/ }).waitFor({ timeout: 5_000 });
    await phone.close();
    await api('POST', '/api/unload', { all: true });
  });

  for (const s of shots) console.log('screenshot: ' + s);
});
