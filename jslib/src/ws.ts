// The WebSocket transport: one WebSocket to /.ws multiplexes every request and subscription, and
// reconnects with backoff and resumes. When it fails twice before it ever opened, it hands its
// requests and subscriptions to the fallback the client gave it (http.ts) and retires.
import { StatehubError } from "./error";
import type { RequestMessage, Results, ServerMessage, SubRequest, SubscriptionEvent, UnsubRequest } from "./protocol";
import type { Subscription } from "./subscription";
import { backoff, closedError, Connectivity, expiry, randomId, type PendingRequest, type Shared, type Transport } from "./transport";

/** Takes over the requests and subscriptions of a WebSocket that could never connect. */
export type FallBack = (requests: PendingRequest[], subscriptions: Subscription[]) => void;

interface SocketRequest extends PendingRequest {
  /** Sent again on the next connection; false for `auth` and `sub`, which each connection sends anew. */
  resend_: boolean;
}

export class WebSocketTransport extends Connectivity implements Transport {
  private socket_: WebSocket | null = null;
  /** Getting the token before a dial. */
  private dialing_ = false;
  /** The socket is open: requests are sent at once, else when it opens. */
  private open_ = false;
  /** A socket opened once: never fall back after that. */
  private everOpened_ = false;
  /** Dials that failed before any opened. */
  private failedDials_ = 0;
  /** Reconnects since a connection was last accepted: the exponent of the backoff. */
  private reconnects_ = 0;
  private redialTimer_?: ReturnType<typeof setTimeout>;
  /** Sends a fresh token before the current one expires. */
  private reauthTimer_?: ReturnType<typeof setTimeout>;
  private closed_ = false;
  /** Reasons to stay connected besides requests, subscriptions and ephemeral keys (state listeners, a probe). */
  private holds_ = 0;
  private lastId_ = 0;
  /** Requests waiting for their answer, by id. */
  private pending_ = new Map<number, SocketRequest>();
  private subscriptions_ = new Set<Subscription>();
  /** Subscriptions by the id of their current `sub` request. */
  private subscriptionsById_ = new Map<number, Subscription>();
  /** Called once, when a connection is first accepted: the client's probe takes this transport into use. */
  onAccepted_?: () => void;

  /** The server's origin. */
  private readonly url_: string;
  /** Without a fallback the WebSocket never gives up (transport "ws"). */
  private readonly fallBack_?: FallBack;
  /** Failed dials before falling back: 2, or 1 for a probe. */
  private readonly dialsBeforeFallBack_: number;

  // No parameter properties: esbuild would set them by their unmangled names.
  constructor(url: string, shared: Shared, fallBack?: FallBack, dialsBeforeFallBack = 2) {
    super(shared);
    this.url_ = url;
    this.fallBack_ = fallBack;
    this.dialsBeforeFallBack_ = dialsBeforeFallBack;
  }

