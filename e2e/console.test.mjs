// End-to-end tests of the pages the binary serves itself (static/): the console at "/" for a
// browser navigation, the presence list of the board demo, and the view counter demo.
//
// The console tests take screenshots: every one goes to a temporary directory that is kept (its
// path is printed) and to /tmp/console-<name>.png, to look at.
//
// Run one test:  node --test --test-name-pattern='console' e2e/console.test.mjs

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildServer, closeBrowser, encodeKey, getBrowser, scenarioTest, signJWT, waitInPage, WAIT_TIMEOUT_MS } from './harness.mjs';

before(async () => {
  await buildServer();
  await getBrowser();
}, { timeout: 6 * 60_000 });

after(() => closeBrowser());

// Opens url (a page of the statehub server itself, so not through the page server) in a new
// browser context (with contextOptions), or in `context`, with the page's console and errors
// logged as Scenario.open does.
async function visit(sc, url, { label, context, contextOptions } = {}) {
  const browser = await getBrowser();
  if (!context) {
    context = await browser.newContext(contextOptions);
    sc.contexts.push(context);
  }
  const page = await context.newPage();
  page.label = label;
  page.setDefaultTimeout(WAIT_TIMEOUT_MS);
  page.on('console', (msg) => {
    const line = `[${label}] console.${msg.type()}: ${msg.text()}`;
    sc.log(line);
    if (msg.type() === 'error' || msg.type() === 'warning') sc.forward(line);
  });
  page.on('pageerror', (err) => {
    const line = `[${label}] uncaught: ${err.stack || err.message}`;
    sc.log(line);
    sc.pageErrors.push(line);
    sc.forward(line);
  });
  const res = await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
  if (!res || !res.ok()) throw new Error(`loading ${url} answered ${res && res.status()}`);
  return page;
}

