// The script tag's globals, declared by "statehub/global" (only where it is imported).
import type {} from "statehub/global";
import type { Client } from "statehub";

export const client: Client = globalThis.Statehub;
export const read = (key: string) => AtomKV.get<number>(key);
