// Declarative HTML: <span data-statehub-value="/key"> shows a key's value live;
// <span data-statehub-count="/views/page"> counts the page view once and shows the live count.
import type { Client } from "../statehub";

const V = "data-statehub-value";
const C = "data-statehub-count";
const SEL = `[${V}],[${C}]`;

export function bind(hub: Client) {
  const bound = new Map<Element, () => void>();
  const counted = new Set<string>();
  const walk = (n: Node, f: (e: Element) => void) => {
    if (n instanceof Element) {
      if (n.matches(SEL)) f(n);
      n.querySelectorAll(SEL).forEach(f);
    }
  };
  const add = (el: Element) => {
    const c = el.getAttribute(C);
    const k = el.getAttribute(V) || c;
    if (bound.has(el) || !k) return;
    if (c && !counted.has(c)) counted.add(c), hub.incr(c).catch((e) => console.error("statehub:", c, e));
    bound.set(
      el,
      hub.watch(k, (st) => {
        const v = st[k];
        el.textContent = v == null ? "" : typeof v == "string" ? v : JSON.stringify(v);
      }),
    );
  };
  const drop = (el: Element) => {
    if (!el.isConnected) bound.get(el)?.(), bound.delete(el);
  };
  const start = () => {
    const root = document.documentElement;
    walk(root, add);
    new MutationObserver((ms) =>
      ms.forEach((m) => {
        m.removedNodes.forEach((n) => walk(n, drop));
        m.addedNodes.forEach((n) => walk(n, add));
      }),
    ).observe(root, { childList: true, subtree: true });
  };
  document.readyState == "loading" ? document.addEventListener("DOMContentLoaded", start) : start();
}
