// Uses every function of the package, with strict types. Compiled by the repository's TypeScript
// (node16 and bundler resolution) and run in Node.js and in Chromium by e2e/npm.test.mjs.
import Statehub, {
  AtomKV,
  bind,
  Client,
  connect,
  StatehubError,
  type AtomKVApi,
  type Change,
  type ConnectionState,
  type EventMeta,
  type ListPage,
  type Lock,
  type MemberChange,
  type OnDisconnect,
  type Presence,
  type PresenceOwner,
  type TxOp,
  type TxOpResult,
  type TxResult,
  type WriteResult,
} from "statehub";

// Type-level checks: Expect<Equal<A, B>> compiles only when A and B are the same type.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
type IsAny<T> = 0 extends 1 & T ? true : false;

interface Doc {
  title: string;
  n: number;
}

export const exported: [Client, AtomKVApi, typeof bind, typeof StatehubError] = [Statehub, AtomKV, bind, StatehubError];

// @ts-expect-error: the module declares no globals (the script tag's are in "statehub/global")
export const noGlobal = globalThis.Statehub;

// @ts-expect-error: an op the server does not know is a type error
export const unknownOp: TxOp = { op: "append", key: "/k", value: 1 };

/** Resolves when `ready` returns true for a value that `subscribe` hands to its callback. */
const when = <T>(subscribe: (cb: (value: T) => void) => () => void, ready: (value: T) => boolean) =>
  new Promise<T>((resolve) => {
    let stop: (() => void) | undefined;
    let done = false;
    stop = subscribe((value) => {
      if (done || !ready(value)) return;
      done = true;
      stop ? stop() : Promise.resolve().then(() => stop!());
      resolve(value);
    });
  });