  request<R extends RequestMessage>(message: R): Promise<Results[R["op"]]> {
    return this.send_(message, true);
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

  hold_(holds: number) {
    this.holds_ = holds;
    if (holds) this.dial_();
  }

  /** Dials with a token fresh from the token function (when there is one). */
  private dial_() {
    if (this.socket_ || this.dialing_ || this.redialTimer_ || this.closed_) return;
    this.dialing_ = true;
    this.shared_.token_.get_(true).then(
      (token) => {
        this.dialing_ = false;
        if (!this.closed_) this.connect_(token);
      },
      (error) => {
        // The token function failed: what waits fails with its error, subscriptions wait for the next try.
        this.dialing_ = false;
        this.rejectWaiting_(error);
        this.lost_(false);
      },
    );
  }

  private connect_(token?: string) {
    let socket: WebSocket;
    try {
      socket = this.socket_ = new this.shared_.WebSocket_!(this.url_.replace(/^http/, "ws") + "/.ws");
    } catch {
      return this.lost_(true);
    }
    socket.onopen = () => this.opened_(socket, token);
    socket.onmessage = (e) => this.receive_(JSON.parse(e.data));
    socket.onclose = () => {
      if (this.socket_ != socket) return;
      this.open_ = false;
      for (const [id, request] of this.pending_) if (!request.resend_) this.pending_.delete(id);
      this.subscriptionsById_.clear();
      this.lost_(true);
    };
  }

  private opened_(socket: WebSocket, token?: string) {
    this.open_ = this.everOpened_ = true;
    if (token)
      this.send_({ op: "auth", token }, false).then(
        () => this.accepted_(token),
        (error) => this.refused_(error),
      );
    // Subscriptions first, so that they see the writes queued after them.
    for (const subscription of this.subscriptions_) this.sendSub_(subscription);
    for (const request of this.pending_.values()) if (request.resend_) socket.send(JSON.stringify(request.message_));
    // Claim the ephemeral keys again, unless a write of the key is queued anyway; register the
    // on-disconnect writes again (this connection's replace the old one's), unless queued.
    const queued = new Set<string>();
    const queuedDisc = new Set<string>();
    for (const { message_ } of this.pending_.values())
      if ("key" in message_) (message_.op == "ondisconnect" ? queuedDisc : queued).add(message_.key);
    for (const message of this.shared_.disc_.values()) if (!queuedDisc.has(message.key)) this.send_({ ...message }, false).catch(() => {});
    for (const [key, write] of this.shared_.ephemeral_)
      if (!queued.has(key)) this.send_({ ...write, idem: randomId() }, true).catch(() => {});
    if (!token) this.accepted_();
  }

  /** The server accepted the connection (and its token). */
  private accepted_(token?: string) {
    this.reconnects_ = 0;
    this.up_();
    if (token) this.scheduleReauth_(token);
    const hook = this.onAccepted_;
    this.onAccepted_ = undefined;
    hook?.();
  }

  /**
   * A token function's JWT is replaced on the open connection before it expires (op `auth` again):
   * at a minute before its `exp` (half the time left when that is less than two minutes), at least
   * 5 s from now. When the function gives the same token again, it is asked again later; past the
   * token's `exp` (and the server's leeway) the server closes the connection and the next one asks it anew.
   */
  private scheduleReauth_(token: string) {
    clearTimeout(this.reauthTimer_);
    const exp = expiry(token);
    if (!exp || !this.shared_.token_.refreshable_) return;
    const left = exp - Date.now();
    const socket = this.socket_;
    this.reauthTimer_ = setTimeout(
      () =>
        this.shared_.token_.get_(true).then(
          (fresh) => {
            if (this.socket_ != socket || !this.open_) return;
            if (!fresh || fresh == token) return this.scheduleReauth_(token);
            this.send_({ op: "auth", token: fresh }, false).then(
              () => this.scheduleReauth_(fresh),
              () => this.scheduleReauth_(token),
            );
          },
          () => this.socket_ == socket && this.scheduleReauth_(token),
        ),
      Math.min(2 ** 31 - 1, Math.max(5e3, left - Math.min(6e4, left / 2))),
    );
  }

  /** The server refused the token of a new connection (and closes it). */
  private refused_(error: unknown) {
    // A string token will not get better: the client ends.
    if (!this.shared_.token_.refreshable_) return this.close(error);
    // A token function may give a good token for the next connection: what waits fails, subscriptions wait.
    this.rejectWaiting_(error);
  }

  /** Rejects the requests waiting for an answer or a connection (not the subscriptions' `sub`). */
  private rejectWaiting_(error: unknown) {
    for (const [id, request] of this.pending_)
      if (request.resend_) {
        this.pending_.delete(id);
        request.reject_(error);
      }
  }

  /**
   * The socket closed or could not open (`dialFailed`; false: the token function failed): dial again
   * later, or hand everything to the fallback.
   */
  private lost_(dialFailed: boolean) {
    this.socket_ = null;
    clearTimeout(this.reauthTimer_);
    if (this.closed_) return;
    if (dialFailed && this.fallBack_ && !this.everOpened_ && ++this.failedDials_ >= this.dialsBeforeFallBack_) {
      this.closed_ = true;
      const requests = [...this.pending_.values()].filter((request) => request.resend_);
      const subscriptions = [...this.subscriptions_];
      this.pending_.clear();
      this.subscriptions_.clear();
      this.fallBack_(requests, subscriptions);
      return;
    }
    this.down_(this.subscriptions_);
    if (this.pending_.size || this.subscriptions_.size || this.shared_.ephemeral_.size || this.shared_.disc_.size || this.holds_)
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
    if ("conn" in message && message.conn) this.shared_.conn_ = message.conn;
    message.ok ? request.resolve_(message) : request.reject_(new StatehubError(message.error, message.code, message.status, message));
  }

  private receiveEvent_(event: SubscriptionEvent) {
    const subscription = this.subscriptionsById_.get(event.sub);
    if (!subscription) return;
    if (event.type != "close") {
      subscription.receive_(event);
      if (event.type == "ready") this.caughtUp_(subscription);
      return;
    }
    // The server ended this subscription (slow consumer, shutdown): subscribe again from its position.
    this.subscriptionsById_.delete(event.sub);
    this.interrupted_(subscription);
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
      // Overload and server faults are retried; a refused token function's token waits for the next
      // connection; anything else (a forbidden path) ends the subscription.
      if (error.status == 429 || error.status >= 500)
        subscription.retryTimer_ = setTimeout(() => this.open_ && this.sendSub_(subscription), 1e3 + backoff(subscription.retries_++));
      else if (error.status != 401 || !this.shared_.token_.refreshable_) this.unsubscribe(subscription), subscription.end_(error);
    });
    subscription.requestId_ = message.id!;
    this.subscriptionsById_.set(message.id!, subscription);
  }

  unsubscribe(subscription: Subscription) {
    this.subscriptions_.delete(subscription);
    this.subscriptionsById_.delete(subscription.requestId_);
    clearTimeout(subscription.retryTimer_);
    this.caughtUp_(subscription, true);
    if (this.open_) {
      const message: UnsubRequest = { op: "unsub", id: ++this.lastId_, sub: subscription.requestId_ };
      this.socket_!.send(JSON.stringify(message));
    }
  }

  close(error?: unknown) {
    this.closed_ = true;
    clearTimeout(this.redialTimer_);
    clearTimeout(this.reauthTimer_);
    this.socket_?.close();
    this.socket_ = null;
    this.open_ = false;
    for (const request of this.pending_.values()) request.reject_(error || closedError());
    this.pending_.clear();
    this.ended_();
    for (const subscription of [...this.subscriptions_]) {
      this.unsubscribe(subscription);
      subscription.end_(error || null);
    }
  }
}
