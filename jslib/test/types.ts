// Type-level test: the implementation (src/module.ts) matches the served declarations (statehub.d.ts).
// Checked by `npx tsc -p jslib --noEmit`; never bundled.
import * as D from "../statehub";
import * as M from "../src/module";

// Every declared export exists in the implementation with a compatible type...
export const exports: typeof D = M;
// ...and the implementation exports nothing undeclared, and its Client has no undeclared public member.
type Never<T extends never> = T;
export type NoExtraExports = Never<Exclude<keyof typeof M, keyof typeof D>>;
export type NoExtraMembers = Never<Exclude<keyof M.Client, keyof D.Client>>;
// Instances of the implementation are instances of the declared class.
export const client: D.Client = new M.Client("http://localhost:8000");
// The globals of the script tag have the declared types.
export const globals: [D.Client, D.AtomKVApi] = [globalThis.Statehub, globalThis.AtomKV];
