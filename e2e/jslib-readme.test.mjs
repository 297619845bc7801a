// The examples of jslib/README.md run as written: each fenced code block is run against a fresh
// server, with https://statehub.example replaced by the server's address:
//
//   html      a page, loaded in Chromium from another origin; its module scripts must complete
//   js        an ES module, run in a page of another origin in Chromium (as a module script)
//   js node   an ES module run by Node.js, with the npm package (go run ./jslib/npm) installed
//   ts        TypeScript, type-checked strictly (node16 resolution) against the package, then run by Node.js
//   sh        not run (shell commands: npm install)
//
// A block of any other kind fails the test, so that no example goes unrun. The server verifies
// JWTs (the token example's page serves one at /statehub-token) and grants anonymous callers
// write on every key, as the examples' app would configure it.
//
// Run alone:  node --test e2e/jslib-readme.test.mjs

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { buildServer, closeBrowser, getBrowser, makeTempDir, ROOT, scenarioTest, signJWT } from './harness.mjs';

const README = path.join(ROOT, 'jslib', 'README.md');
const PLACEHOLDER = 'https://statehub.example';
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const WEBSOCKET_FLAG = typeof WebSocket === 'undefined' ? ['--experimental-websocket'] : [];
const SECRET = crypto.randomBytes(32).toString('hex');
const SERVER_ARGS = [`-jwt-secret=${SECRET}`, '-anon={"write":["/"]}'];

// The fenced code blocks of a markdown text: {kind (the info string), code, line}.
function codeBlocks(markdown) {
  const blocks = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(.*)$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    while (++i < lines.length && lines[i] !== '```');
    blocks.push({ kind: open[1].trim(), code: lines.slice(start + 1, i).join('\n') + '\n', line: start + 1 });
  }
  return blocks;
}

function run(cmd, args, { cwd, timeout = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code: code ?? signal, output }); });
  });
}

// The page's origin: a server on 127.0.0.1 for the pages of one example.
async function serve(sc, pages) {
  const srv = http.createServer((req, res) => {
    const name = new URL(req.url, 'http://x').pathname;
    const page = pages[name];
    if (!page) return res.writeHead(name === '/favicon.ico' ? 204 : 404).end();
    res.writeHead(200, { 'content-type': page.type, 'cache-control': 'no-store' }).end(page.body());
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  sc.pageServers.push({ close: () => new Promise((resolve) => { srv.closeAllConnections(); srv.close(resolve); }) });
  return `http://127.0.0.1:${srv.address().port}`;
}

// The module scripts of a page, each loaded by a module script that records its promise in
// window.examples: the same code, run as a module, whose completion (top-level await included)
// the test can wait for.
function trackModules(html) {
  return html.replace(/<script type="module">([\s\S]*?)<\/script>/g, (_, code) => {
    const source = JSON.stringify(code).replaceAll('<', '\\u003c');
    return '<script type="module">(window.examples ||= []).push(import(URL.createObjectURL('
      + `new Blob([${source}], { type: "text/javascript" }))));</script>`;
  });
}

const blocks = codeBlocks(fs.readFileSync(README, 'utf8'));
let app; // a project with the npm package in node_modules, for the node and ts examples

before(async () => {
  await Promise.all([buildServer(), getBrowser()]);
  app = makeTempDir('readme');
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'readme', private: true, type: 'module' }));
  const res = await run('go', ['run', './jslib/npm', path.join(app, 'node_modules', 'statehub')], { cwd: ROOT, timeout: 5 * 60_000 });
  if (res.code !== 0) throw new Error(`go run ./jslib/npm failed:\n${res.output}`);
}, { timeout: 6 * 60_000 });

after(() => closeBrowser());

test('jslib/README.md: every code block is of a kind this test runs', () => {
  const kinds = blocks.map((b) => b.kind);
  assert.ok(kinds.filter((k) => k !== 'sh').length >= 8, `only ${kinds.length} examples: ${kinds.join(', ')}`);
  for (const { kind, line } of blocks) assert.ok(['html', 'js', 'js node', 'ts', 'sh'].includes(kind), `README line ${line}: a block of kind "${kind}"`);
});

for (const { kind, code, line } of blocks) {
  if (!['html', 'js', 'js node', 'ts'].includes(kind)) continue;
  const title = code.split('\n').find((l) => /\S/.test(l) && !/^(<!doctype|import |<script src)/i.test(l.trim()))?.trim().slice(0, 60);
  scenarioTest(test, `jslib/README.md line ${line} (${kind}): ${title}`, async (sc) => {
    const server = await sc.server({ memory: true, args: SERVER_ARGS });
    const source = code.replaceAll(PLACEHOLDER, server.url);

    if (kind === 'js node' || kind === 'ts') {
      const name = `example-${line}`;
      let script = `${name}.mjs`;
      if (kind === 'ts') {
        fs.writeFileSync(path.join(app, `${name}.ts`), source);
        fs.writeFileSync(path.join(app, `tsconfig-${name}.json`), JSON.stringify({
          compilerOptions: {
            strict: true, target: 'ES2022', module: 'node16', moduleResolution: 'node16', lib: ['ES2022', 'DOM'],
            types: [], rootDir: '.', outDir: 'out', skipLibCheck: false,
          },
          files: [`${name}.ts`],
        }));
        const checked = await run(process.execPath, [TSC, '-p', `tsconfig-${name}.json`], { cwd: app });
        assert.equal(checked.code, 0, `tsc:\n${checked.output}`);
        script = path.join('out', `${name}.js`);
      } else {
        fs.writeFileSync(path.join(app, script), source);
      }
      const ran = await run(process.execPath, [...WEBSOCKET_FLAG, script], { cwd: app, timeout: 30_000 });
      sc.log(ran.output);
      assert.equal(ran.code, 0, `node ${script}:\n${ran.output}`);
      return;
    }

    const origin = await serve(sc, {
      '/example.html': { type: 'text/html; charset=utf-8', body: () => trackModules(source) },
      '/blank.html': { type: 'text/html; charset=utf-8', body: () => '<!doctype html><title>example</title><body></body>' },
      '/statehub-token': {
        type: 'text/plain',
        body: () => signJWT(SECRET, { sub: 'ann', exp: Math.floor(Date.now() / 1000) + 600, grants: { write: ['/users/{sub}/'] } }),
      },
    });
    const context = await (await getBrowser()).newContext();
    sc.contexts.push(context);
    const page = await context.newPage();
    const errors = [];
    page.on('console', (msg) => {
      sc.log(`[example] console.${msg.type()}: ${msg.text()}`);
      if (msg.type() === 'error') errors.push(msg.text());
    });
    page.on('pageerror', (err) => sc.pageErrors.push(`[example] uncaught: ${err.stack || err.message}`));
    if (kind === 'html') {
      await page.goto(`${origin}/example.html`);
      await page.evaluate(() => Promise.all(window.examples || []));
    } else {
      await page.goto(`${origin}/blank.html`);
      await page.evaluate((code) => import(URL.createObjectURL(new Blob([code], { type: 'text/javascript' }))), source);
    }
    assert.deepEqual(errors, [], 'no errors on the console');
    assert.deepEqual(sc.pageErrors, [], 'no uncaught errors');
  });
}
