// The browser client's throttled subscriptions and fenced writes against the real server, in
// Chromium, over the WebSocket and over the HTTP fallback (SSE + fetch).
//
// Run alone:  node --test e2e/throttle-fence.test.mjs

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer, closeBrowser, getBrowser, scenarioTest } from './harness.mjs';

before(async () => {
  await Promise.all([buildServer(), getBrowser()]);
}, { timeout: 6 * 60_000 });

after(() => closeBrowser());

for (const transport of ['ws', 'sse']) {
  scenarioTest(test, `${transport}: a burst of writes reaches a {throttle: 300} subscriber as a few events ending with the last value; an unthrottled one gets all`, async (sc) => {
    const server = await sc.server({ memory: true });
    const pages = await sc.pageServer(server.url);
    const page = await sc.open(pages, 'blank.html', { label: transport });
    const got = await page.evaluate(async ({ api, transport, n, every }) => {
      const c = Statehub.connect(api, { transport });
      const slow = [], all = [];
      let lastAt = 0;
      const offSlow = c.on('/t/k', (key, value) => { slow.push(value); if (value === n) lastAt = performance.now(); }, { snapshot: false, throttle: every });
      const offAll = c.on('/t/k', (key, value) => all.push(value), { snapshot: false });
      // Both subscriptions are live once a probe write reached both (an EventSource opens later than its on()).
      for (let probe = -1; !slow.length || !all.length; probe--) {
        await c.set('/t/k', probe);
        await new Promise((r) => setTimeout(r, 50));
      }
      // Two intervals after the probes: a probe's throttled event has gone out, and the next may go at once.
      await new Promise((r) => setTimeout(r, 2 * every));
      slow.length = 0;
      all.length = 0;
      const start = performance.now();
      // The WebSocket applies its requests in order; fetches are not ordered, so they go one by one.
      const writes = [];
      for (let i = 1; i <= n; i++) transport == 'ws' ? writes.push(c.set('/t/k', i)) : await c.set('/t/k', i);
      await Promise.all(writes);
      while (!slow.includes(n) || all.length < n) await new Promise((r) => setTimeout(r, 10));
      offSlow();
      offAll();
      c.close();
      return { slow, all, elapsed: lastAt - start };
    }, { api: server.url, transport, n: 300, every: 300 });
    sc.log(`throttled: ${got.slow.length} events in ${Math.round(got.elapsed)} ms`);
    assert.deepEqual(got.all, Array.from({ length: 300 }, (_, i) => i + 1), 'the unthrottled subscriber gets every value in order');
    assert.equal(got.slow.at(-1), 300, 'the throttled subscriber ends with the last value');
    assert.ok(got.slow.every((v, i) => i == 0 || v > got.slow[i - 1]), `values only grow: ${got.slow}`);
    // At most one event per 300 ms interval, plus the first at once.
    const bound = Math.floor(got.elapsed / 300) + 1;
    assert.ok(got.slow.length <= bound, `${got.slow.length} throttled events in ${got.elapsed} ms, at most ${bound}`);
  });

  scenarioTest(test, `${transport}: a write fenced by a lock holds while it is held and rejects with fence_stale once the lock moved on`, async (sc) => {
    const server = await sc.server({ memory: true });
    const pages = await sc.pageServer(server.url);
    const page = await sc.open(pages, 'blank.html', { label: transport });
    const got = await page.evaluate(async ({ api, transport }) => {
      const c = Statehub.connect(api, { transport });
      const outcome = (p) => p.then((r) => ['ok', r], (e) => ['error', e.code, e.status, e.data && e.data.key]);
      const lock = await c.lock('/locks/deploy', { ttl: '1m' });
      const held = [
        await outcome(c.set('/release/current', 'v1', { fence: lock })),
        await outcome(c.update('/release/current', 'v2', 1, { fence: lock })),
        await outcome(c.set('/release/notes', 'n', { fence: { key: lock.key, fence: lock.fence } })),
        await outcome(c.delete('/release/notes', { fence: lock })),
      ];
      await lock.release();
      const next = await c.lock('/locks/deploy', { ttl: '1m' });
      const stale = [
        await outcome(c.set('/release/current', 'late', { fence: lock })),
        await outcome(c.update('/release/current', 'late', 2, { fence: lock })),
        await outcome(c.delete('/release/current', { fence: lock })),
      ];
      const value = await c.get('/release/current');
      const nextWrite = await outcome(c.set('/release/current', 'v3', { fence: next }));
      c.close();
      return { held, stale, value, nextWrite: nextWrite[0] };
    }, { api: server.url, transport });
    assert.deepEqual(got.held.map((o) => o[0]), ['ok', 'ok', 'ok', 'ok'], `writes with the held lock's fence: ${JSON.stringify(got.held)}`);
    assert.equal(got.held[3][1], 1, 'the fenced delete deleted one key');
    for (const o of got.stale) assert.deepEqual(o, ['error', 'fence_stale', 409, '/locks/deploy'], 'a write with the old fence');
    assert.deepEqual(got.value, ['v2', 1], 'the stale writes changed nothing');
    assert.equal(got.nextWrite, 'ok', "a write with the next holder's fence");
  });
}
