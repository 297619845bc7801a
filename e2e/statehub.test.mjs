// End-to-end tests: the statehub binary, its own client script, Debian's headless Chromium.
// Every test starts a fresh server (fresh data dir) and fresh browser contexts; the pages come from a
// separate static server, so every API call is cross-origin. See harness.mjs.
//
// Run one test:  node --test --test-name-pattern='restart' e2e/

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildServer, closeBrowser, getBrowser, probeUntilLive, readLog, scenarioTest, waitForLog, waitInPage,
} from './harness.mjs';

before(async () => {
  await buildServer();
  await getBrowser();
}, { timeout: 6 * 60_000 });

after(() => closeBrowser());

// [F(n), F(n+1)]: the state /fib holds after n increments from [0, 1].
function fib(n) {
  let a = 0, b = 1;
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return [a, b];
}

const range = (n) => Array.from({ length: n }, (_, i) => i);

// ---------------------------------------------------------------------------------------------------

scenarioTest(test, 'AtomKV README: the Fibonacci CAS loop run by several pages at once ends at the exact state', async (sc) => {
  const server = await sc.server();
  const pages = await sc.pageServer(server.url);
  const K = 4;  // pages
  const N = 12; // increments per page
  const T = K * N;

  const clients = [];
  for (const i of range(K)) clients.push(await sc.open(pages, 'atomkv.html', { label: `fib${i + 1}` }));
  // Every client also watches the key. /fib is written (probe) and deleted first, so that the
  // subscriptions are known to be live before init.
  for (const page of clients) await page.evaluate(() => E2E.iterate('fib', AtomKV.subscribe('/fib')));
  await probeUntilLive(server, clients.map((page) => ({ page, log: 'fib' })), '/fib');
  await server.delete('/fib');

  // README: init() by every client at once; only the first creates /fib, the others acceptably fail.
  await Promise.all(clients.map((page) => page.evaluate(() => init())));
  for (const page of clients) {
    await waitInPage(page, 'the init() state of /fib is delivered', () => E2E.get('fib').some((e) => Array.isArray(e[1])),
      null, { describe: () => E2E.get('fib') });
  }

  // README: increment() N times on every client, all at once.
  const results = await Promise.all(clients.map((page) => page.evaluate(async (n) => {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await increment());
    return out;
  }, N)));

  // Every state from [F(1), F(2)] to [F(T), F(T+1)] was produced exactly once, by some client.
  const produced = results.flat().map((s) => JSON.stringify(s)).sort();
  const expected = range(T).map((i) => JSON.stringify(fib(i + 1))).sort();
  assert.deepEqual(produced, expected, 'every increment() result is one Fibonacci step, none twice');

  assert.deepEqual(await clients[0].evaluate(() => AtomKV.get('/fib')), [fib(T), T], 'AtomKV.get(/fib) after all increments');
  const got = await server.get('/fib');
  assert.deepEqual([got.value, got.revision], [fib(T), T], 'GET /fib after all increments');

  // Every client's subscription saw every revision 0..T once, in order.
  const want = range(T + 1).map((r) => ['/fib', fib(r), r]);
  for (const page of clients) {
    await waitInPage(page, `all ${T + 1} states of /fib delivered`,
      (n) => E2E.get('fib').filter((e) => Array.isArray(e[1])).length >= n, T + 1,
      { describe: () => E2E.get('fib').slice(-5) });
    const seen = (await readLog(page, 'fib')).filter((e) => Array.isArray(e[1]));
    assert.deepEqual(seen, want, `${page.label}: AtomKV.subscribe('/fib') delivers every revision once, in order`);
  }
});

