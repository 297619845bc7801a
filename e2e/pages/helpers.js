// Loaded by the e2e pages after the Statehub client. Records what the client delivers, so the node
// side can wait on it (page.waitForFunction) and compare it with what was written.
(function () {
  'use strict';
  const logs = Object.create(null);
  const errors = [];
  const offs = Object.create(null);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  // A delete may arrive as null or undefined: record both as null.
  const entry = (key, value, revision) => [key, value === undefined ? null : value, revision];

  window.E2E = {
    errors,
    // The log `name`, without the entries of `excludeKey` (a probe key) when given.
    get(name, excludeKey) {
      const log = logs[name] || [];
      return excludeKey ? log.filter((e) => e[0] !== excludeKey) : log.slice();
    },
    log(name) {
      return logs[name] || (logs[name] = []);
    },
    // Consumes an async iterable of [key, value, revision] with `for await`; when delayMs is set, the
    // loop body awaits a slow promise before taking the next event (a busy consumer).
    iterate(name, iterable, delayMs) {
      const log = this.log(name);
      (async () => {
        try {
          for await (const [key, value, revision] of iterable) {
            log.push(entry(key, value, revision));
            if (delayMs) await sleep(delayMs);
          }
          errors.push(`${name}: the iterator ended`);
        } catch (err) {
          errors.push(`${name}: ${err && err.stack || err}`);
          console.error(`E2E iterate ${name}:`, err);
        }
      })();
    },
    // Statehub.on(path, cb) with a recording callback; off(name) unsubscribes.
    listen(name, path) {
      const log = this.log(name);
      offs[name] = Statehub.on(path, (key, value, revision) => { log.push(entry(key, value, revision)); });
    },
    off(name) {
      const off = offs[name];
      delete offs[name];
      if (typeof off === 'function') off();
    },
    // Blocks the main thread for ms milliseconds (a busy page).
    busy(ms) {
      const end = performance.now() + ms;
      while (performance.now() < end) { /* spin */ }
    },
  };
})();
