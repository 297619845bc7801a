// Behaviour of the bundled client (statehub.mjs) against an in-process fake of the server's
// WebSocket protocol (PROTOCOL.md). Run by TestBehaviour in jslib_test.go: `node --test`.
import assert from "node:assert/strict";
import test from "node:test";

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
/** Waits until f() returns true (reconnects wait a random backoff). */
const until = async (f, ms = 3000) => {
  for (const end = Date.now() + ms; !f(); await tick()) if (Date.now() > end) throw new Error("timed out: " + f);
};

/** A fake Statehub server: a key tree with revisions, a global seq, history and subscriptions. */
class Server {
  seq = 0;
  data = new Map(); // key -> {value, revision, seq}
  log = []; // change events
  conns = new Set();
  idem = new Map();
  received = [];
  refuse = 0; // connections to refuse
  forget = false; // answer resumes with a reset, as if the history were gone
  dup = false; // replay the event at the resume position again (the client must drop it)

  commit(key, value, del) {
    const seq = ++this.seq;
    const old = this.data.get(key);
    const revision = del ? old.revision : old ? old.revision + 1 : 0;
    del ? this.data.delete(key) : this.data.set(key, { value, revision, seq });
    const ev = { type: del ? "delete" : "set", key, ...(del ? {} : { value }), revision, seq };
    this.log.push(ev);
    for (const c of this.conns) for (const [id, path] of c.subs) if (match(path, key)) c.push({ sub: id, ...ev });
    return { revision, seq };
  }

  handle(c, m) {
    this.received.push(m);
    const ok = (x) => c.push({ id: m.id, ok: true, ...x });
    const fail = (status, code, x) => c.push({ id: m.id, error: code, code, status, ...x });
    if (m.idem && this.idem.has(m.idem)) return c.push(this.idem.get(m.idem));
    const cur = this.data.get(m.key);
    const remember = (x) => {
      const a = { id: m.id, ok: true, ...x };
      if (m.idem) this.idem.set(m.idem, a);
      c.push(a);
    };
    switch (m.op) {
      case "auth":
        return m.token == "good" ? ok() : fail(401, "unauthorized");
      case "get":
        return cur ? ok(cur) : fail(404, "not_found");
      case "set":
        return remember(this.commit(m.key, m.value));
      case "cas":
        if (m.revision != (cur ? cur.revision + 1 : 0)) return fail(409, "revision_conflict", { revision: cur ? cur.revision : -1 });
        return remember(this.commit(m.key, m.value));
      case "incr": {
        const value = (cur ? cur.value : 0) + (m.by ?? 1);
        return remember({ value, ...this.commit(m.key, value) });
      }
      case "delete":
        return cur ? remember(this.commit(m.key, null, true)) : fail(404, "not_found");
      case "sub": {
        const send = (e) => c.push({ sub: m.id, ...e });
        const state = () => {
          for (const [key, e] of [...this.data].sort())
            if (match(m.path, key)) send({ type: "set", key, value: e.value, revision: e.revision, seq: e.seq, snapshot: true });
        };
        ok({ seq: this.seq });
        if (m.since && this.forget) send({ type: "reset", seq: this.seq }), state();
        else if (m.since) {
          const [k, , s] = m.since.split(":");
          const pos = k.startsWith("/") ? [+s, k] : [+k, "\uffff"];
          for (const e of this.log)
            if (match(m.path, e.key) && (e.seq > pos[0] || (e.seq == pos[0] && (e.key > pos[1] || (this.dup && e.key == pos[1])))))
              send(e);
        } else if (m.snapshot) state();
        send({ type: "ready", seq: this.seq });
        c.subs.set(m.id, m.path);
        return;
      }
      case "lock":
        if (this.data.has(m.key)) return fail(409, "locked", { owner: this.data.get(m.key).value.owner });
        return ok({ token: "secret", fence: this.commit(m.key, { owner: m.owner }).seq, expires: "later", owner: m.owner });
      case "renew":
        return m.token == "secret" ? ok({ expires: "even later" }) : fail(403, "bad_token");
      case "unlock":
        return m.token == "secret" ? (this.commit(m.key, null, true), ok()) : fail(403, "bad_token");
      case "unsub":
        c.subs.delete(m.sub);
        return ok();
    }
  }

