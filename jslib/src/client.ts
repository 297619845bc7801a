// The client API. It turns each call into a request of the wire protocol (protocol.ts) or a
// subscription, and hands it to its transport: the WebSocket, or the HTTP fallback.
import type {
  Change,
  ConnectionState,
  ConnectOptions,
  Duration,
  EventMeta,
  FenceOption,
  HistoryOptions,
  HistoryPage,
  ListOptions,
  ListPage,
  Lock,
  LockOptions,
  MemberChange,
  OnDisconnect,
  OnOptions,
  Presence,
  PresenceOwner,
  SubscribeOptions,
  TxCheck,
  TxOp,
  TxResult,
  WatchOptions,
  WriteOptions,
  WriteResult,
} from "../statehub";
import { StatehubError } from "./error";
import { HttpTransport } from "./http";
import type { DeleteKeyRequest, DeletePathRequest, GoDuration, RequestMessage, Results } from "./protocol";
import { Subscription, type Sink } from "./subscription";
import { randomId, Token, trackEphemeral, type PendingRequest, type Shared, type Transport } from "./transport";
import { WebSocketTransport } from "./ws";

/** A duration as the protocol takes it: a number of milliseconds becomes "<n>ms". */
const goDuration = (d?: Duration): GoDuration | undefined => (typeof d == "number" ? d + "ms" : d);

/** A write's `fence` option as the protocol's fields. */
const fenced = (fence?: FenceOption) => (fence ? { fence: fence.fence, fence_lock: fence.key } : {});

/** Calls a user callback; an exception is reported without breaking the connection. */
const callSafely = <A extends any[]>(callback: (...args: A) => void, ...args: A) => {
  try {
    callback(...args);
  } catch (e) {
    setTimeout(() => {
      throw e;
    });
  }
};

/** A conflict (or an absent key) answers false instead of throwing; a stale fence throws. */
const falseOnConflict = (error: StatehubError): false => {
  if (![404, 409, 412].includes(error.status) || error.code == "fence_stale") throw error;
  return false;
};

const logError = (path: string) => (error: unknown) => error && console.error("statehub:", path, error);

export class Client {
  readonly url: string;
  /** The WebSocket, replaced by the HTTP fallback if the WebSocket cannot connect (and back once a probe connects). */
  private transport_: Transport;
  /** The fallback, kept to close it after a probe's WebSocket took over. */
  private http_?: HttpTransport;
  /** The next try of the WebSocket while on the fallback, and the WebSocket being tried. */
  private probeTimer_?: ReturnType<typeof setTimeout>;
  private probe_?: WebSocketTransport;
  private closed_ = false;
  /** This client's member id in presence rooms. */
  private memberId_ = randomId();
  private state_: ConnectionState = "connecting";
  private stateListeners_ = new Set<(state: ConnectionState) => void>();
  private readonly shared_: Shared;

  constructor(url: string, opts: ConnectOptions = {}) {
    this.url = new URL(url, globalThis.location?.href).origin;
    const { token, transport } = opts;
    const WebSocket_ = opts.WebSocket || globalThis.WebSocket;
    this.shared_ = {
      token_: new Token(token),
      ephemeral_: new Map(),
      disc_: new Map(),
      stateChanged_: (transport) => transport == this.transport_ && this.setState_(transport.state_),
      WebSocket_: WebSocket_ as Shared["WebSocket_"],
      EventSource_: (opts.EventSource || globalThis.EventSource) as Shared["EventSource_"],
    };
    if (transport == "ws" && !WebSocket_)
      throw new StatehubError("no WebSocket here: pass the WebSocket option (Node 20: the ws package, or --experimental-websocket)", "unsupported", 0);
    this.transport_ =
      transport == "sse" || !WebSocket_
        ? new HttpTransport(this.url, this.shared_)
        : new WebSocketTransport(this.url, this.shared_, transport == "ws" ? undefined : this.fallBack_);
  }

