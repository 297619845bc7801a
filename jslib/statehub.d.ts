// Type declarations of the Statehub browser client: the ES module's exports. They declare no
// globals; global.d.ts declares those of the script tag (`Statehub`, `AtomKV`).
//
// Served at /statehub.d.ts (followed by the globals) next to the ES module at /statehub.mjs:
//
//   // @deno-types="https://statehub.example/statehub.d.ts"
//   import Statehub, { connect } from "https://statehub.example/statehub.mjs";
//
// and in the npm package as dist/statehub.d.mts, next to dist/statehub.mjs.

/**
 * A token (a JWT), or a function that gives one, called for each new connection and again when
 * the token expires or is refused, so that an expired JWT is replaced instead of ending the client.
 * It may return a promise; `null` or `undefined` means no token.
 */
export type TokenSource = string | (() => string | null | undefined | Promise<string | null | undefined>);

/** Options of {@link connect} and {@link Client}'s constructor. */
export interface ConnectOptions {
  /**
   * A JWT or a function that gives one: sent as the first WebSocket message (and, before a JWT's
   * `exp`, again on the open connection with a fresh token from the function), as
   * `Authorization: Bearer` and as `?token=` for EventSource.
   */
  token?: TokenSource;
  /** "auto" (default): WebSocket, falling back to SSE + fetch when it cannot connect; "ws" or "sse" to force one. */
  transport?: "auto" | "ws" | "sse";
  /** The WebSocket class (default: the global one). In Node 20: `WebSocket` of the `ws` package. */
  WebSocket?: new (url: string) => object;
  /** The EventSource class of the HTTP fallback's subscriptions (default: the global one). */
  EventSource?: new (url: string) => object;
}

/**
 * The connection, for an app to show: `connecting` until the server is first reached; `online`;
 * `offline` after the connection was lost (the client reconnects); `resyncing` once reconnected
 * while subscriptions catch up on what they missed, until each has.
 */
export type ConnectionState = "connecting" | "online" | "offline" | "resyncing";

/** A duration: Go syntax ("30s", "1h30m") or a number of milliseconds. */
export type Duration = string | number;

/** Options of writes. */
export interface WriteOptions {
  /** The key expires (is deleted, with a delete event) after this long. */
  ttl?: Duration;
  /** Deleted when this client's connection is gone for longer than the server's grace period (WebSocket only: over the SSE fallback the key is an ordinary one). */
  ephemeral?: boolean;
  /**
   * A fenced write: it holds only while this lock (a {@link Lock}, or its `key` and `fence`) is
   * still held with that fence. Once it was released, expired or taken again the write rejects
   * with code `fence_stale` (status 409; `error.data.key` is the lock's key) and changes nothing.
   */
  fence?: FenceOption;
}

/** The lock of a fenced write: a {@link Lock}, or the key and fence of one. */
export interface FenceOption {
  key: string;
  fence: number;
}

/**
 * The answer to a write, which the server sends only once the write is durable (under its `-sync`
 * setting: with `always`, the default, after fsync).
 */
export interface WriteResult {
  /** The key's new revision. */
  revision: number;
  /** The commit's seq: a subscription has seen this write once it delivered a change with `meta.seq >= seq`. */
  seq: number;
}

export interface ListOptions {
  limit?: number;
  /** The cursor of the previous page. */
  cursor?: string;
  /** Keys only: entries carry no value. */
  keys?: boolean;
  /** Immediate children only; a child subtree shows as an entry whose key ends in "/". */
  children?: boolean;
}

export interface Entry<T = any> {
  key: string;
  value?: T;
  revision: number;
  seq: number;
}

export interface ListPage<T = any> {
  entries: Entry<T>[];
  /** Absent on the last page. */
  cursor?: string;
}

export interface HistoryOptions {
  /** Entries per page (server default 20, at most 1000). */
  limit?: number;
  /** Only changes below this seq: the `before` of the previous page. */
  before?: number | string;
}

