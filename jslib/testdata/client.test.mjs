// Behaviour of the bundled client (statehub.mjs) against an in-process fake of the server
// (fakeserver.mjs), over both transports: the WebSocket, and HTTP + SSE. Run by TestBehaviour in
// jslib_test.go: `node --test`.
import assert from "node:assert/strict";
import test from "node:test";
import { fakeEventSource, fakeFetch, fakeWebSocket, Server } from "./fakeserver.mjs";

/** A JWT-like token that the fake server accepts until `exp` (seconds since the epoch). */
const jwt = (exp, n = 0) => `good.${btoa(JSON.stringify({ exp, n })).replace(/=+$/, "")}.sig`;
const now = () => Math.floor(Date.now() / 1000);

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
/** Waits until f() returns true (reconnects wait a random backoff). */
const until = async (f, ms = 3000) => {
  for (const end = Date.now() + ms; !f(); await tick()) if (Date.now() > end) throw new Error("timed out: " + f);
};

let server;
globalThis.WebSocket = fakeWebSocket(() => server);
globalThis.fetch = fakeFetch(() => server);
globalThis.EventSource = fakeEventSource(() => server);

const { Client, AtomKV } = await import("./statehub.mjs");

// Each transport, with how the connection of a request fails after the server applied it and before
// the answer arrives.
const transports = [
  {
    name: "WebSocket",
    options: {},
    loseAnswer: (request) => {
      const answer = request();
      setTimeout(() => server.drop(), 1);
      return answer;
    },
  },
  {
    name: "HTTP+SSE",
    options: { transport: "sse" },
    loseAnswer: (request) => ((server.lose = 1), request()),
  },
];

