// @ts-check
// A fake Statehub server for the client's behaviour tests (client.test.mjs), in-process: a key tree
// with revisions, a global seq, history and subscriptions, reached through fakes of the WebSocket,
// fetch and EventSource globals. It speaks the wire protocol of PROTOCOL.md, as typed in
// ../src/protocol.ts (`npx tsc -p jslib` checks this file against it), as far as the tests need.
/** @import { Answer, ChangeEvent, ErrorAnswer, Position, RequestMessage, StreamEvent, SubscriptionEvent } from "../src/protocol" */

/** @typedef {{ value: any, revision: number, seq: number }} Item */
/** @typedef {{ path: string, send: (event: StreamEvent) => void, broadcasts?: boolean }} Subscriber */
/** @typedef {Answer | ErrorAnswer} Reply */

/** @param {string} path @param {string} key */
const match = (path, key) => (path.endsWith("/") ? key.startsWith(path) : key == path);

/**
 * A token the fake accepts: "good", or a JWT-like "good.<payload>.sig" whose payload's exp (if any) has not passed.
 * @param {string | undefined} token
 */
export const goodToken = (token) => {
  if (token == "good") return true;
  if (!token?.startsWith("good.")) return false;
  const { exp } = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  return exp === undefined || exp * 1000 > Date.now();
};

export class Server {
  seq = 0;
  /** @type {Map<string, Item>} */
  data = new Map();
  /** Every change, for resumes. @type {ChangeEvent[]} */
  log = [];
  /** @type {Set<Subscriber>} */
  subscribers = new Set();
  /** Open WebSockets and EventSources: drop() fails them. @type {Set<{ drop(): void, expire(): void }>} */
  conns = new Set();
  /** Answers of writes by idempotency key. @type {Map<string, Reply>} */
  idem = new Map();
  /** Every request: the WebSocket's messages, and the messages that HTTP requests and EventSources stand for. @type {RequestMessage[]} */
  received = [];
  refuse = 0; // WebSocket connections to refuse
  forget = false; // answer resumes with a reset, as if the history were gone
  dup = false; // replay the event at the resume position again (the client must drop it)
  lose = 0; // HTTP answers to lose after applying their request, as a network failure would

  /** @param {string} key @param {any} value @param {boolean} [del] @param {number} [seq] the seq of a transaction's commit */
  commit(key, value, del = false, seq = ++this.seq) {
    const old = this.data.get(key);
    const revision = del ? (old?.revision ?? -1) : old ? old.revision + 1 : 0;
    del ? this.data.delete(key) : this.data.set(key, { value, revision, seq });
    /** @type {ChangeEvent} */
    const event = del ? { type: "delete", key, revision, seq } : { type: "set", key, value, revision, seq };
    this.log.push(event);
    for (const s of this.subscribers) if (!s.broadcasts && match(s.path, key)) s.send(event);
    return { key, revision, seq };
  }