/** One past change of a key: its value, or `deleted`. */
export interface HistoryEntry<T = any> {
  /** The key's revision after the change (a delete: the deleted revision + 1). */
  revision: number;
  seq: number;
  /** When the change was committed (RFC 3339, UTC); absent when the server does not know it. */
  time?: string;
  value?: T;
  /** A stored file's content type (its `value` is then the file's description). */
  type?: string;
  deleted?: true;
  /** An ephemeral key's owner at that change (see {@link PresenceOwner}). */
  presence?: PresenceOwner;
  /** Why an ephemeral key left, or `replaced` on a set that took it from another connection. */
  reason?: LeaveReason;
}

export interface HistoryPage<T = any> {
  /** Newest first. */
  entries: HistoryEntry<T>[];
  /** Pass as `before` for the next, older page; absent once the page reaches the key's first change. */
  before?: string;
}

/** Details of a change, the fourth element of a {@link Change}. */
export interface EventMeta {
  type: "set" | "delete";
  /** The commit of the change. */
  seq: number;
  /** The key's revision as sent by the server (for a delete: the revision that was deleted, or -1). */
  revision: number;
  /** Part of a snapshot (the initial state, or a rebuild after a reset) rather than a live change. */
  snapshot: boolean;
  /**
   * An ephemeral key's owner: on its sets, and on its delete (who left). WebSocket only for sets: over the
   * SSE fallback only deletes carry it.
   */
  presence?: PresenceOwner;
  /** Why an ephemeral key left (`closed`, `timeout`, `node_lost`), or `replaced` on a set that took it from another connection. */
  reason?: LeaveReason;
}

/** The owner of an ephemeral key: the `sub` of its writer's token (absent without one) and the id of its connection. */
export interface PresenceOwner {
  sub?: string;
  conn: string;
}

/** Why a presence member left, or `replaced` (another connection took its key). */
export type LeaveReason = "closed" | "timeout" | "node_lost" | "replaced";

/** A write the server makes when this client's connection has gone away (see {@link Client.onDisconnect}). */
export interface OnDisconnect<T = any> {
  /** Set the key to `value`. */
  set(value: T): Promise<void>;
  /** Delete the key. */
  remove(): Promise<void>;
  /** Drop the registration. */
  cancel(): Promise<void>;
}

/** One change: `[key, value, revision, meta]`; a delete is `[key, null, -1, meta]`. */
export type Change<T = any> = [key: string, value: T | null, revision: number, meta: EventMeta];

export interface WatchOptions {
  /**
   * Per key at most one change per this long (10 ms to 1 min; a number is milliseconds: `{throttle: 250}`),
   * always the key's latest, and its last change always arrives. Resuming after a reconnect stays exact.
   */
  throttle?: Duration;
}

export interface SubscribeOptions extends WatchOptions {
  /** Deliver the current entries of the path first, then the changes after them (default false). */
  snapshot?: boolean;
}

export interface OnOptions extends WatchOptions {
  /** Call back with the current value (or the subtree's entries) first, then with every change: the default. `false`: changes only. */
  snapshot?: boolean;
}

/** A check of {@link Client.tx}: the key's current revision (-1: absent). */
export interface TxCheck {
  key: string;
  revision: number;
}

/** An operation of {@link Client.tx}: set a value, add to an integer (`by` defaults to 1), or delete. */
export type TxOp<T = any> = { op: "set"; key: string; value: T } | { op: "incr"; key: string; by?: number } | { op: "delete"; key: string };

/** The result of one operation of {@link Client.tx}. */
export interface TxOpResult {
  key: string;
  /** The new revision; for a delete, the deleted revision + 1, or -1 when the key was absent (nothing done). */
  revision: number;
  /** An incr's new value. */
  value?: number;
}

/** The answer to {@link Client.tx}, sent once the transaction is durable. */
export interface TxResult {
  /** The seq of the one commit of every change. */
  seq: number;
  /** One per operation, in order. */
  results: TxOpResult[];
}

export interface LockOptions {
  /** How long the lock is held unless renewed (server default: 60 minutes). */
  ttl?: Duration;
  /** A label that tells others who holds the lock. */
  owner?: string;
  /** Wait this long for a held lock instead of failing at once. */
  wait?: Duration;
}

