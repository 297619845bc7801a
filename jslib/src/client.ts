// The client API.
import type {
  Change,
  ConnectOptions,
  Duration,
  EventMeta,
  ListOptions,
  ListPage,
  Lock,
  LockOptions,
  Presence,
  SubscribeOptions,
  WriteOptions,
  WriteResult,
} from "../statehub";
import { StatehubError } from "./error";
import { rand, Sub, type Sink } from "./sub";
import { Conn } from "./ws";

const dur = (d?: Duration) => (typeof d == "number" ? d + "ms" : d);

/** Calls a user callback; an exception is reported without breaking the connection. */
const call = (f: Function, ...a: any[]) => {
  try {
    f(...a);
  } catch (e) {
    setTimeout(() => {
      throw e;
    });
  }
};

/** A conflict (or an absent key) answers false instead of throwing. */
const conflict = (e: StatehubError) => {
  if (![404, 409, 412].includes(e.status)) throw e;
  return false;
};

export class Client {
  readonly url: string;
  private c: Conn;
  /** This client's member id in presence rooms. */
  private me = rand();

  constructor(url: string, opts: ConnectOptions = {}) {
    this.url = new URL(url, globalThis.location?.href).origin;
    this.c = new Conn(this.url, opts.token, opts.transport);
  }

  connect(url: string, opts?: ConnectOptions) {
    return new Client(url, opts);
  }

  private req(m: { op: string; [k: string]: any }, write?: boolean) {
    return this.c.req(m, write);
  }

  get<T = any>(key: string): Promise<[T | null, number]> {
    return this.req({ op: "get", key }).then(
      (a) => [a.value, a.revision],
      (e) => {
        if (e.code != "not_found") throw e;
        return [null, -1];
      },
    );
  }

  set<T = any>(key: string, value: T, opts: WriteOptions = {}): Promise<WriteResult> {
    const m = { op: "set", key, value, ttl: dur(opts.ttl), ephemeral: opts.ephemeral || undefined };
    opts.ephemeral ? this.c.eph.set(key, m) : this.c.eph.delete(key);
    return this.req({ ...m }, true).then((a) => ({ revision: a.revision, seq: a.seq }));
  }

  update<T = any>(key: string, value: T, revision: number, opts: WriteOptions = {}): Promise<boolean> {
    const m = { op: "cas", key, value, revision, ttl: dur(opts.ttl), ephemeral: opts.ephemeral || undefined };
    return this.req(m, true).then(() => true, conflict);
  }

  delete(path: string, opts: { revision?: number } = {}): Promise<number> {
    this.c.eph.delete(path);
    const m = path.endsWith("/") ? { op: "delete", path } : { op: "delete", key: path, revision: opts.revision };
    return this.req(m, true).then((a) => a.deleted ?? 1, (e) => +conflict(e));
  }

  incr(key: string, by = 1, opts: { ttl?: Duration } = {}): Promise<number> {
    return this.req({ op: "incr", key, by, ttl: dur(opts.ttl) }, true).then((a) => a.value);
  }

  list<T = any>(path: string, opts: ListOptions = {}): Promise<ListPage<T>> {
    return this.req({ op: "list", path, ...opts }).then((a) => ({ entries: a.entries, cursor: a.cursor }));
  }

  async transact<T = any>(key: string, fn: (value: T | null, revision: number) => T | Promise<T>): Promise<T> {
    for (;;) {
      const [v, r] = await this.get<T>(key);
      const n = await fn(v, r);
      if (await this.update(key, n, r + 1)) return n;
    }
  }

  tx(checks: object[], ops: object[]): Promise<{ seq: number }> {
    return this.req({ op: "tx", checks, ops }, true).then((a) => ({ seq: a.seq }));
  }

  private sub(path: string, snapshot: boolean, fn: Sink, err: (e: any) => void) {
    const s = new Sub(path, snapshot, fn, err);
    this.c.add(s);
    return s;
  }

  subscribe<T = any>(path: string, opts: SubscribeOptions = {}): AsyncIterableIterator<Change<T>> {
    // An unbounded queue: events arrive whether or not the consumer is waiting in next().
    const q: Change<T>[] = [];
    let done = false;
    let error: any;
    let wake = () => {};
    let signal = new Promise<void>((r) => (wake = r));
    const fire = () => {
      const w = wake;
      signal = new Promise<void>((r) => (wake = r));
      w();
    };
    const s = this.sub(
      path,
      !!opts.snapshot,
      (c) => c && (q.push(c), fire()),
      (e) => ((done = true), (error = e), fire()),
    );
    const it: AsyncIterableIterator<Change<T>> = {
      async next() {
        while (!q.length && !done) await signal;
        if (q.length) return { value: q.shift()!, done: false };
        if (error) throw ((s.err = () => {}), error);
        return { value: undefined, done: true };
      },
      return: async () => {
        done = true;
        q.length = 0;
        error = null;
        this.c.unsub(s);
        fire();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  on<T = any>(
    path: string,
    cb: (key: string, value: T | null, revision: number, meta: EventMeta) => void,
    opts: SubscribeOptions = {},
  ): () => void {
    const s = this.sub(path, !!opts.snapshot, (c) => c && call(cb, ...c), (e) => e && console.error("statehub:", path, e));
    return () => this.c.unsub(s);
  }

  watch<T = any>(path: string, cb: (state: Record<string, T>, key: string | null) => void): () => void {
    const st: Record<string, T> = {};
    let live = false;
    let n = 0;
    const s = this.sub(
      path,
      true,
      (c) => {
        if (!c) {
          if (!live || n) call(cb, st, null);
          live = true;
          n = 0;
          return;
        }
        const [k, v, r] = c;
        r < 0 ? delete st[k] : (st[k] = v);
        // During a rebuild the state is reported once, complete, at its end.
        live && !s.rs ? call(cb, st, k) : n++;
      },
      (e) => e && console.error("statehub:", path, e),
    );
    return () => this.c.unsub(s);
  }

  async lock(key: string, opts: LockOptions = {}): Promise<Lock> {
    const a = await this.req({ op: "lock", key, ttl: dur(opts.ttl), owner: opts.owner, wait: dur(opts.wait) }, true);
    const m = { key, token: a.token };
    const l: Lock = {
      key,
      token: a.token,
      fence: a.fence,
      expires: a.expires,
      owner: a.owner,
      renew: async () => {
        l.expires = (await this.req({ op: "renew", ...m }, true)).expires ?? l.expires;
      },
      release: () => this.req({ op: "unlock", ...m }, true).then(() => {}),
    };
    return l;
  }

  presence<T = any>(room: string, info: T, cb?: (members: Record<string, T>) => void): Presence<T> {
    const pre = room.replace(/\/?$/, "/");
    const key = pre + this.me;
    const p = {
      id: this.me,
      key,
      members: {} as Record<string, T>,
      set: (i: T) => this.set(key, i, { ephemeral: true }).then(() => {}),
      leave: () => (stop(), this.delete(key).then(() => {})),
    };
    const stop = this.watch<T>(pre, (st) => {
      p.members = {};
      for (const k in st) if (k.lastIndexOf("/") < pre.length) p.members[k.slice(pre.length)] = st[k];
      cb && call(cb, p.members);
    });
    p.set(info).catch((e) => console.error("statehub:", key, e));
    return p;
  }

  close() {
    this.c.fail();
  }
}