  /**
   * Answers a request (a `sub` with the seq only: stream() sends its events).
   * @param {RequestMessage} m
   * @returns {Reply}
   */
  answer(m) {
    this.received.push(m);
    const id = m.id ?? 0;
    /** @param {object} [result] @returns {Answer} */
    const ok = (result) => ({ id, ok: true, ...result });
    /** @param {number} status @param {string} code @param {object} [details] @returns {ErrorAnswer} */
    const fail = (status, code, details) => ({ id, error: code, code, status, ...details });
    const idem = "idem" in m ? m.idem : undefined;
    const earlier = idem && this.idem.get(idem);
    if (earlier) return earlier.ok ? { ...earlier, id, replayed: /** @type {const} */ (true) } : { ...earlier, id };
    /** @param {Reply} reply */
    const remember = (reply) => (idem && this.idem.set(idem, reply), reply);
    const current = "key" in m ? this.data.get(m.key) : undefined;
    switch (m.op) {
      case "auth":
        return goodToken(m.token) ? ok() : fail(401, "unauthorized");
      case "get":
        return current ? ok({ key: m.key, ...current }) : fail(404, "not_found");
      case "set":
        return remember(ok(this.commit(m.key, m.value)));
      case "cas":
        if (m.revision != (current ? current.revision + 1 : 0))
          return fail(409, "revision_conflict", { revision: current ? current.revision : -1 });
        return remember(ok(this.commit(m.key, m.value)));
      case "incr": {
        const value = (current ? current.value : 0) + (m.by ?? 1);
        return remember(ok({ ...this.commit(m.key, value), value }));
      }
      case "delete":
        if (!("key" in m)) return fail(400, "bad_request"); // subtrees: not needed yet
        if (!current) return fail(404, "not_found");
        if (m.revision != null && m.revision != current.revision) return fail(409, "revision_conflict", { revision: current.revision });
        return remember(ok(this.commit(m.key, null, true)));
      case "list":
        return ok({ entries: [...this.data].sort().flatMap(([key, item]) => (match(m.path, key) ? [{ key, ...item }] : [])) });
      case "history": {
        const below = m.cursor ? +m.cursor : Infinity;
        const changes = this.log.filter((e) => e.key == m.key && e.seq < below).reverse();
        const page = changes.slice(0, m.limit ?? 20).map((e) =>
          e.type == "delete" ? { revision: e.revision + 1, seq: e.seq, deleted: true } : { revision: e.revision, seq: e.seq, value: e.value },
        );
        return ok({ entries: page, cursor: changes.length > page.length ? "" + page.at(-1)?.seq : undefined });
      }
      case "lock": {
        if (current) return fail(409, "locked", { key: m.key, owner: current.value.owner });
        const { revision, seq } = this.commit(m.key, { owner: m.owner });
        return ok({ key: m.key, token: "secret", fence: seq, expires: "later", owner: m.owner, revision, seq });
      }
      case "renew":
        return m.token == "secret" ? ok({ expires: "even later" }) : fail(403, "lock_token");
      case "unlock":
        return m.token == "secret" ? ok(this.commit(m.key, null, true)) : fail(403, "lock_token");
      case "tx": {
        for (const check of m.checks)
          if ((this.data.get(check.key)?.revision ?? -1) != check.revision)
            return fail(409, "revision_conflict", { key: check.key, revision: this.data.get(check.key)?.revision ?? -1 });
        const seq = ++this.seq;
        const results = m.ops.map((op) => {
          const old = this.data.get(op.key);
          if (op.op == "delete") return old ? { key: op.key, revision: this.commit(op.key, null, true, seq).revision + 1 } : { key: op.key, revision: -1 };
          if (op.op == "set") return { key: op.key, revision: this.commit(op.key, op.value, false, seq).revision };
          const value = (old ? old.value : 0) + (op.by ?? 1);
          return { key: op.key, revision: this.commit(op.key, value, false, seq).revision, value };
        });
        return remember(ok({ seq, results }));
      }
      case "broadcast":
        if (m.msg === undefined) return fail(400, "invalid_json");
        for (const s of this.subscribers) if (match(s.path, m.path)) s.send({ type: "broadcast", path: m.path, msg: m.msg });
        return ok();
      case "sub":
        return ok({ seq: this.seq });
      case "unsub":
        return ok();
      case "ondisconnect": // registered: the fake never makes the write
        return m.key || m.cancel ? ok({ key: m.key }) : fail(400, "bad_request");
      default:
        return fail(400, "bad_request");
    }
  }

  /**
   * Sends a subscription's replay (or reset and state, or snapshot) and `ready`, then its live changes
   * until the returned subscriber is removed from `subscribers`; with `broadcasts`, `ready` and then
   * its broadcasts alone.
   * @param {string} path @param {Position | undefined} since @param {boolean} snapshot
   * @param {(event: StreamEvent) => void} send @param {boolean} [broadcasts]
   * @returns {Subscriber}
   */
  stream(path, since, snapshot, send, broadcasts = false) {
    if (broadcasts) {
      send({ type: "ready", seq: this.seq });
      const subscriber = { path, send, broadcasts };
      this.subscribers.add(subscriber);
      return subscriber;
    }
    const state = () => {
      for (const [key, e] of [...this.data].sort())
        if (match(path, key)) send({ type: "set", key, value: e.value, revision: e.revision, seq: e.seq, snapshot: true });
    };
    if (since && this.forget) send({ type: "reset", seq: this.seq }), state();
    else if (since) {
      const [k, , s] = since.split(":");
      /** @type {[number, string]} */
      const pos = k.startsWith("/") ? [+s, k] : [+k, "\uffff"];
      for (const e of this.log)
        if (match(path, e.key) && (e.seq > pos[0] || (e.seq == pos[0] && (e.key > pos[1] || (this.dup && e.key == pos[1]))))) send(e);
    } else if (snapshot) state();
    send({ type: "ready", seq: this.seq });
    const subscriber = { path, send };
    this.subscribers.add(subscriber);
    return subscriber;
  }

  /** Drops every connection, as a network failure would. */
  drop() {
    for (const c of this.conns) c.drop();
  }

  /** Ends every connection as the real server does when its token expires: a WebSocket closes, an SSE stream gets a close event. */
  expire() {
    for (const c of this.conns) c.expire();
  }
}

