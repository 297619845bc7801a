// Presence that says why, in Chromium against the real server: page A joins a presence room with a
// token (its owner shows as its token's subject and connection) and registers an on-disconnect
// write; page B watches. Closing page A (Chromium closes its WebSocket with a close frame, even
// when the renderer crashes) and cutting another page's network (its TCP connections destroyed by
// a proxy, which then refuses it: the connection lost without a close) each reach B, one grace
// period later, as the member's delete with its presence and the reason (closed, timeout) and as
// the on-disconnect writes. The server runs with a short -ephemeral-grace.
//
// Run alone:  node --test e2e/presence.test.mjs

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { buildServer, closeBrowser, getBrowser, openClientPage, scenarioTest, signJWT, waitInPage } from './harness.mjs';

before(async () => {
  await Promise.all([buildServer(), getBrowser()]);
}, { timeout: 6 * 60_000 });

after(() => closeBrowser());

const SECRET = crypto.randomBytes(32).toString('hex');

const jwt = (claims) => signJWT(SECRET, claims);

const token = (sub) => jwt({ sub, exp: Math.floor(Date.now() / 1000) + 3600, grants: { write: ['/room/'] } });

// A proxy in front of the server (HTTP and WebSocket upgrades) whose cut() destroys every
// connection through it and refuses new ones: the page's network is gone.
async function cuttableProxy(sc, target) {
  const { port } = new URL(target);
  const sockets = new Set();
  let cut = false;
  const srv = http.createServer((req, res) => {
    const up = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  srv.on('connection', (s) => (cut ? s.destroy() : sockets.add(s)));
  srv.on('upgrade', (req, socket, head) => {
    if (cut) return socket.destroy();
    const up = net.connect(port, '127.0.0.1', () => {
      up.write(`${req.method} ${req.url} HTTP/1.1\r\n${Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`);
      up.write(head);
      up.pipe(socket).pipe(up);
    });
    sockets.add(up);
    for (const s of [socket, up]) s.on('error', () => { socket.destroy(); up.destroy(); });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const close = () => { cut = true; for (const s of sockets) s.destroy(); };
  sc.pageServers.push({ close: () => new Promise((resolve) => { close(); srv.close(resolve); }) });
  return { url: `http://127.0.0.1:${srv.address().port}`, cut: close };
}

// A member joins the room with its token and registers its on-disconnect write; answers its
// member id and connection id.
async function join(sc, api, sub) {
  const page = await openClientPage(sc, api, sub);
  const joined = await page.evaluate(async ({ api, tok, sub }) => {
    window.hub = Statehub.connect(api, { token: tok });
    const me = hub.presence('/room/1', { name: sub });
    await hub.onDisconnect(`/room/status/${sub}`).set({ state: 'offline' });
    await hub.onDisconnect(`/room/typing/${sub}`).remove();
    await hub.set(`/room/typing/${sub}`, true);
    for (let i = 0; !hub.conn && i < 200; i++) await new Promise((r) => setTimeout(r, 25));
    return { id: me.id, conn: hub.conn };
  }, { api, tok: token(sub), sub });
  assert.match(joined.conn || '', /^[A-Za-z0-9_-]{16}$/, `${sub}'s connection id`);
  return { page, ...joined };
}

scenarioTest(test, 'Presence: a closed page leaves with reason closed, a page whose network is cut with timeout; their on-disconnect writes are made', async (sc) => {
  const server = await sc.server({ memory: true, args: [`-jwt-secret=${SECRET}`, '-ephemeral-grace=1s'] });
  const watcher = await openClientPage(sc, server.url, 'watcher');
  await watcher.evaluate(({ api, tok }) => {
    window.hub = Statehub.connect(api, { token: tok });
    window.changes = [];
    window.events = [];
    window.me = hub.presence('/room/1', { name: 'watcher' }, (members, change) => change && window.changes.push(change));
    hub.on('/room/', (key, value, revision, meta) => window.events.push({ key, value, meta }), { snapshot: false });
  }, { api: server.url, tok: token('watcher') });

  const ann = await join(sc, server.url, 'ann');
  const net = await cuttableProxy(sc, server.url);
  const bob = await join(sc, net.url, 'bob');
  await waitInPage(watcher, 'both members with their owners', ({ ann, bob }) =>
    me.owners[ann]?.sub === 'ann' && me.owners[bob]?.sub === 'bob', { ann: ann.id, bob: bob.id },
    { describe: () => ({ members: me.members, owners: me.owners }) });
  const owners = await watcher.evaluate(() => me.owners);
  assert.deepEqual(owners[ann.id], { sub: 'ann', conn: ann.conn });
  assert.deepEqual(owners[bob.id], { sub: 'bob', conn: bob.conn });

  // ann closes her page: the WebSocket closes cleanly.
  await ann.page.close();
  // bob's network is cut: his connection is lost without a close frame, and he cannot come back.
  net.cut();

  for (const [who, reason] of [[ann, 'closed'], [bob, 'timeout']]) {
    const change = await waitInPage(watcher, `${who.id} leaves`, (id) => window.changes.find((c) => c.id === id && c.type === 'delete'), who.id,
      { describe: () => window.changes }).then((h) => h.jsonValue());
    assert.equal(change.reason, reason, `${change.presence?.sub}'s leave reason`);
    assert.deepEqual(change.presence, { sub: change.presence.sub, conn: who.conn });
  }
  const events = await waitInPage(watcher, 'the on-disconnect writes', () => {
    const got = window.events.filter((e) => e.key.startsWith('/room/status/') || e.key.startsWith('/room/typing/'));
    return got.length >= 6 ? got : null; // 2 typing sets, then 2 status sets and 2 typing deletes
  }, null, { describe: () => window.events }).then((h) => h.jsonValue());
  const byKey = (key, type) => events.find((e) => e.key === key && e.meta.type === type);
  for (const [sub, reason] of [['ann', 'closed'], ['bob', 'timeout']]) {
    const status = byKey(`/room/status/${sub}`, 'set');
    assert.deepEqual(status.value, { state: 'offline' }, `${sub}'s status`);
    assert.equal(status.meta.reason, reason, `${sub}'s status write's reason`);
    assert.equal(byKey(`/room/typing/${sub}`, 'delete').meta.reason, reason, `${sub}'s typing delete's reason`);
  }
  assert.equal(await watcher.evaluate(() => Object.keys(me.owners).length), 1, 'only the watcher is left');
}, { timeout: 90_000 });