// Polls an async condition from node with a deadline.
async function eventually(what, fn, { timeout = WAIT_TIMEOUT_MS } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// ---------------------------------------------------------------------------------------------------
// The console

let shotDir;
// Saves a screenshot of page as <temp dir>/console-<name>.png and /tmp/console-<name>.png.
async function screenshot(page, name) {
  if (!shotDir) {
    shotDir = fs.mkdtempSync(path.join(os.tmpdir(), 'statehub-console-shots-'));
    process.stderr.write(`[e2e] console screenshots in ${shotDir} and /tmp/console-*.png\n`);
  }
  const file = path.join(shotDir, `console-${name}.png`);
  await page.screenshot({ path: file });
  fs.copyFileSync(file, path.join('/tmp', `console-${name}.png`));
}

const WIDE = { viewport: { width: 1440, height: 900 } };

// The tree's row of a key or subtree, as the page shows it (null when it shows none).
const readRow = (key) => {
  const tr = document.querySelector(`#tree tr[data-key="${CSS.escape(key)}"]`);
  if (!tr) return null;
  const main = tr.querySelector('[data-role="main"]');
  return {
    kind: tr.dataset.kind, name: main.textContent, value: tr.cells[2].textContent, revision: tr.cells[3].textContent,
    expanded: main.getAttribute('aria-expanded'), depth: Number(tr.cells[0].style.getPropertyValue('--depth')),
    actions: [...tr.cells[4].querySelectorAll('[data-role]')].map((b) => b.dataset.role),
  };
};
const row = (page, key) => page.evaluate(readRow, key);

// Waits until the row of key matches want (some of its fields), or is absent for null.
async function waitRow(page, key, want, what) {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  for (;;) {
    const r = await row(page, key);
    if (want ? r && Object.keys(want).every((k) => JSON.stringify(r[k]) === JSON.stringify(want[k])) : !r) return r;
    if (Date.now() > deadline) {
      const rows = await page.evaluate(() => [...document.querySelectorAll('#tree tr')].map((tr) => tr.textContent).concat(document.getElementById('list-msg').textContent));
      throw new Error(`${page.label}: ${key}: ${what}: not reached within ${WAIT_TIMEOUT_MS} ms\nrow: ${JSON.stringify(r)}\nrows: ${JSON.stringify(rows)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const rowButton = (page, key, role) => page.locator(`#tree tr[data-key="${key}"] [data-role="${role}"]`);
const text = (page, sel) => page.locator(sel).textContent();

// A raw JSON body, sent as it is (the harness's set() would pass it through JSON.stringify).
const setRaw = (server, key, body, headers = {}) => server.must('POST', encodeKey(key), { body, headers: { 'content-type': 'application/json', ...headers } });

scenarioTest(test, 'console: a tree that expands in place, filtered by key, live, with health and an event log', async (sc) => {
  const server = await sc.server();
  const evil = '<img src=x onerror="window.__xss=1">';
  await server.set('/shop/cart/ann', { items: 1 });
  await server.set('/shop/cart/bob', { items: 3 });
  await server.set('/shop/visits', 5);
  await server.set('/shop/note', evil);
  await server.must('POST', '/shop/deploy?lock&owner=ci-7&ttl=1h');

  // A script tag still gets the script at "/".
  const script = await server.request('GET', '/');
  assert.match(script.headers['content-type'], /javascript/);

  const page = await visit(sc, `${server.url}/#/shop/`, { label: 'console', contextOptions: WIDE });
  assert.equal(await page.title(), 'Statehub console');

  // The children of /shop/: keys, a subtree, a counter, a lock; data shown as text only.
  await waitRow(page, '/shop/visits', { kind: 'counter', value: '5', actions: ['dec', 'inc', 'delete'] }, 'listed as a counter of 5 with its controls');
  assert.deepEqual(await row(page, '/shop/cart/'), { kind: 'subtree', name: 'cart/', value: '', revision: '', expanded: 'false', depth: 0, actions: ['browse'] });
  const lock = await row(page, '/shop/deploy');
  assert.equal(lock.kind, 'lock');
  assert.match(lock.value, /^ci-7 until .* · fence \d+$/);
  assert.deepEqual(lock.actions, [], 'a held lock has no edit controls');
  assert.equal((await row(page, '/shop/note')).value, JSON.stringify(evil));
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'a value is never parsed as HTML');

  // Health and key count at a glance, and the stream is live.
  const health = (await server.request('GET', '/.health')).json;
  await waitInPage(page, 'the header shows health and the key count', (n) => /^healthy · \d+ keys · seq \d+$/.test(document.getElementById('health-text').textContent) &&
    document.getElementById('health-text').textContent.includes(`${n} keys`), health.keys, { describe: () => document.getElementById('health-text').textContent });
  await waitInPage(page, 'the stream is live', () => document.getElementById('live').dataset.state === 'ok');

  // A subtree expands in place (the browsed path stays /shop/), by mouse and by keyboard.
  await rowButton(page, '/shop/cart/', 'main').click();
  await waitRow(page, '/shop/cart/ann', { value: '{"items":1}', revision: '0', depth: 1 }, 'listed under cart/, one level in');
  assert.equal((await row(page, '/shop/cart/')).expanded, 'true');
  assert.equal(new URL(page.url()).hash, '#/shop/');
  await page.keyboard.press('ArrowLeft');
  await waitRow(page, '/shop/cart/ann', null, 'hidden when cart/ collapses (ArrowLeft)');
  await page.keyboard.press('ArrowRight');
  await waitRow(page, '/shop/cart/bob', { depth: 1 }, 'shown again (ArrowRight)');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.closest('tr').dataset.key), '/shop/cart/ann', 'ArrowDown moves to the next row');

  // Live: changes over HTTP appear without a reload, at every loaded level, and in the event log.
  await server.must('POST', '/shop/visits?incr=2');
  await waitRow(page, '/shop/visits', { value: '7', revision: '1' }, 'shows the increment made over HTTP');
  await server.set('/shop/motd', 'fresh');
  await waitRow(page, '/shop/motd', { value: '"fresh"', kind: 'value' }, 'appears when written over HTTP');
  await server.set('/shop/cart/cy', [1, 2]);
  await waitRow(page, '/shop/cart/cy', { value: '[1,2]', depth: 1 }, 'appears inside the expanded subtree');
  await server.set('/shop/tmp/deep/x', 1);
  await waitRow(page, '/shop/tmp/', { kind: 'subtree', expanded: 'false' }, 'a new subtree appears');
  const log = () => page.evaluate(() => [...document.querySelectorAll('#events li')].map((li) => `${li.dataset.type} ${li.dataset.key}`));
  await waitInPage(page, 'the event log lists the changes, newest first', () => {
    const got = [...document.querySelectorAll('#events li')].map((li) => `${li.dataset.type} ${li.dataset.key}`);
    return got.join() === ['set /shop/tmp/deep/x', 'set /shop/cart/cy', 'set /shop/motd', 'set /shop/visits'].join();
  }, null, { describe: () => [...document.querySelectorAll('#events li')].map((li) => li.textContent) });
  assert.equal(await text(page, '#events li[data-key="/shop/cart/cy"] .evval'), '[1,2]');

  // Filter by key: matching rows and the subtrees that hold them.
  await page.fill('#filter', 'bo');
  await waitInPage(page, 'the filter keeps /shop/cart/bob and its subtree', () =>
    [...document.querySelectorAll('#tree tr[data-key]')].map((tr) => tr.dataset.key).join() === '/shop/cart/,/shop/cart/bob');
  await page.fill('#filter', 'nothing-like-this');
  await waitInPage(page, 'the filter says nothing matches', () => /No loaded key matches/.test(document.getElementById('list-msg').textContent));
  await page.fill('#filter', '');
  await waitRow(page, '/shop/visits', { value: '7' }, 'back when the filter is cleared');
  await screenshot(page, 'tree');

  // The +1 button increments.
  await rowButton(page, '/shop/visits', 'inc').click();
  await waitRow(page, '/shop/visits', { value: '8' }, 'shows 8 after +1');
  assert.equal((await server.get('/shop/visits')).value, 8);

  // Delete (two clicks), conditional on the revision shown; the log shows the delete.
  await rowButton(page, '/shop/cart/bob', 'delete').click();
  await waitInPage(page, 'the delete asks for a confirmation', () => document.querySelector('#tree tr[data-key="/shop/cart/bob"] [data-role="delete"]').textContent === 'Confirm');
  await rowButton(page, '/shop/cart/bob', 'delete').click();
  await waitRow(page, '/shop/cart/bob', null, 'is gone after delete');
  assert.equal((await server.get('/shop/cart/bob')).status, 404);
  await waitInPage(page, 'the log shows the delete', () => document.querySelector('#events li[data-type="delete"][data-key="/shop/cart/bob"]'));
  assert.ok((await log()).length >= 6);

  // Browsing into a subtree makes it the browsed path: crumbs, listing, and the stream's scope.
  await rowButton(page, '/shop/tmp/', 'browse').click();
  await waitRow(page, '/shop/tmp/deep/', { kind: 'subtree', depth: 0 }, 'listed at the top of /shop/tmp/');
  assert.deepEqual(await page.evaluate(() => [...document.querySelectorAll('#crumbs a')].map((a) => a.textContent)), ['root', 'shop', 'tmp']);
  assert.equal(await text(page, '#ev-scope'), '/shop/tmp/');

  // A server restart: the console reconnects, resumes its stream, and goes on showing changes.
  await server.restart();
  await waitInPage(page, 'live again after the restart', () => document.getElementById('live').dataset.state === 'ok', null,
    { describe: () => document.getElementById('live-text').textContent });
  await server.set('/shop/tmp/after', 'restart');
  await waitRow(page, '/shop/tmp/after', { value: '"restart"' }, 'a change after the restart appears');

  // A narrow window stacks the panes.
  await page.setViewportSize({ width: 760, height: 1000 });
  await page.evaluate(() => { location.hash = '#/shop/'; });
  await waitRow(page, '/shop/visits', { value: '8' }, 'listed again in a narrow window');
  await screenshot(page, 'narrow');
});

scenarioTest(test, 'console: values are edited as raw JSON text: numbers are saved and read back byte for byte; a stale save writes nothing', async (sc) => {
  const server = await sc.server();
  await setRaw(server, '/cfg/app', '{"id":1,"price":2}');
  await setRaw(server, '/cfg/big', '{"n":98765432109876543210.000,"e":1E400}');

  // A deep link to a key browses its parent and opens the key.
  const page = await visit(sc, `${server.url}/#/cfg/big`, { label: 'console', contextOptions: WIDE });
  await waitInPage(page, 'the editor shows the stored text, numbers as written', () =>
    document.getElementById('ed-value').value === '{\n  "n": 98765432109876543210.000,\n  "e": 1E400\n}',
  null, { describe: () => document.getElementById('ed-value').value });
  await waitRow(page, '/cfg/big', { value: '{"n":98765432109876543210.000,"e":1E400}' }, 'the tree shows the stored text');

  // Save the exact text; the server holds exactly those bytes.
  const exact = '{"id":12345678901234567890,"price":1.50}';
  await rowButton(page, '/cfg/app', 'main').click();
  await waitInPage(page, 'the editor opens /cfg/app at revision 0', () => document.getElementById('v-key').textContent === '/cfg/app' &&
    !document.getElementById('v-editor').hidden && /"price": 2/.test(document.getElementById('ed-value').value) && !document.getElementById('ed-buttons').hidden);
  await page.fill('#ed-value', exact);
  await page.click('#ed-save');
  await waitInPage(page, 'the save succeeds', () => /Saved: revision 1\./.test(document.getElementById('v-msg').textContent),
    null, { describe: () => document.getElementById('v-msg').textContent });
  const got = await server.request('GET', '/cfg/app');
  assert.equal(got.text, exact, 'read back byte for byte');
  assert.equal(got.headers['x-revision'], '1');
  await waitRow(page, '/cfg/app', { value: exact, revision: '1' }, 'the tree shows the saved text');
  await waitInPage(page, 'the event log shows the saved text', (exact) => {
    const li = document.querySelector('#events li[data-key="/cfg/app"] .evval');
    return li && li.textContent === exact;
  }, exact);

  // Format re-indents without touching a number; a reload shows the stored text again.
  await page.click('#ed-format');
  assert.equal(await page.inputValue('#ed-value'), '{\n  "id": 12345678901234567890,\n  "price": 1.50\n}');
  await screenshot(page, 'editor');

  // A stale save: someone writes after the editor loaded; the console says so, and the save is
  // refused without writing.
  await setRaw(server, '/cfg/app', '{"id":7,"by":"http"}');
  await waitInPage(page, 'the editor warns of the change', () => /now at revision 2/.test(document.getElementById('v-live').textContent));
  await page.fill('#ed-value', '{"id":3}');
  await page.click('#ed-save');
  await waitInPage(page, 'the save reports a conflict', () => /Conflict: .* is at revision 2, not 1/.test(document.getElementById('v-msg').textContent),
    null, { describe: () => document.getElementById('v-msg').textContent });
  assert.equal((await server.request('GET', '/cfg/app')).text, '{"id":7,"by":"http"}', 'the stale save wrote nothing');
  assert.equal(await page.inputValue('#ed-value'), '{"id":3}', 'the text typed is kept');
  await page.click('#ed-reload');
  await waitInPage(page, 'the current value is loaded', () => document.getElementById('ed-value').value.includes('"by": "http"') &&
    document.querySelector('#v-meta').textContent.includes('Revision2'));

  // Text that is not JSON is flagged and the server's refusal shown; nothing is written.
  await page.fill('#ed-value', '{"id": 1,}');
  assert.equal(await text(page, '#ed-valid'), 'not valid JSON');
  await page.click('#ed-save');
  await waitInPage(page, 'the server refuses it', () => /invalid_json/.test(document.getElementById('v-msg').textContent),
    null, { describe: () => document.getElementById('v-msg').textContent });
  assert.equal((await server.request('GET', '/cfg/app')).text, '{"id":7,"by":"http"}');

  // A new key, created only if absent, with its text as written.
  await page.click('#new-key');
  assert.equal(await page.inputValue('#c-key'), '/cfg/');
  await page.fill('#c-key', 'fresh');
  await page.fill('#c-value', '{"n": 1.0e3, "s": "<b>&"}');
  await page.click('#create button[type="submit"]');
  await waitInPage(page, 'the new key is open in the editor', () => document.getElementById('v-key').textContent === '/cfg/fresh' && !document.getElementById('v-editor').hidden);
  assert.equal((await server.request('GET', '/cfg/fresh')).text, '{"n":1.0e3,"s":"<b>&"}');
  await waitRow(page, '/cfg/fresh', { value: '{"n":1.0e3,"s":"<b>&"}' }, 'listed with its text');
  await page.click('#new-key');
  await page.fill('#c-key', 'fresh');
  await page.fill('#c-value', '2');
  await page.click('#create button[type="submit"]');
  await waitInPage(page, 'creating an existing key is refused', () => /exists already/.test(document.getElementById('c-msg').textContent));
  assert.equal((await server.request('GET', '/cfg/fresh')).text, '{"n":1.0e3,"s":"<b>&"}');
});

scenarioTest(test, 'console: files and locks shown as such (type, size, download; expiry in local time); a TTL set in the console expires the key', async (sc) => {
  const server = await sc.server();
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="96" height="20"><rect width="96" height="20" rx="3" fill="#4c1"/><text x="8" y="14" fill="#fff" font-size="11">coverage 93%</text></svg>';
  await server.must('PUT', '/ci/coverage', { body: svg, headers: { 'content-type': 'image/svg+xml' } });
  const held = await server.must('POST', '/ci/deploy?lock&owner=ci-7&ttl=90m');
  await server.set('/ci/build', 41);

  // Kolkata has no daylight saving: its local time is UTC + 5:30 all year.
  const page = await visit(sc, `${server.url}/#/ci/`, { label: 'console', contextOptions: { ...WIDE, timezoneId: 'Asia/Kolkata', locale: 'en-GB' } });
  await waitRow(page, '/ci/coverage', { kind: 'file', value: `image/svg+xml · ${svg.length} B` }, 'shown as a file with its type and size');
  const href = await rowButton(page, '/ci/coverage', 'download').getAttribute('href');
  assert.equal(href, '/ci/coverage');
  assert.equal(await page.evaluate(async (href) => (await fetch(href)).text(), href), svg, 'the download link serves the bytes');

  // The lock's expiry, in the browser's local time, with the instant itself in the datetime.
  await waitRow(page, '/ci/deploy', { kind: 'lock' }, 'shown as a lock');
  const local = new Date(Date.parse(held.expires) + 5.5 * 3600_000).toISOString().slice(11, 19);
  const shown = await page.evaluate(() => {
    const t = document.querySelector('#tree tr[data-key="/ci/deploy"] time');
    return { datetime: t.getAttribute('datetime'), text: t.textContent };
  });
  assert.equal(shown.datetime, held.expires);
  assert.ok(shown.text.includes(local), `lock expiry shown as ${shown.text}, want the local time ${local}`);

  // The file's details: type, size, hash, a download link and a preview.
  await rowButton(page, '/ci/coverage', 'main').click();
  await waitInPage(page, 'the file details show', (n) => {
    const meta = document.getElementById('v-meta').textContent;
    return meta.includes('Typeimage/svg+xml') && meta.includes(`(${n} bytes)`) && /SHA-256[0-9a-f]{64}/.test(meta) && !document.getElementById('v-file').hidden;
  }, svg.length, { describe: () => document.getElementById('v-meta').textContent });
  assert.equal(await page.getAttribute('#v-download', 'href'), '/ci/coverage');
  assert.ok(await page.isHidden('#v-editor'), 'a file has no JSON editor');
  await waitInPage(page, 'the preview is drawn', () => document.getElementById('v-preview').complete && document.getElementById('v-preview').naturalWidth > 0);
  await screenshot(page, 'file');

  // The lock's details.
  await rowButton(page, '/ci/deploy', 'main').click();
  await waitInPage(page, 'the lock details show', () => /Ownerci-7/.test(document.getElementById('v-meta').textContent) && !document.getElementById('v-lock').hidden);
  assert.ok((await text(page, '#v-meta')).includes(local));
  assert.ok(await page.isHidden('#v-editor') && await page.isHidden('#v-delete-row'), 'a held lock has no edit controls');

  // A key created with a TTL goes when it expires: the row disappears and the log shows the delete.
  await page.click('#new-key');
  await page.fill('#c-key', 'flash');
  await page.fill('#c-value', '"soon gone"');
  await page.fill('#c-ttl', '1s');
  await page.click('#create button[type="submit"]');
  await waitRow(page, '/ci/flash', { value: '"soon gone"' }, 'created');
  await waitRow(page, '/ci/flash', null, 'gone once its TTL passes');
  await waitInPage(page, 'the log shows the expiry', () => document.querySelector('#events li[data-type="delete"][data-key="/ci/flash"]'));
  assert.equal((await server.get('/ci/flash')).status, 404);
});

scenarioTest(test, 'console: edit controls only where the pasted token may write; the admin token lists the root', async (sc) => {
  const secret = crypto.randomBytes(32).toString('hex');
  const admin = crypto.randomBytes(24).toString('hex');
  const server = await sc.server({ args: [`-jwt-secret=${secret}`, `-admin-token=${admin}`] });
  const as = { authorization: `Bearer ${admin}` };
  for (const [key, body] of [['/shop/visits', '5'], ['/shop/motd', '"hi"'], ['/shop/cart/ann', '{"items":1}']]) await setRaw(server, key, body, as);
  const token = signJWT(secret, { sub: 'ann', exp: Math.floor(Date.now() / 1000) + 3600, grants: { read: ['/shop/'], write: ['/shop/cart/'] } });

  // Without a token: nothing to list, and the console says what to do.
  const page = await visit(sc, `${server.url}/#/shop/`, { label: 'console', contextOptions: WIDE });
  await waitInPage(page, 'the listing asks for a token', () => /needs a token/.test(document.getElementById('empty').textContent),
    null, { describe: () => [document.getElementById('empty').textContent, document.getElementById('list-msg').textContent] });
  await waitInPage(page, 'the stream is not live', () => document.getElementById('live').dataset.state === 'bad');
  await screenshot(page, 'no-token');

  // The token, pasted in: read on /shop/, write on /shop/cart/ only.
  await page.click('#token-menu summary');
  await page.fill('#token', token);
  await page.press('#token', 'Enter');
  await waitRow(page, '/shop/visits', { kind: 'counter', value: '5', actions: [] }, 'listed without edit controls');
  assert.equal(await text(page, '#token-who'), `JWT · ann · expires ${await page.evaluate((exp) => new Date(exp * 1000).toLocaleTimeString(), JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).exp)}`);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('statehub.console.token')), token);
  await waitInPage(page, 'New key is disabled under /shop/', () => document.getElementById('new-key').disabled);
  await waitInPage(page, 'the stream is live with the token', () => document.getElementById('live').dataset.state === 'ok');
  await rowButton(page, '/shop/visits', 'main').click();
  await waitInPage(page, 'the editor is read-only', () => document.getElementById('ed-value').readOnly && document.getElementById('ed-buttons').hidden &&
    !document.getElementById('v-readonly').hidden && document.getElementById('v-delete-row').hidden);
  assert.equal(await text(page, '#v-readonly'), 'Read-only: this token may not write /shop/visits.');

  await rowButton(page, '/shop/cart/', 'main').click();
  await waitRow(page, '/shop/cart/ann', { depth: 1, actions: ['delete'] }, 'listed with a delete control where the token may write');
  await rowButton(page, '/shop/cart/ann', 'main').click();
  await waitInPage(page, 'the editor is writable', () => !document.getElementById('ed-value').readOnly && !document.getElementById('ed-buttons').hidden &&
    document.getElementById('v-key').textContent === '/shop/cart/ann' && !document.getElementById('v-delete-row').hidden);
  await page.fill('#ed-value', '{"items":2}');
  await page.click('#ed-save');
  await waitInPage(page, 'the save with the token succeeds', () => /Saved: revision 1/.test(document.getElementById('v-msg').textContent),
    null, { describe: () => document.getElementById('v-msg').textContent });
  assert.equal((await server.request('GET', '/shop/cart/ann', { headers: as })).text, '{"items":2}');
  await rowButton(page, '/shop/visits', 'main').click();
  await waitInPage(page, 'read-only again on /shop/visits', () => document.getElementById('v-key').textContent === '/shop/visits' && document.getElementById('ed-value').readOnly);
  await screenshot(page, 'read-only');

  // The admin token lists the root, with every control.
  await page.click('#token-menu summary');
  await page.fill('#token', admin);
  await page.click('#token-form button[type="submit"]');
  await page.evaluate(() => { location.hash = '#/'; });
  await waitRow(page, '/shop/', { kind: 'subtree', depth: 0 }, 'the root lists with the admin token');
  assert.equal(await text(page, '#token-who'), 'Token set');
  await waitInPage(page, 'New key is enabled at the root', () => !document.getElementById('new-key').disabled);

  // Forget: back to no token.
  await page.click('#token-menu summary');
  await page.click('#token-forget');
  await waitInPage(page, 'the root needs a token again', () => /needs a token/.test(document.getElementById('empty').textContent));
  assert.equal(await page.evaluate(() => sessionStorage.getItem('statehub.console.token')), null);
});

