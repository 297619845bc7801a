// The wire protocol (PROTOCOL.md): the requests, answers and events of the WebSocket at /.ws, and the
// SSE events that the HTTP fallback turns into the same event shapes. Types only: nothing here is
// bundled. Shared by the client (src/) and its fake test server (testdata/fakeserver.mjs).

/** A stream position (PROTOCOL.md, Positions): `key:revision:seq` (a change), `key:revision:seq:s` (a snapshot entry) or `seq`. */
export type Position = string;

/** A Go duration string: "30s", "1h30m". */
export type GoDuration = string;

/** A request id: chosen by the client (this client uses numbers), echoed by the answer. */
export type RequestId = number;

// ---------------------------------------------------------------------------------------------------
// Requests (PROTOCOL.md, WebSocket: the table of ops).

/** The fields of every request. */
interface RequestHead<Op extends string> {
  op: Op;
  /** Set by the transport when it sends the request. */
  id?: RequestId;
}

/** The fields of a write that a retry may repeat: the Idempotency-Key. */
interface Idempotent {
  idem?: string;
}

/** A fenced write (If-Fence over HTTP): it holds only while the lock at `fence_lock` is held with fence `fence`. */
interface Fenced {
  fence?: number;
  fence_lock?: string;
}

/** Authenticates the connection (the first message), or again with a fresh token. */
export interface AuthRequest extends RequestHead<"auth"> {
  token: string;
}

export interface GetRequest extends RequestHead<"get"> {
  key: string;
}

export interface SetRequest extends RequestHead<"set">, Idempotent, Fenced {
  key: string;
  value: unknown;
  ttl?: GoDuration;
  /** The key belongs to this connection: deleted once the connection has been gone for the server's grace period. */
  ephemeral?: boolean;
}

/** Compare-and-swap: `revision` must be the current revision + 1 (0 creates). */
export interface CasRequest extends RequestHead<"cas">, Idempotent, Fenced {
  key: string;
  value: unknown;
  revision: number;
  ttl?: GoDuration;
  ephemeral?: boolean;
}

/** Deletes a key; with `revision` (the current one) only if it is still current. */
export interface DeleteKeyRequest extends RequestHead<"delete">, Idempotent, Fenced {
  key: string;
  revision?: number;
}

/** Deletes every key under a path ending in "/", in one commit. */
export interface DeletePathRequest extends RequestHead<"delete">, Idempotent {
  path: string;
}

export interface IncrRequest extends RequestHead<"incr">, Idempotent {
  key: string;
  /** Default 1. */
  by?: number;
  ttl?: GoDuration;
}

export interface ListRequest extends RequestHead<"list"> {
  path: string;
  limit?: number;
  cursor?: string;
  keys?: boolean;
  children?: boolean;
}

/** A page of a key's past changes, newest first: below the seq `cursor` names ("": from the newest). */
export interface HistoryRequest extends RequestHead<"history"> {
  key: string;
  limit?: number;
  cursor?: string;
}

export interface LockRequest extends RequestHead<"lock"> {
  key: string;
  /** Default "60m". */
  ttl?: GoDuration;
  owner?: string;
  /** How long to wait for a held lock (capped by the server). */
  wait?: GoDuration;
}

export interface RenewRequest extends RequestHead<"renew"> {
  key: string;
  token: string;
  ttl?: GoDuration;
}

export interface UnlockRequest extends RequestHead<"unlock"> {
  key: string;
  token: string;
}

/** A check of a transaction: `revision` is the current revision, -1 = absent. */
export interface TxCheck {
  key: string;
  revision: number;
}

/** An operation of a transaction. */
export type TxOp = { op: "set"; key: string; value: unknown } | { op: "incr"; key: string; by?: number } | { op: "delete"; key: string };

export interface TxRequest extends RequestHead<"tx">, Idempotent {
  checks: TxCheck[];
  ops: TxOp[];
}

