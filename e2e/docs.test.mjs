// The page examples of README.md run as written: each ```html block is served as a page from
// another origin, with its https://statehub.example or http://localhost:8000 pointed at a fresh
// server, and loaded in Chromium. No page may throw, and each example does what the README says
// it does (the checks below, found by a line of the example; an example without one is only
// loaded). README.md's shell examples run in docs_test.go; jslib/README.md's examples have a test
// of their own.
//
// Run alone:  node --test e2e/docs.test.mjs

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { buildServer, closeBrowser, getBrowser, ROOT, scenarioTest, waitInPage } from './harness.mjs';

const README = path.join(ROOT, 'README.md');
const SERVER_URL = /https:\/\/statehub\.example|http:\/\/localhost:8000/g;

// The ```html blocks of a markdown text, with the line of their opening fence.
function htmlBlocks(markdown) {
  const blocks = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '```html') continue;
    const start = i;
    while (++i < lines.length && lines[i].trim() !== '```');
    blocks.push({ code: lines.slice(start + 1, i).join('\n') + '\n', line: start + 1 });
  }
  return blocks;
}

// Serves one page at /page.html from another origin than the server's.
async function servePage(sc, html) {
  const srv = http.createServer((req, res) => {
    const name = new URL(req.url, 'http://x').pathname;
    if (name !== '/page.html') return res.writeHead(name === '/favicon.ico' ? 204 : 404).end();
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  sc.pageServers.push({ close: () => new Promise((resolve) => { srv.closeAllConnections(); srv.close(resolve); }) });
  const origin = `http://127.0.0.1:${srv.address().port}`;
  return { url: (name) => `${origin}/${name}` };
}

// The console.log calls of a browser context's pages, each as the JSON values of its arguments.
function recordLogs(context) {
  const logs = [];
  context.on('console', async (msg) => {
    if (msg.type() !== 'log') return;
    logs.push(await Promise.all(msg.args().map((a) => a.jsonValue().catch(() => undefined))));
  });
  return logs;
}

async function until(what, fn, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const got = await fn();
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const text = (page, selector) => page.locator(selector).first().textContent();

// What each example says it does, found by a line the example holds.
const checks = [
  {
    // The introduction: a subscription to /room/1/ and a write to /room/1/ann, which it logs.
    holds: "Statehub.on('/room/1/'",
    async check({ server, page, logs }) {
      await until('the write of /room/1/ann is logged by the subscription', () =>
        logs.find((args) => args[0] === '/room/1/ann'));
      const logged = logs.find((args) => args[0] === '/room/1/ann');
      assert.deepEqual(logged, ['/room/1/ann', { x: 10, y: 20 }, 0]);
      assert.deepEqual((await server.get('/room/1/ann')).value, { x: 10, y: 20 });
      void page;
    },
  },
  {
    // The quick start's page: a view counter, the message of the day live, and a log of it.
    holds: 'data-statehub-count="/views/quickstart"',
    async check({ sc, server, page, logs, pages }) {
      const count = 'b[data-statehub-count="/views/quickstart"]';
      const motd = 'b[data-statehub-value="/motd"]';
      await waitInPage(page, 'the page counts its view', (sel) => document.querySelector(sel)?.textContent === '1', count);
      await server.set('/motd', 'hello from curl'); // the README's curl command
      await waitInPage(page, 'the message shows live', (sel) => document.querySelector(sel)?.textContent === 'hello from curl', motd);
      await until('the page logs the message', () => logs.find((args) => args[0] === 'the message is now' && args[1] === 'hello from curl'));
      // "open the page in a second tab and both count the views live"
      const second = await sc.open(pages, 'page.html', { label: 'tab2' });
      for (const p of [page, second]) {
        await waitInPage(p, 'both tabs show two views', (sel) => document.querySelector(sel)?.textContent === '2', count);
      }
      assert.equal(await text(second, motd), 'hello from curl');
    },
  },
];

before(async () => {
  await buildServer();
  await getBrowser();
}, { timeout: 6 * 60_000 });

after(() => closeBrowser());

const blocks = htmlBlocks(fs.readFileSync(README, 'utf8'));

test('README.md has page examples, and every check finds its example', () => {
  assert.ok(blocks.length > 0, 'no ```html block in README.md');
  for (const c of checks) {
    assert.ok(blocks.some((b) => b.code.includes(c.holds)), `no example of README.md holds ${c.holds}: update e2e/docs.test.mjs with the README`);
  }
});

for (const block of blocks) {
  const name = `README.md:${block.line}: the page example runs as written`;
  scenarioTest(test, name, async (sc) => {
    const server = await sc.server({ memory: true });
    const html = block.code.replace(SERVER_URL, server.url);
    const pages = await servePage(sc, html);
    const context = await (await getBrowser()).newContext();
    sc.contexts.push(context);
    const logs = recordLogs(context); // before the page loads: its first logs may come at once
    const page = await sc.open(pages, 'page.html', { label: `README.md:${block.line}`, context });
    const check = checks.find((c) => block.code.includes(c.holds));
    if (check) {
      await check.check({ sc, server, page, logs, pages });
    } else {
      await new Promise((resolve) => setTimeout(resolve, 1000)); // no check: it must only not throw
    }
  });
}