for (const { name, options, loseAnswer } of transports) {
  const fresh = (opts) => ((server = new Server()), new Client("http://statehub.test/", { ...options, ...opts }));

  test(`${name}: get, set, update, delete, incr, list, transact`, async () => {
    const c = fresh();
    assert.deepEqual(await c.get("/a"), [null, -1]);
    assert.deepEqual(await c.set("/a", { x: 1 }), { revision: 0, seq: 1 });
    assert.deepEqual(await c.get("/a"), [{ x: 1 }, 0]);
    assert.equal(await c.update("/a", 2, 5), false);
    assert.deepEqual(await c.update("/a", 2, 1), { revision: 1, seq: 2 });
    assert.deepEqual(await c.update("/b", 1, 0), { revision: 0, seq: 3 });
    assert.equal(await c.incr("/n"), 1);
    assert.equal(await c.incr("/n", 5), 6);
    assert.deepEqual(await c.list("/"), {
      entries: [
        { key: "/a", value: 2, revision: 1, seq: 2 },
        { key: "/b", value: 1, revision: 0, seq: 3 },
        { key: "/n", value: 6, revision: 1, seq: 5 },
      ],
      cursor: undefined,
    });
    assert.equal(await Promise.all([1, 2, 3].map(() => c.transact("/t", (v) => (v || 0) + 1))).then(() => c.get("/t").then((x) => x[0])), 3);
    assert.deepEqual(
      await c.tx(
        [{ key: "/a", revision: 1 }],
        [
          { op: "set", key: "/x", value: "x" },
          { op: "incr", key: "/n", by: 2 },
          { op: "delete", key: "/absent" },
        ],
      ),
      { seq: 9, results: [{ key: "/x", revision: 0 }, { key: "/n", revision: 2, value: 8 }, { key: "/absent", revision: -1 }] },
    );
    await assert.rejects(c.tx([{ key: "/a", revision: 0 }], [{ op: "delete", key: "/x" }]), (e) => e.code == "revision_conflict" && e.data.key == "/a");
    assert.equal(await c.delete("/a", { revision: 0 }), 0, "a conditional delete with a stale revision");
    assert.equal(await c.delete("/a"), 1);
    assert.equal(await c.delete("/a"), 0);
    const writes = server.received.filter((m) => ["set", "cas", "incr", "delete", "tx"].includes(m.op));
    assert.ok(writes.every((m) => m.idem), "every write has an idempotency key");
    assert.equal(new Set(writes.map((m) => m.idem)).size, writes.length, "one per call");
    c.close();
    await assert.rejects(c.get("/a"), { code: "closed" });
  });

  test(`${name}: the iterator queues events while the consumer is busy`, async () => {
    const c = fresh();
    const it = c.subscribe("/q/");
    await until(() => server.subscribers.size == 1);
    for (let i = 0; i < 5; i++) await c.set("/q/k", i);
    const got = [];
    for await (const [key, value, revision] of it) {
      got.push([key, value, revision]);
      await tick(10); // busy: events keep arriving meanwhile
      if (got.length == 5) break;
    }
    assert.deepEqual(got, [0, 1, 2, 3, 4].map((i) => ["/q/k", i, i]));
    await until(() => server.subscribers.size == 0); // break unsubscribes
    c.close();
  });

  test(`${name}: reconnect resumes without loss or duplicates; a request whose answer is lost is applied once`, async () => {
    const c = fresh();
    const got = [];
    c.on("/r/", (k, v, r) => got.push(v));
    await until(() => server.subscribers.size == 1); // an EventSource opens apart from the writes
    await c.set("/r/a", 1);
    await until(() => got.length == 1);
    server.drop();
    server.dup = true;
    server.commit("/r/a", 2); // while the client is away
    assert.deepEqual(await c.set("/r/b", 3), { revision: 0, seq: 3 });
    await until(() => got.length == 3);
    assert.deepEqual(got, [1, 2, 3]);
    const sub = server.received.filter((m) => m.op == "sub");
    assert.equal(sub.length, 2);
    assert.equal(sub[1].since, "/r/a:0:1");
    // A request whose connection fails before the answer is sent again with the same idempotency key.
    assert.equal(await loseAnswer(() => c.incr("/r/n")), 1);
    await until(() => got.length == 4);
    await tick(20);
    assert.equal(server.data.get("/r/n").value, 1);
    assert.deepEqual(got, [1, 2, 3, 1]);
    const incrs = server.received.filter((m) => m.op == "incr");
    assert.equal(incrs.length, 2);
    assert.equal(incrs[0].idem, incrs[1].idem);
    c.close();
  });

  test(`${name}: watch rebuilds after a reset: deletions in the gap are seen, unchanged keys are not repeated`, async () => {
    const c = fresh();
    await c.set("/w/a", 1);
    await c.set("/w/b", 2);
    const calls = [];
    c.watch("/w/", (st, k) => calls.push([{ ...st }, k]));
    await until(() => calls.length > 0);
    assert.deepEqual(calls, [[{ "/w/a": 1, "/w/b": 2 }, null]]);
    server.drop();
    server.forget = true;
    server.commit("/w/a", null, true);
    server.commit("/w/c", 3);
    await until(() => calls.length > 1);
    assert.deepEqual(calls.slice(1), [[{ "/w/b": 2, "/w/c": 3 }, null]]);
    await c.set("/w/b", 4);
    await until(() => calls.length > 2);
    assert.deepEqual(calls.slice(2), [[{ "/w/b": 4, "/w/c": 3 }, "/w/b"]]);
    c.close();
  });

  test(`${name}: a subscribe iterator sees a reset as the changes it missed`, async () => {
    const c = fresh();
    await c.set("/s/a", 1);
    await c.set("/s/b", 1);
    const it = c.subscribe("/s/", { snapshot: true });
    const next = async () => (await it.next()).value.slice(0, 3);
    assert.deepEqual([await next(), await next()], [["/s/a", 1, 0], ["/s/b", 1, 0]]);
    server.drop();
    server.forget = true;
    server.commit("/s/a", null, true);
    server.commit("/s/c", 5);
    assert.deepEqual([await next(), await next()], [["/s/c", 5, 0], ["/s/a", null, -1]]);
    await it.return();
    c.close();
  });

  test(`${name}: the server's close of a subscription is a resume from its position`, async () => {
    const c = fresh();
    const got = [];
    c.on("/c/", (k, v) => got.push(v));
    await until(() => server.subscribers.size == 1);
    await c.set("/c/a", 1);
    await until(() => got.length == 1);
    for (const s of [...server.subscribers]) server.subscribers.delete(s), s.send({ type: "close", reason: "slow" });
    await c.set("/c/a", 2); // after the close: replayed by the resume
    await until(() => got.length == 2);
    assert.deepEqual(got, [1, 2]);
    assert.equal(server.received.filter((m) => m.op == "sub").at(-1).since, "/c/a:0:1");
    c.close();
  });

  test(`${name}: broadcast reaches onBroadcast of its path and the paths above it, between the changes; onBroadcast asks for broadcasts alone, never resumes`, async () => {
    const c = fresh();
    const heard = { room: [], cursor: [], other: [] };
    const changes = [];
    const stop = c.onBroadcast("/room/", (msg, path) => heard.room.push([path, msg]));
    c.onBroadcast("/room/1/cursor", (msg, path) => heard.cursor.push([path, msg]));
    c.onBroadcast("/other/", (msg, path) => heard.other.push([path, msg]));
    c.on("/room/", (key, value) => changes.push(value), { snapshot: false });
    await until(() => server.subscribers.size == 4);
    const subs = () => server.received.filter((m) => m.op == "sub").map((m) => [m.path, !!m.broadcasts, m.since ?? null, !!m.snapshot]);
    assert.deepEqual(subs(), [["/room/", true, null, false], ["/room/1/cursor", true, null, false], ["/other/", true, null, false], ["/room/", false, null, false]]);
    await c.set("/room/1/cursor", 0);
    await c.broadcast("/room/1/cursor", { x: 10 });
    await c.broadcast("/room/", "hi");
    await c.set("/room/1/cursor", 1);
    await until(() => changes.length == 2 && heard.room.length == 2);
    assert.deepEqual(heard.room, [["/room/1/cursor", { x: 10 }], ["/room/", "hi"]]);
    assert.deepEqual(heard.cursor, [["/room/1/cursor", { x: 10 }]]);
    assert.deepEqual(heard.other, []);
    assert.deepEqual(changes, [0, 1]);
    assert.deepEqual(server.received.filter((m) => m.op == "broadcast").map((m) => [m.path, m.msg]), [["/room/1/cursor", { x: 10 }], ["/room/", "hi"]]);
    await assert.rejects(c.broadcast("/room/", undefined), (e) => e.code == "invalid_json" && e.status == 400);
    // After a drop, on() resumes after the last change; onBroadcast asks for broadcasts alone again.
    server.drop();
    await until(() => server.subscribers.size == 4);
    const again = subs().slice(-4).filter(([path]) => path == "/room/");
    assert.deepEqual(again.sort(), [["/room/", false, "/room/1/cursor:1:2", false], ["/room/", true, null, false]]);
    stop();
    await c.broadcast("/room/", "after");
    await c.set("/room/1/cursor", 2); // reaches on() after the broadcast would have reached onBroadcast
    await until(() => changes.length == 3);
    assert.equal(heard.room.length, 2);
    c.close();
  });

  test(`${name}: locks: acquire, conflict, renew, release`, async () => {
    const c = fresh();
    const l = await c.lock("/locks/deploy", { ttl: 60000, owner: "ci" });
    assert.deepEqual([l.token, l.fence, l.owner], ["secret", 1, "ci"]);
    assert.equal(server.received.at(-1).ttl, "60000ms");
    await assert.rejects(c.lock("/locks/deploy"), (e) => e.code == "locked" && e.status == 409 && e.data.owner == "ci");
    await l.renew();
    assert.equal(l.expires, "even later");
    await l.release();
    assert.ok(!server.data.has("/locks/deploy"));
    c.close();
  });

  test(`${name}: a fenced write sends its lock's key and fence; a throttled subscription sends its interval, also when it resumes`, async () => {
    const c = fresh();
    const lock = await c.lock("/locks/deploy");
    await c.set("/release", 1, { fence: lock });
    await c.update("/release", 2, 1, { fence: { key: "/locks/deploy", fence: 7 } });
    await c.delete("/release", { fence: lock });
    const fences = server.received.filter((m) => ["set", "cas", "delete"].includes(m.op)).map((m) => [m.op, m.fence, m.fence_lock]);
    assert.deepEqual(fences, [
      ["set", lock.fence, "/locks/deploy"],
      ["cas", 7, "/locks/deploy"],
      ["delete", lock.fence, "/locks/deploy"],
    ]);
    const seen = [];
    const stop = c.on("/t/", (key, value) => seen.push(value), { snapshot: false, throttle: 250 });
    const it = c.subscribe("/t/", { throttle: "1s" });
    await until(() => server.received.filter((m) => m.op == "sub").length == 2);
    await c.set("/t/a", 1);
    await until(() => seen.length == 1);
    server.drop();
    await c.set("/t/a", 2);
    await until(() => seen.length == 2 && server.received.filter((m) => m.op == "sub").length >= 4);
    const subs = server.received.filter((m) => m.op == "sub").map((m) => [m.path, m.throttle, !!m.since]);
    assert.deepEqual(subs.slice(0, 2).sort(), [["/t/", "1s", false], ["/t/", "250ms", false]]);
    assert.ok(subs.length >= 4 && subs.slice(2).every(([, throttle, since]) => since && (throttle == "250ms" || throttle == "1s")), JSON.stringify(subs));
    stop();
    await it.return();
    c.close();
  });

  test(`${name}: history pages through a key's past changes, newest first`, async () => {
    const c = fresh();
    for (const v of [1, 2, 3]) await c.set("/h", v);
    await c.set("/other", 0);
    const first = await c.history("/h", { limit: 2 });
    assert.deepEqual(first.entries.map((e) => [e.value, e.revision]), [[3, 2], [2, 1]]);
    assert.equal(first.before, "" + first.entries[1].seq);
    const second = await c.history("/h", { limit: 2, before: first.before });
    assert.deepEqual([second.entries.map((e) => e.value), second.before], [[1], undefined]);
    const sent = server.received.filter((m) => m.op == "history").map((m) => [m.key, m.limit, m.cursor]);
    assert.deepEqual(sent, [["/h", 2, undefined], ["/h", 2, first.before]]);
    c.close();
  });

  test(`${name}: presence: a live member map`, async () => {
    const c = fresh();
    const other = fresh();
    const seen = [];
    const me = c.presence("/room/1", { name: "ann" }, (m) => seen.push({ ...m }));
    assert.match(me.id, /^[a-z0-9]+$/);
    await until(() => seen.length && Object.keys(seen.at(-1)).length == 1);
    const bob = other.presence("/room/1/", { name: "bob" });
    await until(() => Object.keys(me.members).length == 2);
    assert.deepEqual(me.members, { [me.id]: { name: "ann" }, [bob.id]: { name: "bob" } });
    await bob.leave();
    await until(() => Object.keys(me.members).length == 1);
    assert.deepEqual(seen.at(-1), { [me.id]: { name: "ann" } });
    c.close();
    other.close();
  });

  test(`${name}: on() calls back with the current value or entries first, then with changes; {snapshot: false}: changes only`, async () => {
    const c = fresh();
    await c.set("/o/a", 1);
    await c.set("/o/b", 2);
    const calls = { key: [], absent: [], tree: [], changes: [] };
    const record = (log) => (k, v, r, meta) => log.push([k, v, r, meta.snapshot]);
    c.on("/o/a", record(calls.key));
    c.on("/o/none", record(calls.absent));
    c.on("/o/", record(calls.tree));
    c.on("/o/", record(calls.changes), { snapshot: false });
    await until(() => calls.key.length && calls.absent.length && calls.tree.length == 2);
    await until(() => server.subscribers.size == 4);
    await c.set("/o/a", 3);
    await c.delete("/o/b");
    await until(() => calls.changes.length == 2 && calls.tree.length == 4 && calls.key.length == 2);
    assert.deepEqual(calls.key, [["/o/a", 1, 0, true], ["/o/a", 3, 1, false]]);
    assert.deepEqual(calls.absent, [["/o/none", null, -1, true]]);
    assert.deepEqual(calls.tree, [["/o/a", 1, 0, true], ["/o/b", 2, 0, true], ["/o/a", 3, 1, false], ["/o/b", null, -1, false]]);
    assert.deepEqual(calls.changes, [["/o/a", 3, 1, false], ["/o/b", null, -1, false]]);
    c.close();
  });

  test(`${name}: the connection state: connecting, online, offline after a loss, online again once the subscriptions caught up`, async () => {
    const c = fresh();
    const states = [];
    assert.equal(c.state, "connecting");
    const stop = c.onState((s) => states.push(s));
    const got = [];
    c.on("/st/", (k, v) => got.push(v), { snapshot: false });
    await until(() => server.subscribers.size == 1); // an EventSource opens apart from the writes
    await c.set("/st/a", 1);
    await until(() => got.length == 1 && c.state == "online");
    server.drop();
    await until(() => c.state == "offline");
    server.commit("/st/a", 2); // missed: replayed on resume
    await until(() => got.length == 2 && c.state == "online");
    assert.deepEqual(got, [1, 2]);
    // Over the WebSocket the socket reopens first, while the subscription catches up: resyncing.
    assert.deepEqual(states, options.transport ? ["connecting", "online", "offline", "online"] : ["connecting", "online", "offline", "resyncing", "online"]);
    stop();
    c.close();
    assert.equal(c.state, "offline");
    assert.equal(states.length, options.transport ? 4 : 5, "no call after stop()");
  });

  test(`${name}: a token function is called again after the server ends a connection for an expired token`, async () => {
    let calls = 0;
    const c = fresh({ token: () => jwt(now() + 3600, ++calls) });
    const got = [];
    c.on("/tk/", (k, v) => got.push(v), { snapshot: false });
    await until(() => server.subscribers.size == 1);
    await c.set("/tk/a", 1);
    await until(() => got.length == 1);
    const before = calls;
    server.expire();
    await until(() => calls > before && server.conns.size == 1);
    server.commit("/tk/a", 2);
    await until(() => got.length == 2);
    assert.ok(calls > before, "the function was called again");
    assert.deepEqual(await c.get("/tk/a"), [2, 1]);
    c.close();
  });
}

