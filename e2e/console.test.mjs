// End-to-end tests of the pages the binary serves itself (static/): the console at "/" for a
// browser navigation, the presence list of the board demo, and the view counter demo.
//
// Run one test:  node --test --test-name-pattern='console' e2e/console.test.mjs

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer, closeBrowser, getBrowser, scenarioTest, waitInPage, WAIT_TIMEOUT_MS } from './harness.mjs';

before(async () => {
  await buildServer();
  await getBrowser();
}, { timeout: 6 * 60_000 });

after(() => closeBrowser());

// Opens url (a page of the statehub server itself, so not through the page server) in a new
// browser context, or in `context`, with the page's console and errors logged as Scenario.open does.
async function visit(sc, url, { label, context } = {}) {
  const browser = await getBrowser();
  if (!context) {
    context = await browser.newContext();
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

// The console's table row of a key, as the page shows it.
const row = (page, key) => page.evaluate((key) => {
  const tr = document.querySelector(`#entries tr[data-key="${CSS.escape(key)}"]`);
  return tr && { kind: tr.dataset.kind, value: tr.querySelector('td.value').textContent, revision: tr.cells[3].textContent };
}, key);

// Waits until the row of key matches want (some of kind, value, revision), or is absent for null.
function waitRow(page, key, want, what) {
  return waitInPage(page, `${key}: ${what}`, ({ key, want }) => {
    const tr = document.querySelector(`#entries tr[data-key="${CSS.escape(key)}"]`);
    if (!tr || !want) return !tr && !want;
    const r = { kind: tr.dataset.kind, value: tr.querySelector('td.value').textContent, revision: tr.cells[3].textContent };
    return Object.keys(want).every((k) => r[k] === want[k]);
  }, { key, want }, {
    describe: () => [...document.querySelectorAll('#entries tr[data-key]')].map((tr) => tr.textContent).concat(document.getElementById('list-msg').textContent),
  });
}

const button = (page, key, text) => page.locator(`#entries tr[data-key="${key}"] button`, { hasText: text });

// ---------------------------------------------------------------------------------------------------

scenarioTest(test, 'console: a navigation to / gets the console, which lists, watches, edits with CAS, increments and deletes', async (sc) => {
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

  const page = await visit(sc, `${server.url}/#/shop/`, { label: 'console' });
  assert.equal(await page.title(), 'Statehub console');

  // The children of /shop/: keys, a subtree, a counter, a lock; data shown as text only.
  await waitRow(page, '/shop/visits', { kind: 'counter', value: '5' }, 'listed as a counter of 5');
  assert.deepEqual(await row(page, '/shop/cart/'), { kind: 'subtree', value: '', revision: '' });
  const lock = await row(page, '/shop/deploy');
  assert.equal(lock.kind, 'lock');
  assert.match(lock.value, /held by ci-7 until .* fence \d+/);
  assert.equal((await row(page, '/shop/note')).value, JSON.stringify(evil));
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'a value is never parsed as HTML');

  // Live: changes over HTTP appear without a reload.
  await server.must('POST', '/shop/visits?incr=2');
  await waitRow(page, '/shop/visits', { value: '7', revision: '1' }, 'shows the increment made over HTTP');
  await server.set('/shop/motd', 'fresh');
  await waitRow(page, '/shop/motd', { value: '"fresh"' }, 'appears when written over HTTP');
  await server.set('/shop/tmp/deep/x', 1);
  await waitRow(page, '/shop/tmp/', { kind: 'subtree' }, 'a new subtree appears');

  // The +1 button increments.
  await button(page, '/shop/visits', '+1').click();
  await waitRow(page, '/shop/visits', { value: '8' }, 'shows 8 after +1');
  assert.equal((await server.get('/shop/visits')).value, 8);

  // Into a subtree; a CAS edit through the UI.
  await page.locator('#entries a', { hasText: 'cart' }).click();
  await waitRow(page, '/shop/cart/ann', { value: '{"items":1}', revision: '0' }, 'listed in /shop/cart/');
  await button(page, '/shop/cart/ann', 'Edit').click();
  await waitInPage(page, 'the editor opens on revision 0', () => !document.getElementById('editor').hidden && document.getElementById('ed-rev').textContent === '0');
  await page.fill('#ed-value', '{"items": 2, "by": "console"}');
  await page.click('#ed-save');
  await waitInPage(page, 'the save succeeds', () => /Saved: revision 1/.test(document.getElementById('ed-msg').textContent),
    null, { describe: () => document.getElementById('ed-msg').textContent });
  const saved = await server.get('/shop/cart/ann');
  assert.deepEqual([saved.value, saved.revision], [{ items: 2, by: 'console' }, 1]);
  await waitRow(page, '/shop/cart/ann', { value: '{"items":2,"by":"console"}', revision: '1' }, 'shows the saved value');

  // A conflict: someone writes between opening the editor and saving; nothing is overwritten.
  await server.set('/shop/cart/ann', { items: 9, by: 'http' });
  await waitInPage(page, 'the editor warns of the change', () => /now at revision 2/.test(document.getElementById('ed-live').textContent));
  await page.fill('#ed-value', '{"items": 3}');
  await page.click('#ed-save');
  await waitInPage(page, 'the save reports a conflict', () => /Conflict: .* is at revision 2, not 1/.test(document.getElementById('ed-msg').textContent),
    null, { describe: () => document.getElementById('ed-msg').textContent });
  const kept = await server.get('/shop/cart/ann');
  assert.deepEqual([kept.value, kept.revision], [{ items: 9, by: 'http' }, 2], 'the conflicting save wrote nothing');
  await page.click('#ed-reload');
  await waitInPage(page, 'the current value is loaded', () => document.getElementById('ed-rev').textContent === '2' &&
    JSON.parse(document.getElementById('ed-value').value).by === 'http');

  // Delete (two clicks), conditional on the revision shown.
  await button(page, '/shop/cart/bob', 'Delete').click();
  await button(page, '/shop/cart/bob', 'Really delete?').click();
  await waitRow(page, '/shop/cart/bob', null, 'is gone after delete');
  assert.equal((await server.get('/shop/cart/bob')).status, 404);
});

scenarioTest(test, 'board: presence of real pages: each sees the other, a reload does not flicker, a closed page leaves after the grace period', async (sc) => {
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