scenarioTest(test, 'AtomKV README: the session monitor sees every change under its session, in order', async (sc) => {
  const server = await sc.server();
  const pages = await sc.pageServer(server.url);

  // The README's page: SESSION_ID is random and monitor(SESSION_ID) runs at load.
  const monitor = await sc.open(pages, 'atomkv.html', { label: 'monitor' });
  const session = await monitor.evaluate(() => SESSION_ID);
  assert.match(session, /^[0-9a-f]+$/);
  const probe = `/${session}/probe`;
  await probeUntilLive(server, [{ page: monitor, log: 'monitor' }], probe);

  // Two writers, at once, each on its own keys; each writer's changes are sequential.
  const writers = [
    await sc.open(pages, 'atomkv.html', { label: 'writer1' }),
    await sc.open(pages, 'atomkv.html', { label: 'writer2' }),
  ];
  const wrote = await Promise.all(writers.map((page, w) => page.evaluate(async ({ session, me }) => {
    const base = `/${session}/${me}`;
    const done = [];
    const revs = {};
    const set = async (key, value) => {
      await AtomKV.set(key, value);
      revs[key] = (key in revs) ? revs[key] + 1 : 0;
      done.push([key, value, revs[key]]);
    };
    const cas = async (key, value) => {
      const [, revision] = await AtomKV.get(key);
      if (!(await AtomKV.update(key, value, revision + 1))) throw new Error(`update of ${key} failed`);
      revs[key] = revision + 1;
      done.push([key, value, revision + 1]);
    };
    for (let i = 0; i < 10; i++) {
      await set(`${base}/counter`, i);
      await cas(`${base}/doc`, { by: me, i, tags: ['a', i], even: i % 2 === 0, text: `zażółć ${i}` });
      if (i % 3 === 0) await set(`${base}/nested/deep/leaf`, [i, { x: i }]);
    }
    await set(`/${session}/${me}-café`, 'a key with a non-ASCII letter');
    return done;
  }, { session, me: `w${w + 1}` })));

  const total = wrote[0].length + wrote[1].length;
  await waitForLog(monitor, 'monitor', total, { exclude: probe });
  const seen = await readLog(monitor, 'monitor', { exclude: probe });
  assert.equal(seen.length, total, 'the monitor saw each change exactly once');
  for (const [w, done] of wrote.entries()) {
    const mine = seen.filter(([key]) => key.startsWith(`/${session}/w${w + 1}`));
    assert.deepEqual(mine, done, `the monitor saw writer${w + 1}'s changes in the order they were made`);
  }
});

scenarioTest(test, 'Two browser contexts editing one subtree see each other\'s changes', async (sc) => {
  const server = await sc.server();
  const pages = await sc.pageServer(server.url);
  const a = await sc.open(pages, 'blank.html', { label: 'A' });
  const b = await sc.open(pages, 'blank.html', { label: 'B' });
  const both = [a, b];
  const probe = '/board/x/probe';
  for (const page of both) await page.evaluate(() => E2E.listen('board', '/board/x/'));
  await probeUntilLive(server, both.map((page) => ({ page, log: 'board' })), probe);

  const sees = (page, what, key, value) => waitInPage(page, what,
    ({ key, value }) => E2E.get('board').some((e) => e[0] === key && JSON.stringify(e[1]) === value),
    { key, value: JSON.stringify(value) }, { describe: () => E2E.get('board').slice(-10) });

  // Each writes a note; both see both.
  await a.evaluate(() => Statehub.set('/board/x/note-a', { text: 'from A' }));
  await b.evaluate(() => Statehub.set('/board/x/note-b', { text: 'from B' }));
  for (const page of both) {
    await sees(page, 'A\'s note', '/board/x/note-a', { text: 'from A' });
    await sees(page, 'B\'s note', '/board/x/note-b', { text: 'from B' });
  }

  // Both create the same cell with compare-and-swap at once: exactly one wins, the other retries.
  const wins = await Promise.all([
    a.evaluate(() => AtomKV.update('/board/x/cell', { by: 'A' }, 0)),
    b.evaluate(() => AtomKV.update('/board/x/cell', { by: 'B' }, 0)),
  ]);
  assert.deepEqual(wins.slice().sort(), [false, true], 'exactly one CAS create succeeds');
  const [winner, loser] = wins[0] ? ['A', 'B'] : ['B', 'A'];
  const loserPage = wins[0] ? b : a;
  assert.equal(await loserPage.evaluate((by) => AtomKV.update('/board/x/cell', { by, after: true }, 1), loser), true,
    'the loser\'s retry at revision 1 succeeds');
  for (const page of both) await sees(page, 'the second cell value', '/board/x/cell', { by: loser, after: true });

  // Bursts from both at once.
  await Promise.all(both.map((page, w) => page.evaluate(async (me) => {
    for (let i = 0; i < 10; i++) await Statehub.set(`/board/x/${me}${i}`, { me, i });
  }, w ? 'b' : 'a')));
  // A change outside the subtree, a delete, and a last write to mark the end.
  await a.evaluate(() => Statehub.set('/board/y/elsewhere', 'not under /board/x/'));
  await a.evaluate(() => Statehub.delete('/board/x/note-b'));
  await b.evaluate(() => Statehub.set('/board/x/end', true));
  for (const page of both) {
    await sees(page, 'the delete of note-b', '/board/x/note-b', null);
    await sees(page, 'the end marker', '/board/x/end', true);
  }

  const logA = await readLog(a, 'board', { exclude: probe });
  const logB = await readLog(b, 'board', { exclude: probe });
  assert.deepEqual(logA, logB, 'both contexts see the same changes in the same order');
  const want = [
    ['/board/x/note-a', { text: 'from A' }, 0],
    ['/board/x/note-b', { text: 'from B' }, 0],
    ['/board/x/cell', { by: winner }, 0],
    ['/board/x/cell', { by: loser, after: true }, 1],
    ...range(10).map((i) => [`/board/x/a${i}`, { me: 'a', i }, 0]),
    ...range(10).map((i) => [`/board/x/b${i}`, { me: 'b', i }, 0]),
    ['/board/x/end', true, 0],
  ];
  const sets = logA.filter((e) => e[1] !== null);
  const canon = (l) => l.map((e) => JSON.stringify(e)).sort();
  assert.deepEqual(canon(sets), canon(want), 'every change under /board/x/ arrives exactly once, nothing from elsewhere');
  const deletes = logA.filter((e) => e[1] === null);
  assert.deepEqual(deletes.map((e) => e[0]), ['/board/x/note-b'], 'the delete arrives once, with a null value');
  const cell = logA.filter((e) => e[0] === '/board/x/cell').map((e) => e[2]);
  assert.deepEqual(cell, [0, 1], 'the cell\'s revisions arrive in order');
});

