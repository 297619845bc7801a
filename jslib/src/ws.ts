// The WebSocket transport: one WebSocket to /.ws multiplexes every request and subscription, and
// reconnects with backoff and resumes. When it fails twice before it ever opened, it hands its
// requests and subscriptions to the fallback the client gave it (http.ts) and retires.
import { StatehubError } from "./error";
import type { RequestMessage, Results, ServerMessage, SetRequest, SubRequest, SubscriptionEvent, UnsubRequest } from "./protocol";
import type { Subscription } from "./subscription";
import { backoff, closedError, randomId, type PendingRequest, type Transport } from "./transport";

/** Takes over the requests and subscriptions of a WebSocket that could never connect. */
export type FallBack = (requests: PendingRequest[], subscriptions: Subscription[]) => void;

interface SocketRequest extends PendingRequest {
  /** Sent again on the next connection; false for `auth` and `sub`, which each connection sends anew. */
  resend_: boolean;
}

export class WebSocketTransport implements Transport {
  private socket_: WebSocket | null = null;
  /** The socket is open: requests are sent at once, else when it opens. */
  private open_ = false;
  /** A socket opened once: never fall back after that. */
  private everOpened_ = false;
  /** Dials that failed before any opened. */
  private failedDials_ = 0;
  /** Reconnects since a socket last opened: the exponent of the backoff. */
  private reconnects_ = 0;
  private redialTimer_?: ReturnType<typeof setTimeout>;
  private closed_ = false;
  private lastId_ = 0;
  /** Requests waiting for their answer, by id. */
  private pending_ = new Map<number, SocketRequest>();
  private subscriptions_ = new Set<Subscription>();
  /** Subscriptions by the id of their current `sub` request. */
  private subscriptionsById_ = new Map<number, Subscription>();
  /** The ephemeral keys this client holds, with the write that set them: written again on every new connection. */
  private ephemeralWrites_ = new Map<string, SetRequest>();

  /** The server's origin. */
  private readonly url_: string;
  private readonly token_?: string;
  /** Without a fallback the WebSocket never gives up (transport "ws"). */
  private readonly fallBack_?: FallBack;

  // No parameter properties: esbuild would set them by their unmangled names.
  constructor(url: string, token?: string, fallBack?: FallBack) {
    this.url_ = url;
    this.token_ = token;
    this.fallBack_ = fallBack;
  }

  request<R extends RequestMessage>(message: R): Promise<Results[R["op"]]> {
    this.trackEphemeral_(message);
    return this.send_(message, true);
  }

  /**
   * Ephemeral keys belong to a connection: the last ephemeral set of each key is kept, to claim the
   * key again on the next one. Any other write of the key (a plain set, a CAS, incr, delete, a
   * transaction's op) forgets it, so that no claim writes an older value over a newer one. (A CAS
   * that succeeds is not claimed again: its success is known only later.)
   */
  private trackEphemeral_(message: RequestMessage) {
    const forget = (key: string) => this.ephemeralWrites_.delete(key);
    switch (message.op) {
      case "set":
        message.ephemeral ? this.ephemeralWrites_.set(message.key, { ...message }) : forget(message.key);
        break;
      case "cas":
      case "incr":
        forget(message.key);
        break;
      case "delete":
        if ("key" in message) forget(message.key);
        else for (const key of [...this.ephemeralWrites_.keys()]) if (key.startsWith(message.path)) forget(key);
        break;
      case "tx":
        for (const op of message.ops) forget(op.key);
    }
  }

  /** Sends a request now if the socket is open, else when it opens (dialing). */
  private send_<R extends RequestMessage>(message: R, resend: boolean): Promise<Results[R["op"]]> {
    const id = (message.id = ++this.lastId_);
    return new Promise((resolve_, reject_) => {
      if (this.closed_) return reject_(closedError());
      this.pending_.set(id, { message_: message, resolve_, reject_, resend_: resend });
      this.open_ ? this.socket_!.send(JSON.stringify(message)) : this.dial_();
    });
  }

  private dial_() {
    if (this.socket_ || this.redialTimer_ || this.closed_) return;
    let socket: WebSocket;
    try {
      socket = this.socket_ = new WebSocket(this.url_.replace(/^http/, "ws") + "/.ws");
    } catch {
      return this.lost_();
    }
    socket.onopen = () => this.opened_(socket);
    socket.onmessage = (e) => this.receive_(JSON.parse(e.data));
    socket.onclose = () => {
      if (this.socket_ != socket) return;
      this.open_ = false;
      for (const [id, request] of this.pending_) if (!request.resend_) this.pending_.delete(id);
      this.subscriptionsById_.clear();
      this.lost_();
    };
  }