test("WebSocket: a JWT from a token function is replaced on the open connection before it expires", async () => {
  let calls = 0;
  // The first token's exp has passed by the client's clock: the client asks for a new one 5 s after connecting.
  const c = fresh({ token: () => jwt(++calls == 1 ? now() + 2 : now() + 3600, calls) });
  const states = [];
  c.onState((s) => states.push(s));
  await c.set("/ra/a", 1);
  const conn = [...server.conns][0];
  await until(() => server.received.filter((m) => m.op == "auth").length == 2, 8000);
  const auths = server.received.filter((m) => m.op == "auth");
  assert.notEqual(auths[1].token, auths[0].token);
  assert.equal([...server.conns][0], conn, "the same connection");
  assert.deepEqual(states, ["connecting", "online"]);
  c.close();
});

test("WebSocket: a refused token from a token function fails the waiting requests, not the client", async () => {
  let good = false;
  const c = fresh({ token: () => (good ? "good" : "bad") });
  const got = [];
  c.on("/rf/", (k, v) => got.push(v), { snapshot: false });
  await assert.rejects(c.get("/rf/a"), { code: "unauthorized" });
  good = true;
  assert.deepEqual(await c.set("/rf/a", 1), { revision: 0, seq: 1 });
  await until(() => got.length == 1);
  c.close();
});

