// The client's connection features against the real server, in Chromium: the connection state
// across a restart, a token function with the server's JWTs (the token replaced on the open
// connection before it expires; a reconnect with a fresh one after `token_expired`), the HTTP
// fallback behind a proxy that refuses WebSockets and the move back once it lets them through, a
// write that has resolved surviving kill -9, and broadcasts between two pages over both
// transports. Pages come from another origin (a server on 127.0.0.1) and load the client from the
// statehub server.
//
// Run alone:  node --test e2e/client.test.mjs

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { buildServer, closeBrowser, getBrowser, openClientPage, scenarioTest, signJWT, waitInPage, withTimeout } from './harness.mjs';

before(async () => {
  await Promise.all([buildServer(), getBrowser()]);
}, { timeout: 6 * 60_000 });

after(() => closeBrowser());

const SECRET = crypto.randomBytes(32).toString('hex');

const jwt = (claims) => signJWT(SECRET, claims);

// A token for ann, expiring `exp` seconds from now (negative: already past, but within the server's 30 s leeway).
const annToken = (exp) => jwt({ sub: 'ann', exp: Math.floor(Date.now() / 1000) + exp, grants: { write: ['/users/{sub}/'] } });

// A proxy in front of the server that forwards HTTP (SSE streams included) and refuses WebSocket
// upgrades while `blocked`: a network that blocks WebSockets. Counts what it sees.
async function proxy(sc, target) {
  const { port } = new URL(target);
  const seen = { upgrades: 0, refused: 0, streams: 0, openStreams: 0, streamURLs: [] };
  const sockets = new Set();
  const state = { blocked: true, seen };
  const srv = http.createServer((req, res) => {
    const stream = /text\/event-stream/.test(req.headers.accept || '');
    if (stream) seen.streams++, seen.openStreams++, seen.streamURLs.push(req.url);
    const up = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => { if (stream) seen.openStreams--; up.destroy(); });
    req.pipe(up);
  });
  srv.on('upgrade', (req, socket, head) => {
    sockets.add(socket);
    if (state.blocked) {
      seen.refused++;
      return socket.destroy();
    }
    seen.upgrades++;
    const up = net.connect(port, '127.0.0.1', () => {
      up.write(`${req.method} ${req.url} HTTP/1.1\r\n${Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`);
      up.write(head);
      up.pipe(socket).pipe(up);
    });
    sockets.add(up);
    for (const s of [socket, up]) s.on('error', () => { socket.destroy(); up.destroy(); });
  });
  srv.on('connection', (s) => sockets.add(s));
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  sc.pageServers.push({
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      srv.close(resolve);
    }),
  });
  state.url = `http://127.0.0.1:${srv.address().port}`;
  return state;
}

