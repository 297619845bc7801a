// The fallback transport: requests over fetch, subscriptions over one EventSource each (PROTOCOL.md,
// HTTP and SSE). Requests and events take the WebSocket's shapes, so the client cannot tell them apart.
import { StatehubError } from "./error";
import type { RequestMessage, Results, SSEEventName, StreamEvent } from "./protocol";
import type { Subscription } from "./subscription";
import { backoff, closedError, Connectivity, type Shared, type Transport } from "./transport";

/** JSON, or the text itself when it is not JSON (an error page of a proxy). */
const parseJSON = (text: string) => {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

/** Performs a WebSocket request over HTTP and resolves the result fields the WebSocket would answer. */
async function fetchResult(url: string, token: string | undefined, message: RequestMessage): Promise<any> {
  const headers: Record<string, string> = {};
  const query = new URLSearchParams();
  let method = "POST";
  let path = "key" in message ? message.key : "path" in message ? message.path : "";
  let body: string | undefined;
  if (token) headers.Authorization = "Bearer " + token;
  if ("idem" in message && message.idem) headers["Idempotency-Key"] = message.idem;
  if ("ttl" in message && message.ttl) query.set("ttl", message.ttl);
  if ("fence" in message && message.fence) headers["If-Fence"] = message.fence + "; lock=" + message.fence_lock;
  switch (message.op) {
    case "get":
      method = "GET";
      break;
    case "set":
      body = JSON.stringify(message.value);
      break;
    case "cas":
      method = "PUT";
      body = JSON.stringify(message.value);
      headers["X-Revision"] = "" + message.revision;
      break;
    case "delete":
      method = "DELETE";
      if ("revision" in message && message.revision != null) headers["X-Revision"] = "" + message.revision;
      break;
    case "incr":
      query.set("incr", "" + (message.by ?? 1));
      break;
    case "list":
      method = "GET";
      for (const name of ["limit", "cursor", "keys", "children"] as const) {
        const option = message[name];
        if (option != null && option !== false) query.set(name, "" + option);
      }
      break;
    case "broadcast":
      query.set("broadcast", "");
      body = JSON.stringify(message.msg);
      break;
    case "history":
      method = "GET";
      query.set("history", "");
      if (message.limit) query.set("limit", "" + message.limit);
      if (message.cursor) query.set("cursor", message.cursor);
      break;
    case "tx":
      path = "/.tx";
      body = JSON.stringify({ checks: message.checks, ops: message.ops });
      break;
    // Locks: POST /key?lock, POST /key?lock&renew and DELETE /key?lock, the lock's token in X-Lock-Token.
    case "lock":
      query.set("lock", "");
      if (message.owner) query.set("owner", message.owner);
      if (message.wait) query.set("wait", message.wait);
      break;
    case "renew":
      query.set("lock", "");
      query.set("renew", "");
      headers["X-Lock-Token"] = message.token;
      break;
    case "unlock":
      method = "DELETE";
      query.set("lock", "");
      headers["X-Lock-Token"] = message.token;
      break;
    case "ondisconnect":
      // Registered again when a WebSocket connects (the client keeps it).
      throw new StatehubError("onDisconnect needs the WebSocket", "unsupported", 0);
    default:
      // auth, sub and unsub belong to the WebSocket: the token goes with every request, subscriptions are EventSources.
      throw new StatehubError(message.op + ": not an HTTP request", "bad_request", 400);
  }
  if (body) headers["Content-Type"] = "application/json";
  const search = "" + query;
  const response = await fetch(url + path + (search ? "?" + search : ""), { method, headers, body });
  const data = parseJSON(await response.text());
  if (!response.ok)
    throw new StatehubError(
      data?.error || response.statusText,
      data?.code || (response.status == 404 ? "not_found" : "http"),
      response.status,
      data,
    );
  // GET and incr answer with the bare value, its revision and seq in headers.
  const header = (name: string) => +response.headers.get(name)!;
  return message.op == "get" || message.op == "incr"
    ? { key: message.key, value: data, revision: header("X-Revision"), seq: header("X-Seq") }
    : data;
}

const sseEventNames: SSEEventName[] = ["message", "delete", "ready", "reset", "broadcast", "close"];

/** The WebSocket shape of an SSE event: its name, data and id (the position of a change). */
function fromSSE(name: SSEEventName, data: string, id: string): StreamEvent {
  const payload = parseJSON(data);
  if (name == "ready" || name == "reset") return { type: name, seq: payload.seq };
  if (name == "close") return { type: name, reason: payload.reason };
  if (name == "broadcast") return { type: name, path: payload.path, msg: payload.msg };
  const [key, revision, seq, snapshotMark] = id.split(":");
  const change = { key, revision: +revision, seq: +seq, snapshot: !!snapshotMark };
  return name == "delete" ? { type: "delete", ...change, ...payload } : { type: "set", value: payload, ...change };
}

export class HttpTransport extends Connectivity implements Transport {
  private closed_ = false;
  /** The rejections of requests not yet answered. */
  private unanswered_ = new Set<(error: unknown) => void>();
  /** The EventSource of each subscription (null between a failure and the next try). */
  private streams_ = new Map<Subscription, EventSource | null>();

  /** The server's origin. */
  private readonly url_: string;

  // No parameter properties: esbuild would set them by their unmangled names.
  constructor(url: string, shared: Shared) {
    super(shared);
    this.url_ = url;
  }

  /**
   * Network failures are retried with backoff, a write with its idempotency key; an error answer
   * rejects, except a 401 to a token function's token, which is tried once more with a fresh token.
   */
  request<R extends RequestMessage>(message: R): Promise<Results[R["op"]]> {
    const token = this.shared_.token_;
    return new Promise((resolve, reject) => {
      if (this.closed_) return reject(closedError());
      this.unanswered_.add(reject);
      const attempt = async (retries: number, refreshed: boolean) => {
        let sent: string | undefined;
        try {
          sent = await token.get_(false);
          const result = await fetchResult(this.url_, sent, message);
          this.unanswered_.delete(reject);
          this.up_();
          resolve(result);
        } catch (error) {
          if (this.closed_) return;
          if (!(error instanceof StatehubError)) {
            this.down_([]);
            return setTimeout(() => attempt(retries + 1, false), backoff(retries));
          }
          this.up_();
          if (error.status == 401 && !refreshed && token.refreshable_ && (await token.get_(true).catch(() => sent)) != sent) return attempt(retries, true);
          this.unanswered_.delete(reject);
          reject(error);
        }
      };
      attempt(0, false);
    });
  }

  /** There is no connection to hold: a state listener that comes before any request learns whether the server answers. */
  hold_(holds: number) {
    if (holds && this.state_ == "connecting") fetch(this.url_ + "/.health").then(() => this.up_(), () => {});
  }

  subscribe(subscription: Subscription) {
    if (!this.shared_.EventSource_) {
      subscription.end_(new StatehubError("no EventSource here: subscriptions need the WebSocket, or the EventSource option", "unsupported", 0));
      return;
    }
    this.streams_.set(subscription, null);
    this.openStream_(subscription, false);
  }

  /**
   * Opens the subscription's EventSource from its position; after an error or a `close` event it is
   * opened again, with a fresh token after the server's `token_expired` or `unauthorized`.
   */
  private async openStream_(subscription: Subscription, freshToken: boolean) {
    clearTimeout(subscription.retryTimer_);
    let token: string | undefined;
    try {
      token = await this.shared_.token_.get_(freshToken);
    } catch {
      // The token function failed: try again later.
    }
    if (this.closed_ || this.streams_.get(subscription) !== null) return;
    const query = new URLSearchParams(subscription.resumeFields_() as Record<string, string>);
    if (token) query.set("token", token);
    const source = new this.shared_.EventSource_!(this.url_ + subscription.path_ + "?" + query);
    this.streams_.set(subscription, source);
    const reopen = (delay: number, fresh: boolean) => {
      source.close();
      this.streams_.set(subscription, null);
      subscription.retryTimer_ = setTimeout(() => this.streams_.has(subscription) && this.openStream_(subscription, fresh), delay);
    };
    for (const name of sseEventNames)
      source.addEventListener(name, (e) => {
        const { data, lastEventId } = e as MessageEvent<string>;
        const event = fromSSE(name, data, lastEventId);
        if (event.type == "close") {
          // The server ended the stream (slow consumer, shutdown, expired token): open it again from the position.
          this.interrupted_(subscription);
          return reopen(100 + backoff(1), event.reason == "token_expired" || event.reason == "unauthorized");
        }
        subscription.receive_(event);
        if (event.type == "ready") this.caughtUp_(subscription);
      });
    source.onerror = () => {
      this.down_([subscription]);
      reopen(backoff(subscription.retries_++), false);
    };
  }

  unsubscribe(subscription: Subscription) {
    this.streams_.get(subscription)?.close();
    this.streams_.delete(subscription);
    clearTimeout(subscription.retryTimer_);
    this.caughtUp_(subscription, true);
  }

  /** Hands the subscriptions over (to a WebSocket that connected): their streams close. */
  takeSubscriptions_(): Subscription[] {
    const subscriptions = [...this.streams_.keys()];
    for (const subscription of subscriptions) this.unsubscribe(subscription);
    return subscriptions;
  }

  close(error?: unknown) {
    this.closed_ = true;
    for (const reject of this.unanswered_) reject(error || closedError());
    this.unanswered_.clear();
    this.ended_();
    for (const subscription of [...this.streams_.keys()]) {
      this.unsubscribe(subscription);
      subscription.end_(error || null);
    }
  }
}