/**
 * Registers a write the server makes once this connection has been gone for its grace period (or its
 * node is lost): a set of `value`, or with `delete` a delete; `cancel` drops the registration.
 */
export interface OnDisconnectRequest extends RequestHead<"ondisconnect"> {
  key: string;
  value?: unknown;
  delete?: true;
  cancel?: true;
}

/** Subscribes to a key or a path ending in "/": from `since`, or the current entries first with `snapshot`. */
export interface SubRequest extends RequestHead<"sub"> {
  path: string;
  since?: Position;
  snapshot?: boolean;
  /** Per key at most one event per this interval ("250ms", 10 ms to 1 min): the key's latest change. */
  throttle?: GoDuration;
  /** The path's broadcasts alone: no change, replay or snapshot (not with since or snapshot). */
  broadcasts?: true;
}

/** Sends `msg` to the current subscribers of `path` (a key or a path ending in "/") and of the paths above it; never stored. */
export interface BroadcastRequest extends RequestHead<"broadcast"> {
  path: string;
  msg: unknown;
}

/** Ends the subscription that the `sub` request with id `sub` started. */
export interface UnsubRequest extends RequestHead<"unsub"> {
  sub: RequestId;
}

/** A request message. */
export type RequestMessage =
  | AuthRequest
  | GetRequest
  | SetRequest
  | CasRequest
  | DeleteKeyRequest
  | DeletePathRequest
  | IncrRequest
  | ListRequest
  | HistoryRequest
  | LockRequest
  | RenewRequest
  | UnlockRequest
  | TxRequest
  | SubRequest
  | BroadcastRequest
  | UnsubRequest
  | OnDisconnectRequest;

export type Op = RequestMessage["op"];

// ---------------------------------------------------------------------------------------------------
// Answers.

/** The result of a write of one key. */
export interface WriteResult {
  key: string;
  revision: number;
  seq: number;
}

/** An entry of a list: a child subtree (with `children`) has only `key`, ending in "/"; `keys` omits `value`. */
export interface ListEntry {
  key: string;
  value?: unknown;
  revision?: number;
  seq?: number;
  /** An ephemeral key's owner. */
  presence?: PresenceOwner;
}

/** The owner of an ephemeral key: its writer's token subject (absent without one) and connection id. */
export interface PresenceOwner {
  sub?: string;
  conn: string;
}

/** Why an ephemeral key left (its delete event), or `replaced` (a set that took it from another connection). */
export type LeaveReason = "closed" | "timeout" | "node_lost" | "replaced";

/** A past change of a key: its value, or `deleted`; `time` (RFC 3339) when the server knows it. */
export interface HistoryEntry {
  revision: number;
  seq: number;
  time?: string;
  value?: unknown;
  /** A stored file's content type. */
  type?: string;
  deleted?: true;
}

/** A held lock. */
export interface LockResult {
  key: string;
  /** The secret that renews and releases the lock. */
  token: string;
  /** The seq of the acquiring commit. */
  fence: number;
  /** RFC 3339. */
  expires: string;
  owner?: string;
  /** WebSocket only (HTTP: the X-Revision and X-Seq headers): 0, or the renewal's revision, and the commit's seq. */
  revision?: number;
  seq?: number;
}

/** The result of one operation of a transaction: the new revision (-1: a delete of an absent key), `value` for incr. */
export interface TxOpResult {
  key: string;
  revision: number;
  /** An incr's new value. */
  value?: number;
}

/** The result fields of the answer to each op. */
export interface Results {
  /** `conn`: the connection's id. */
  auth: { conn?: string };
  get: { key: string; value: unknown; revision: number; seq: number; presence?: PresenceOwner };
  /** An ephemeral set: `conn`, the connection's id. */
  set: WriteResult & { conn?: string };
  cas: WriteResult;
  /** A key: its deleted revision + 1; a path: the number of keys deleted. */
  delete: WriteResult | { deleted: number; seq: number };
  incr: WriteResult & { value: number };
  list: { entries: ListEntry[]; cursor?: string };
  history: { entries: HistoryEntry[]; cursor?: string };
  lock: LockResult;
  renew: LockResult;
  unlock: WriteResult;
  tx: { seq: number; results: TxOpResult[] };
  /** The seq the subscription starts from; its events follow. */
  sub: { seq: number };
  broadcast: {};
  unsub: {};
  ondisconnect: { key: string };
}

