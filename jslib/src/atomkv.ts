// AtomKV's JavaScript API, exactly: get, set, update, subscribe.
import type { AtomKVApi } from "../statehub";
import type { Client } from "../statehub";

export const atomkv = (c: Client): AtomKVApi => ({
  get: (key) => c.get(key),
  set: async (key, value) => {
    await c.set(key, value);
  },
  update: (key, value, revision) => c.update(key, value, revision).then((written) => !!written),
  async *subscribe(keypath: string) {
    for await (const [k, v, r] of c.subscribe(keypath)) yield [k, v, r];
  },
});