  /** The WebSocket never opened (a proxy or firewall blocks it): HTTP, and the WebSocket again later. */
  private fallBack_ = (requests: PendingRequest[], subscriptions: Subscription[], attempt = 0) => {
    if (this.closed_) return;
    let http = this.http_;
    if (!http) {
      http = this.http_ = this.transport_ = new HttpTransport(this.url, this.shared_);
      for (const request of requests) http.request(request.message_).then(request.resolve_, request.reject_);
      for (const subscription of subscriptions) http.subscribe(subscription);
      http.hold_(this.stateListeners_.size);
      this.setState_(http.state_);
    }
    // A try of the WebSocket after 2 s, 4 s, 8 s, ... up to a minute (each ±25%): when it connects it takes over.
    this.probeTimer_ = setTimeout(
      () => {
        const probe = (this.probe_ = new WebSocketTransport(this.url, this.shared_, () => this.fallBack_([], [], attempt + 1), 1));
        probe.onAccepted_ = () => {
          this.probe_ = undefined;
          this.transport_ = probe;
          for (const subscription of http.takeSubscriptions_()) probe.subscribe(subscription);
          probe.hold_(this.stateListeners_.size);
          this.setState_(probe.state_);
        };
        probe.hold_(1);
      },
      Math.min(6e4, 2e3 * 2 ** attempt * (0.75 + Math.random() / 2)),
    );
  };

  get state(): ConnectionState {
    return this.state_;
  }

  private setState_(state: ConnectionState) {
    if (state == this.state_ || this.closed_) return;
    this.state_ = state;
    for (const listener of this.stateListeners_) callSafely(listener, state);
  }

  onState(cb: (state: ConnectionState) => void): () => void {
    this.stateListeners_.add(cb);
    callSafely(cb, this.state_);
    this.transport_.hold_(this.stateListeners_.size);
    return () => {
      this.stateListeners_.delete(cb);
      this.transport_.hold_(this.stateListeners_.size);
    };
  }

  /** Sends a request on the current transport; ephemeral writes are tracked for the WebSocket to claim again. */
  private request_<R extends RequestMessage>(message: R): Promise<Results[R["op"]]> {
    trackEphemeral(this.shared_.ephemeral_, message);
    return this.transport_.request(message);
  }

  connect(url: string, opts?: ConnectOptions) {
    return new Client(url, opts);
  }

  /** Sends a write with an idempotency key of its own, so that the transport's resends apply it once. */
  private write_<R extends RequestMessage & { idem?: string }>(message: R): Promise<Results[R["op"]]> {
    message.idem = randomId();
    return this.request_(message);
  }

  get<T = any>(key: string): Promise<[T | null, number]> {
    return this.request_({ op: "get", key }).then(
      (answer) => [answer.value as T, answer.revision],
      (error) => {
        if (error.code != "not_found") throw error;
        return [null, -1];
      },
    );
  }

  set<T = any>(key: string, value: T, opts: WriteOptions = {}): Promise<WriteResult> {
    const { ttl, ephemeral, fence } = opts;
    return this.write_({ op: "set", key, value, ttl: goDuration(ttl), ephemeral: ephemeral || undefined, ...fenced(fence) }).then(
      ({ revision, seq }) => ({ revision, seq }),
    );
  }

  update<T = any>(key: string, value: T, revision: number, opts: WriteOptions = {}): Promise<WriteResult | false> {
    const { ttl, ephemeral, fence } = opts;
    return this.write_({ op: "cas", key, value, revision, ttl: goDuration(ttl), ephemeral: ephemeral || undefined, ...fenced(fence) }).then(
      ({ revision, seq }) => ({ revision, seq }),
      falseOnConflict,
    );
  }

  delete(path: string, opts: { revision?: number; fence?: FenceOption } = {}): Promise<number> {
    const message: DeleteKeyRequest | DeletePathRequest = path.endsWith("/")
      ? { op: "delete", path }
      : { op: "delete", key: path, revision: opts.revision, ...fenced(opts.fence) };
    return this.write_(message).then(
      (answer) => ("deleted" in answer ? answer.deleted : 1),
      (error) => +falseOnConflict(error),
    );
  }