/** A successful answer to a request of op `O`. */
export type Answer<O extends Op = Op> = {
  id: RequestId;
  ok: true;
  /** The answer to an earlier request with the same `idem`, given again. */
  replayed?: true;
} & Results[O];

/** A failed request: `status` is the HTTP status the same failure would have. */
export interface ErrorAnswer {
  /** Absent when the request's id could not be read. */
  id?: RequestId;
  ok?: undefined;
  error: string;
  code: string;
  status: number;
  /** A revision conflict: the current revision (-1 when absent). */
  revision?: number;
  /** A held lock (and the failed check of a transaction): the key... */
  key?: string;
  /** ...and the holder of the lock and when it expires. */
  owner?: string;
  expires?: string;
}

// ---------------------------------------------------------------------------------------------------
// Events of a subscription (WebSocket: with `sub`; SSE: converted from the event name, id and data).

/** A change to a key; `snapshot` marks an entry of a snapshot or of the rebuild after a reset. */
export interface SetEvent {
  type: "set";
  key: string;
  value: unknown;
  revision: number;
  seq: number;
  snapshot?: boolean;
  /** An ephemeral key's owner. */
  presence?: PresenceOwner;
  /** `replaced`: the key was taken from another connection. */
  reason?: LeaveReason;
}

/** A deleted key; `revision` is the revision that was deleted. */
export interface DeleteEvent {
  type: "delete";
  key: string;
  revision: number;
  seq: number;
  snapshot?: boolean;
  /** An ephemeral key's delete: who left... */
  presence?: PresenceOwner;
  /** ...and why (absent for a client's own delete). */
  reason?: LeaveReason;
}

/** The position was too old (or a snapshot entry): the current state follows, then `ready`. */
export interface ResetEvent {
  type: "reset";
  seq: number;
}

/** Replay or snapshot done: live changes after `seq` follow. */
export interface ReadyEvent {
  type: "ready";
  seq: number;
}

/** Why the server ended a subscription or stream (PROTOCOL.md, Disconnect reasons). */
export type CloseReason = "slow" | "shutdown" | "unauthorized" | "token_expired" | "unavailable" | "closed";

/** The server ended the subscription; the client subscribes again from its position. */
export interface CloseEvent {
  type: "close";
  reason: CloseReason;
}

/** A message sent with `broadcast` to the subscription's path or a key below it (`path`): no seq, never replayed. */
export interface BroadcastEvent {
  type: "broadcast";
  path: string;
  msg: unknown;
}

export type ChangeEvent = SetEvent | DeleteEvent;
export type StreamEvent = ChangeEvent | ResetEvent | ReadyEvent | BroadcastEvent | CloseEvent;

/** An event on the WebSocket: `sub` is the id of the `sub` request. */
export type SubscriptionEvent = StreamEvent & { sub: RequestId };

/** A message the server sends on the WebSocket. */
export type ServerMessage = Answer | ErrorAnswer | SubscriptionEvent;

// ---------------------------------------------------------------------------------------------------
// SSE (PROTOCOL.md, SSE): the event names and their `data`. A change's position is the event's id.

export interface SSEData {
  /** A set: the value. */
  message: unknown;
  /** null, or an ephemeral key's delete: who left and why. */
  delete: null | { presence?: PresenceOwner; reason?: LeaveReason };
  ready: { seq: number };
  reset: { seq: number };
  /** A broadcast: no id, so the EventSource's last id stays the last change's. */
  broadcast: { path: string; msg: unknown };
  close: { reason: CloseReason };
}

export type SSEEventName = keyof SSEData;
