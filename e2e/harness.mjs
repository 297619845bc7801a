// End-to-end harness: the real statehub binary, a separate static page server (another origin, so
// CORS is exercised) and Debian's headless Chromium driven by playwright-core.
//
// Every resource a scenario creates (server processes, temp dirs, browser contexts, the page server)
// is released when the scenario ends, also when it fails or times out, and a process-exit hook kills
// whatever is still alive. Nothing here sleeps as an assertion: waits poll a condition with a deadline.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.dirname(E2E_DIR);
export const TMP_DIR = path.join(E2E_DIR, '.tmp');
export const BINARY = path.join(TMP_DIR, 'statehub');
export const PAGES_DIR = path.join(E2E_DIR, 'pages');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// Exactly the Chromium switches the project runs with; the harness adds only a fresh profile dir and
// the pipe playwright talks over.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const BUILD_TIMEOUT_MS = 5 * 60_000;
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
const HTTP_TIMEOUT_MS = 10_000;
export const WAIT_TIMEOUT_MS = 20_000;

// ---------------------------------------------------------------------------------------------------
// Process-wide cleanup: children and temp dirs that are still around when node exits.

const liveChildren = new Set();
const tempDirs = new Set();

function cleanupSync() {
  for (const child of liveChildren) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
  liveChildren.clear();
  for (const dir of tempDirs) {
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
  tempDirs.clear();
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    cleanupSync();
    process.exit(128 + (os.constants.signals[sig] || 0));
  });
}

export function makeTempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `statehub-e2e-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

function removeTempDir(dir) {
  tempDirs.delete(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------------
// Small utilities.

export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function isTimeoutError(err) {
  return err && (err.name === 'TimeoutError' || /Timeout \d+ms exceeded/.test(String(err.message)));
}

// One HTTP request without connection reuse, so a server restart never leaves a stale pooled socket.
export function request(baseUrl, method, urlPath, { body, headers = {}, timeout = HTTP_TIMEOUT_MS } = {}) {
  return new Promise((resolve, reject) => {
    const url = new URL(urlPath, baseUrl);
    const hdrs = { ...headers };
    let payload;
    if (body !== undefined) {
      payload = Buffer.from(typeof body === 'string' && hdrs['content-type'] ? body : JSON.stringify(body));
      if (!hdrs['content-type']) hdrs['content-type'] = 'application/json';
      hdrs['content-length'] = String(payload.length);
    }
    const req = http.request(url, { method, headers: hdrs, agent: false, timeout }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out after ${timeout} ms`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------------
// The statehub binary.

let buildPromise;

// Builds the server once per test process (go's own cache makes a rebuild cheap anyway).
// E2E_STATEHUB_BIN names a prebuilt binary to use instead (for working on the harness itself).
export function buildServer() {
  if (!buildPromise) buildPromise = process.env.E2E_STATEHUB_BIN ? Promise.resolve(process.env.E2E_STATEHUB_BIN) : doBuild();
  return buildPromise;
}