// ---------------------------------------------------------------------------------------------------
// The demo pages

scenarioTest(test, 'board: presence of real pages: each sees the other, a reload does not flicker, a closed page leaves after the grace period, and the board says why', async (sc) => {
  const GRACE_MS = 2000;
  const server = await sc.server({ memory: true, args: [`-ephemeral-grace=${GRACE_MS}ms`] });
  const board = (name) => `${server.url}/.demo/board?room=r1&name=${name}`;
  const names = (page) => page.evaluate(() => [...document.querySelectorAll('#people li')].map((li) => li.textContent));
  const waitNames = (page, want, what) => waitInPage(page, what,
    (want) => JSON.stringify([...document.querySelectorAll('#people li')].map((li) => li.textContent)) === JSON.stringify(want), want,
    { describe: () => [...document.querySelectorAll('#people li')].map((li) => li.textContent), timeout: GRACE_MS + WAIT_TIMEOUT_MS });

  const ann = await visit(sc, board('ann'), { label: 'ann' });
  const bob = await visit(sc, board('bob'), { label: 'bob' });
  await waitNames(ann, ['ann', 'bob'], 'ann sees ann and bob');
  await waitNames(bob, ['ann', 'bob'], 'bob sees ann and bob');

  // ann's page records every state of its list from now on.
  await ann.evaluate(() => {
    const ul = document.getElementById('people');
    const snap = () => ({ names: [...ul.querySelectorAll('li')].map((li) => li.textContent), members: Number(ul.dataset.members) });
    window.__people = [snap()];
    new MutationObserver(() => window.__people.push(snap())).observe(ul, { childList: true, subtree: true, characterData: true, attributes: true });
  });

  // bob reloads within the grace period: a new member id joins before the old one expires, and
  // the old one expires (ann's page processes that) while bob stays listed throughout.
  await bob.reload({ waitUntil: 'load' });
  await waitNames(bob, ['ann', 'bob'], 'bob sees both again after the reload');
  await eventually('the old member key of bob expires', async () => {
    const res = await server.request('GET', '/board/r1/people/?keys');
    return res.status === 200 && res.json.entries.length === 2;
  }, { timeout: GRACE_MS + WAIT_TIMEOUT_MS });
  await waitInPage(ann, 'ann has processed the expiry of the old member key', () => {
    const h = window.__people;
    return h.some((s) => s.members === 3) && h[h.length - 1].members === 2;
  }, null, { describe: () => window.__people, timeout: GRACE_MS + WAIT_TIMEOUT_MS });
  const history = await ann.evaluate(() => window.__people);
  for (const s of history) assert.deepEqual(s.names, ['ann', 'bob'], `bob never left ann's list during the reload: ${JSON.stringify(history)}`);

  // bob's page closes: after the grace period, and not before, ann sees bob leave.
  const closed = Date.now();
  await bob.close();
  await waitNames(ann, ['ann'], 'ann sees bob leave');
  const took = Date.now() - closed;
  assert.ok(took >= GRACE_MS / 2, `bob left ${took} ms after closing, before the grace period of ${GRACE_MS} ms`);
  assert.deepEqual(await names(ann), ['ann']);
  // ...and why; bob's reload above (his old member id left while he stayed) said nothing.
  assert.equal(await ann.evaluate(() => document.getElementById('msg').textContent), 'bob left (closed)');
});

