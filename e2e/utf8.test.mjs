// End-to-end test of issue 18, point 2: a value that is not valid UTF-8 is refused, so it can never
// reach a browser in a WebSocket text frame (Chromium fails such a socket with 1006; the client would
// resubscribe, get the same entry again, and loop).
//
// Run it:  node --test e2e/utf8.test.mjs

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer, closeBrowser, getBrowser, probeUntilLive, readLog, scenarioTest, waitForLog } from './harness.mjs';

before(async () => {
  await buildServer();
  await getBrowser();
}, { timeout: 6 * 60_000 });

after(() => closeBrowser());

// POSTs raw bytes (the harness's request takes strings, which node encodes as UTF-8).
async function postBytes(url, bytes) {
  const res = await fetch(url, { method: 'POST', body: new Uint8Array(bytes) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, text, json };
}

scenarioTest(test, 'A write that is not UTF-8 is refused and a subscribed page keeps its one WebSocket', async (sc) => {
  const server = await sc.server();
  const pages = await sc.pageServer(server.url);
  const page = await sc.open(pages, 'blank.html', { label: 'u8' });

  // Every WebSocket the page opens, and what happens to it.
  const sockets = [];
  page.on('websocket', (ws) => {
    const s = { url: ws.url(), closed: false, errors: [], frames: [] };
    sockets.push(s);
    ws.on('close', () => { s.closed = true; });
    ws.on('socketerror', (err) => { s.errors.push(String(err)); });
    ws.on('framereceived', (f) => { s.frames.push(String(f.payload)); });
  });

  await page.evaluate(() => E2E.listen('u8', '/u8/'));
  const probe = '/u8/probe';
  await probeUntilLive(server, [{ page, log: 'u8' }], probe);
  assert.equal(sockets.length, 1, 'the subscription runs over one WebSocket');
  assert.match(sockets[0].url, /\/\.ws$/);

  // The report's write, and an invalid byte in an object key: 400 invalid_json, nothing stored.
  for (const [bytes, offset] of [
    [[0x22, 0xff, 0xfe, 0x22], 1],                                  // "\xff\xfe"
    [[0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x3a, 0x31, 0x7d], 2],    // {"<surrogate half>":1}
  ]) {
    const res = await postBytes(`${server.url}/u8/raw`, bytes);
    assert.equal(res.status, 400, `POST of ${Buffer.from(bytes).toString('hex')}: ${res.text}`);
    assert.equal(res.json?.code, 'invalid_json');
    assert.match(res.json?.error, new RegExp(`not valid UTF-8 \\(byte offset ${offset}\\)`));
  }
  assert.equal((await server.get('/u8/raw')).status, 404, 'nothing was stored');

  // Later valid writes, from node and from the page itself, with multi-byte text, arrive on the same
  // socket, in order.
  await server.set('/u8/raw', { text: 'zażółć 日本 𝄞' });
  await page.evaluate(() => Statehub.set('/u8/from-page', 'é€'));
  await server.set('/u8/end', true);
  const want = [['/u8/raw', { text: 'zażółć 日本 𝄞' }, 0], ['/u8/from-page', 'é€', 0], ['/u8/end', true, 0]];
  await waitForLog(page, 'u8', want.length, { exclude: probe });
  assert.deepEqual(await readLog(page, 'u8', { exclude: probe }), want, 'every valid write once, in order');

  assert.equal(sockets.length, 1, `no reconnect: ${JSON.stringify(sockets.map((s) => ({ closed: s.closed, errors: s.errors })))}`);
  assert.deepEqual([sockets[0].closed, sockets[0].errors], [false, []], 'the socket is still open, without errors');
  assert.ok(sockets[0].frames.some((f) => f.includes('"key":"/u8/end"')), 'the last write came over the WebSocket');
  assert.deepEqual(await page.evaluate(() => E2E.errors), [], 'no subscription failed');
});