test("HTTP+SSE: a 401 to a token function's token is tried again with a fresh token; an expired stream reopens with one", async () => {
  let calls = 0;
  const tokens = [];
  const c = fresh({ transport: "sse", token: () => (tokens.push(++calls == 1 ? "bad" : jwt(now() + 3600, calls)), tokens.at(-1)) });
  assert.deepEqual(await c.set("/h/a", 1), { revision: 0, seq: 1 });
  assert.equal(calls, 2);
  const got = [];
  c.on("/h/", (k, v) => got.push(v), { snapshot: false });
  await until(() => server.subscribers.size == 1);
  server.expire();
  await until(() => server.subscribers.size == 1 && calls == 3);
  await c.set("/h/a", 2);
  await until(() => got.length == 1);
  const subs = server.received.filter((m) => m.op == "sub");
  assert.equal(subs.length, 2);
  c.close();
});

test("the WebSocket option replaces a missing global", async () => {
  const { WebSocket } = globalThis;
  delete globalThis.WebSocket;
  try {
    assert.throws(() => fresh({ transport: "ws" }), { code: "unsupported" });
    const c = fresh({ WebSocket: fakeWebSocket(() => server) });
    assert.deepEqual(await c.set("/ws", 1), { revision: 0, seq: 1 });
    assert.equal(server.conns.values().next().value.constructor.name, "FakeWebSocket");
    c.close();
    const http = fresh(); // no WebSocket at all: HTTP
    assert.deepEqual(await http.set("/ws", 2), { revision: 0, seq: 1 });
    assert.equal(server.conns.size, 0);
    http.close();
  } finally {
    globalThis.WebSocket = WebSocket;
  }
});