async function doBuild() {
  fs.mkdirSync(TMP_DIR, { recursive: true });
  const partial = `${BINARY}.${process.pid}`;
  const started = Date.now();
  const { code, output } = await new Promise((resolve, reject) => {
    const child = spawn('go', ['build', '-o', partial, '.'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    liveChildren.add(child);
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), BUILD_TIMEOUT_MS);
    child.on('error', (err) => { clearTimeout(timer); liveChildren.delete(child); reject(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      resolve({ code: code ?? signal, output });
    });
  });
  if (code !== 0) {
    fs.rmSync(partial, { force: true });
    throw new Error(`go build -o e2e/.tmp/statehub . failed (${code}):\n${output}`);
  }
  // rename over the old file: safe even if a stale server still executes it.
  fs.renameSync(partial, BINARY);
  process.stderr.write(`[e2e] built ${path.relative(ROOT, BINARY)} in ${Date.now() - started} ms\n`);
  return BINARY;
}

export class StatehubServer {
  constructor({ port, dataDir, sync = 'always', args = [], log }) {
    this.port = port;
    this.dataDir = dataDir;
    this.sync = sync;
    this.extraArgs = args;
    this.log = log;
    this.child = null;
    this.exited = null;
    this.starts = 0;
  }

  get url() { return `http://127.0.0.1:${this.port}`; }

  get pid() { return this.child?.pid; }

  async start() {
    const bin = await buildServer();
    const args = [`-addr=127.0.0.1:${this.port}`, `-data=${this.dataDir}`, `-sync=${this.sync}`, ...this.extraArgs];
    const env = { ...process.env };
    for (const name of Object.keys(env)) if (name.startsWith('STATEHUB_')) delete env[name];
    const label = `server#${++this.starts}`;
    this.log(`[${label}] ${path.relative(ROOT, bin)} ${args.join(' ')}`);
    const child = spawn(bin, args, { cwd: this.dataDir || os.tmpdir(), env, stdio: ['ignore', 'pipe', 'pipe'] });
    liveChildren.add(child);
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => { liveChildren.delete(child); resolve({ code, signal }); });
      child.on('error', (err) => { liveChildren.delete(child); resolve({ code: null, signal: null, error: err }); });
    });
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (d) => {
        const lines = (rest + d).split('\n');
        rest = lines.pop();
        for (const line of lines) this.log(`[${label}] ${line}`);
      });
      stream.on('end', () => { if (rest) this.log(`[${label}] ${rest}`); });
    }
    let exit = null;
    this.exited.then((e) => { exit = e; });
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exit) {
        const why = exit.error ? exit.error.message : `exit code ${exit.code}, signal ${exit.signal}`;
        throw new Error(`statehub exited during start-up (${why}); see the server log above`);
      }
      try {
        const res = await request(this.url, 'GET', '/.health', { timeout: 1000 });
        if (res.status === 200) return this;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`statehub did not answer 200 on ${this.url}/.health within ${START_TIMEOUT_MS} ms`);
      }
      await delay(50);
    }
  }

  // SIGTERM, then SIGKILL after a timeout. Answers how the process ended.
  async stop({ timeout = STOP_TIMEOUT_MS } = {}) {
    const child = this.child;
    if (!child) return { code: null, signal: null, forced: false };
    this.child = null;
    if (child.exitCode !== null || child.signalCode !== null) {
      return { ...(await this.exited), forced: false };
    }
    child.kill('SIGTERM');
    let forced = false;
    let result = await withTimeout(this.exited, timeout, 'SIGTERM').catch(() => null);
    if (!result) {
      forced = true;
      this.log(`[server] still running ${timeout} ms after SIGTERM: SIGKILL`);
      child.kill('SIGKILL');
      result = await withTimeout(this.exited, 5000, 'SIGKILL').catch(() => ({ code: null, signal: 'unkillable' }));
    }
    return { ...result, forced };
  }

  // Stops the server and starts it again on the same port and data dir. Answers how it stopped.
  async restart() {
    const stopped = await this.stop();
    await this.start();
    return stopped;
  }

  request(method, urlPath, options) { return request(this.url, method, urlPath, options); }

  // A request that must succeed (2xx): answers the parsed JSON body (or the text).
  async must(method, urlPath, options) {
    const res = await this.request(method, urlPath, options);
    if (res.status < 200 || res.status > 299) {
      throw new Error(`${method} ${urlPath} answered ${res.status}: ${res.text}`);
    }
    return res.json !== undefined ? res.json : res.text;
  }

  // POST /key: an unconditional set; answers {key, revision, seq}.
  set(key, value) { return this.must('POST', encodeKey(key), { body: value }); }

  async get(key) {
    const res = await this.request('GET', encodeKey(key));
    if (res.status === 404) return { value: null, revision: -1, status: 404 };
    if (res.status !== 200) throw new Error(`GET ${key} answered ${res.status}: ${res.text}`);
    return { value: res.json, revision: Number(res.headers['x-revision']), seq: Number(res.headers['x-seq']), status: 200 };
  }

  delete(key) { return this.must('DELETE', encodeKey(key)); }
}

