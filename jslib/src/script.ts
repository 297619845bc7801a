// Entry point of the script tag (IIFE): the globals Statehub and AtomKV, and the declarative elements.
// Statehub is the client of the server named by the script's data-server attribute (for a copy of
// the script served elsewhere, such as the npm package's on a CDN), else of the script's own origin.
import { atomkv } from "./atomkv";
import { Client } from "./client";
import { bind } from "./dom";

const script = document.currentScript as HTMLScriptElement | null;
const hub = new Client(script?.dataset.server || script?.src || location.href);
globalThis.Statehub = hub;
globalThis.AtomKV = atomkv(hub);
bind(hub);
