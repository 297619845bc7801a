// The globals that the script tag (`<script src="https://statehub.example/">`, or dist/statehub.js
// of the npm package) defines. In the npm package: `import type {} from "statehub/global"`.
import type { AtomKVApi, Client } from "./statehub";

declare global {
  /** Defined by the script tag. */
  var Statehub: Client;
  /** Defined by the script tag. */
  var AtomKV: AtomKVApi;
}