  private opened_(socket: WebSocket) {
    this.open_ = this.everOpened_ = true;
    this.reconnects_ = 0;
    if (this.token_) this.send_({ op: "auth", token: this.token_ }, false).catch((e) => this.close(e));
    // Subscriptions first, so that they see the writes queued after them.
    for (const subscription of this.subscriptions_) this.sendSub_(subscription);
    for (const request of this.pending_.values()) if (request.resend_) socket.send(JSON.stringify(request.message_));
    // Claim the ephemeral keys again, unless a write of the key is queued anyway.
    const queued = new Set([...this.pending_.values()].map(({ message_ }) => "key" in message_ && message_.key));
    for (const [key, write] of this.ephemeralWrites_)
      if (!queued.has(key)) this.send_({ ...write, idem: randomId() }, true).catch(() => {});
  }

  /** The socket closed or could not open: dial again later, or hand everything to the fallback. */
  private lost_() {
    this.socket_ = null;
    if (this.closed_) return;
    if (this.fallBack_ && !this.everOpened_ && ++this.failedDials_ >= 2) {
      this.closed_ = true;
      const requests = [...this.pending_.values()].filter((request) => request.resend_);
      const subscriptions = [...this.subscriptions_];
      this.pending_.clear();
      this.subscriptions_.clear();
      this.fallBack_(requests, subscriptions);
    } else if (this.pending_.size || this.subscriptions_.size || this.ephemeralWrites_.size)
      this.redialTimer_ = setTimeout(() => {
        this.redialTimer_ = undefined;
        this.dial_();
      }, backoff(this.reconnects_++));
  }

  private receive_(message: ServerMessage) {
    if ("type" in message) return this.receiveEvent_(message);
    const request = this.pending_.get(message.id!);
    if (!request) return;
    this.pending_.delete(message.id!);
    message.ok ? request.resolve_(message) : request.reject_(new StatehubError(message.error, message.code, message.status, message));
  }

  private receiveEvent_(event: SubscriptionEvent) {
    const subscription = this.subscriptionsById_.get(event.sub);
    if (!subscription) return;
    if (event.type != "close") return subscription.receive_(event);
    // The server ended this subscription (slow consumer, shutdown): subscribe again from its position.
    this.subscriptionsById_.delete(event.sub);
    subscription.retryTimer_ = setTimeout(
      () => this.subscriptions_.has(subscription) && this.open_ && this.sendSub_(subscription),
      100 + backoff(1),
    );
  }

  subscribe(subscription: Subscription) {
    this.subscriptions_.add(subscription);
    this.sendSub_(subscription);
  }

  /** Sends the subscription's `sub` request from its position; when the socket is not open, dials (it subscribes on opening). */
  private sendSub_(subscription: Subscription) {
    clearTimeout(subscription.retryTimer_);
    if (!this.open_) return this.dial_();
    const message: SubRequest = { op: "sub", path: subscription.path_, ...subscription.resumeFields_() };
    this.send_(message, false).catch((error) => {
      if (this.closed_ || !this.subscriptions_.has(subscription)) return;
      // Overload and server faults are retried; anything else (a forbidden path) ends the subscription.
      if (error.status == 429 || error.status >= 500)
        subscription.retryTimer_ = setTimeout(() => this.open_ && this.sendSub_(subscription), 1e3 + backoff(subscription.retries_++));
      else this.unsubscribe(subscription), subscription.end_(error);
    });
    subscription.requestId_ = message.id!;
    this.subscriptionsById_.set(message.id!, subscription);
  }

  unsubscribe(subscription: Subscription) {
    this.subscriptions_.delete(subscription);
    this.subscriptionsById_.delete(subscription.requestId_);
    clearTimeout(subscription.retryTimer_);
    if (this.open_) {
      const message: UnsubRequest = { op: "unsub", id: ++this.lastId_, sub: subscription.requestId_ };
      this.socket_!.send(JSON.stringify(message));
    }
  }

  close(error?: unknown) {
    this.closed_ = true;
    clearTimeout(this.redialTimer_);
    this.socket_?.close();
    this.socket_ = null;
    this.open_ = false;
    for (const request of this.pending_.values()) request.reject_(error || closedError());
    this.pending_.clear();
    for (const subscription of [...this.subscriptions_]) {
      this.unsubscribe(subscription);
      subscription.end_(error || null);
    }
  }
}