test("AtomKV shapes", async () => {
  server = new Server();
  const it = AtomKV.subscribe("/fib");
  const first = it.next();
  assert.equal(await AtomKV.update("/fib", [0, 1], 0), true);
  assert.deepEqual((await first).value, ["/fib", [0, 1], 0]);
  assert.deepEqual(await AtomKV.get("/fib"), [[0, 1], 0]);
  assert.equal(await AtomKV.set("/fib", [1, 1]), undefined);
  assert.deepEqual((await it.next()).value, ["/fib", [1, 1], 1]);
  await it.return();
});

const fresh = (opts) => ((server = new Server()), new Client("http://statehub.test/", opts));

test("WebSocket: an ephemeral key is claimed again after a reconnect, until another write of the key", async () => {
  const c = fresh();
  const claims = (key) => server.received.filter((m) => m.op == "set" && m.key == key && m.ephemeral).length;
  const reconnect = async () => {
    server.drop();
    await until(() => server.conns.size == 1);
    await tick(20);
  };
  const me = c.presence("/room/1", { name: "ann" });
  await until(() => claims(me.key) == 1);
  await reconnect();
  assert.equal(claims(me.key), 2);
  // Each of these writes makes its key an ordinary one again: no claim writes the old value over it.
  const writes = {
    "/e/set": () => c.set("/e/set", "new"),
    "/e/cas": () => c.update("/e/cas", "new", 1),
    "/e/incr": () => c.incr("/e/incr"),
    "/e/delete": () => c.delete("/e/delete"),
    "/e/sub/key": () => c.delete("/e/sub/"),
    "/e/tx": () => c.tx([], [{ op: "set", key: "/e/tx", value: "new" }]),
  };
  for (const key in writes) await c.set(key, key == "/e/incr" ? 0 : "old", { ephemeral: true });
  for (const write of Object.values(writes)) await write().catch(() => {}); // the fake has no subtree delete
  await c.set(me.key, { name: "ann", away: true });
  await reconnect();
  assert.equal(claims(me.key), 2);
  for (const key in writes) assert.equal(claims(key), 1, key);
  assert.deepEqual(server.data.get(me.key).value, { name: "ann", away: true });
  c.close();
});