async function until(what, f, timeout = 20_000) {
  const end = Date.now() + timeout;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`${what}: not reached within ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

scenarioTest(test, 'Client state: connecting, online, offline while the server is down, resyncing, online; a write made offline is applied once back', async (sc) => {
  const server = await sc.server();
  const page = await openClientPage(sc, server.url, 'state');
  await page.evaluate(() => {
    window.states = [];
    window.got = [];
    Statehub.onState((state) => window.states.push(state));
    Statehub.on('/room/', (key, value) => window.got.push([key, value]), { snapshot: false });
  });
  await waitInPage(page, 'online', () => Statehub.state === 'online');
  await page.evaluate(() => Statehub.set('/room/a', 1));
  await waitInPage(page, 'the first change', () => window.got.length === 1);

  await server.stop();
  await waitInPage(page, 'offline', () => Statehub.state === 'offline');
  const queued = page.evaluate(() => Statehub.set('/room/c', 3)); // waits for the connection
  await server.start();
  await server.set('/room/b', 2); // replayed on resume, or live if the page is back already
  await waitInPage(page, 'online again', () => Statehub.state === 'online' && window.got.length === 3,
    null, { describe: () => ({ states: window.states, got: window.got }) });
  assert.equal((await queued).revision, 0);
  const got = await page.evaluate(() => window.got);
  assert.deepEqual(got[0], ['/room/a', 1]);
  assert.deepEqual(got.slice(1).sort(), [['/room/b', 2], ['/room/c', 3]]);
  assert.deepEqual(await page.evaluate(() => window.states), ['connecting', 'online', 'offline', 'resyncing', 'online']);
  assert.equal((await server.get('/room/c')).revision, 0, 'the queued write was applied once');
});

scenarioTest(test, 'Token function: a JWT about to expire is replaced on the open connection, which goes on', async (sc) => {
  const server = await sc.server({ memory: true, args: [`-jwt-secret=${SECRET}`] });
  const page = await openClientPage(sc, server.url, 'reauth');
  let issued = 0;
  // The first token's exp is 22 s ago: the server ends a connection with it 8 s from now (30 s of
  // leeway); the client replaces it 5 s after connecting (its earliest), with a token for an hour.
  const expiresAt = Date.now() + 8000;
  await page.exposeFunction('issueToken', () => annToken(issued++ === 0 ? -22 : 3600));
  await page.evaluate((api) => {
    window.states = [];
    window.got = [];
    window.hub = Statehub.connect(api, { token: () => window.issueToken() });
    hub.onState((state) => window.states.push(state));
    hub.on('/users/ann/', (key, value) => window.got.push([key, value]), { snapshot: false });
  }, server.url);
  await waitInPage(page, 'online', () => hub.state === 'online');
  await until('a second token', () => issued >= 2);
  await until('the first token\'s end', () => Date.now() > expiresAt + 2000);
  const writer = annToken(600);
  await server.must('POST', '/users/ann/note', { body: 'after the first token expired', headers: { authorization: `Bearer ${writer}` } });
  await waitInPage(page, 'the change', () => window.got.length === 1);
  assert.equal(await page.evaluate(() => hub.set('/users/ann/x', 1).then((r) => r.revision)), 0);
  assert.deepEqual(await page.evaluate(() => window.states), ['connecting', 'online'], 'never offline');
  assert.equal(issued, 2, 'one connection, one re-authentication');
});

scenarioTest(test, 'Token function: after the server ends the connection for an expired token, the client reconnects with a fresh one', async (sc) => {
  const server = await sc.server({ memory: true, args: [`-jwt-secret=${SECRET}`] });
  const page = await openClientPage(sc, server.url, 'expired');
  let fresh = false;
  let issued = 0;
  // The function gives the stale token (exp 27 s ago: 3 s left on the server) until the server has
  // ended the connection, then fresh ones.
  await page.exposeFunction('issueToken', () => (issued++, annToken(fresh ? 3600 : -27)));
  await page.exposeFunction('offline', () => { fresh = true; });
  await page.evaluate((api) => {
    window.states = [];
    window.got = [];
    window.hub = Statehub.connect(api, { token: () => window.issueToken() });
    hub.onState((state) => (window.states.push(state), state === 'offline' && window.offline()));
    hub.on('/users/ann/', (key, value) => window.got.push([key, value]), { snapshot: false });
  }, server.url);
  await waitInPage(page, 'online', () => hub.state === 'online');
  await until('the server ends the connection', () => fresh, 15_000);
  await waitInPage(page, 'online again', () => hub.state === 'online', null, { describe: () => window.states });
  await server.must('POST', '/users/ann/note', { body: 'after the reconnect', headers: { authorization: `Bearer ${annToken(600)}` } });
  await waitInPage(page, 'the change', () => window.got.length === 1);
  assert.equal(await page.evaluate(() => hub.set('/users/ann/x', 1).then((r) => r.revision)), 0, 'the client goes on');
  const states = await page.evaluate(() => window.states);
  assert.deepEqual(states.slice(0, 3), ['connecting', 'online', 'offline']);
  assert.equal(states.at(-1), 'online');
});

scenarioTest(test, 'Behind a proxy that refuses WebSockets the client uses HTTP + SSE, and moves back to a WebSocket once the proxy lets one through', async (sc) => {
  const server = await sc.server({ memory: true });
  const gate = await proxy(sc, server.url);
  const page = await openClientPage(sc, gate.url, 'proxy');
  await page.evaluate(() => {
    window.got = [];
    window.states = [];
    Statehub.onState((state) => window.states.push(state));
    Statehub.on('/p/', (key, value) => window.got.push(value), { snapshot: false });
  });
  await until('the SSE fallback', () => gate.seen.refused >= 2 && gate.seen.openStreams === 1);
  await waitInPage(page, 'online over HTTP', () => Statehub.state === 'online');
  await page.evaluate(() => Statehub.set('/p/a', 1));
  await server.set('/p/a', 2);
  await waitInPage(page, 'two changes over SSE', () => window.got.length === 2);

  gate.blocked = false; // the next try of the WebSocket (2 to 4 s after the last) gets through
  await until('a WebSocket through the proxy, and the EventSource closed', () => gate.seen.upgrades === 1 && gate.seen.openStreams === 0, 30_000);
  await server.set('/p/a', 3);
  await page.evaluate(() => Statehub.set('/p/a', 4));
  await waitInPage(page, 'the changes after the move', () => window.got.length === 4, null, { describe: () => window.got });
  assert.deepEqual(await page.evaluate(() => window.got), [1, 2, 3, 4], 'nothing lost or repeated across the move');
  assert.equal(gate.seen.streams, 1, 'one EventSource in all');
  assert.deepEqual(await page.evaluate(() => window.states), ['connecting', 'online']);
});

scenarioTest(test, 'Broadcast: one page\'s message reaches the other\'s onBroadcast, over a WebSocket one way and over HTTP + SSE the other; nothing is stored', async (sc) => {
  const server = await sc.server({ memory: true });
  const gate = await proxy(sc, server.url); // refuses WebSockets: its page uses the HTTP fallback
  const ws = await openClientPage(sc, server.url, 'ws');
  const sse = await openClientPage(sc, gate.url, 'sse');
  for (const page of [ws, sse]) {
    // Listening from the moment the page hears its own hello: its subscription is live.
    await page.evaluate(async (label) => {
      window.heard = [];
      window.changes = [];
      window.sent = []; // the WebSocket messages the client sends
      const send = WebSocket.prototype.send;
      WebSocket.prototype.send = function (data) {
        window.sent.push(String(data));
        return send.call(this, data);
      };
      Statehub.onBroadcast('/room/1/cursors/', (msg, from) => window.heard.push([from, msg]));
      Statehub.on('/room/1/', (key, value) => window.changes.push([key, value]), { snapshot: false });
      while (!window.heard.some(([, msg]) => msg === 'hello ' + label)) {
        await Statehub.broadcast('/room/1/cursors/' + label, 'hello ' + label);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }, page.label);
  }
  assert.ok(gate.seen.refused >= 2 && gate.seen.upgrades === 0, 'the sse page is on the fallback');
  await ws.evaluate(() => Statehub.broadcast('/room/1/cursors/ann', { x: 10, y: 20 }));
  await sse.evaluate(() => Statehub.broadcast('/room/1/', { typing: 'bob' })); // to the room: above the cursors
  await sse.evaluate(() => Statehub.broadcast('/room/1/cursors/bob', { x: 1, y: 2 }));
  const moves = (page) => page.evaluate(() => window.heard.filter(([, msg]) => typeof msg !== 'string'));
  await waitInPage(sse, 'ann\'s cursor over SSE', () => window.heard.some(([from]) => from === '/room/1/cursors/ann'));
  await waitInPage(ws, 'bob\'s cursor over the WebSocket', () => window.heard.some(([from]) => from === '/room/1/cursors/bob'));
  assert.deepEqual(await moves(sse), [['/room/1/cursors/ann', { x: 10, y: 20 }], ['/room/1/cursors/bob', { x: 1, y: 2 }]]);
  assert.deepEqual(await moves(ws), [['/room/1/cursors/ann', { x: 10, y: 20 }], ['/room/1/cursors/bob', { x: 1, y: 2 }]]);
  // Nothing was stored, and no change callback ran.
  assert.equal((await server.get('/room/1/cursors/ann')).status, 404);
  assert.deepEqual(await ws.evaluate(() => window.changes), []);
  assert.deepEqual(await sse.evaluate(() => window.changes), []);
  // onBroadcast asks for the path's broadcasts alone; on() for its changes.
  const subs = (await ws.evaluate(() => window.sent)).map((m) => JSON.parse(m)).filter((m) => m.op === 'sub');
  assert.ok(subs.some((m) => m.path === '/room/1/cursors/' && m.broadcasts === true && !m.since && !m.snapshot), JSON.stringify(subs));
  assert.ok(subs.some((m) => m.path === '/room/1/' && !m.broadcasts), JSON.stringify(subs));
  const streams = gate.seen.streamURLs.map((u) => new URL(u, 'http://x'));
  assert.ok(streams.some((u) => u.pathname === '/room/1/cursors/' && u.searchParams.get('broadcasts') === 'true'), gate.seen.streamURLs.join(' '));
  assert.ok(streams.some((u) => u.pathname === '/room/1/' && !u.searchParams.has('broadcasts')), gate.seen.streamURLs.join(' '));
});

scenarioTest(test, 'A write has resolved only once durable: it survives kill -9 right after', async (sc) => {
  const server = await sc.server(); // -sync=always
  const page = await openClientPage(sc, server.url, 'durable');
  const written = await page.evaluate(async () => {
    const out = [];
    await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const { revision, seq } = await Statehub.set(`/durable/k${i}`, { i });
      out.push({ key: `/durable/k${i}`, revision, seq });
    }));
    return out;
  });
  server.child.kill('SIGKILL');
  await withTimeout(server.exited, 10_000, 'kill -9');
  server.child = null;
  await server.start();
  for (const { key, revision, seq } of written) {
    const got = await server.get(key);
    assert.deepEqual([got.value, got.revision, got.seq], [{ i: Number(key.slice('/durable/k'.length)) }, revision, seq], `${key} after kill -9`);
  }
});
