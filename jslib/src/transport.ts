// The seam between the client's API and the network. Two implementations: the WebSocket (ws.ts), and
// HTTP requests with one EventSource per subscription (http.ts), the fallback. The client holds one
// and replaces the WebSocket with the fallback when the WebSocket cannot connect (and the fallback
// with a WebSocket again once one connects).
import type { ConnectionState } from "../statehub";
import { StatehubError } from "./error";
import type { OnDisconnectRequest, RequestMessage, Results, SetRequest } from "./protocol";
import type { Subscription } from "./subscription";

export interface Transport {
  /**
   * Sends a request; resolves the result fields of its answer, or rejects a StatehubError: the
   * server's error answer, or code "closed" once the transport is closed. A request whose connection
   * fails before the answer is sent again (a write with the same `idem`, so it is applied once).
   */
  request<R extends RequestMessage>(message: R): Promise<Results[R["op"]]>;
  /** Delivers the subscription's events to it from its position on, across reconnects, until unsubscribe. */
  subscribe(subscription: Subscription): void;
  unsubscribe(subscription: Subscription): void;
  /** Ends the transport: unanswered requests reject with `error` (default: code "closed"), subscriptions end with it (or null). */
  close(error?: unknown): void;
  /** The connection's state (see {@link Connectivity}). */
  readonly state_: ConnectionState;
  /** Keeps a connection open (and reconnects it) while `holds` > 0, even with nothing to send. */
  hold_(holds: number): void;
}

/** A request sent and not yet answered. */
export interface PendingRequest {
  message_: RequestMessage;
  resolve_: (answer: any) => void;
  reject_: (error: unknown) => void;
}

/** What a transport shares with the client: the token, the ephemeral keys it holds, where it reports its state. */
export interface Shared {
  token_: Token;
  /** The last ephemeral `set` of each key this client holds (see {@link trackEphemeral}). */
  ephemeral_: Map<string, SetRequest>;
  /** The on-disconnect writes this client registered, by key: each WebSocket registers them again. */
  disc_: Map<string, OnDisconnectRequest>;
  /** The current WebSocket's id, from an answer that tells it. */
  conn_?: string;
  /** Called when a transport's state changed. */
  stateChanged_: (transport: Transport) => void;
  /** The WebSocket and EventSource classes (the globals, or the client's options). */
  WebSocket_?: new (url: string) => WebSocket;
  EventSource_?: new (url: string) => EventSource;
}

export const closedError = () => new StatehubError("client closed", "closed", 0);

/** Exponential backoff with full jitter, capped at `cap` (10 s): the delay before retry number `retries` (from 0). */
export const backoff = (retries: number, cap = 1e4) => Math.random() * Math.min(cap, 250 * 2 ** retries);

/** A random id of letters and digits (a valid key component, and an idempotency key). */
export const randomId = () => Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => (b % 36).toString(36)).join("");

/**
 * Ephemeral keys belong to a connection: the last ephemeral set of each key is kept, to claim the
 * key again on the next one. Any other write of the key (a plain set, a CAS, incr, delete, a
 * transaction's op) forgets it, so that no claim writes an older value over a newer one. (A CAS
 * that succeeds is not claimed again: its success is known only later.)
 */
export function trackEphemeral(writes: Map<string, SetRequest>, message: RequestMessage) {
  const forget = (key: string) => writes.delete(key);
  switch (message.op) {
    case "set":
      message.ephemeral ? writes.set(message.key, { ...message }) : forget(message.key);
      break;
    case "cas":
    case "incr":
      forget(message.key);
      break;
    case "delete":
      if ("key" in message) forget(message.key);
      else for (const key of [...writes.keys()]) if (key.startsWith(message.path)) forget(key);
      break;
    case "tx":
      for (const op of message.ops) forget(op.key);
  }
}

/**
 * The connection state a transport reports: `connecting` until it first reaches the server;
 * `online` while it does and every subscription that was live is live; `offline` after a failure
 * (it retries); `resyncing` once the server is reached again while subscriptions that were live
 * catch up (replay, or rebuild after a reset), until each has its `ready`.
 */
export class Connectivity {
  state_: ConnectionState = "connecting";
  /** Subscriptions that were live and are catching up. */
  private resyncing_ = new Set<Subscription>();
  protected readonly shared_: Shared;

  constructor(shared: Shared) {
    this.shared_ = shared;
  }

  private set_(state: ConnectionState) {
    if (state != this.state_) {
      this.state_ = state;
      this.shared_.stateChanged_(this as unknown as Transport);
    }
  }

  /** The server answered. */
  protected up_() {
    this.set_(this.resyncing_.size ? "resyncing" : "online");
  }

  /** The connection failed; `lost` are the subscriptions it carried. */
  protected down_(lost: Iterable<Subscription>) {
    for (const subscription of lost) this.interrupted_(subscription);
    // Before the server was ever reached, the client is still connecting.
    if (this.state_ != "connecting") this.set_("offline");
  }

  /**
   * A subscription's stream ended: if it had been live (it has a position), it is catching up until
   * its next `ready`. (The state shows it once the connection is lost: `resyncing` follows `offline`.)
   */
  protected interrupted_(subscription: Subscription) {
    if (subscription.position_) this.resyncing_.add(subscription);
  }

  /** A subscription got its `ready`, or ended. */
  protected caughtUp_(subscription: Subscription, ended?: boolean) {
    this.resyncing_.delete(subscription);
    if (!ended || this.state_ == "resyncing") this.up_();
  }

  /** The transport closed: offline for good. */
  protected ended_() {
    this.resyncing_.clear();
    this.set_("offline");
  }
}

/**
 * A token: a string, or a function that gives one (called again for each connection, and when the
 * token expires or is refused). The last token obtained is kept for HTTP requests while it is fresh.
 */
export class Token {
  private readonly source_: string | (() => any) | undefined;
  /** The last token obtained (a function's), and when it was obtained. */
  private current_: string | undefined;

  constructor(source: string | (() => any) | undefined) {
    this.source_ = source;
    this.current_ = typeof source == "function" ? undefined : source || undefined;
  }

  /** The token comes from a function: it may be refreshed. */
  get refreshable_() {
    return typeof this.source_ == "function";
  }

  /**
   * The token to send: a string as is; a function's last token unless `fresh` is asked for, there
   * is none yet, or it expires within a minute, when the function is called.
   */
  async get_(fresh: boolean): Promise<string | undefined> {
    const source = this.source_;
    if (typeof source != "function") return this.current_;
    const current = this.current_;
    const exp = current && expiry(current);
    if (fresh || !current || (exp && exp - Date.now() < 6e4)) this.current_ = (await source()) || undefined;
    return this.current_;
  }
}

/** When a JWT expires (its `exp`, in milliseconds since the epoch), or undefined: not a JWT, or no `exp`. */
export function expiry(token: string): number | undefined {
  try {
    const exp = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).exp;
    return typeof exp == "number" ? exp * 1e3 : undefined;
  } catch {}
}