  incr(key: string, by = 1, opts: { ttl?: Duration } = {}): Promise<number> {
    return this.write_({ op: "incr", key, by, ttl: goDuration(opts.ttl) }).then((answer) => answer.value);
  }

  list<T = any>(path: string, opts: ListOptions = {}): Promise<ListPage<T>> {
    return this.request_({ op: "list", path, ...opts })
      .then(({ entries, cursor }) => ({ entries: entries as ListPage<T>["entries"], cursor }));
  }

  history<T = any>(key: string, opts: HistoryOptions = {}): Promise<HistoryPage<T>> {
    const { limit, before } = opts;
    return this.request_({ op: "history", key, limit, cursor: before ? "" + before : undefined })
      .then(({ entries, cursor }) => ({ entries: entries as HistoryPage<T>["entries"], before: cursor }));
  }

  async transact<T = any>(key: string, fn: (value: T | null, revision: number) => T | Promise<T>): Promise<T> {
    for (;;) {
      const [value, revision] = await this.get<T>(key);
      const next = await fn(value, revision);
      if (await this.update(key, next, revision + 1)) return next;
    }
  }

  tx(checks: TxCheck[], ops: TxOp[]): Promise<TxResult> {
    return this.write_({ op: "tx", checks, ops }).then(({ seq, results }) => ({ seq, results }));
  }

  private startSubscription_(path: string, snapshot: boolean, deliver: Sink, end: (error: unknown) => void, throttle?: Duration) {
    const subscription = new Subscription(path, snapshot, deliver, end, goDuration(throttle));
    this.transport_.subscribe(subscription);
    return subscription;
  }