  /** Drops every connection, as a network failure would. */
  drop() {
    for (const c of this.conns) c.close();
  }
}

const match = (path, key) => (path.endsWith("/") ? key.startsWith(path) : key == path);

let server;
class FakeWebSocket {
  subs = new Map();
  open = false;
  constructor(url) {
    this.url = url;
    this.server = server;
    setTimeout(() => {
      if (this.server.refuse > 0) return this.server.refuse--, this.onclose?.({});
      this.open = true;
      this.server.conns.add(this);
      this.onopen?.({});
    }, 1);
  }
  send(s) {
    if (!this.open) return; // as browsers do once the socket is closing
    const m = JSON.parse(s);
    setTimeout(() => this.open && this.server.handle(this, m), 1);
  }
  push(m) {
    setTimeout(() => this.open && this.onmessage?.({ data: JSON.stringify(m) }), 1);
  }
  close() {
    if (!this.open) return;
    this.open = false;
    this.server.conns.delete(this);
    setTimeout(() => this.onclose?.({}), 1);
  }
}
globalThis.WebSocket = FakeWebSocket;

const { Client, AtomKV } = await import("./statehub.mjs");
const fresh = (opts) => ((server = new Server()), new Client("http://statehub.test/", opts));

test("get, set, update, delete, incr, transact", async () => {
  const c = fresh();
  assert.deepEqual(await c.get("/a"), [null, -1]);
  assert.deepEqual(await c.set("/a", { x: 1 }), { revision: 0, seq: 1 });
  assert.deepEqual(await c.get("/a"), [{ x: 1 }, 0]);
  assert.equal(await c.update("/a", 2, 5), false);
  assert.equal(await c.update("/a", 2, 1), true);
  assert.equal(await c.update("/b", 1, 0), true);
  assert.equal(await c.incr("/n"), 1);
  assert.equal(await c.incr("/n", 5), 6);
  assert.equal(await Promise.all([1, 2, 3].map(() => c.transact("/t", (v) => (v || 0) + 1))).then(() => c.get("/t").then((x) => x[0])), 3);
  assert.equal(await c.delete("/a"), 1);
  assert.equal(await c.delete("/a"), 0);
  c.close();
  await assert.rejects(c.get("/a"), { code: "closed" });
});