/** A held lock. */
export interface Lock {
  readonly key: string;
  /** The secret that renews and releases the lock. */
  readonly token: string;
  /** The fencing token: the seq at which the lock was taken. */
  readonly fence: number;
  /** When the lock expires, as the server states it. */
  expires: string | number;
  readonly owner?: string;
  /** Extends the lock by its TTL. */
  renew(): Promise<void>;
  release(): Promise<void>;
}

/** This client's membership of a presence room. */
export interface Presence<T = any> {
  /** This member's id: the last component of {@link key}. */
  readonly id: string;
  /** The ephemeral key that holds this member's info. */
  readonly key: string;
  /** Every member's info, by member id, kept live. */
  readonly members: Record<string, T>;
  /** Every member's owner (token subject and connection), by member id, kept live (WebSocket only). */
  readonly owners: Record<string, PresenceOwner>;
  /** Replaces this member's info. */
  set(info: T): Promise<void>;
  /** Leaves the room: deletes the key and stops watching. */
  leave(): Promise<void>;
}

/** A change of one member of a presence room: it joined or changed (`set`) or left (`delete`), with why. */
export interface MemberChange<T = any> {
  id: string;
  type: "set" | "delete";
  info: T | null;
  presence?: PresenceOwner;
  reason?: LeaveReason;
}

/** A failed request; `code` and `status` are the server's (PROTOCOL.md). */
export declare class StatehubError extends Error {
  constructor(message: string, code: string, status: number, data?: any);
  readonly code: string;
  readonly status: number;
  /** The whole error answer (for example `revision` of a conflict, the holder of a lock). */
  readonly data: any;
}

/** A client of one Statehub server. Every method may be called at once: the connection opens lazily. */
export declare class Client {
  constructor(url: string, opts?: ConnectOptions);
  /** The origin of the server. */
  readonly url: string;
  /** A client for another server. */
  connect(url: string, opts?: ConnectOptions): Client;
  /** The connection's state (see {@link ConnectionState}). */
  readonly state: ConnectionState;
  /**
   * Calls `cb` with the current state, then with each new one; returns the function that stops.
   * While a callback is registered the client stays connected (it connects at once, and reconnects with nothing else to do).
   */
  onState(cb: (state: ConnectionState) => void): () => void;

  /** `[value, revision]`, or `[null, -1]` when the key is absent. */
  get<T = any>(key: string): Promise<[T | null, number]>;
  /** Resolves once the write is durable. */
  set<T = any>(key: string, value: T, opts?: WriteOptions): Promise<WriteResult>;
  /**
   * Compare-and-swap: succeeds only if `revision` is the current revision + 1 (0 creates). Resolves
   * the {@link WriteResult} once durable, or `false` on a conflict.
   */
  update<T = any>(key: string, value: T, revision: number, opts?: WriteOptions): Promise<WriteResult | false>;
  /**
   * Deletes a key or, for a path ending in "/", a subtree. With `revision` (the current one) the delete
   * is conditional; with `fence`, fenced (see {@link WriteOptions}). Resolves the number of keys deleted
   * (0 when absent or on a conflict).
   */
  delete(path: string, opts?: { revision?: number; fence?: FenceOption }): Promise<number>;
  /** Adds `by` (default 1) to an integer, creating it at `by`; resolves the new value. */
  incr(key: string, by?: number, opts?: { ttl?: Duration }): Promise<number>;
  list<T = any>(path: string, opts?: ListOptions): Promise<ListPage<T>>;
  /**
   * A page of the key's past changes, newest first, with their seq and time, as far back as the
   * server retains them; a page below that rejects with code `history_gone` (status 410,
   * `error.data.oldest` the oldest seq retained).
   */
  history<T = any>(key: string, opts?: HistoryOptions): Promise<HistoryPage<T>>;
  /** Read, compute, compare-and-swap, retried until no one else wrote in between; resolves the value written. */
  transact<T = any>(key: string, fn: (value: T | null, revision: number) => T | Promise<T>): Promise<T>;
  /**
   * A multi-key transaction, all or nothing: every check must hold, then every op is applied in one
   * commit. Rejects with code `revision_conflict` (the failed key in `error.data.key`) when a check fails.
   */
  tx(checks: TxCheck[], ops: TxOp[]): Promise<TxResult>;

