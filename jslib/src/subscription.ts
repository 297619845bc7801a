// One subscription: its resume position, duplicate filter and rebuild after a reset. Transports feed
// it the events of the stream they open for it (in WebSocket shape); it delivers each change once.
import type { Change, EventMeta } from "../statehub";
import type { BroadcastEvent, ChangeEvent, GoDuration, Position, ReadyEvent, ResetEvent } from "./protocol";

/** Delivers a change, or null when the state is complete (after `ready`). */
export type Sink = (change: Change | null) => void;

export class Subscription {
  /** The last position, sent as `since` when subscribing again. */
  position_: Position = "";
  /** Duplicate filter: every event up to (seq, key) was delivered; key "" (after `ready`) covers the whole seq. */
  deliveredSeq_ = -1;
  deliveredKey_ = "";
  /** key -> seq of its last delivered change: the state the consumer knows. */
  knownSeqs_ = new Map<string, number>();
  /** While a snapshot or a rebuild after a reset is under way: the keys it sent. */
  rebuildKeys_: Set<string> | null;
  /** The position when the rebuild began. */
  rebuildFromSeq_ = -1;

  /** Transport state: the id of the current `sub` request (WebSocket), a retry timer, retries since `ready`. */
  requestId_ = 0;
  retryTimer_?: ReturnType<typeof setTimeout>;
  retries_ = 0;

  readonly path_: string;
  /** The server's throttle interval for this subscription, sent with every `sub` (or SSE query). */
  readonly throttle_?: GoDuration;
  readonly deliver_: Sink;
  /** Receives the broadcasts of the subscription's path (onBroadcast), set before it is sent: such a subscription asks for broadcasts alone. Others drop them. */
  broadcast_?: (msg: unknown, path: string) => void;
  /** Called once with the error that ended the subscription, or with null when the client closes. */
  end_: (error: unknown) => void;

  // No parameter properties: esbuild would set them by their unmangled names.
  constructor(path: string, snapshot: boolean, deliver: Sink, end: (error: unknown) => void, throttle?: GoDuration) {
    this.path_ = path;
    this.throttle_ = throttle;
    this.deliver_ = deliver;
    this.end_ = end;
    this.rebuildKeys_ = snapshot ? new Set() : null;
  }

  /** A snapshot or rebuild is under way: the consumer's state is incomplete. */
  get rebuilding_() {
    return !!this.rebuildKeys_;
  }

  /** The fields of the next `sub` request (or SSE query): broadcasts alone (onBroadcast); else a new snapshot while one is incomplete, or resume; the throttle. */
  resumeFields_(): { snapshot?: true; since?: Position; throttle?: GoDuration; broadcasts?: true } {
    if (this.broadcast_) return { broadcasts: true };
    const throttle = this.throttle_ ? { throttle: this.throttle_ } : {};
    if (this.rebuildKeys_) {
      this.rebuildKeys_ = new Set();
      return { snapshot: true, ...throttle };
    }
    return this.position_ ? { since: this.position_, ...throttle } : throttle;
  }

  /** Takes the next event of the stream. */
  receive_(event: ChangeEvent | ResetEvent | ReadyEvent | BroadcastEvent) {
    // A broadcast has no position: nothing else changes.
    if (event.type == "broadcast") return this.broadcast_?.(event.msg, event.path);
    const { seq } = event;
    if (event.type == "reset") return this.beginRebuild_();
    if (event.type == "ready") {
      const rebuilt = this.rebuildKeys_;
      if (rebuilt) {
        // Keys the consumer knows that the new state lacks were deleted in the gap.
        for (const key of [...this.knownSeqs_.keys()])
          if (!rebuilt.has(key)) {
            this.knownSeqs_.delete(key);
            this.deliver_([key, null, -1, { type: "delete", seq, revision: -1, snapshot: true }]);
          }
        this.rebuildKeys_ = null;
      }
      if (seq >= this.deliveredSeq_) {
        this.deliveredSeq_ = seq;
        this.deliveredKey_ = "";
        this.position_ = "" + seq;
      }
      this.retries_ = 0;
      return this.deliver_(null);
    }
    // An event of a type this client does not know is skipped.
    if (event.type != "set" && event.type != "delete") return;
    const { type, key, revision } = event;
    if (event.snapshot) {
      this.beginRebuild_();
      this.rebuildKeys_!.add(key);
      const known = this.knownSeqs_.get(key);
      // Unchanged since the consumer saw it (or, for a key it does not know, since before the position): skip.
      if (known === undefined ? seq <= this.rebuildFromSeq_ : known === seq) return;
    } else {
      if (seq < this.deliveredSeq_ || (seq == this.deliveredSeq_ && (!this.deliveredKey_ || key <= this.deliveredKey_))) return;
      this.rebuildKeys_?.add(key);
      this.deliveredSeq_ = seq;
      this.deliveredKey_ = key;
      this.position_ = `${key}:${revision}:${seq}`;
    }
    const meta: EventMeta = { type, seq, revision, snapshot: !!event.snapshot };
    if (event.presence) meta.presence = event.presence;
    if (event.reason) meta.reason = event.reason;
    if (type == "delete") {
      this.knownSeqs_.delete(key);
      this.deliver_([key, null, -1, meta]);
    } else {
      this.knownSeqs_.set(key, seq);
      this.deliver_([key, event.value, revision, meta]);
    }
  }

  private beginRebuild_() {
    if (!this.rebuildKeys_) {
      this.rebuildKeys_ = new Set();
      this.rebuildFromSeq_ = this.deliveredSeq_;
    }
  }
}
