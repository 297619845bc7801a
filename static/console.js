// The Statehub console. Browsing (listings and the live events of the browsed subtree) goes over one
// WebSocket (/.ws); a key's exact bytes (read, save, delete, increment, files) over HTTP.
//
// Values are JSON text from the wire to the screen and back: nothing here turns a value into a
// JavaScript number and back, so 12345678901234567890 and 1.50 stay exactly as written. Frames and
// listings are split with a small scanner (members, items) that keeps each value's source text.
//
// Every piece of data reaches the page through textContent or an attribute, never parsed as HTML.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN = 'statehub.console.token';
  const COMPONENT = /^[\p{L}\p{N}_-]+$/u;
  const PROBE = 'statehub-console-probe'; // the key name a prefix's write check asks about (never written)
  const MAX_EVENTS = 300;

  // ---- JSON text -----------------------------------------------------------------------------

  const WS = /\s*/y;
  const SCALAR = /[^\s,\]}]*/y;
  const ws = (s, i) => { WS.lastIndex = i; WS.test(s); return WS.lastIndex; };

  // skip answers the index just past the JSON value that starts at s[i] (after any white space).
  function skip(s, i) {
    i = ws(s, i);
    const c = s[i];
    if (c === '"') {
      for (i++; i < s.length && s[i] !== '"'; i++) if (s[i] === '\\') i++;
      return i + 1;
    }
    if (c === '{' || c === '[') {
      for (let depth = 0; i < s.length; i++) {
        const d = s[i];
        if (d === '"') i = skip(s, i) - 1;
        else if (d === '{' || d === '[') depth++;
        else if ((d === '}' || d === ']') && --depth === 0) return i + 1;
      }
      return i;
    }
    SCALAR.lastIndex = i;
    SCALAR.test(s);
    return SCALAR.lastIndex;
  }

  // members maps the names of a JSON object's text to the source text of their values.
  function members(s) {
    const m = new Map();
    let i = ws(s, 0);
    if (s[i] !== '{') return m;
    for (i = ws(s, i + 1); s[i] === '"';) {
      const k = skip(s, i);
      const v = ws(s, ws(s, k) + 1); // past the colon
      const e = skip(s, v);
      m.set(JSON.parse(s.slice(i, k)), s.slice(v, e));
      i = ws(s, e);
      if (s[i] === ',') i = ws(s, i + 1);
    }
    return m;
  }

  // items lists the source text of a JSON array's elements.
  function items(s) {
    const out = [];
    let i = ws(s, 0);
    if (s[i] !== '[') return out;
    for (i = ws(s, i + 1); i < s.length && s[i] !== ']';) {
      const e = skip(s, i);
      out.push(s.slice(i, e));
      i = ws(s, e);
      if (s[i] === ',') i = ws(s, i + 1);
    }
    return out;
  }

  const str = (raw) => (raw === undefined ? undefined : JSON.parse(raw)); // a string or small number, never a value

  // shown undoes the HTML-safe escapes Go's encoder puts in frames and listings (\u003c for "<"),
  // for display only: a value to edit is read over HTTP, byte for byte.
  const shown = (raw) => raw.replace(/\\(u00(?:3[cCeE]|26)|[\s\S])/g, (m, g) => (g.length > 1 ? String.fromCharCode(parseInt(g.slice(1), 16)) : m));

  // pretty re-indents JSON text without parsing it: strings and numbers are copied as they are.
  function pretty(s, indent = '  ') {
    let out = '';
    let depth = 0;
    const nl = () => `\n${indent.repeat(depth)}`;
    for (let i = 0; i < s.length;) {
      const c = s[i];
      if (c === '"') { const e = skip(s, i); out += s.slice(i, e); i = e; continue; }
      i++;
      if (/\s/.test(c)) continue;
      if (c === '{' || c === '[') {
        const j = ws(s, i);
        if (s[j] === (c === '{' ? '}' : ']')) { out += c + s[j]; i = j + 1; continue; }
        depth++;
        out += c + (indent ? nl() : '');
      } else if (c === '}' || c === ']') { depth--; out += (indent ? nl() : '') + c; }
      else if (c === ',') out += indent ? `,${nl()}` : ',';
      else if (c === ':') out += indent ? ': ' : ':';
      else out += c;
    }
    return out;
  }

  const isJSON = (text) => { try { JSON.parse(text); return true; } catch { return false; } }; // a check only
  const INTEGER = /^-?(0|[1-9]\d*)$/;

  // ---- keys and kinds ------------------------------------------------------------------------

  const isKey = (k) => k.length > 1 && !k.endsWith('/') && k.slice(1).split('/').every((c) => COMPONENT.test(c));
  const isPrefix = (p) => p === '/' || (p.endsWith('/') && isKey(p.slice(0, -1)));
  const parentOf = (k) => k.slice(0, k.lastIndexOf('/', k.length - 2) + 1);
  const nameOf = (k) => k.slice(parentOf(k).length);

  // A lock's value is {"owner","fence","expires"}; a stored file's {"type","size","sha256"}.
  function kindOf(e) {
    if (e.subtree) return 'subtree';
    if (INTEGER.test(e.raw)) return 'counter';
    if (e.raw[0] === '{') {
      const m = members(e.raw);
      if (m.size === 3 && ['owner', 'fence', 'expires'].every((n) => m.has(n))) return 'lock';
      if (m.size === 3 && /^"[^"\\]+"$/.test(m.get('type') || '') && /^\d+$/.test(m.get('size') || '') &&
        /^"[0-9a-f]{64}"$/.test(m.get('sha256') || '')) return 'file';
    }
    return 'value';
  }

  const fmtBytes = (n) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`);
  const fmtLocal = (d) => d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  const fmtShort = (d) => (d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : fmtLocal(d)); // local time
  function fmtIn(d) {
    const s = Math.round((d - Date.now()) / 1000);
    const a = Math.abs(s);
    const t = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 ? `${(a / 3600).toFixed(1)} h` : `${Math.round(a / 86400)} d`;
    return s >= 0 ? `in ${t}` : `${t} ago`;
  }
  const nf = new Intl.NumberFormat();

  function el(tag, props = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
    return e;
  }
  const show = (e, text, cls = '') => { e.textContent = text; e.className = `msg ${cls}`; };

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }
  const denied = (e) => e && (e.status === 401 || e.status === 403);
  const why = (e) => (e && e.code ? `${e.message} (${e.code})` : String((e && e.message) || e));

  // ---- token ---------------------------------------------------------------------------------

  const token = () => sessionStorage.getItem(TOKEN) || '';
  const authHeaders = () => (token() ? { Authorization: `Bearer ${token()}` } : {});

  // What the pasted token says of itself (a JWT's sub and exp), for the header only: the server
  // decides what it may do.
  function describeToken() {
    const t = token();
    if (!t) return 'No token';
    const parts = t.split('.');
    if (parts.length === 3) {
      try {
        const c = JSON.parse(atob(parts[1].replace(/-/g, '+').replace(/_/g, '/')));
        const bits = ['JWT'];
        if (typeof c.sub === 'string') bits.push(c.sub);
        if (typeof c.exp === 'number') bits.push(`expires ${new Date(c.exp * 1000).toLocaleTimeString()}`);
        return bits.join(' · ');
      } catch { /* not a JWT after all */ }
    }
    return 'Token set';
  }

  function setToken(t) {
    if (t) sessionStorage.setItem(TOKEN, t);
    else sessionStorage.removeItem(TOKEN);
    $('token').value = '';
    $('token-who').textContent = describeToken();
    $('token-menu').dataset.set = t ? 'yes' : '';
    show($('token-msg'), '');
    writable.clear();
    reconnect();
    browse(root);
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  const keyURL = (k, q = '') => k.split('/').map(encodeURIComponent).join('/') + q;

  async function http(method, path, { headers = {}, body, q = '' } = {}) {
    const res = await fetch(keyURL(path, q), { method, headers: { ...authHeaders(), ...headers }, body, cache: 'no-store' });
    if (res.ok || res.status === 304) return res;
    let code = 'http_' + res.status;
    let msg = res.statusText;
    try { const j = await res.json(); code = j.code || code; msg = j.error || msg; } catch { /* not JSON */ }
    const e = new ApiError(res.status, code, msg);
    e.headers = res.headers;
    throw e;
  }

  // writable answers whether the token may write path, a key or a prefix (for a prefix: a key
  // directly under it), with a compare-and-swap that cannot succeed: revision 2^62 is no key's
  // next. The server checks the grant first, so a revision_conflict means "may write" and
  // 401/403 "may not"; nothing is written. One request per path, over the WebSocket (where a
  // refusal is an answer, not a failed resource), cached until the token changes; a write
  // answered 401/403 also marks its key read-only.
  const writable = new Map();
  function canWrite(path) {
    if (!writable.has(path)) {
      const key = path.endsWith('/') ? path + PROBE : path;
      writable.set(path, request('cas', { key, value: null, revision: 2 ** 62 })
        .then(() => true, (e) => (e.code === 'disconnected' ? undefined : !denied(e)))
        .then((ok) => { if (ok === undefined) writable.delete(path); else writable.set(path, ok); return ok; }));
    }
    return Promise.resolve(writable.get(path));
  }
  const known = (path) => (typeof writable.get(path) === 'boolean' ? writable.get(path) : undefined);
  // A row's controls show when its key, or the prefix it is listed under, is known writable.
  const rowWritable = (key) => known(key) === true || (known(key) !== false && known(parentOf(key)) === true);

  // ---- health --------------------------------------------------------------------------------

  let lastSeq = 0n;
  let health = null;
  async function pollHealth() {
    try {
      const res = await fetch('/.health', { cache: 'no-store' });
      const m = members(await res.text());
      health = { ok: res.ok && str(m.get('status')) === 'ok', keys: m.get('keys'), seq: m.get('seq') };
      if (health.seq && BigInt(health.seq) > lastSeq) lastSeq = BigInt(health.seq);
    } catch { health = null; }
    renderHealth();
  }
  let healthTimer = 0;
  const healthSoon = () => { if (!healthTimer) healthTimer = setTimeout(() => { healthTimer = 0; pollHealth(); }, 1000); }; // the key count after changes

  function renderHealth() {
    const h = $('health');
    if (!health) { h.dataset.state = 'bad'; $('health-text').textContent = 'unreachable'; return; }
    h.dataset.state = health.ok ? 'ok' : 'bad';
    const keys = health.keys ? `${nf.format(Number(health.keys))} keys` : '';
    $('health-text').textContent = [health.ok ? 'healthy' : 'unhealthy', keys, `seq ${lastSeq}`].filter(Boolean).join(' · ');
    h.title = 'GET /.health';
  }

  // ---- the WebSocket -------------------------------------------------------------------------

  let sock = null;
  let ready = null; // resolves when the socket is open and authenticated; rejects when it closes first
  let readyFns = null;
  let refusedBy = null; // the error of a refused token: no retry until the token changes
  let authed = false; // the socket is open and its token accepted
  let nextId = 1;
  const pending = new Map();
  let backoff = 500;
  let retryTimer = 0;

  function setLive(state, text) {
    $('live').dataset.state = state;
    $('live-text').textContent = text;
  }

  function dropSocket(err) {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    if (readyFns) readyFns.reject(err); // no effect once resolved
  }

  function reconnect() {
    clearTimeout(retryTimer);
    if (sock) { const s = sock; sock = null; s.close(); }
    dropSocket(new ApiError(0, 'disconnected', 'the connection closed'));
    ready = new Promise((resolve, reject) => { readyFns = { resolve, reject }; });
    ready.catch(() => {});
    refusedBy = null;
    authed = false;
    const fns = readyFns;
    const s = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/.ws`);
    sock = s;
    setLive('connecting', 'connecting…');
    s.onopen = async () => {
      if (token()) {
        try { await send('auth', { token: token() }); } catch (e) {
          refusedBy = e;
          show($('token-msg'), `The server refused the token: ${why(e)}`, 'error');
          $('token-who').textContent = 'Token refused';
          fns.reject(e);
          return; // the server closes the socket
        }
      }
      backoff = 500;
      authed = true;
      resubscribe(); // before the requests waiting for the socket: the subscription comes first
      fns.resolve();
    };
    s.onmessage = (ev) => frame(ev.data);
    s.onclose = () => {
      if (sock !== s) return;
      sock = null;
      authed = false;
      dropSocket(refusedBy || new ApiError(0, 'disconnected', 'the connection closed'));
      if (refusedBy) { setLive('bad', 'token refused'); return; }
      setLive('bad', 'reconnecting…');
      retryTimer = setTimeout(() => { reconnect(); reloadFailed(); }, backoff * (0.5 + Math.random()));
      backoff = Math.min(backoff * 2, 10_000);
    };
  }

  // send sends one request on the socket as it is now and answers the answer's members.
  function send(op, fields, id = nextId++) {
    return new Promise((resolve, reject) => {
      if (!sock || sock.readyState !== WebSocket.OPEN) { reject(new ApiError(0, 'disconnected', 'the connection closed')); return; }
      pending.set(id, { resolve, reject });
      sock.send(JSON.stringify({ op, id, ...fields }));
    });
  }
  async function request(op, fields) {
    await ready;
    return send(op, fields);
  }

  function frame(text) {
    const m = members(text);
    if (m.has('type') && m.has('sub')) { event(m); return; }
    const id = str(m.get('id'));
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    if (m.get('ok') === 'true') p.resolve(m);
    else p.reject(new ApiError(Number(m.get('status')), str(m.get('code')), str(m.get('error'))));
  }

  // ---- the browsed subtree: its listing, its expanded subtrees, its live events --------------

  let root = '/';
  let gen = 0; // bumped on every browse: answers for an older one are dropped
  const entries = new Map(); // key or subtree ("/a/b/") -> {key, raw, revision, seq, subtree, flash}
  const loaded = new Map(); // root and expanded prefixes -> {state, buffer, more, error}
  let sub = null; // {id, path, since}
  let selected = null;
  let filter = '';

  function browse(p) {
    gen++;
    root = p;
    entries.clear();
    loaded.clear();
    if (sub && sub.id && sub.on === sock && authed) sock.send(JSON.stringify({ op: 'unsub', id: nextId++, sub: sub.id }));
    sub = { id: null, path: p, since: null, on: null };
    renderCrumbs();
    $('ev-scope').textContent = p;
    resubscribe();
    load(p);
    canWrite(p).then(render);
  }

  // resubscribe subscribes to the browsed subtree on the socket as it is now, from the last
  // position seen when there is one (the server replays what was missed, or sends a reset). It
  // sends at once, so a listing asked for after it is answered after the subscription started
  // (one socket answers in order): the listing misses no change.
  async function resubscribe() {
    const s = sub;
    if (!s || !authed || s.on === sock) return;
    s.on = sock;
    s.id = `s${nextId++}`;
    const fields = { path: s.path };
    if (s.since) fields.since = s.since;
    try {
      await send('sub', fields, s.id);
    } catch (e) {
      if (s !== sub) return;
      if (e.code !== 'disconnected') setLive('bad', denied(e) ? 'not live: no read access' : `not live: ${e.code}`);
    }
  }

  async function load(p) {
    const g = gen;
    const st = { state: 'loading', buffer: [], more: false, error: null };
    loaded.set(p, st);
    render();
    try {
      const fresh = [];
      let cursor;
      let pages = 0;
      do {
        const a = await request('list', { path: p, children: true, limit: 500, cursor });
        for (const it of items(a.get('entries') || '[]')) {
          const m = members(it);
          const key = str(m.get('key'));
          fresh.push(key.endsWith('/') ? { key, subtree: true }
            : { key, raw: m.get('value'), revision: Number(m.get('revision')), seq: BigInt(m.get('seq')), expires: str(m.get('expires')) });
        }
        cursor = str(a.get('cursor'));
      } while (cursor && ++pages < 20);
      if (g !== gen || loaded.get(p) !== st) return;
      for (const k of [...entries.keys()]) if (parentOf(k) === p) entries.delete(k);
      for (const e of fresh) entries.set(e.key, e);
      st.state = 'ready';
      st.more = !!cursor;
      for (const ev of st.buffer) applyTo(p, ev);
      st.buffer = [];
    } catch (e) {
      if (g !== gen || loaded.get(p) !== st) return;
      st.state = 'error';
      st.error = e;
    }
    render();
  }

  function reloadFailed() {
    for (const [p, st] of loaded) if (st.state === 'error') load(p);
  }

  function toggle(p) {
    if (loaded.has(p)) {
      for (const q of [...loaded.keys()]) if (q.startsWith(p)) loaded.delete(q);
      for (const k of [...entries.keys()]) if (k !== p && k.startsWith(p)) entries.delete(k);
      render();
    } else {
      load(p);
      canWrite(p).then(render);
    }
  }

  // event handles one frame of the subscription.
  function event(m) {
    if (!sub || str(m.get('sub')) !== sub.id) return;
    const type = str(m.get('type'));
    const seq = m.has('seq') ? BigInt(m.get('seq')) : 0n;
    if (seq > lastSeq) { lastSeq = seq; renderHealth(); healthSoon(); }
    if (type === 'ready') { sub.since = String(seq); setLive('ok', 'live'); return; }
    if (type === 'reset') { logEvent({ type, seq }); browseAgain(); return; }
    if (type === 'close') {
      const reason = str(m.get('reason'));
      setLive('bad', `stream closed: ${reason}`);
      const s = sub;
      s.on = null;
      if (reason !== 'unauthorized' && reason !== 'token_expired') setTimeout(() => s === sub && resubscribe(), 1000);
      return;
    }
    if (type !== 'set' && type !== 'delete') return;
    const ev = { type, key: str(m.get('key')), raw: m.get('value'), revision: Number(m.get('revision')), seq };
    sub.since = `${ev.key}:${ev.revision}:${seq}`;
    logEvent(ev);
    for (const [p, st] of loaded) {
      if (!ev.key.startsWith(p)) continue;
      if (st.state === 'loading') st.buffer.push(ev);
      else if (st.state === 'ready') applyTo(p, ev);
    }
    if (selected && selected.kind && selected.key === ev.key) selectedChanged(ev);
    queueRender();
  }

  function browseAgain() {
    const keep = [...loaded.keys()];
    entries.clear();
    for (const p of keep) load(p);
  }

  function applyTo(p, ev) {
    const rest = ev.key.slice(p.length);
    const slash = rest.indexOf('/');
    if (slash < 0) {
      const old = entries.get(ev.key);
      if (old && old.seq >= ev.seq) return; // the listing has it already
      if (ev.type === 'delete') entries.delete(ev.key);
      else entries.set(ev.key, { key: ev.key, raw: ev.raw, revision: ev.revision, seq: ev.seq, flash: true });
      return;
    }
    const child = p + rest.slice(0, slash + 1);
    if (ev.type === 'set' && !entries.has(child)) entries.set(child, { key: child, subtree: true, flash: true });
    if (ev.type === 'delete' && entries.has(child)) dropIfEmpty(child);
  }

  async function dropIfEmpty(p) {
    const g = gen;
    try {
      const a = await request('list', { path: p, keys: true, limit: 1 });
      if (g === gen && !items(a.get('entries') || '[]').length) {
        entries.delete(p);
        loaded.delete(p);
        queueRender();
      }
    } catch { /* the next listing corrects it */ }
  }

  // ---- rendering the tree --------------------------------------------------------------------

  let renderQueued = false;
  function queueRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; render(); });
  }

  function renderCrumbs() {
    const nav = $('crumbs');
    nav.replaceChildren(el('a', { href: '#/', text: 'root', 'aria-current': root === '/' ? 'page' : null }));
    let p = '/';
    for (const c of root.split('/').filter(Boolean)) {
      p += `${c}/`;
      nav.append(el('span', { class: 'sep', 'aria-hidden': 'true', text: '/' }), el('a', { href: `#${p}`, text: c, 'aria-current': p === root ? 'page' : null }));
    }
  }

  function render() {
    const focusKey = document.activeElement && document.activeElement.closest('#tree tr') ? document.activeElement.closest('tr').dataset.key : null;
    const focusRole = focusKey && document.activeElement.dataset.role;
    const byParent = new Map();
    for (const e of entries.values()) {
      const p = parentOf(e.key);
      if (!byParent.has(p)) byParent.set(p, []);
      byParent.get(p).push(e);
    }
    for (const list of byParent.values()) list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const f = filter.toLowerCase();
    const visible = new Set();
    if (f) {
      for (const e of entries.values()) {
        if (!e.key.slice(root.length).toLowerCase().includes(f)) continue;
        for (let k = e.key; k.length > root.length; k = parentOf(k)) visible.add(k);
      }
    }
    const rows = [];
    let keys = 0;
    let subtrees = 0;
    const walk = (p, depth) => {
      for (const e of byParent.get(p) || []) {
        if (e.subtree) subtrees++; else keys++;
        if (f && !visible.has(e.key)) continue;
        rows.push(renderRow(e, depth));
        const st = loaded.get(e.key);
        if (e.subtree && st) {
          if (st.state === 'ready') walk(e.key, depth + 1);
          if (st.state !== 'ready' || st.more || !(byParent.get(e.key) || []).length) rows.push(noteRow(e.key, st, depth + 1));
        }
      }
    };
    walk(root, 0);
    $('tree').tBodies[0].replaceChildren(...rows);
    if (focusKey) {
      const again = document.querySelector(`#tree tr[data-key="${CSS.escape(focusKey)}"] [data-role="${focusRole}"]`);
      if (again) again.focus();
    }

    const st = loaded.get(root);
    const empty = $('empty');
    empty.hidden = true;
    show($('list-msg'), '');
    if (!st || st.state === 'loading') show($('list-msg'), 'Loading…', 'muted');
    else if (st.state === 'error') {
      const d = denied(st.error);
      empty.hidden = false;
      empty.replaceChildren(el('strong', { text: d ? `Listing ${root} needs a token` : `Cannot list ${root}` }),
        el('p', { text: `The server says: ${st.error.message} (${st.error.code}).` }),
        d ? el('p', { text: 'Enter a token with read access (for "/", the admin token: the server\'s log names its file), ' +
          'or go to a prefix you may read.' }) : '',
        d ? el('button', { type: 'button', class: 'primary', text: 'Enter a token', onclick: openToken }) : '');
    } else if (!byParent.has(root)) {
      empty.hidden = false;
      empty.replaceChildren(el('strong', { text: `Nothing under ${root} yet` }), el('p', { text: 'Keys written here appear live.' }));
    } else if (f && !rows.length) show($('list-msg'), `No loaded key matches “${filter}”.`, 'muted');
    $('tree').hidden = !empty.hidden;
    $('toolbar').hidden = !!st && st.state === 'error';
    const plural = (n, one, many) => `${nf.format(n)} ${n === 1 ? one : many}`;
    $('count').textContent = st && st.state === 'ready'
      ? [plural(keys, 'key', 'keys'), subtrees && plural(subtrees, 'subtree', 'subtrees'), st.more && 'first 10,000 shown'].filter(Boolean).join(' · ') : '';
    $('new-key').disabled = known(root) === false;
    $('new-key').title = known(root) === false ? `This token may not write under ${root}` : '';
  }

  function noteRow(p, st, depth) {
    const text = st.state === 'loading' ? 'loading…' : st.state === 'error' ? `cannot list: ${why(st.error)}`
      : st.more ? 'only the first 10,000 children are shown' : 'empty';
    const td = el('td', { colspan: '5', class: `sub-note ${st.state === 'error' ? 'error' : ''}`, text });
    td.style.setProperty('--depth', depth);
    return el('tr', { class: 'note-row', 'data-note': p }, td);
  }

  function renderRow(e, depth) {
    const kind = kindOf(e);
    const isSel = !!selected && selected.key === e.key;
    const tr = el('tr', { 'data-key': e.key, 'data-kind': kind, class: `${e.flash ? 'flash' : ''} ${isSel ? 'selected' : ''}`.trim() });
    e.flash = false;
    const name = el('span', { class: 'mono', text: nameOf(e.key) });
    const nameCell = el('td', { class: 'name' });
    nameCell.style.setProperty('--depth', depth);
    if (e.subtree) {
      const open = loaded.has(e.key);
      nameCell.append(el('button', {
        type: 'button', class: 'twisty', 'data-role': 'main', 'aria-expanded': String(open),
        'aria-label': `${open ? 'Collapse' : 'Expand'} ${e.key}`, onclick: () => toggle(e.key),
      }, el('span', { class: 'chev', 'aria-hidden': 'true' }), name));
    } else {
      nameCell.append(el('button', {
        type: 'button', class: 'keybtn', 'data-role': 'main', 'aria-current': isSel ? 'true' : null, title: e.key, onclick: () => select(e.key),
      }, name));
    }
    tr.append(nameCell, el('td', {}, el('span', { class: `kind ${kind}`, text: kind === 'subtree' ? 'folder' : kind })));

    const value = el('td', { class: 'value' });
    if (kind === 'lock') {
      const m = members(e.raw);
      const exp = str(m.get('expires'));
      const d = new Date(exp);
      value.append(el('span', { text: `${str(m.get('owner')) || '(no owner)'} until ` }),
        el('time', { datetime: exp, title: `${fmtLocal(d)} (${exp})`, text: fmtShort(d) }),
        el('span', { class: 'muted', text: ` · fence ${m.get('fence')}` }));
    } else if (kind === 'file') {
      const m = members(e.raw);
      value.append(el('span', { class: 'mono', text: str(m.get('type')) }),
        el('span', { class: 'muted', text: ` · ${fmtBytes(Number(m.get('size')))}` }));
    } else if (!e.subtree) {
      const t = shown(e.raw);
      value.append(el('span', { class: 'mono vtext', title: t.length > 60 ? t.slice(0, 2000) : null, text: t }));
    }
    // A lock's value shows its expiry already.
    if (e.expires && kind !== 'lock') value.append(el('span', { class: 'ttl', title: e.expires, text: `expires ${fmtIn(new Date(e.expires))}` }));
    tr.append(value, el('td', { class: 'num mono muted', text: e.subtree ? '' : String(e.revision) }));

    const may = kind !== 'lock' && rowWritable(e.key); // a held lock refuses writes
    const small = (role, label, text, onclick, cls = '') => el('button', { type: 'button', class: `small ${cls}`, 'data-role': role, 'aria-label': label, text, onclick });
    const actions = el('td', { class: 'actions' });
    if (kind === 'file') {
      actions.append(el('a', { class: 'button small', href: downloadURL(e.key), download: nameOf(e.key), 'data-role': 'download', text: 'Download' }));
    }
    if (kind === 'counter' && may) {
      actions.append(small('dec', `Decrement ${e.key}`, '−1', () => incr(e.key, -1)), small('inc', `Increment ${e.key}`, '+1', () => incr(e.key, 1)));
    }
    if (e.subtree) actions.append(el('a', { class: 'button small ghost', href: `#${e.key}`, 'data-role': 'browse', title: `Browse ${e.key}`, text: 'Browse' }));
    if (!e.subtree && may) {
      const sure = armed === e.key;
      actions.append(small('delete', sure ? `Confirm delete of ${e.key}` : `Delete ${e.key}`, sure ? 'Confirm' : 'Delete', () => remove(e), `danger reveal ${sure ? 'armed' : ''}`));
    }
    tr.append(actions);
    return tr;
  }

  // Tree keys: up and down move between rows, right expands a subtree, left collapses it or goes
  // to the parent row.
  $('tree').addEventListener('keydown', (ev) => {
    const b = ev.target.closest('[data-role="main"]');
    if (!b) return;
    const tr = b.closest('tr');
    const mains = [...document.querySelectorAll('#tree [data-role="main"]')];
    const i = mains.indexOf(b);
    const key = tr.dataset.key;
    let to = null;
    if (ev.key === 'ArrowDown') to = mains[i + 1];
    else if (ev.key === 'ArrowUp') to = mains[i - 1];
    else if (ev.key === 'ArrowRight' && key.endsWith('/') && !loaded.has(key)) toggle(key);
    else if (ev.key === 'ArrowLeft' && key.endsWith('/') && loaded.has(key)) toggle(key);
    else if (ev.key === 'ArrowLeft' && parentOf(key) !== root) to = document.querySelector(`#tree tr[data-key="${CSS.escape(parentOf(key))}"] [data-role="main"]`);
    else return;
    ev.preventDefault();
    if (to) to.focus();
  });

  function downloadURL(key) {
    return keyURL(key, token() ? `?token=${encodeURIComponent(token())}` : '');
  }

  // ---- row actions ---------------------------------------------------------------------------

  let armed = null; // the key whose Delete was clicked once

  function refused(key, e) {
    if (denied(e)) { writable.set(key, false); render(); if (selected && selected.key === key) renderSelected(); }
  }

  async function incr(key, by) {
    try { await http('POST', key, { q: `?incr=${by}` }); } catch (e) { refused(key, e); show($('list-msg'), `${key}: ${why(e)}`, 'error'); }
  }

  async function remove(e) {
    if (armed !== e.key) { armed = e.key; render(); setTimeout(() => { if (armed === e.key) { armed = null; render(); } }, 4000); return; }
    armed = null;
    render();
    await deleteKey(e.key, e.revision, $('list-msg'));
  }

  // Conditional on the revision shown: a delete never removes a change nobody has seen.
  async function deleteKey(key, revision, msg) {
    try {
      await http('DELETE', key, { headers: { 'X-Revision': String(revision) } });
      show(msg, `Deleted ${key}.`, 'ok');
      return true;
    } catch (e) {
      refused(key, e);
      show(msg, e.status === 409 ? `Not deleted: ${key} changed (now revision ${e.headers.get('X-Revision')}); look again.` : `${key}: ${why(e)}`, 'error');
      return false;
    }
  }

  // ---- the detail panel: one key -------------------------------------------------------------

  // selected: {key, kind, raw (the text loaded over HTTP), revision, seq, contentType, stale}
  function panel(which) {
    $('detail-empty').hidden = which !== 'empty';
    $('view').hidden = which !== 'view';
    $('create').hidden = which !== 'create';
    $('detail-close').hidden = which === 'empty';
  }

  async function select(key) {
    const g = ++selGen;
    selected = { key, loading: true };
    render();
    panel('view');
    $('v-key').textContent = key;
    $('v-meta').replaceChildren();
    for (const id of ['v-file', 'v-lock', 'v-editor', 'v-delete-row', 'v-readonly', 'v-live']) $(id).hidden = true;
    show($('v-msg'), 'Loading…', 'muted');
    try {
      const res = await http('GET', key);
      const ct = res.headers.get('Content-Type') || '';
      const s = { key, revision: Number(res.headers.get('X-Revision')), seq: res.headers.get('X-Seq'), contentType: ct };
      if (ct.startsWith('application/json')) {
        s.raw = await res.text();
        s.kind = kindOf({ raw: s.raw }) === 'file' ? 'value' : kindOf({ raw: s.raw }); // JSON shaped like a file's description
      } else {
        res.body && res.body.cancel(); // a file: its bytes are for the download link
        s.kind = 'file';
        s.size = res.headers.get('Content-Length');
      }
      if (g !== selGen) return;
      selected = s;
      show($('v-msg'), '');
      renderSelected(true);
      render();
      canWrite(key).then(() => { if (g === selGen) renderSelected(); render(); });
    } catch (e) {
      if (g !== selGen) return;
      selected = { key, kind: 'missing' };
      show($('v-msg'), e.status === 404 ? `${key} does not exist (any more).` : `${key}: ${why(e)}`, 'error');
    }
  }
  let selGen = 0;

  function renderSelected(fresh = false) {
    const s = selected;
    if (!s || !s.kind) return;
    const meta = $('v-meta');
    const row = (dt, ...dd) => meta.append(el('div', {}, el('dt', { text: dt }), el('dd', {}, ...dd)));
    meta.replaceChildren();
    row('Kind', el('span', { class: `kind ${s.kind}`, text: s.kind }));
    row('Revision', el('span', { class: 'mono', text: String(s.revision) }));
    row('Seq', el('span', { class: 'mono', text: String(s.seq) }));
    const listed = entries.get(s.key);
    if (listed && listed.expires) row('Expires', el('time', { datetime: listed.expires, text: `${fmtLocal(new Date(listed.expires))} (${fmtIn(new Date(listed.expires))})` }));
    const may = known(s.key);
    const isFile = s.kind === 'file';
    const isLock = s.kind === 'lock';
    $('v-file').hidden = !isFile;
    $('v-lock').hidden = !isLock;
    $('v-editor').hidden = isFile || isLock || s.kind === 'missing';
    if (isFile) {
      const d = listed && kindOf(listed) === 'file' ? members(listed.raw) : new Map();
      row('Type', el('span', { class: 'mono', text: s.contentType || str(d.get('type')) }));
      const size = s.size || d.get('size');
      if (size) row('Size', el('span', { text: `${fmtBytes(Number(size))} (${nf.format(Number(size))} bytes)` }));
      if (d.get('sha256')) row('SHA-256', el('span', { class: 'mono hash', title: str(d.get('sha256')), text: str(d.get('sha256')) }));
      $('v-download').href = downloadURL(s.key);
      $('v-download').setAttribute('download', nameOf(s.key));
      const img = $('v-preview');
      const isImg = /^image\//.test(s.contentType) && (!size || Number(size) < 4 << 20);
      img.hidden = !isImg;
      if (isImg && fresh) { img.src = `${downloadURL(s.key)}${token() ? '&' : '?'}_=${s.seq}`; img.alt = `preview of ${s.key}`; }
    }
    if (isLock) {
      const m = members(s.raw);
      const exp = str(m.get('expires'));
      row('Owner', el('span', { text: str(m.get('owner')) || '(none)' }));
      row('Fence', el('span', { class: 'mono', text: m.get('fence') }));
      row('Expires', el('time', { datetime: exp, title: exp, text: `${fmtLocal(new Date(exp))} (${fmtIn(new Date(exp))})` }));
    }
    if (!$('v-editor').hidden) {
      const ta = $('ed-value');
      if (fresh) {
        ta.value = s.raw.length < 200_000 && /^[[{]/.test(s.raw) && isJSON(s.raw) ? pretty(s.raw) : s.raw;
        $('ed-ttl').value = '';
        validate();
      }
      ta.readOnly = may === false;
      $('ed-buttons').hidden = $('ttl-hint').hidden = may === false;
      $('ed-inc').hidden = $('ed-dec').hidden = s.kind !== 'counter';
    }
    $('v-delete-row').hidden = may !== true || isLock || s.kind === 'missing';
    $('v-readonly').hidden = may !== false;
    $('v-readonly').textContent = may === false ? `Read-only: this token may not write ${s.key}.` : '';
    $('v-delete').textContent = 'Delete key';
    $('v-delete').classList.remove('armed');
  }

  function selectedChanged(ev) {
    const s = selected;
    const live = $('v-live');
    live.hidden = false;
    live.replaceChildren();
    if (ev.type === 'delete') {
      live.append(el('span', { text: `Deleted at seq ${ev.seq}.` }));
      s.deleted = true;
    } else if (ev.revision !== s.revision) {
      live.append(el('span', { text: `Changed meanwhile: now at revision ${ev.revision}. ` }),
        el('button', { type: 'button', class: 'small', text: 'Load current value', onclick: () => select(s.key) }));
    } else live.hidden = true;
  }

  function validate() {
    const ok = isJSON($('ed-value').value);
    $('ed-valid').textContent = ok ? 'valid JSON' : 'not valid JSON';
    $('ed-valid').className = `small ${ok ? 'ok' : 'bad'}`;
    $('ed-value').setAttribute('aria-invalid', String(!ok));
    return ok;
  }
  $('ed-value').addEventListener('input', validate);

  const ttlQuery = (v) => (v.trim() ? `?ttl=${encodeURIComponent(v.trim())}` : '');

  // Save: the textarea's text as the body, byte for byte, conditional on the revision loaded.
  $('ed-save').addEventListener('click', async () => {
    const s = selected;
    if (!s || s.raw === undefined) return;
    const text = $('ed-value').value;
    try {
      const res = await http('PUT', s.key, { q: ttlQuery($('ed-ttl').value), headers: { 'Content-Type': 'application/json', 'X-Revision': String(s.revision + 1) }, body: text });
      if (selected !== s) return;
      s.revision = Number(res.headers.get('X-Revision'));
      s.seq = res.headers.get('X-Seq');
      s.raw = text;
      $('v-live').hidden = true;
      renderSelected();
      show($('v-msg'), `Saved: revision ${s.revision}.`, 'ok');
    } catch (e) {
      if (selected !== s) return;
      refused(s.key, e);
      if (e.status === 409 && e.code === 'revision_conflict') {
        const now = Number(e.headers.get('X-Revision'));
        $('v-msg').replaceChildren();
        show($('v-msg'), now < 0 ? `Conflict: ${s.key} was deleted after revision ${s.revision}. Nothing was written.`
          : `Conflict: ${s.key} is at revision ${now}, not ${s.revision}. Nothing was written; your text is kept. `, 'error');
        if (now >= 0) $('v-msg').append(el('button', { type: 'button', class: 'small', id: 'ed-reload', text: 'Load current value', onclick: () => select(s.key) }));
      } else show($('v-msg'), why(e), 'error');
    }
  });
  $('ed-format').addEventListener('click', () => { if (validate()) $('ed-value').value = pretty($('ed-value').value); });
  $('ed-revert').addEventListener('click', () => selected && selected.raw !== undefined && renderSelected(true));
  $('ed-inc').addEventListener('click', () => selected && incr(selected.key, 1).then(() => select(selected.key)));
  $('ed-dec').addEventListener('click', () => selected && incr(selected.key, -1).then(() => select(selected.key)));
  $('v-delete').addEventListener('click', async () => {
    const b = $('v-delete');
    const s = selected;
    if (!s) return;
    if (!b.classList.contains('armed')) { b.classList.add('armed'); b.textContent = `Really delete ${nameOf(s.key)}?`; return; }
    b.classList.remove('armed');
    if (await deleteKey(s.key, s.revision, $('v-msg'))) { selected = null; panel('empty'); render(); }
  });
  $('detail-close').addEventListener('click', () => { selected = null; selGen++; panel('empty'); render(); });

  // ---- the detail panel: a new key ------------------------------------------------------------

  $('new-key').addEventListener('click', () => {
    selected = null;
    render();
    panel('create');
    $('c-key').value = root;
    show($('c-msg'), '');
    $('c-key').focus();
    $('c-key').setSelectionRange(root.length, root.length);
  });
  for (const r of document.querySelectorAll('input[name="c-kind"]')) {
    r.addEventListener('change', () => {
      const file = $('c-file').checked;
      $('c-json-field').hidden = file;
      $('c-file-field').hidden = !file;
    });
  }
  $('c-cancel').addEventListener('click', () => panel('empty'));
  $('create').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    let key = $('c-key').value.trim();
    if (!key.startsWith('/')) key = root + key;
    if (!isKey(key)) { show($('c-msg'), `${key} is not a valid key: components of letters, digits, - and _, joined by /.`, 'error'); return; }
    let body;
    let type = 'application/json';
    if ($('c-file').checked) {
      const f = $('c-upload').files[0];
      if (!f) { show($('c-msg'), 'Choose a file.', 'error'); return; }
      body = f;
      type = f.type || 'application/octet-stream';
    } else {
      body = $('c-value').value;
      if (!isJSON(body)) { show($('c-msg'), 'The value is not valid JSON (a string needs its quotes: "text").', 'error'); return; }
    }
    try {
      await http('PUT', key, { q: ttlQuery($('c-ttl').value), headers: { 'Content-Type': type, 'X-Revision': '0' }, body }); // create only
      $('c-value').value = '';
      $('c-ttl').value = '';
      select(key);
    } catch (e) {
      if (denied(e)) writable.set(parentOf(key), false);
      show($('c-msg'), e.status === 409 && e.code === 'revision_conflict' ? `${key} exists already: select it to edit it.` : `${key}: ${why(e)}`, 'error');
    }
  });

  // ---- the event log --------------------------------------------------------------------------

  let paused = false;
  function logEvent(ev) {
    if (paused) return;
    const list = $('events');
    const t = new Date();
    const li = el('li', { class: `ev ${ev.type}`, 'data-type': ev.type, 'data-key': ev.key || '' },
      el('time', { datetime: t.toISOString(), text: t.toLocaleTimeString() }),
      el('span', { class: `evtype ${ev.type}`, text: ev.type }));
    if (ev.key) {
      const v = ev.type === 'set' ? shown(ev.raw) : '';
      li.append(el('button', { type: 'button', class: 'link mono', text: ev.key, title: `Open ${ev.key}`, onclick: () => select(ev.key) }),
        el('span', { class: 'mono evval', title: v.length > 50 ? v.slice(0, 2000) : null, text: v }),
        el('span', { class: 'evmeta', text: `rev ${ev.revision} · seq ${ev.seq}` }));
    } else li.append(el('span', { class: 'muted', text: `the stream's position was too old: reloaded at seq ${ev.seq}` }));
    list.prepend(li);
    while (list.children.length > MAX_EVENTS) list.lastChild.remove();
    $('ev-empty').hidden = true;
  }
  $('ev-pause').addEventListener('click', () => {
    paused = !paused;
    $('ev-pause').textContent = paused ? 'Resume' : 'Pause';
    $('ev-pause').setAttribute('aria-pressed', String(paused));
  });
  $('ev-clear').addEventListener('click', () => { $('events').replaceChildren(); $('ev-empty').hidden = false; });

  // ---- navigation, token form, keys ----------------------------------------------------------

  function openToken() {
    $('token-menu').open = true;
    $('token').focus();
  }

  // The hash is the browsed prefix, or a key: its parent is browsed and the key selected.
  function navigate() {
    let p = decodeURIComponent(location.hash.slice(1)) || '/';
    if (!p.startsWith('/')) p = `/${p}`;
    if (isKey(p)) {
      const parent = parentOf(p);
      if (parent !== root || !loaded.has(root)) browse(parent);
      select(p);
      return;
    }
    if (!isPrefix(p)) { show($('list-msg'), `${p} is neither a key nor a prefix.`, 'error'); return; }
    browse(p);
  }

  $('go-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    let p = $('go-path').value.trim();
    if (!p) return;
    if (!p.startsWith('/')) p = root + p;
    $('go-path').value = '';
    location.hash = p;
  });
  $('filter').addEventListener('input', () => { filter = $('filter').value.trim(); render(); });
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken($('token').value.trim());
    $('token-menu').open = false;
  });
  $('token-forget').addEventListener('click', () => { setToken(''); $('token-menu').open = false; });
  document.addEventListener('keydown', (ev) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
    if (ev.key === '/' && !typing) { ev.preventDefault(); $('filter').focus(); }
    if (ev.key === 'Escape' && $('token-menu').open) { $('token-menu').open = false; $('token-menu').querySelector('summary').focus(); }
  });
  window.addEventListener('hashchange', navigate);

  $('token-who').textContent = describeToken();
  $('token-menu').dataset.set = token() ? 'yes' : '';
  reconnect();
  navigate();
  pollHealth();
  setInterval(pollHealth, 5000);
})();
