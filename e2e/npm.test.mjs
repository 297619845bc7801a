// The npm package of the client: `go run ./jslib/npm` writes it (the bundles jslib.Build makes for
// the server), `npm pack` packs it, a fresh project installs the tarball offline, the repository's
// TypeScript checks a program that uses every function (jslib/testdata/npm/app.ts) strictly with
// node16 and bundler resolution, and the program runs against the real server in Node.js and in
// Chromium, with the package's script build beside it.
//
// Run alone:  node --test e2e/npm.test.mjs

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { buildServer, closeBrowser, getBrowser, makeTempDir, ROOT, scenarioTest } from './harness.mjs';

const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const FIXTURES = path.join(ROOT, 'jslib', 'testdata', 'npm');
// Node 20 has WebSocket only behind a flag; later versions have it by default.
const WEBSOCKET_FLAG = typeof WebSocket === 'undefined' ? ['--experimental-websocket'] : [];

// Runs a command; answers its exit code and output. A timeout kills it.
function run(cmd, args, { cwd, timeout = 120_000, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code: code ?? signal, stdout, stderr }); });
  });
}

async function must(cmd, args, opts) {
  const res = await run(cmd, args, opts);
  if (res.code !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${opts?.cwd}) failed (${res.code}):\n${res.stdout}\n${res.stderr}`);
  return res;
}

const npmEnv = { npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };

let dir;      // the temp dir: pkg/ (the package), the tarball, app/ (the project that installs it)
let packed;   // npm pack --json's answer
let app;

before(async () => {
  await Promise.all([buildServer(), getBrowser()]);
  dir = makeTempDir('npm');
  const pkg = path.join(dir, 'pkg');
  await must('go', ['run', './jslib/npm', pkg], { cwd: ROOT });
  [packed] = JSON.parse((await must('npm', ['pack', pkg, '--json', '--pack-destination', dir], { cwd: dir, env: npmEnv })).stdout);
  app = path.join(dir, 'app');
  fs.mkdirSync(path.join(app, 'src'), { recursive: true });
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await must('npm', ['install', '--offline', '--no-audit', '--no-fund', path.join(dir, packed.filename)], { cwd: app, env: npmEnv });
  for (const name of ['app.ts', 'global.ts']) fs.copyFileSync(path.join(FIXTURES, name), path.join(app, 'src', name));
  fs.writeFileSync(path.join(app, 'run.mjs'), [
    'const [name, url] = process.argv.slice(2);',
    'const app = await import("./out/app.js");',
    'console.log(JSON.stringify(await app[name](url)));',
  ].join('\n'));
}, { timeout: 6 * 60_000 });

after(() => closeBrowser());

test('npm pack: the package holds the bundles, their declarations, README and LICENSE', () => {
  assert.equal(packed.name, 'statehub');
  assert.equal(packed.version, '0.1.0');
  assert.deepEqual(packed.files.map((f) => f.path).sort(),
    ['LICENSE', 'README.md', 'dist/global.d.ts', 'dist/statehub.d.mts', 'dist/statehub.js', 'dist/statehub.mjs', 'package.json']);
  const installed = path.join(app, 'node_modules', 'statehub');
  const manifest = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'));
  assert.equal(manifest.license, 'Apache-2.0');
  assert.deepEqual(manifest.exports['.'], { types: './dist/statehub.d.mts', import: './dist/statehub.mjs', default: './dist/statehub.mjs' });
  assert.match(fs.readFileSync(path.join(installed, 'LICENSE'), 'utf8'), /Apache License/);
  assert.doesNotMatch(fs.readFileSync(path.join(installed, 'dist', 'statehub.d.mts'), 'utf8'), /declare global/);
});

scenarioTest(test, 'npm: the bundles are the ones the server serves', async (sc) => {
  const server = await sc.server({ memory: true });
  const dist = path.join(app, 'node_modules', 'statehub', 'dist');
  for (const [file, url] of [['statehub.mjs', '/statehub.mjs'], ['statehub.js', '/statehub.js']]) {
    const served = await server.request('GET', url);
    assert.equal(served.status, 200);
    assert.equal(fs.readFileSync(path.join(dist, file), 'utf8'), served.text, `dist/${file} is ${url}`);
  }
});

test('npm: strict TypeScript type-checks a program that uses every function (node16 and bundler resolution; the globals only from statehub/global)', async () => {
  const base = {
    strict: true, target: 'ES2022', module: 'node16', moduleResolution: 'node16', lib: ['ES2022'], types: [],
    rootDir: 'src', outDir: 'out', skipLibCheck: false,
  };
  const configs = {
    'tsconfig.json': { compilerOptions: base, files: ['src/app.ts'] },
    'tsconfig.bundler.json': { compilerOptions: { ...base, module: 'esnext', moduleResolution: 'bundler', noEmit: true }, files: ['src/app.ts'] },
    'tsconfig.global.json': { compilerOptions: { ...base, noEmit: true }, files: ['src/global.ts'] },
  };
  for (const [name, config] of Object.entries(configs)) {
    fs.writeFileSync(path.join(app, name), JSON.stringify(config, null, 2));
    await must(process.execPath, [TSC, '-p', name], { cwd: app });
  }
  assert.ok(fs.existsSync(path.join(app, 'out', 'app.js')), 'tsc wrote out/app.js');
});

// What run() in app.ts answers, wherever it runs.
function checkRun(got, where) {
  const want = {
    written: ['revision', 'seq'],
    doc: { title: 'a', n: 1 },
    updated: true,
    conflict: false,
    counted: 5,
    listed: ['/doc', '/n'],
    transacted: 1,
    tx: [['/x', 0, null], ['/n', 1, 7], ['/absent', -1, null]],
    txValue: 7,
    txConflict: ['revision_conflict', 409, '/doc'],
    seen: [['/doc', { title: 'b', n: 2 }, 1, true], ['/doc', { title: 'd', n: 4 }, 2, false]],
    absent: -1,
    first: ['/s/a', 1, 0, false],
    watched: [['/s/a', 1]],
    fence: 'number',
    held: 'locked',
    members: [{ name: 'ann' }],
    presenceConn: true,
    deleted: 5,
    again: [null, -1],
    states: ['connecting', 'online'],
    state: 'online',
  };
  assert.deepEqual(got, want, `run() in ${where}`);
}

scenarioTest(test, 'npm: the program runs in Node.js, with a WebSocket, and over fetch alone', async (sc) => {
  assert.ok(fs.existsSync(path.join(app, 'out', 'app.js')), 'the type-check test compiled the program');
  const server = await sc.server({ memory: true });
  const full = await must(process.execPath, [...WEBSOCKET_FLAG, 'run.mjs', 'run', server.url], { cwd: app, timeout: 60_000 });
  checkRun(JSON.parse(full.stdout), 'Node.js');
  // Without WebSocket and EventSource (Node 20 without flags), requests go over fetch and
  // subscriptions end with code "unsupported".
  const fetched = await must(process.execPath, ['run.mjs', 'fetchOnly', server.url], { cwd: app, timeout: 60_000 });
  const got = JSON.parse(fetched.stdout);
  assert.deepEqual(got, {
    read: [{ ok: true }, 0], counted: 1, tx: 1,
    subscription: typeof EventSource === 'undefined' ? 'unsupported' : 'subscribed',
  });
});

// Serves the app's directory on 127.0.0.1 (another origin than the server's).
async function serveApp(sc, pages) {
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript' };
  const srv = http.createServer((req, res) => {
    const name = new URL(req.url, 'http://x').pathname;
    const file = path.join(app, path.normalize(name));
    const body = pages[name] ?? (file.startsWith(app) && fs.existsSync(file) && fs.statSync(file).isFile() ? fs.readFileSync(file) : null);
    if (body == null) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': types[path.extname(name)] || 'application/octet-stream', 'cache-control': 'no-store' }).end(body);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  sc.pageServers.push({ close: () => new Promise((resolve) => { srv.closeAllConnections(); srv.close(resolve); }) });
  return `http://127.0.0.1:${srv.address().port}`;
}

