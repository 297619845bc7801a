// The connection: one WebSocket to /.ws that multiplexes every request and subscription, reconnects
// with backoff and resumes; falls back to SSE + fetch (http.ts) when the WebSocket cannot connect.
import { StatehubError } from "./error";
import { openSSE, request } from "./http";
import { backoff, rand, type Sub } from "./sub";

/** A request message (PROTOCOL.md, WebSocket). */
export type Msg = { op: string; id?: number; idem?: string; [k: string]: any };

interface Pending {
  m: Msg;
  res: (a: any) => void;
  rej: (e: any) => void;
  /** Not resent after a reconnect (`sub`, which is sent again from the subscription). */
  once?: boolean;
}

const closed = () => new StatehubError("client closed", "closed", 0);

export class Conn {
  ws: WebSocket | null = null;
  up = false;
  /** Fallback mode: SSE + fetch. */
  sse: boolean;
  /** The WebSocket opened once: never fall back after that. */
  ever: boolean;
  fails = 0;
  tries = 0;
  t?: ReturnType<typeof setTimeout>;
  done = false;
  id = 0;
  pend = new Map<number, Pending>();
  subs = new Set<Sub>();
  /** Subscriptions by the id of their current `sub` request. */
  ids = new Map<number, Sub>();
  /** Ephemeral keys this client holds: written again on every new connection. */
  eph = new Map<string, Msg>();

  constructor(
    readonly base: string,
    readonly token?: string,
    mode?: string,
  ) {
    this.sse = mode == "sse";
    this.ever = mode == "ws";
  }

  /** Sends a request; resolves the answer or rejects a StatehubError. Writes get an idempotency key. */
  req(m: Msg, write?: boolean, once?: boolean): Promise<any> {
    m.id = ++this.id;
    if (write) m.idem = rand();
    return new Promise((res, rej) => {
      if (this.done) return rej(closed());
      const p = { m, res, rej, once };
      if (this.sse) return this.http(p);
      this.pend.set(m.id!, p);
      this.send(m);
    });
  }

  send(m: Msg) {
    this.up ? this.ws!.send(JSON.stringify(m)) : this.dial();
  }

  dial() {
    if (this.ws || this.t || this.done || this.sse) return;
    let ws: WebSocket;
    try {
      ws = this.ws = new WebSocket(this.base.replace(/^http/, "ws") + "/.ws");
    } catch {
      return this.down();
    }
    ws.onopen = () => {
      this.up = this.ever = true;
      this.tries = 0;
      if (this.token) {
        const id = ++this.id;
        this.pend.set(id, { m: {} as Msg, res() {}, rej: (e) => this.fail(e), once: true });
        ws.send(JSON.stringify({ op: "auth", id, token: this.token }));
      }
      // Subscriptions first, so that they see the writes queued after them.
      for (const s of this.subs) this.sub(s);
      for (const p of this.pend.values()) if (!p.once) ws.send(JSON.stringify(p.m));
      // Ephemeral keys belong to a connection: claim them again (unless a write of the key is queued anyway).
      const queued = new Set([...this.pend.values()].map((p) => p.m.key));
      for (const [k, m] of this.eph) queued.has(k) || this.req({ ...m }, true).catch(() => {});
    };
    ws.onmessage = (e) => this.msg(JSON.parse(e.data));
    ws.onclose = () => {
      if (this.ws != ws) return;
      this.ws = null;
      this.up = false;
      for (const [i, p] of this.pend) if (p.once) this.pend.delete(i);
      this.ids.clear();
      this.down();
    };
  }

  /** The WebSocket closed or could not open: reconnect later, or fall back to SSE. */
  down() {
    this.ws = null;
    if (this.done) return;
    if (!this.ever && ++this.fails >= 2) {
      this.sse = true;
      for (const p of this.pend.values()) this.http(p);
      this.pend.clear();
      for (const s of this.subs) this.sub(s);
    } else if (this.pend.size || this.subs.size || this.eph.size)
      this.t = setTimeout(() => {
        this.t = undefined;
        this.dial();
      }, backoff(this.tries++));
  }

  msg(m: any) {
    if (m.type) {
      const s = this.ids.get(m.sub);
      if (!s) return;
      if (m.type != "close") return s.ev(m);
      // The server ended this subscription (slow consumer, shutdown): subscribe again from its position.
      this.ids.delete(s.id);
      s.t = setTimeout(() => this.subs.has(s) && this.up && this.sub(s), 100 + backoff(1));
      return;
    }
    const p = this.pend.get(m.id);
    if (!p) return;
    this.pend.delete(m.id);
    m.ok ? p.res(m) : p.rej(new StatehubError(m.error, m.code, m.status, m));
  }

  /** Performs a request over HTTP; network failures are retried with backoff (writes keep their idempotency key). */
  http(p: Pending, n = 0) {
    if (p.once) return;
    request(this, p.m).then(p.res, (e) =>
      e instanceof StatehubError || this.done ? p.rej(e) : setTimeout(() => this.http(p, n + 1), backoff(n)),
    );
  }

  add(s: Sub) {
    this.subs.add(s);
    this.sub(s);
  }

  sub(s: Sub) {
    clearTimeout(s.t);
    if (this.sse) return openSSE(this, s);
    if (!this.up) return this.dial();
    this.req({ op: "sub", path: s.path, ...s.since() }, false, true).catch((e) => {
      if (this.done || !this.subs.has(s)) return;
      // Overload and server faults are retried; anything else (a forbidden path) ends the subscription.
      if (e.status == 429 || e.status >= 500) s.t = setTimeout(() => this.up && this.sub(s), 1e3 + backoff(s.n++));
      else this.unsub(s), s.err(e);
    });
    s.id = this.id;
    this.ids.set(s.id, s);
  }

  unsub(s: Sub) {
    this.subs.delete(s);
    this.ids.delete(s.id);
    clearTimeout(s.t);
    s.es?.close();
    if (this.up && !this.sse) this.ws!.send(JSON.stringify({ op: "unsub", id: ++this.id, sub: s.id }));
  }

  /** Ends everything with an error (a rejected token) or, without one, because close() was called. */
  fail(e?: any) {
    this.done = true;
    clearTimeout(this.t);
    this.ws?.close();
    this.ws = null;
    this.up = false;
    for (const p of this.pend.values()) p.rej(e || closed());
    this.pend.clear();
    for (const s of [...this.subs]) {
      this.unsub(s);
      s.err(e || null);
    }
  }
}