test("the iterator queues events while the consumer is busy", async () => {
  const c = fresh();
  const it = c.subscribe("/q/");
  await tick(20);
  for (let i = 0; i < 5; i++) await c.set("/q/k", i);
  const got = [];
  for await (const [key, value, revision] of it) {
    got.push([key, value, revision]);
    await tick(10); // busy: events keep arriving meanwhile
    if (got.length == 5) break;
  }
  assert.deepEqual(got, [0, 1, 2, 3, 4].map((i) => ["/q/k", i, i]));
  await tick(10);
  assert.equal(server.conns.values().next().value.subs.size, 0, "break unsubscribes");
  c.close();
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

test("reconnect resumes without loss or duplicates; requests queued while down are applied once", async () => {
  const c = fresh();
  const got = [];
  c.on("/r/", (k, v, r) => got.push(v));
  await c.set("/r/a", 1);
  await tick(20);
  server.drop();
  server.dup = true;
  server.commit("/r/a", 2); // while the client is away
  const queued = c.set("/r/b", 3); // sent after the reconnect
  assert.deepEqual(await queued, { revision: 0, seq: 3 });
  await until(() => got.length == 3);
  assert.deepEqual(got, [1, 2, 3]);
  const sub = server.received.filter((m) => m.op == "sub");
  assert.equal(sub.length, 2);
  assert.equal(sub[1].since, "/r/a:0:1");
  // A request in flight when the connection drops is sent again with the same idempotency key.
  const p = c.incr("/r/n");
  setTimeout(() => server.drop(), 1);
  assert.equal(await p, 1);
  await until(() => got.length == 4);
  await tick(20);
  assert.equal(server.data.get("/r/n").value, 1);
  assert.deepEqual(got, [1, 2, 3, 1]);
  c.close();
});

test("watch rebuilds after a reset: deletions in the gap are seen, unchanged keys are not repeated", async () => {
  const c = fresh();
  await c.set("/w/a", 1);
  await c.set("/w/b", 2);
  const calls = [];
  c.watch("/w/", (st, k) => calls.push([{ ...st }, k]));
  await tick(20);
  assert.deepEqual(calls, [[{ "/w/a": 1, "/w/b": 2 }, null]]);
  server.drop();
  server.forget = true;
  server.commit("/w/a", null, true);
  server.commit("/w/c", 3);
  await until(() => calls.length > 1);
  assert.deepEqual(calls.slice(1), [[{ "/w/b": 2, "/w/c": 3 }, null]]);
  await c.set("/w/b", 4);
  await tick(20);
  assert.deepEqual(calls.slice(2), [[{ "/w/b": 4, "/w/c": 3 }, "/w/b"]]);
  c.close();
});

test("a subscribe iterator sees a reset as the changes it missed", async () => {
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

test("presence: a live member map; the ephemeral key is claimed again after a reconnect", async () => {
  const c = fresh();
  const other = new Client("http://statehub.test/");
  const seen = [];
  const me = c.presence("/room/1", { name: "ann" }, (m) => seen.push({ ...m }));
  assert.match(me.id, /^[a-z0-9]+$/);
  await until(() => seen.length && Object.keys(seen.at(-1)).length == 1);
  const bob = other.presence("/room/1/", { name: "bob" });
  await until(() => Object.keys(me.members).length == 2);
  assert.deepEqual(me.members, { [me.id]: { name: "ann" }, [bob.id]: { name: "bob" } });
  const sets = () => server.received.filter((m) => m.op == "set" && m.key == me.key && m.ephemeral).length;
  assert.equal(sets(), 1);
  server.drop();
  await until(() => sets() == 2);
  await bob.leave();
  await until(() => Object.keys(me.members).length == 1);
  assert.deepEqual(seen.at(-1), { [me.id]: { name: "ann" } });
  c.close();
  other.close();
});

test("locks: acquire, conflict, renew, release", async () => {
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

test("auth is the first message; a rejected token fails requests", async () => {
  let c = fresh({ token: "good" });
  await c.set("/x", 1);
  assert.deepEqual(server.received[0], { op: "auth", id: server.received[0].id, token: "good" });
  c.close();
  c = fresh({ token: "bad" });
  await assert.rejects(c.get("/x"), { code: "unauthorized" });
});

test("falls back to SSE + fetch when the WebSocket cannot connect", async () => {
  const c = fresh();
  server.refuse = 2;
  const calls = [];
  globalThis.fetch = async (url, init) => {
    calls.push([url, init.method, init.headers]);
    return new Response("42", { status: 200, headers: { "X-Revision": "3", "X-Seq": "9" } });
  };
  class ES {
    constructor(url) {
      calls.push([url]);
    }
    addEventListener() {}
    close() {}
  }
  globalThis.EventSource = ES;
  c.on("/f/", () => {});
  assert.deepEqual(await c.get("/f/x"), [42, 3]);
  assert.equal(await c.incr("/f/n", 2), 42);
  const call = (url) => calls.find((c) => c[0] == url);
  assert.ok(call("http://statehub.test/f/?"), "EventSource opened");
  assert.equal(call("http://statehub.test/f/x")[1], "GET");
  assert.equal(call("http://statehub.test/f/n?incr=2")[1], "POST");
  assert.ok(call("http://statehub.test/f/n?incr=2")[2]["Idempotency-Key"]);
  c.close();
});