  /** Changes of a key or subtree as an async iterator; `break` or `return()` unsubscribes. Nothing is lost or repeated. */
  subscribe<T = any>(path: string, opts?: SubscribeOptions): AsyncIterableIterator<Change<T>>;
  /**
   * Calls `cb` with the current value of a key (`null`, -1 when absent) or with each current entry
   * of a subtree (none when it is empty), then with every change; with `{snapshot: false}`, with
   * changes only. Returns the function that unsubscribes.
   */
  on<T = any>(
    path: string,
    cb: (key: string, value: T | null, revision: number, meta: EventMeta) => void,
    opts?: OnOptions,
  ): () => void;
  /**
   * Keeps `state` (key -> value) equal to the path's current entries: `cb(state, null)` once it is
   * complete (and again after a rebuild), then `cb(state, key)` after each change. Returns the unsubscribe function.
   */
  watch<T = any>(path: string, cb: (state: Record<string, T>, key: string | null) => void, opts?: WatchOptions): () => void;

  /**
   * Sends `msg` (any JSON) to the current subscribers of `path` (a key, or a path ending in "/") and
   * of the paths above it, without storing it: cursors, reactions, typing indicators. Resolves once
   * the server has handed it to its subscribers (this client's own included). Rejects with code
   * `rate_limited` over the server's rate, `too_large` over its size limit, `forbidden` without the
   * broadcast grant. Sent while the connection is down, it goes once the connection is back; one
   * whose answer was lost is sent again, so it may arrive twice.
   */
  broadcast<T = any>(path: string, msg: T): Promise<void>;
  /**
   * Calls `cb(msg, path)` with every message broadcast to `path` or to a key below it (`path` says
   * which) while the client is connected: broadcasts are never replayed, so one sent during a
   * reconnect is missed. It subscribes to the broadcasts of `path` alone (needing read on it): the
   * server sends it no change. Returns the function that stops.
   */
  onBroadcast<T = any>(path: string, cb: (msg: T, path: string) => void): () => void;

  /** Acquires a lock on `key`; rejects (code from the server) when it is held and `wait` ran out. */
  lock(key: string, opts?: LockOptions): Promise<Lock>;
  /**
   * Joins `room` (a path) with `info` under an ephemeral key and keeps the members map live. `cb` gets
   * the members, and for a change of one member the change: a leave carries who left and why.
   */
  presence<T = any>(room: string, info: T, cb?: (members: Record<string, T>, change?: MemberChange<T>) => void): Presence<T>;
  /**
   * A write the server makes once this client's WebSocket has been gone for the server's grace period
   * (or, in a cluster, its node is lost), as Firebase's onDisconnect: `onDisconnect(key).set(value)`,
   * `.remove()`, `.cancel()`. Authorized when registered; registered again on every new connection, which
   * replaces the old connection's registration. Over the HTTP fallback it rejects with code `unsupported`
   * (and is registered once a WebSocket connects).
   */
  onDisconnect<T = any>(key: string): OnDisconnect<T>;
  /** The current WebSocket's id (the `conn` of this client's presence), once an answer told it. */
  readonly conn: string | undefined;

  /** Closes the connection; pending requests reject, iterators end. */
  close(): void;
}

/** AtomKV's JavaScript API, unchanged. */
export interface AtomKVApi {
  get<T = any>(key: string): Promise<[T | null, number]>;
  set<T = any>(key: string, value: T): Promise<void>;
  update<T = any>(key: string, value: T, revision: number): Promise<boolean>;
  subscribe<T = any>(keypath: string): AsyncGenerator<[string, T | null, number], void, undefined>;
}

/** The client of the server that served this module. */
export declare const Statehub: Client;
/** AtomKV's API on {@link Statehub}. */
export declare const AtomKV: AtomKVApi;
/** A client for another server. */
export declare function connect(url: string, opts?: ConnectOptions): Client;
/** Binds `data-statehub-value` and `data-statehub-count` elements, now and as they are added (the script tag does this itself). */
export declare function bind(client?: Client): void;
export default Statehub;
