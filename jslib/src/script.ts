// Entry point of the script tag (IIFE): the globals Statehub and AtomKV, and the declarative elements.
import { atomkv } from "./atomkv";
import { Client } from "./client";
import { bind } from "./dom";

const hub = new Client((document.currentScript as HTMLScriptElement | null)?.src || location.href);
globalThis.Statehub = hub;
globalThis.AtomKV = atomkv(hub);
bind(hub);