scenarioTest(test, 'counter demo: every page load counts one view, shown live', async (sc) => {
  const server = await sc.server();
  const url = `${server.url}/.demo/counter`;
  const waitCount = (page, n) => waitInPage(page, `the count shows ${n}`, (n) => document.getElementById('count').textContent === String(n), n,
    { describe: () => document.getElementById('count').textContent });

  const first = await visit(sc, url, { label: 'counter1' });
  await waitCount(first, 1);
  assert.equal((await server.get('/views/demo')).value, 1);
  await waitInPage(first, 'the badge image is drawn', () => document.getElementById('badge').complete && document.getElementById('badge').naturalWidth > 0);

  await first.reload({ waitUntil: 'load' });
  await waitCount(first, 2);

  const second = await visit(sc, url, { label: 'counter2' });
  await waitCount(second, 3);
  await waitCount(first, 3); // live on the other page
  const got = await server.get('/views/demo');
  assert.deepEqual([got.value, got.revision], [3, 2], 'three loads, three increments');
});

scenarioTest(test, 'board: a note added on one page appears on another; moves are compare-and-swap', async (sc) => {
  const server = await sc.server({ memory: true });
  const a = await visit(sc, `${server.url}/.demo/board?room=notes1&name=ann`, { label: 'ann' });
  const b = await visit(sc, `${server.url}/.demo/board?room=notes1&name=bob`, { label: 'bob' });
  const note = (page) => page.evaluate(() => {
    const el = document.querySelector('#board .note');
    return el && { key: el.dataset.key, text: el.firstChild.textContent, x: parseInt(el.style.left, 10), y: parseInt(el.style.top, 10), conflict: el.classList.contains('conflict') };
  });
  const waitNote = (page, want, what) => waitInPage(page, what, (want) => {
    const el = document.querySelector('#board .note');
    return el && Object.entries(want).every(([k, v]) => (k === 'text' ? el.firstChild.textContent : k === 'conflict'
      ? el.classList.contains('conflict') : parseInt(el.style[k === 'x' ? 'left' : 'top'], 10)) === v);
  }, want, { describe: () => [...document.querySelectorAll('#board .note')].map((el) => [el.dataset.key, el.style.left, el.style.top, el.className])
    .concat(document.getElementById('msg').textContent) });

  await a.fill('#note-text', '<b>ship it</b>');
  await a.click('#note-form button');
  await waitNote(b, { text: '<b>ship it</b>' }, 'bob sees the note, as text');
  const { key, x, y } = await note(b);

  // bob drags it by (+40, +30): one CAS at the drop; ann sees the move.
  const box = await b.locator('#board .note').boundingBox();
  await b.mouse.move(box.x + 20, box.y + 20);
  await b.mouse.down();
  await b.mouse.move(box.x + 40, box.y + 35, { steps: 3 });
  await b.mouse.move(box.x + 60, box.y + 50, { steps: 3 });
  await b.mouse.up();
  await waitNote(b, { x: x + 40, y: y + 30 }, 'bob sees the note where he dropped it');
  await waitNote(a, { x: x + 40, y: y + 30 }, 'ann sees the note moved');
  const moved = await server.get(key);
  assert.deepEqual([moved.value.x, moved.value.y, moved.revision], [x + 40, y + 30, 1]);

  // ann starts a drag, someone else moves the note meanwhile, ann drops: her CAS fails and the
  // note goes where the other writer put it.
  const box2 = await a.locator('#board .note').boundingBox();
  await a.mouse.move(box2.x + 20, box2.y + 20);
  await a.mouse.down();
  await a.mouse.move(box2.x + 30, box2.y + 30, { steps: 2 });
  await server.set(key, { ...moved.value, x: 5, y: 6 });
  await waitNote(b, { x: 5, y: 6 }, 'bob sees the move made over HTTP');
  await a.mouse.up();
  await waitNote(a, { x: 5, y: 6, conflict: true }, "ann's conflicting move is undone and outlined");
  const after = await server.get(key);
  assert.deepEqual([after.value.x, after.value.y, after.revision], [5, 6, 2], "ann's stale move wrote nothing");
});
