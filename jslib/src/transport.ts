// The seam between the client's API and the network. Two implementations: the WebSocket (ws.ts), and
// HTTP requests with one EventSource per subscription (http.ts), the fallback. The client holds one
// and replaces the WebSocket with the fallback when the WebSocket cannot connect.
import { StatehubError } from "./error";
import type { RequestMessage, Results } from "./protocol";
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
}

/** A request sent and not yet answered. */
export interface PendingRequest {
  message_: RequestMessage;
  resolve_: (answer: any) => void;
  reject_: (error: unknown) => void;
}

export const closedError = () => new StatehubError("client closed", "closed", 0);

/** Exponential backoff with full jitter, capped at 10 s: the delay before retry number `retries` (from 0). */
export const backoff = (retries: number) => Math.random() * Math.min(1e4, 250 * 2 ** retries);

/** A random id of letters and digits (a valid key component, and an idempotency key). */
export const randomId = () => Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => (b % 36).toString(36)).join("");