/** Every function of a client, against the server at `url`; answers what it saw. */
export async function run(url: string) {
  const hub: Client = connect(url);
  const states: ConnectionState[] = [];
  const stopStates = hub.onState((state) => states.push(state));
  const base = "/npm/" + Math.random().toString(36).slice(2);

  const written: WriteResult = await hub.set<Doc>(`${base}/doc`, { title: "a", n: 1 }, { ttl: "1h" });
  const [doc, revision] = await hub.get<Doc>(`${base}/doc`);
  type _get = Expect<Equal<typeof doc, Doc | null>>;
  const updated = await hub.update<Doc>(`${base}/doc`, { title: "b", n: 2 }, revision + 1);
  type _update = Expect<Equal<typeof updated, WriteResult | false>>;
  const conflict = await hub.update<Doc>(`${base}/doc`, { title: "c", n: 3 }, 0);
  const counted: number = await hub.incr(`${base}/n`, 5);
  const page: ListPage<Doc> = await hub.list<Doc>(`${base}/`, { limit: 10 });
  const transacted: number = await hub.transact<number>(`${base}/t`, (value, rev) => (value ?? 0) + rev + 2);

  const ops: TxOp<number>[] = [
    { op: "set", key: `${base}/x`, value: 7 },
    { op: "incr", key: `${base}/n`, by: 2 },
    { op: "delete", key: `${base}/absent` },
  ];
  const tx: TxResult = await hub.tx([{ key: `${base}/doc`, revision: 1 }], ops);
  type _tx = Expect<Equal<typeof tx.results, TxOpResult[]>> | Expect<Equal<IsAny<typeof tx>, false>>;
  const txValue: number | undefined = tx.results[1].value;
  const txConflict = await hub.tx([{ key: `${base}/doc`, revision: 0 }], []).then(
    () => null,
    (error: unknown) => (error instanceof StatehubError ? [error.code, error.status, error.data.key] : String(error)),
  );

  // on(): the current value first, then the changes.
  const seen: [string, Doc | null, number, boolean][] = [];
  const onDone = when<EventMeta>(
    (cb) =>
      hub.on<Doc>(`${base}/doc`, (key, value, rev, meta) => {
        seen.push([key, value, rev, meta.snapshot]);
        cb(meta);
      }),
    (meta) => !meta.snapshot,
  );
  const absent = await when<number>((cb) => hub.on(`${base}/none`, (_key, _value, rev) => cb(rev)), () => true);
  await when<number>((cb) => hub.on(`${base}/doc`, (_key, _value, rev) => cb(rev)), () => true); // live now
  await hub.set<Doc>(`${base}/doc`, { title: "d", n: 4 });
  await onDone;

  // subscribe(): an async iterator; watch(): the subtree as an object.
  const changes = hub.subscribe<number>(`${base}/s/`, { snapshot: true });
  await hub.set(`${base}/s/a`, 1);
  let first: Change<number> | undefined;
  for await (const change of changes) {
    first = change;
    break;
  }
  const watched = await when<Record<string, number>>(
    (cb) => hub.watch<number>(`${base}/s/`, (state, key) => key === null && cb({ ...state })),
    () => true,
  );

  // Locks.
  const lock: Lock = await hub.lock(`${base}/lock`, { ttl: "30s", owner: "npm test" });
  const held = await hub.lock(`${base}/lock`).then(
    () => "acquired twice",
    (error: StatehubError) => error.code,
  );
  await lock.renew();
  await lock.release();

  // Presence.
  let presence: Presence<{ name: string }> | undefined;
  const members = await when<Record<string, { name: string }>>(
    (cb) => {
      presence = hub.presence(`${base}/room`, { name: "ann" }, (m, change?: MemberChange<{ name: string }>) => cb(m));
      return () => {};
    },
    (m) => Object.keys(m).length == 1,
  );
  // On-disconnect writes, and this client's presence: its connection, as the room shows it.
  const onDisconnect: OnDisconnect<string> = hub.onDisconnect(`${base}/status`);
  await onDisconnect.set("offline");
  await onDisconnect.remove();
  await onDisconnect.cancel();
  const owner: PresenceOwner | undefined = presence!.owners[presence!.id];
  const conn: string | undefined = hub.conn;
  const presenceConn = typeof conn == "string" && owner?.conn === conn;
  await presence!.leave();

  const deleted: number = await hub.delete(`${base}/`);
  const other = hub.connect(url);
  const again = await other.get(`${base}/doc`);
  other.close();
  stopStates();
  const state: ConnectionState = hub.state;
  hub.close();
  return {
    written: Object.keys(written).sort(),
    doc,
    updated: !!updated,
    conflict,
    counted,
    listed: page.entries.map((e) => e.key.slice(base.length)),
    transacted,
    tx: tx.results.map((r) => [r.key.slice(base.length), r.revision, r.value ?? null]),
    txValue,
    txConflict: Array.isArray(txConflict) ? [txConflict[0], txConflict[1], String(txConflict[2]).slice(base.length)] : txConflict,
    seen: seen.map(([key, value, rev, snapshot]) => [key.slice(base.length), value, rev, snapshot]),
    absent,
    first: first && [first[0].slice(base.length), first[1], first[2], first[3].snapshot],
    watched: Object.entries(watched).map(([key, value]) => [key.slice(base.length), value]),
    fence: typeof lock.fence,
    held,
    members: Object.values(members),
    presenceConn,
    deleted,
    again,
    states,
    state,
  };
}

/** The requests alone, over fetch (transport "sse"): what a runtime without WebSocket or EventSource can do. */
export async function fetchOnly(url: string) {
  const hub = connect(url, { transport: "sse" });
  const key = "/npm/fetch/" + Math.random().toString(36).slice(2);
  const written = await hub.set(key, { ok: true });
  const read = await hub.get<{ ok: boolean }>(key);
  const counted = await hub.incr(key + "-n");
  const tx = await hub.tx([{ key, revision: written.revision }], [{ op: "delete", key }]);
  const subscription = await hub
    .subscribe(key)
    .next()
    .then(
      () => "subscribed",
      (error: StatehubError) => error.code,
    );
  hub.close();
  return { read, counted, tx: tx.results.length, subscription };
}