/** @typedef {(e: { data?: string }) => void} Handler */

/**
 * A WebSocket class whose sockets connect to the server `current()` returns when they are made.
 * @param {() => Server} current
 */
export function fakeWebSocket(current) {
  return class FakeWebSocket {
    /** Subscribers by the id of their `sub` request. @type {Map<number, Subscriber>} */
    subs = new Map();
    open = false;
    /** @type {Handler | null} */ onopen = null;
    /** @type {Handler | null} */ onmessage = null;
    /** @type {((e: { code?: number, reason?: string }) => void) | null} */ onclose = null;
    /** Messages received: the first must be auth when a token is sent. */
    received = 0;

    /** @param {string} url */
    constructor(url) {
      this.url = url;
      this.server = current();
      setTimeout(() => {
        if (this.server.refuse > 0) return this.server.refuse--, this.onclose?.({});
        this.open = true;
        this.server.conns.add(this);
        this.onopen?.({});
      }, 1);
    }

    /** @param {string} text */
    send(text) {
      if (!this.open) return; // as browsers do once the socket is closing
      /** @type {RequestMessage} */
      const m = JSON.parse(text);
      setTimeout(() => this.open && this.handle(m), 1);
    }

    /** @param {RequestMessage} m */
    handle(m) {
      const reply = this.server.answer(m);
      this.push(reply);
      // A refused first auth closes the socket, as the server does.
      const first = this.received++ == 0;
      if (m.op == "auth" && !reply.ok && first) {
        setTimeout(() => this.close(1008, "unauthorized"), 2);
        return;
      }
      if (m.op == "sub" && reply.ok) {
        const id = m.id ?? 0;
        this.subs.set(id, this.server.stream(m.path, m.since, !!m.snapshot, (e) => this.push({ sub: id, ...e }), !!m.broadcasts));
      }
      if (m.op == "unsub") this.unsubscribe(m.sub);
    }

    /** @param {number} id */
    unsubscribe(id) {
      const subscriber = this.subs.get(id);
      if (subscriber) this.server.subscribers.delete(subscriber);
      this.subs.delete(id);
    }

    /** @param {Reply | SubscriptionEvent} m */
    push(m) {
      setTimeout(() => this.open && this.onmessage?.({ data: JSON.stringify(m) }), 1);
    }

    /** @param {number} [code] @param {string} [reason] */
    close(code = 1005, reason = "") {
      if (!this.open) return;
      this.open = false;
      for (const id of [...this.subs.keys()]) this.unsubscribe(id);
      this.server.conns.delete(this);
      setTimeout(() => this.onclose?.({ code, reason }), 1);
    }

    drop() {
      this.close(1006);
    }

    expire() {
      setTimeout(() => this.close(1008, "token_expired"), 2);
    }
  };
}

/**
 * A fetch that performs the HTTP requests of PROTOCOL.md on the server `current()` returns.
 * @param {() => Server} current
 * @returns {(url: string, init?: RequestInit) => Promise<Response>}
 */
