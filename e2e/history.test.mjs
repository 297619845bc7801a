// The browser client's history reads against the real server, in Chromium, over the WebSocket and
// over the HTTP fallback: pages newest first with seq and time, the cursor, and 410 history_gone
// below what the server retains (a server started with -history 4).
//
// Run alone:  node --test e2e/history.test.mjs

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer, closeBrowser, getBrowser, scenarioTest } from './harness.mjs';

before(async () => {
  await Promise.all([buildServer(), getBrowser()]);
}, { timeout: 6 * 60_000 });

after(() => closeBrowser());

for (const transport of ['ws', 'sse']) {
  scenarioTest(test, `${transport}: history(key, {limit, before}) pages through past values and rejects with history_gone below retention`, async (sc) => {
    const server = await sc.server({ args: ['-history', '4'] });
    const pages = await sc.pageServer(server.url);
    const page = await sc.open(pages, 'blank.html', { label: transport });
    const key = '/h/k';
    const got = await page.evaluate(async ({ api, transport, key }) => {
      const c = Statehub.connect(api, { transport });
      const started = Date.now();
      for (const v of ['a', 'b', 'c']) await c.set(key, v);
      await c.delete(key);
      const first = await c.history(key, { limit: 3 });
      const second = await c.history(key, { limit: 3, before: first.before });
      // Four more changes push the first ones out of the server's history (-history 4).
      for (const v of ['d', 'e', 'f', 'g']) await c.set(key, v);
      const gone = await c.history(key, { before: first.before }).then(() => null, (e) => [e.code, e.status, e.data.oldest]);
      c.close();
      return { started, first, second, gone };
    }, { api: server.url, transport, key });
    const entries = [...got.first.entries, ...got.second.entries];
    assert.deepEqual(entries.map((e) => [e.value ?? null, e.revision, !!e.deleted]),
      [[null, 3, true], ['c', 2, false], ['b', 1, false], ['a', 0, false]], `${transport}: the history newest first`);
    assert.ok(entries.every((e, i) => i == 0 || e.seq < entries[i - 1].seq), `${transport}: seqs go down`);
    for (const e of entries) {
      assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, `${transport}: an RFC 3339 UTC time`);
      assert.ok(Date.parse(e.time) >= got.started - 60_000, `${transport}: time ${e.time} is now, not a fixed date`);
    }
    assert.equal(got.first.before, String(entries[2].seq), `${transport}: the cursor is the last entry's seq`);
    assert.equal(got.second.before, undefined, `${transport}: no cursor on the page with the first change`);
    assert.equal(got.gone[0], 'history_gone', `${transport}: below the retained history`);
    assert.equal(got.gone[1], 410);
    assert.ok(got.gone[2] > entries[2].seq, `${transport}: oldest ${got.gone[2]} names a retained seq`);
  });
}
