// The fallback transport: requests over fetch, subscriptions over EventSource (PROTOCOL.md, HTTP and SSE).
import { StatehubError } from "./error";
import { backoff, type Sub } from "./sub";
import type { Conn, Msg } from "./ws";

const parse = (t: string) => {
  try {
    return JSON.parse(t);
  } catch {
    return t;
  }
};

/** Performs a WebSocket request message over HTTP and answers as the WebSocket would. */
export async function request(c: Conn, m: Msg): Promise<any> {
  const { op, key, path, value, ttl, revision } = m;
  const h: Record<string, string> = {};
  const q = new URLSearchParams();
  let url = c.base + (key || path);
  let method = "POST";
  let body: string | undefined;
  if (c.token) h.Authorization = "Bearer " + c.token;
  if (m.idem) h["Idempotency-Key"] = m.idem;
  if (ttl) q.set("ttl", ttl);
  if (op == "set" || op == "cas") body = JSON.stringify(value);
  if (op == "cas") method = "PUT";
  if ((op == "cas" || op == "delete") && revision != null) h["X-Revision"] = "" + revision;
  if (op == "get" || op == "list") method = "GET";
  if (op == "delete") method = "DELETE";
  if (op == "incr") q.set("incr", "" + (m.by ?? 1));
  if (op == "list") for (const k of ["limit", "cursor", "keys", "children"]) m[k] != null && m[k] !== false && q.set(k, "" + m[k]);
  if (op == "tx") (url = c.base + "/.tx"), (body = JSON.stringify({ checks: m.checks, ops: m.ops }));
  // Locks: POST /key?lock[&renew] and DELETE /key?lock, the lock token in X-Lock-Token.
  if (/lock|renew/.test(op)) q.set("lock", ""), m.token && (h["X-Lock-Token"] = m.token);
  if (op == "renew") q.set("renew", "");
  if (op == "unlock") method = "DELETE";
  for (const k of ["owner", "wait"]) m[k] && q.set(k, m[k]);
  if (body) h["Content-Type"] = "application/json";
  const r = await fetch(url + (q + "" ? "?" + q : ""), { method, headers: h, body });
  const d = parse(await r.text());
  if (!r.ok) throw new StatehubError(d?.error || r.statusText, d?.code || (r.status == 404 ? "not_found" : "http"), r.status, d);
  const n = (x: string) => +r.headers.get(x)!;
  return op == "get" || op == "incr" ? { value: d, revision: n("X-Revision"), seq: n("X-Seq") } : d;
}

/** Opens the EventSource of a subscription; on an error or `close` it is opened again from the last position. */
export function openSSE(c: Conn, s: Sub) {
  const q = new URLSearchParams(s.since() as Record<string, string>);
  if (c.token) q.set("token", c.token);
  const es = (s.es = new EventSource(c.base + s.path + "?" + q));
  const again = (n: number) => {
    es.close();
    s.t = setTimeout(() => c.subs.has(s) && openSSE(c, s), n);
  };
  for (const t of ["message", "delete", "ready", "reset", "close"])
    es.addEventListener(t, (e) => {
      if (t == "close") return again(100 + backoff(1));
      const { data, lastEventId } = e as MessageEvent;
      const d = parse(data);
      const [key, rev, seq, snap] = lastEventId.split(":");
      s.ev(t == "ready" || t == "reset" ? { type: t, seq: d.seq } : { type: t == "message" ? "set" : t, key, value: d, revision: +rev, seq: +seq, snapshot: !!snap });
    });
  es.onerror = () => again(backoff(s.n++));
}
