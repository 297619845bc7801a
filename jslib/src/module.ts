// Entry point of the ES module (/statehub.mjs). Its API is declared in ../statehub.d.ts.
import type { Client as Declared, ConnectOptions } from "../statehub";
import { atomkv } from "./atomkv";
import { Client } from "./client";
import { bind as bindTo } from "./dom";

export { Client } from "./client";
export { StatehubError } from "./error";

/** The client of the server that served this module. */
export const Statehub = new Client(import.meta.url);
export const AtomKV = atomkv(Statehub);
export const connect = (url: string, opts?: ConnectOptions) => new Client(url, opts);
export const bind = (client: Declared = Statehub) => bindTo(client);
export default Statehub;