  subscribe<T = any>(path: string, opts: SubscribeOptions = {}): AsyncIterableIterator<Change<T>> {
    // An unbounded queue: events arrive whether or not the consumer is waiting in next().
    const queue: Change<T>[] = [];
    let done = false;
    let failure: unknown;
    let wake = () => {};
    let woken = new Promise<void>((resolve) => (wake = resolve));
    const wakeConsumer = () => {
      const wakeNow = wake;
      woken = new Promise<void>((resolve) => (wake = resolve));
      wakeNow();
    };
    const subscription = this.startSubscription_(
      path,
      !!opts.snapshot,
      (change) => change && (queue.push(change), wakeConsumer()),
      (error) => ((done = true), (failure = error), wakeConsumer()),
      opts.throttle,
    );
    const iterator: AsyncIterableIterator<Change<T>> = {
      async next() {
        while (!queue.length && !done) await woken;
        if (queue.length) return { value: queue.shift()!, done: false };
        if (failure) throw ((subscription.end_ = () => {}), failure);
        return { value: undefined, done: true };
      },
      return: async () => {
        done = true;
        queue.length = 0;
        failure = null;
        this.transport_.unsubscribe(subscription);
        wakeConsumer();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  on<T = any>(
    path: string,
    cb: (key: string, value: T | null, revision: number, meta: EventMeta) => void,
    opts: OnOptions = {},
  ): () => void {
    const snapshot = opts.snapshot ?? true;
    // A key absent from the snapshot is reported once, as a delete, when the snapshot ends.
    let absent = snapshot && !path.endsWith("/");
    const subscription = this.startSubscription_(
      path,
      snapshot,
      (change) => {
        if (change) callSafely(cb, ...change);
        else if (absent) callSafely(cb, path, null, -1, { type: "delete", seq: subscription.deliveredSeq_, revision: -1, snapshot: true });
        absent = false;
      },
      logError(path),
      opts.throttle,
    );
    return () => this.transport_.unsubscribe(subscription);
  }

  /** `seen` (the presence room's) sees each change first, with its meta. */
  watch<T = any>(
    path: string,
    cb: (state: Record<string, T>, key: string | null) => void,
    opts: WatchOptions = {},
    seen?: (change: Change<T>) => void,
  ): () => void {
    const state: Record<string, T> = {};
    let complete = false;
    /** Changes since the state was last reported complete, during a rebuild. */
    let unreported = 0;
    const subscription = this.startSubscription_(
      path,
      true,
      (change) => {
        if (!change) {
          if (!complete || unreported) callSafely(cb, state, null);
          complete = true;
          unreported = 0;
          return;
        }
        const [key, value, revision] = change;
        seen?.(change);
        revision < 0 ? delete state[key] : (state[key] = value);
        // During a rebuild the state is reported once, complete, at its end.
        complete && !subscription.rebuilding_ ? callSafely(cb, state, key) : unreported++;
      },
      logError(path),
      opts.throttle,
    );
    return () => this.transport_.unsubscribe(subscription);
  }

  broadcast<T = any>(path: string, msg: T): Promise<void> {
    return this.request_({ op: "broadcast", path, msg }).then(() => {});
  }

  onBroadcast<T = any>(path: string, cb: (msg: T, path: string) => void): () => void {
    // A subscription of the path's broadcasts alone: the server sends it no change.
    const subscription = new Subscription(path, false, () => {}, logError(path));
    subscription.broadcast_ = (msg, to) => callSafely(cb, msg as T, to);
    this.transport_.subscribe(subscription);
    return () => this.transport_.unsubscribe(subscription);
  }

  async lock(key: string, opts: LockOptions = {}): Promise<Lock> {
    const { ttl, owner, wait } = opts;
    const answer = await this.request_({ op: "lock", key, ttl: goDuration(ttl), owner, wait: goDuration(wait) });
    const { token } = answer;
    const lock: Lock = {
      key,
      token,
      fence: answer.fence,
      expires: answer.expires,
      owner: answer.owner,
      renew: async () => {
        lock.expires = (await this.request_({ op: "renew", key, token })).expires ?? lock.expires;
      },
      release: () => this.request_({ op: "unlock", key, token }).then(() => {}),
    };
    return lock;
  }

  get conn() {
    return this.shared_.conn_;
  }

  onDisconnect<T = any>(key: string): OnDisconnect<T> {
    const register = (message: { value?: T; delete?: true; cancel?: true }) => {
      const request = { op: "ondisconnect" as const, key, ...message };
      message.cancel ? this.shared_.disc_.delete(key) : this.shared_.disc_.set(key, request);
      return this.request_({ ...request }).then(
        () => {},
        (error) => {
          // Refused (not unsupported here): nothing to register again.
          if (error.status) this.shared_.disc_.delete(key);
          throw error;
        },
      );
    };
    return { set: (value) => register({ value }), remove: () => register({ delete: true }), cancel: () => register({ cancel: true }) };
  }

  presence<T = any>(room: string, info: T, cb?: (members: Record<string, T>, change?: MemberChange<T>) => void): Presence<T> {
    const prefix = room.replace(/\/?$/, "/");
    const key = prefix + this.memberId_;
    const presence = {
      id: this.memberId_,
      key,
      members: {} as Record<string, T>,
      owners: {} as Record<string, PresenceOwner>,
      set: (info: T) => this.set(key, info, { ephemeral: true }).then(() => {}),
      leave: () => (stopWatching(), this.delete(key).then(() => {})),
    };
    let change: MemberChange<T> | undefined;
    const stopWatching = this.watch<T>(
      prefix,
      (state, changed) => {
        presence.members = {};
        // Members are the room's immediate children.
        for (const k in state) if (k.lastIndexOf("/") < prefix.length) presence.members[k.slice(prefix.length)] = state[k];
        // The whole state (first, or after a rebuild) comes without a change.
        cb && callSafely(cb, presence.members, changed == null ? undefined : change);
        change = undefined;
      },
      {},
      ([k, value, , meta]) => {
        const id = k.slice(prefix.length);
        if (id.includes("/")) return;
        meta.type == "set" && meta.presence ? (presence.owners[id] = meta.presence) : delete presence.owners[id];
        change = { id, type: meta.type, info: value, presence: meta.presence, reason: meta.reason };
      },
    );
    presence.set(info).catch((e) => console.error("statehub:", key, e));
    return presence;
  }

  close() {
    clearTimeout(this.probeTimer_);
    this.probe_?.close();
    this.http_?.close();
    this.transport_.close();
    this.closed_ = true;
  }
}