scenarioTest(test, 'Subscribers across a server restart receive every change exactly once, in order', async (sc) => {
  const server = await sc.server();
  const pages = await sc.pageServer(server.url);
  const a = await sc.open(pages, 'blank.html', { label: 'A-atomkv' });
  const b = await sc.open(pages, 'blank.html', { label: 'B-subscribe' });
  const c = await sc.open(pages, 'blank.html', { label: 'C-on' });
  await a.evaluate(() => E2E.iterate('room', AtomKV.subscribe('/room/')));
  await b.evaluate(() => E2E.iterate('room', Statehub.subscribe('/room/')));
  await c.evaluate(() => E2E.listen('room', '/room/'));
  const targets = [a, b, c].map((page) => ({ page, log: 'room' }));
  const probe = '/room/probe';
  await probeUntilLive(server, targets, probe);

  const written = [];
  const write = async (key, value) => {
    const res = await server.set(key, value);
    written.push({ key, value, revision: res.revision, seq: res.seq });
  };
  const expected = () => written.map(({ key, value, revision }) => [key, value, revision]);

  for (const i of range(3)) {
    await write('/room/a', { i, phase: 'before' });
    await write('/room/b/c', `before ${i}`);
  }
  for (const { page } of targets) await waitForLog(page, 'room', written.length, { exclude: probe });

  // The pages go offline (Chromium's network emulation, which also blocks WebSockets), so they
  // cannot reconnect before the writes below, whatever their reconnect timing: they have to resume.
  for (const { page } of targets) await page.context().setOffline(true);
  const stopped = await server.restart();
  assert.deepEqual([stopped.code, stopped.forced], [0, false], `SIGTERM ends statehub with exit code 0 (got ${JSON.stringify(stopped)})`);

  const persisted = await server.get('/room/a');
  assert.deepEqual([persisted.value, persisted.revision], [{ i: 2, phase: 'before' }, 2], '/room/a survived the restart');

  // Right after the restart, while the pages are still disconnected.
  for (const i of range(4)) {
    await write('/room/a', { i, phase: 'after' });
    await write('/room/d', 1000 * i + 0.5);
    await write('/room/b/c', `after ${i}`);
  }
  assert.deepEqual(written.filter((w) => w.key === '/room/a').map((w) => w.revision), range(7),
    'revisions continue across the restart');
  for (let i = 1; i < written.length; i++) {
    assert.ok(Number(written[i].seq) > Number(written[i - 1].seq), `seq grows across the restart (${written[i - 1].seq} then ${written[i].seq})`);
  }
  for (const { page } of targets) {
    assert.equal((await readLog(page, 'room', { exclude: probe })).length, 6, `${page.label} got nothing while offline`);
  }
  for (const { page } of targets) await page.context().setOffline(false);
  for (const { page } of targets) await waitForLog(page, 'room', written.length, { exclude: probe, timeout: 30_000 });

  // A page writes after it reconnected; everyone sees it after all the rest.
  await a.evaluate(() => Statehub.set('/room/from-page', 'written after the restart'));
  const want = [...expected(), ['/room/from-page', 'written after the restart', 0]];
  for (const { page } of targets) {
    await waitForLog(page, 'room', want.length, { exclude: probe });
    assert.deepEqual(await readLog(page, 'room', { exclude: probe }), want,
      `${page.label}: every change exactly once, in order, across the restart`);
  }
});