test("WebSocket: on-disconnect writes are registered again on every connection, until cancelled; the HTTP fallback refuses them", async () => {
  const c = fresh();
  const registered = (key) => server.received.filter((m) => m.op == "ondisconnect" && m.key == key && !m.cancel);
  await c.onDisconnect("/status/ann").set("offline");
  await c.onDisconnect("/typing/ann").remove();
  await c.onDisconnect("/gone").set(1);
  await c.onDisconnect("/gone").cancel();
  assert.deepEqual(registered("/status/ann").map(({ value }) => value), ["offline"]);
  server.drop();
  await until(() => registered("/status/ann").length == 2);
  await until(() => registered("/typing/ann").length == 2);
  assert.equal(registered("/typing/ann")[1].delete, true);
  assert.equal(registered("/gone").length, 1);
  c.close();
  const h = fresh({ transport: "sse" });
  await assert.rejects(h.onDisconnect("/status/ann").set("offline"), (e) => e.code == "unsupported");
  h.close();
});

test("WebSocket: auth is the first message; a rejected token fails requests", async () => {
  let c = fresh({ token: "good" });
  await c.set("/x", 1);
  assert.deepEqual(server.received[0], { op: "auth", id: server.received[0].id, token: "good" });
  c.close();
  c = fresh({ token: "bad" });
  await assert.rejects(c.get("/x"), { code: "unauthorized" });
});