async function newPage(sc, label) {
  const context = await (await getBrowser()).newContext();
  sc.contexts.push(context);
  const page = await context.newPage();
  page.on('console', (msg) => sc.log(`[${label}] console.${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => sc.pageErrors.push(`[${label}] uncaught: ${err.stack || err.message}`));
  return page;
}

scenarioTest(test, 'npm: the installed ES module runs the program in Chromium and defines no globals; the script build defines them', async (sc) => {
  assert.ok(fs.existsSync(path.join(app, 'out', 'app.js')), 'the type-check test compiled the program');
  const server = await sc.server({ memory: true });
  const origin = await serveApp(sc, {
    '/module.html': '<!doctype html><script type="importmap">{"imports": {"statehub": "/node_modules/statehub/dist/statehub.mjs"}}</script><p>module</p>',
    '/script.html': `<!doctype html><script src="/node_modules/statehub/dist/statehub.js" data-server="${server.url}"></script><p>script</p>`,
  });

  const page = await newPage(sc, 'module');
  await page.goto(`${origin}/module.html`);
  const got = await page.evaluate(async (url) => {
    const app = await import('/out/app.js');
    return { result: await app.run(url), globals: [typeof globalThis.Statehub, typeof globalThis.AtomKV] };
  }, server.url);
  checkRun(got.result, 'Chromium');
  assert.deepEqual(got.globals, ['undefined', 'undefined'], 'the ES module defines no globals');

  const script = await newPage(sc, 'script');
  await script.goto(`${origin}/script.html`);
  const viaScript = await script.evaluate(async () => {
    await Statehub.set('/npm/script', 'from dist/statehub.js');
    return { url: Statehub.url, get: await AtomKV.get('/npm/script') };
  });
  assert.deepEqual(viaScript, { url: server.url, get: ['from dist/statehub.js', 0] }, 'the script build, its server named by data-server');
  assert.equal((await server.get('/npm/script')).value, 'from dist/statehub.js');
});