export function encodeKey(key) {
  return key.split('/').map(encodeURIComponent).join('/');
}

// ---------------------------------------------------------------------------------------------------
// The static page server: a different origin from the API. Pages name the API as {{API}}.

export class PageServer {
  constructor(apiUrl, log) {
    this.apiUrl = apiUrl;
    this.log = log;
    this.server = null;
    this.port = null;
  }

  get origin() { return `http://127.0.0.1:${this.port}`; }

  url(page) { return `${this.origin}/${page}`; }

  async start() {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 1000;
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    return this;
  }

  handle(req, res) {
    const name = decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '');
    const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };
    const type = types[path.extname(name)];
    const file = path.join(PAGES_DIR, name);
    if (!type || !/^[\w.-]+$/.test(name) || !fs.existsSync(file)) {
      res.writeHead(name === 'favicon.ico' ? 204 : 404, { 'cache-control': 'no-store' });
      res.end();
      return;
    }
    const body = fs.readFileSync(file, 'utf8').replaceAll('{{API}}', this.apiUrl);
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  }

  async close() {
    if (!this.server) return;
    const srv = this.server;
    this.server = null;
    srv.closeAllConnections?.();
    await withTimeout(new Promise((resolve) => srv.close(() => resolve())), 5000, 'closing the page server').catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------------
// Chromium, one per test process; every scenario uses fresh contexts.

let browserPromise;
let browserProfile;

export function getBrowser() {
  if (!browserPromise) {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install it (apt-get install -y chromium); the e2e tests never download a browser`);
    }
    browserProfile = makeTempDir('chromium');
    browserPromise = chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      ignoreDefaultArgs: true,
      args: [...CHROMIUM_ARGS, `--user-data-dir=${browserProfile}`, '--remote-debugging-pipe'],
      timeout: 30_000,
    });
  }
  return browserPromise;
}

export async function closeBrowser() {
  if (!browserPromise) return;
  const pending = browserPromise;
  browserPromise = null;
  try {
    const browser = await pending;
    await withTimeout(browser.close(), 15_000, 'closing Chromium');
  } catch (err) {
    process.stderr.write(`[e2e] ${err.message}\n`);
  } finally {
    if (browserProfile) removeTempDir(browserProfile);
    browserProfile = null;
  }
}

// An HS256 JWT with `claims`, signed with `secret` (the server's -jwt-secret).
export function signJWT(secret, claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${body}.${crypto.createHmac('sha256', secret).update(body).digest('base64url')}`;
}

// Opens a page on another origin (a server on 127.0.0.1 of its own) that loads the client script
// from `api` (the server, or a proxy), in a browser context of its own; both released with `sc`.
export async function openClientPage(sc, api, label) {
  const html = `<!doctype html><title>${label}</title><script src="${api}/"></script><p>${label}</p>`;
  const srv = http.createServer((req, res) => {
    if (req.url === '/page.html') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    else res.writeHead(req.url === '/favicon.ico' ? 204 : 404).end();
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  sc.pageServers.push({ close: () => new Promise((resolve) => { srv.closeAllConnections(); srv.close(resolve); }) });
  const context = await (await getBrowser()).newContext();
  sc.contexts.push(context);
  const page = await context.newPage();
  page.label = label;
  page.on('console', (msg) => sc.log(`[${label}] console.${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => sc.pageErrors.push(`[${label}] uncaught: ${err.stack || err.message}`));
  await page.goto(`http://127.0.0.1:${srv.address().port}/page.html`);
  return page;
}

// ---------------------------------------------------------------------------------------------------
// A scenario: what one test uses, released at its end.

export class Scenario {
  constructor(name) {
    this.name = name;
    this.lines = [];
    this.servers = [];
    this.pageServers = [];
    this.contexts = [];
    this.pageErrors = [];
    this.forwarded = new Map();
    this.dirs = [];
    this.closed = false;
  }

  log(line) {
    this.lines.push(line);
    if (this.lines.length > 3000) this.lines.splice(0, this.lines.length - 2000);
  }

  // Console errors and warnings go to the test output; a line repeated more than 3 times is counted
  // instead and summed up when the scenario ends.
  forward(line) {
    const n = (this.forwarded.get(line) || 0) + 1;
    this.forwarded.set(line, n);
    if (n <= 3) process.stderr.write(`${line}\n`);
  }

  dumpLog(reason) {
    process.stderr.write(`\n---- ${this.name}: ${reason}; server log and page console (last lines) ----\n`);
    for (const line of this.lines.slice(-300)) process.stderr.write(`${line}\n`);
    process.stderr.write(`---- end of log ----\n`);
  }

  // A statehub server on a free port with a fresh data dir ({memory: true} for no data dir).
  async server({ memory = false, sync = 'always', args = [] } = {}) {
    let dataDir = '';
    if (!memory) {
      dataDir = makeTempDir('data');
      this.dirs.push(dataDir);
    }
    let lastErr;
    for (let attempt = 0; attempt < 3; attempt++) {
      const srv = new StatehubServer({ port: await freePort(), dataDir, sync, args, log: (l) => this.log(l) });
      this.servers.push(srv);
      try {
        return await srv.start();
      } catch (err) {
        lastErr = err;
        // another process may have taken the port between probing and binding: try a new one
        if (!this.lines.slice(-20).some((l) => /address already in use/i.test(l))) break;
      }
    }
    throw lastErr;
  }

  async pageServer(apiUrl) {
    const ps = await new PageServer(apiUrl, (l) => this.log(l)).start();
    this.pageServers.push(ps);
    return ps;
  }

  // A new page in a new browser context (or in `context`), loaded from the page server.
  async open(pages, pageName, { label, context } = {}) {
    const browser = await getBrowser();
    if (!context) {
      context = await browser.newContext();
      this.contexts.push(context);
    }
    const page = await context.newPage();
    label = label || `page${this.contexts.length}`;
    page.label = label;
    page.setDefaultTimeout(WAIT_TIMEOUT_MS);
    page.on('console', (msg) => {
      const line = `[${label}] console.${msg.type()}: ${msg.text()}`;
      this.log(line);
      if (msg.type() === 'error' || msg.type() === 'warning') this.forward(line);
    });
    page.on('pageerror', (err) => {
      const line = `[${label}] uncaught: ${err.stack || err.message}`;
      this.log(line);
      this.pageErrors.push(line);
      this.forward(line);
    });
    page.on('requestfailed', (req) => {
      this.log(`[${label}] request failed: ${req.method()} ${req.url()} ${req.failure()?.errorText || ''}`);
    });
    const url = pages.url(pageName);
    const res = await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
    if (!res || !res.ok()) throw new Error(`loading ${url} answered ${res && res.status()}`);
    const defined = await page.evaluate(() => [typeof Statehub, typeof AtomKV, typeof E2E]);
    if (defined[0] === 'undefined' || defined[1] === 'undefined') {
      throw new Error(`${label}: the client script at ${pages.apiUrl}/ did not define Statehub and AtomKV (typeof: ${defined.join(', ')})`);
    }
    return page;
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    const errors = [];
    const attempt = async (what, fn) => {
      try { await withTimeout(Promise.resolve().then(fn), 20_000, what); } catch (err) { errors.push(err); }
    };
    for (const ctx of this.contexts.splice(0)) await attempt('closing a browser context', () => ctx.close());
    for (const ps of this.pageServers.splice(0)) await attempt('closing the page server', () => ps.close());
    for (const srv of this.servers.splice(0)) await attempt(`stopping statehub on port ${srv.port}`, () => srv.stop());
    for (const dir of this.dirs.splice(0)) await attempt(`removing ${dir}`, () => removeTempDir(dir));
    for (const [line, n] of this.forwarded) {
      if (n > 3) process.stderr.write(`${line}  (${n} times in all)\n`);
    }
    this.forwarded.clear();
    if (errors.length) process.stderr.write(`[e2e] cleanup of ${this.name}: ${errors.map((e) => e.message).join('; ')}\n`);
  }
}

// Runs fn(scenario) as a node:test test with a deadline; on failure the server log and the pages'
// console are printed; resources are always released.
export function scenarioTest(test, name, fn, { timeout = 60_000 } = {}) {
  test(name, { timeout: timeout + 30_000 }, async (t) => {
    const sc = new Scenario(name);
    t.after(() => sc.close());
    try {
      await withTimeout(fn(sc, t), timeout, name);
      if (sc.pageErrors.length) {
        throw new Error(`uncaught errors in pages:\n${sc.pageErrors.join('\n')}`);
      }
    } catch (err) {
      sc.dumpLog(`failed: ${err.message.split('\n')[0]}`);
      throw err;
    } finally {
      await sc.close();
    }
  });
}

// ---------------------------------------------------------------------------------------------------
// Waiting on pages.

// Waits until fn(arg) is truthy in the page. On timeout the error names `what` and, when given,
// the page's state as answered by describe(arg).
export async function waitInPage(page, what, fn, arg, { timeout = WAIT_TIMEOUT_MS, describe } = {}) {
  try {
    return await page.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (err) {
    if (!isTimeoutError(err)) throw err;
    let state = '';
    if (describe) {
      try { state = `\nstate: ${JSON.stringify(await page.evaluate(describe, arg))}`.slice(0, 4000); } catch { /* page gone */ }
    }
    throw new Error(`${page.label || 'page'}: ${what}: not reached within ${timeout} ms${state}`);
  }
}

// Waits until the page's E2E log `name` has at least n entries matching filter (a key prefix to
// exclude: probe writes).
export function waitForLog(page, name, n, { exclude, timeout } = {}) {
  return waitInPage(page, `${n} events in log "${name}"`,
    ({ name, n, exclude }) => E2E.get(name, exclude).length >= n,
    { name, n, exclude: exclude || null },
    { timeout, describe: ({ name, exclude }) => ({ events: E2E.get(name, exclude), error: E2E.errors }) });
}

export function readLog(page, name, { exclude } = {}) {
  return page.evaluate(({ name, exclude }) => E2E.get(name, exclude), { name, exclude: exclude || null });
}

// Subscriptions give no "now live" signal in AtomKV's API: write `probeKey` (from node, over HTTP)
// until every target's log shows it. Everything written after this is seen by a live subscription.
export async function probeUntilLive(server, targets, probeKey, { timeout = WAIT_TIMEOUT_MS } = {}) {
  const deadline = Date.now() + timeout;
  for (let i = 0; ; i++) {
    await server.set(probeKey, `probe-${i}`);
    try {
      await Promise.all(targets.map(({ page, log }) => page.waitForFunction(
        ({ log, key }) => E2E.get(log).some((e) => e[0] === key),
        { log, key: probeKey }, { timeout: 500, polling: 25 })));
      return i + 1;
    } catch (err) {
      if (!isTimeoutError(err)) throw err;
      if (Date.now() > deadline) {
        const missing = [];
        for (const { page, log } of targets) {
          const got = await readLog(page, log).catch(() => []);
          if (!got.some((e) => e[0] === probeKey)) missing.push(`${page.label}/${log}`);
        }
        throw new Error(`subscriptions never delivered writes to ${probeKey} within ${timeout} ms: ${missing.join(', ')}`);
      }
    }
  }
}