export function fakeFetch(current) {
  return async (url, init = {}) => {
    const server = current();
    const { pathname: key, searchParams: query } = new URL(url);
    const headers = /** @type {Record<string, string>} */ (init.headers ?? {});
    const method = init.method ?? "GET";
    /** @param {number} status @param {any} body @param {Record<string, string>} [headers] */
    const respond = (status, body, headers) => new Response(JSON.stringify(body), { status, headers });
    const auth = headers.Authorization;
    if (auth && !goodToken(auth.replace(/^Bearer /, ""))) return respond(401, { error: "unauthorized", code: "unauthorized" });
    const value = init.body == null ? undefined : JSON.parse(String(init.body));
    const idem = headers["Idempotency-Key"];
    const ttl = query.get("ttl") ?? undefined;
    const revision = headers["X-Revision"] == null ? undefined : +headers["X-Revision"];
    const token = headers["X-Lock-Token"];
    // If-Fence: "N; lock=/lock/key", as the WebSocket's fence and fence_lock.
    const [fence, fenceLock] = (headers["If-Fence"] ?? "").split("; lock=");
    const fenced = fence ? { fence: +fence, fence_lock: fenceLock } : {};
    /** @type {RequestMessage} */
    let m;
    if (key == "/.tx") m = { op: "tx", ...value, idem };
    else if (query.has("broadcast")) m = { op: "broadcast", path: key, msg: value };
    else if (query.has("lock"))
      m =
        method == "DELETE"
          ? { op: "unlock", key, token }
          : query.has("renew")
            ? { op: "renew", key, token, ttl }
            : { op: "lock", key, ttl, owner: query.get("owner") ?? undefined, wait: query.get("wait") ?? undefined };
    else if (method == "GET" && query.has("history"))
      m = { op: "history", key, limit: query.has("limit") ? +(query.get("limit") ?? 0) : undefined, cursor: query.get("cursor") ?? undefined };
    else if (method == "GET") m = key.endsWith("/") ? { op: "list", path: key } : { op: "get", key };
    else if (method == "PUT") m = { op: "cas", key, value, revision: revision ?? NaN, ttl, idem, ...fenced };
    else if (method == "DELETE") m = key.endsWith("/") ? { op: "delete", path: key, idem } : { op: "delete", key, revision, idem, ...fenced };
    else if (query.has("incr")) m = { op: "incr", key, by: +(query.get("incr") ?? 1), ttl, idem };
    else m = { op: "set", key, value, ttl, idem, ...fenced };
    const reply = server.answer(m);
    if (server.lose > 0) {
      server.lose--;
      throw new TypeError("fetch failed");
    }
    if (!reply.ok) {
      const { id, ...error } = reply;
      return respond(reply.status, error);
    }
    const { id, ok, replayed, ...result } = reply;
    if (m.op == "broadcast") return respond(202, { ok: true });
    // GET and incr answer with the bare value, its revision and seq in headers.
    if ("value" in result && (m.op == "get" || m.op == "incr"))
      return respond(200, result.value, { "X-Revision": "" + result.revision, "X-Seq": "" + result.seq });
    return respond(200, result);
  };
}

/**
 * An EventSource class whose streams (PROTOCOL.md, SSE) come from the server `current()` returns.
 * @param {() => Server} current
 */
export function fakeEventSource(current) {
  return class FakeEventSource {
    /** @type {Map<string, ((e: { data: string, lastEventId: string }) => void)[]>} */
    listeners = new Map();
    /** @type {Handler | null} */ onerror = null;
    open = true;
    /** @type {Subscriber | undefined} */
    subscriber;
    /** The id of the last event, which browsers keep until an event sets another. */
    lastEventId = "";

    /** @param {string} url */
    constructor(url) {
      this.url = url;
      this.server = current();
      const { pathname: path, searchParams: query } = new URL(url);
      setTimeout(() => {
        if (!this.open) return;
        this.server.conns.add(this);
        const since = query.get("since") ?? undefined;
        const snapshot = query.has("snapshot");
        const token = query.get("token");
        const broadcasts = query.get("broadcasts") == "true";
        this.server.received.push({ op: "sub", path, since, snapshot: snapshot || undefined, throttle: query.get("throttle") ?? undefined, broadcasts: broadcasts || undefined });
        if (token && !goodToken(token)) return this.drop();
        this.subscriber = this.server.stream(path, since, snapshot, (e) => this.dispatch(e), broadcasts);
      }, 1);
    }

    /** @param {string} name @param {(e: { data: string, lastEventId: string }) => void} listener */
    addEventListener(name, listener) {
      this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener]);
    }

    /** Sends an event as the server writes it: its name, id and data. @param {StreamEvent} e */
    dispatch(e) {
      /** @type {[string, string | undefined, any]} */
      const [name, id, data] =
        e.type == "set" || e.type == "delete"
          ? [e.type == "set" ? "message" : "delete", `${e.key}:${e.revision}:${e.seq}${e.snapshot ? ":s" : ""}`, e.type == "set" ? e.value : null]
          : e.type == "ready"
            ? ["ready", "" + e.seq, { seq: e.seq }]
            : e.type == "reset"
              ? ["reset", undefined, { seq: e.seq }]
              : e.type == "broadcast"
                ? ["broadcast", undefined, { path: e.path, msg: e.msg }]
                : ["close", undefined, { reason: e.reason }];
      setTimeout(() => {
        if (!this.open) return;
        if (id !== undefined) this.lastEventId = id;
        for (const listener of this.listeners.get(name) ?? []) listener({ data: JSON.stringify(data), lastEventId: this.lastEventId });
      }, 1);
    }

    close() {
      this.open = false;
      if (this.subscriber) this.server.subscribers.delete(this.subscriber);
      this.server.conns.delete(this);
    }

    /** A network failure: the stream ends with an error. */
    drop() {
      this.close();
      setTimeout(() => this.onerror?.({}), 1);
    }

    expire() {
      this.dispatch({ type: "close", reason: "token_expired" });
      setTimeout(() => this.close(), 2);
    }
  };
}