test("HTTP+SSE: the token goes as Authorization and ?token=", async () => {
  const urls = [];
  const { fetch, EventSource } = globalThis;
  globalThis.fetch = (url, init) => (urls.push([url, init.headers.Authorization]), fetch(url, init));
  globalThis.EventSource = class extends EventSource {
    constructor(url) {
      super(url);
      urls.push([url]);
    }
  };
  try {
    const c = fresh({ token: "good", transport: "sse" });
    c.on("/t/", () => {}, { snapshot: false });
    await c.set("/t/a", 1);
    assert.deepEqual(urls, [["http://statehub.test/t/?token=good"], ["http://statehub.test/t/a", "Bearer good"]]);
    c.close();
    await assert.rejects(fresh({ token: "bad", transport: "sse" }).get("/x"), { code: "unauthorized", status: 401 });
  } finally {
    Object.assign(globalThis, { fetch, EventSource });
  }
});

test("falls back to HTTP+SSE when the WebSocket cannot connect, with the requests and subscriptions made meanwhile", async () => {
  const c = fresh();
  server.refuse = 2;
  const got = {};
  c.on("/f/", (k, v) => (got[k] = v), { snapshot: true }); // its stream opens apart from the writes
  const queued = c.set("/f/x", 42);
  assert.deepEqual(await queued, { revision: 0, seq: 1 });
  assert.deepEqual(await c.get("/f/x"), [42, 0]);
  assert.equal(await c.incr("/f/n", 2), 2);
  await until(() => Object.keys(got).length == 2);
  assert.deepEqual(got, { "/f/x": 42, "/f/n": 2 });
  assert.equal(server.conns.size, 1, "one EventSource, no WebSocket");
  assert.equal(server.conns.values().next().value.constructor.name, "FakeEventSource");
  c.close();
  assert.equal(server.subscribers.size, 0);
});

test("after falling back, the client tries the WebSocket again; once it connects, subscriptions and requests move to it", async () => {
  const c = fresh();
  server.refuse = 2;
  const got = [];
  c.on("/p/", (k, v) => got.push(v), { snapshot: false });
  await until(() => server.subscribers.size == 1);
  assert.deepEqual(await c.set("/p/a", 1), { revision: 0, seq: 1 });
  await until(() => got.length == 1);
  assert.equal(server.conns.values().next().value.constructor.name, "FakeEventSource");
  // The first try comes 1.5 to 2.5 s after the fallback.
  await until(() => [...server.conns].some((conn) => conn.constructor.name == "FakeWebSocket") && server.conns.size == 1, 4000);
  await c.set("/p/a", 2);
  await c.set("/p/b", 3);
  await until(() => got.length == 3);
  assert.deepEqual(got, [1, 2, 3]);
  const subs = server.received.filter((m) => m.op == "sub");
  assert.deepEqual(subs.at(-1), { op: "sub", id: subs.at(-1).id, path: "/p/", since: "/p/a:0:1" }, "the WebSocket resumes the subscription");
  assert.equal(c.state, "online");
  c.close();
});

test("transport ws never falls back", async () => {
  const c = fresh({ transport: "ws" });
  server.refuse = 3;
  assert.deepEqual(await c.set("/w", 1), { revision: 0, seq: 1 });
  assert.ok(server.received.every((m) => m.op != "sub"));
  assert.equal(server.conns.values().next().value.constructor.name, "FakeWebSocket");
  c.close();
});