scenarioTest(test, 'Declarative elements show a key live and count each page view once', async (sc) => {
  const server = await sc.server();
  const pages = await sc.pageServer(server.url);
  await server.set('/greeting', 'hello');

  const shows = (page, id, want) => waitInPage(page, `#${id} shows ${JSON.stringify(want)}`,
    ({ id, want }) => document.getElementById(id).textContent.trim() === want, { id, want },
    { describe: ({ id }) => document.getElementById(id).outerHTML });

  const a = await sc.open(pages, 'declarative.html', { label: 'A' });
  await shows(a, 'value', 'hello');
  await shows(a, 'count', '1');

  const b = await sc.open(pages, 'declarative.html', { label: 'B' });
  await shows(b, 'value', 'hello');
  await shows(b, 'count', '2');
  await shows(a, 'count', '2');

  await server.set('/greeting', 'changed live');
  for (const page of [a, b]) await shows(page, 'value', 'changed live');
  await server.set('/greeting', 42);
  for (const page of [a, b]) await shows(page, 'value', '42');

  // A second tab in A's context is one more page view.
  const a2 = await sc.open(pages, 'declarative.html', { label: 'A2', context: a.context() });
  for (const page of [a, b, a2]) await shows(page, 'count', '3');
  const count = await server.get('/views/page');
  assert.deepEqual([count.value, count.revision], [3, 2], 'three page views counted once each');
});

scenarioTest(test, 'A busy subscriber still gets every event of a burst exactly once', async (sc) => {
  const server = await sc.server();
  const pages = await sc.pageServer(server.url);
  const page = await sc.open(pages, 'blank.html', { label: 'busy' });
  // Both loops await a slow promise for every event, so the burst arrives far faster than consumed.
  await page.evaluate(() => {
    E2E.iterate('statehub', Statehub.subscribe('/burst/'), 15);
    E2E.iterate('atomkv', AtomKV.subscribe('/burst/'), 25);
  });
  const probe = '/burst/probe';
  await probeUntilLive(server, [{ page, log: 'statehub' }, { page, log: 'atomkv' }], probe);

  const K = 4;  // writers at once
  const N = 40; // writes each
  const written = [];
  const writers = range(K).map(async (w) => {
    for (const i of range(N)) {
      const key = `/burst/k${w}`;
      const res = await server.set(key, { w, i });
      assert.equal(res.revision, i, `${key} revision`);
      written.push({ key, value: { w, i }, revision: res.revision, seq: Number(res.seq) });
    }
  });
  // The page's main thread is also blocked for a while during the burst.
  const busy = (async () => {
    for (const _ of range(3)) await page.evaluate(() => E2E.busy(300));
  })();
  await Promise.all([...writers, busy]);
  const end = await server.set('/burst/end', 'end');
  written.push({ key: '/burst/end', value: 'end', revision: end.revision, seq: Number(end.seq) });
  written.sort((x, y) => x.seq - y.seq);
  assert.equal(new Set(written.map((w) => w.seq)).size, written.length, 'every write has its own seq');
  const want = written.map(({ key, value, revision }) => [key, value, revision]);

  for (const log of ['statehub', 'atomkv']) {
    await waitForLog(page, log, want.length, { exclude: probe, timeout: 40_000 });
    assert.deepEqual(await readLog(page, log, { exclude: probe }), want,
      `${log}.subscribe: every event of the burst once, in commit order`);
  }
  assert.deepEqual(await page.evaluate(() => E2E.errors), [], 'no subscription failed');
});

scenarioTest(test, 'A page on another origin reads the API headers of answers and errors (CORS)', async (sc) => {
  const server = await sc.server({ memory: true });
  const pages = await sc.pageServer(server.url);
  const page = await sc.open(pages, 'blank.html', { label: 'cors' });
  const got = await page.evaluate(async (base) => {
    const names = ['X-Revision', 'X-Seq', 'ETag', 'Idempotent-Replayed', 'Content-Type'];
    const read = async (res) => ({
      status: res.status, body: await res.text(), ...Object.fromEntries(names.map((n) => [n, res.headers.get(n)])),
    });
    // Idempotency-Key is not a CORS-safelisted header: these requests are preflighted.
    const incr = () => fetch(`${base}/cors/n?incr=5`, { method: 'POST', headers: { 'Idempotency-Key': 'once' } });
    return {
      first: await read(await incr()),
      retry: await read(await incr()),
      get: await read(await fetch(`${base}/cors/n`)),
      conflict: await read(await fetch(`${base}/cors/n`, { method: 'PUT', headers: { 'X-Revision': '7' }, body: '1' })),
    };
  }, server.url);
  assert.deepEqual(got.first, { status: 200, body: '5', 'X-Revision': '0', 'X-Seq': '1', ETag: '"1"',
    'Idempotent-Replayed': null, 'Content-Type': 'application/json' }, 'the first increment');
  assert.deepEqual(got.retry, { ...got.first, 'Idempotent-Replayed': 'true' }, 'the retry answers the first result');
  assert.deepEqual(got.get, { ...got.first, 'Idempotent-Replayed': null }, 'a read');
  assert.equal(got.conflict.status, 409, 'a failed compare-and-swap');
  assert.equal(got.conflict['X-Revision'], '0', 'the conflict tells the current revision');
  assert.equal(JSON.parse(got.conflict.body).code, 'revision_conflict', 'the error code');
});
