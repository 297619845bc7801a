// One subscription: its resume position, duplicate filter and rebuild after a reset.
import type { Change } from "../statehub";

/** An event of a subscription, as the WebSocket sends it (SSE events are converted to this shape). */
export interface Ev {
  type: string;
  seq: number;
  key?: string;
  value?: any;
  revision?: number;
  snapshot?: boolean;
  reason?: string;
}

/** Delivers a change, or null when the state is complete (after `ready`). */
export type Sink = (c: Change | null) => void;

export class Sub {
  /** The id of the current `sub` request (WebSocket). */
  id = 0;
  /** The last position, sent as `since` when subscribing again. */
  pos = "";
  /** Duplicate filter: everything up to (seq, key) was delivered; key "" after `ready` means the whole seq. */
  seq = -1;
  key = "";
  /** key -> seq of its last delivered change: what the consumer knows. */
  known = new Map<string, number>();
  /** While a snapshot or rebuild is under way: the keys it sent. */
  rs: Set<string> | null;
  /** The position when the rebuild began. */
  rseq = -1;
  /** Transport state: the EventSource (SSE), a retry timer and the number of retries since `ready`. */
  es?: EventSource;
  t?: ReturnType<typeof setTimeout>;
  n = 0;

  constructor(
    public path: string,
    snapshot: boolean,
    public fn: Sink,
    /** Called with an error, or with null when the client closes. */
    public err: (e: any) => void,
  ) {
    this.rs = snapshot ? new Set() : null;
  }

  /** The fields of the next `sub` request: a (new) snapshot while one is incomplete, else resume. */
  since(): { snapshot?: true; since?: string } {
    return this.rs ? ((this.rs = new Set()), { snapshot: true }) : this.pos ? { since: this.pos } : {};
  }

  ev(e: Ev) {
    const { type, seq } = e;
    const key = e.key!;
    if (type == "reset") return this.begin();
    if (type == "ready") {
      if (this.rs) {
        // Keys the consumer knows that the new state lacks were deleted in the gap.
        for (const k of [...this.known.keys()])
          if (!this.rs.has(k)) {
            this.known.delete(k);
            this.fn([k, null, -1, { type: "delete", seq, revision: -1, snapshot: true }]);
          }
        this.rs = null;
      }
      if (seq >= this.seq) (this.seq = seq), (this.key = ""), (this.pos = "" + seq);
      this.n = 0;
      return this.fn(null);
    }
    if (type != "set" && type != "delete") return;
    if (e.snapshot) {
      this.begin();
      this.rs!.add(key);
      const k = this.known.get(key);
      // Unchanged since the consumer saw it (or since before the position, for an unknown key): skip.
      if (k === undefined ? seq <= this.rseq : k === seq) return;
    } else {
      if (seq < this.seq || (seq == this.seq && (!this.key || key <= this.key))) return;
      this.rs?.add(key);
      this.seq = seq;
      this.key = key;
      this.pos = `${key}:${e.revision}:${seq}`;
    }
    const del = type == "delete";
    del ? this.known.delete(key) : this.known.set(key, seq);
    this.fn([key, del ? null : e.value, del ? -1 : e.revision!, { type, seq, revision: e.revision!, snapshot: !!e.snapshot }]);
  }

  begin() {
    if (!this.rs) (this.rs = new Set()), (this.rseq = this.seq);
  }
}

/** A random id of letters and digits (a valid key component). */
export const rand = () => Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => (b % 36).toString(36)).join("");

/** Exponential backoff with full jitter, capped at 10 s. */
export const backoff = (n: number) => Math.random() * Math.min(1e4, 250 * 2 ** n);
