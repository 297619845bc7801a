// The Statehub console: browse the tree, watch it live, edit with compare-and-swap.
// Every piece of data reaches the page through textContent or an attribute, never parsed as HTML.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN = 'statehub.console.token';
  const COMPONENT = /^[\p{L}\p{N}_-]+$/u;

  let client = null;
  let prefix = '/';
  let rows = new Map(); // child key (a key, or a subtree ending in "/") -> {key, value, revision, seq, subtree, changed}
  let unsub = null;
  let gen = 0; // bumped on every open: callbacks of an older listing are ignored
  let editing = null; // {key, revision}: the revision the edit started from
  let armed = null; // the key whose delete button was clicked once
  let renderQueued = false;

  const isKey = (k) => k.length > 1 && !k.endsWith('/') && k.slice(1).split('/').every((c) => COMPONENT.test(c));
  const isPrefix = (p) => p === '/' || (p.endsWith('/') && isKey(p.slice(0, -1)));
  const isLock = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) &&
    Object.keys(v).sort().join() === 'expires,fence,owner';
  const kindOf = (r) => r.subtree ? 'subtree' : isLock(r.value) ? 'lock' : Number.isInteger(r.value) ? 'counter' : r.value === undefined ? 'file' : 'value';
  const show = (el, text, cls = '') => { el.textContent = text; el.className = `msg ${cls}`; };
  const why = (e) => (e && e.code ? `${e.message} (${e.code})` : String((e && e.message) || e));

  function el(tag, props = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }

  // ---- connection and token ----------------------------------------------------------------

  function connect() {
    if (client) client.close();
    const token = sessionStorage.getItem(TOKEN) || '';
    client = Statehub.connect(location.origin, token ? { token } : {});
    $('status').textContent = token ? 'using a token' : 'anonymous';
  }

  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token').value.trim();
    if (t) sessionStorage.setItem(TOKEN, t);
    else sessionStorage.removeItem(TOKEN);
    $('token').value = '';
    connect();
    open(prefix);
  });
  $('token-forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN);
    $('token').value = '';
    connect();
    open(prefix);
  });

  // ---- the open prefix: list its children, then apply live changes --------------------------

  async function open(p) {
    const g = ++gen;
    if (unsub) unsub();
    prefix = p;
    rows = new Map();
    armed = null;
    renderCrumbs();
    render();
    show($('list-msg'), 'loading…', 'muted');
    // Subscribe before listing (one WebSocket keeps the order): events that the listing already
    // contains are recognised by their seq and skipped.
    const early = [];
    let listed = false;
    unsub = client.on(p, (key, value, revision, meta) => {
      if (g !== gen) return;
      if (listed) apply(key, value, revision, meta);
      else early.push([key, value, revision, meta]);
    });
    let more = false;
    try {
      let cursor;
      let pages = 0;
      do {
        const page = await client.list(p, { children: true, limit: 500, cursor });
        if (g !== gen) return;
        for (const e of page.entries) {
          rows.set(e.key, { key: e.key, value: e.value, revision: e.revision, seq: e.seq, subtree: e.key.endsWith('/') });
        }
        cursor = page.cursor;
      } while (cursor && ++pages < 20);
      more = !!cursor;
    } catch (e) {
      if (g !== gen) return;
      const hint = e && (e.status === 401 || e.status === 403) ? ' Enter a token with read access (for "/", the admin token: the server\'s log names its file).' : '';
      show($('list-msg'), `Cannot list ${p}: ${why(e)}.${hint}`, 'error');
      return;
    }
    listed = true;
    for (const ev of early) apply(...ev);
    show($('list-msg'), more ? 'live; only the first 10,000 children are shown' : 'live', 'muted');
    render();
  }

  function apply(key, value, revision, meta) {
    if (!key.startsWith(prefix)) return;
    const rest = key.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash < 0) {
      const old = rows.get(key);
      if (old && old.seq >= meta.seq) return; // the listing already has this change
      if (revision < 0) rows.delete(key);
      else rows.set(key, { key, value, revision, seq: meta.seq, changed: true });
    } else {
      const sub = prefix + rest.slice(0, slash + 1);
      if (revision >= 0 && !rows.has(sub)) rows.set(sub, { key: sub, subtree: true, changed: true });
      if (revision < 0 && rows.has(sub)) dropIfEmpty(sub, gen);
    }
    if (editing && key === editing.key) {
      show($('ed-live'), revision < 0 ? 'Deleted meanwhile: saving re-creates nothing and fails.'
        : revision === editing.revision ? '' : `Changed meanwhile: now at revision ${revision}. Saving will conflict.`, 'warn');
    }
    queueRender();
  }

  async function dropIfEmpty(sub, g) {
    try {
      const page = await client.list(sub, { keys: true, limit: 1 });
      if (g === gen && !page.entries.length) { rows.delete(sub); queueRender(); }
    } catch { /* the next listing corrects it */ }
  }

  // ---- rendering ---------------------------------------------------------------------------

  function renderCrumbs() {
    const nav = $('crumbs');
    nav.replaceChildren(el('a', { href: '#/', text: '/' }));
    let p = '/';
    for (const c of prefix.split('/').filter(Boolean)) {
      p += `${c}/`;
      nav.append(el('a', { href: `#${p}`, text: c }), el('span', { class: 'sep', text: '/' }));
    }
  }

  function queueRender() {
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(() => { renderQueued = false; render(); }, 0);
  }

  function render() {
    const body = $('entries').tBodies[0];
    const keys = [...rows.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    body.replaceChildren(...keys.map((k) => renderRow(rows.get(k))));
    if (!keys.length && $('list-msg').textContent === 'live') show($('list-msg'), `live; nothing under ${prefix} yet`, 'muted');
  }

  function renderRow(r) {
    const kind = kindOf(r);
    const name = r.key.slice(prefix.length);
    const tr = el('tr', { 'data-key': r.key, 'data-kind': kind });
    if (r.changed) { tr.className = 'changed'; r.changed = false; }
    tr.append(el('td', { class: 'mono' }, r.subtree ? el('a', { href: `#${r.key}`, text: name }) : name));
    tr.append(el('td', {}, el('span', { class: `kind ${kind}`, text: kind })));
    let text = '';
    if (kind === 'lock') text = `held by ${r.value.owner || '(no owner)'} until ${r.value.expires} · fence ${r.value.fence}`;
    else if (kind === 'file') text = '(stored file: open it to download)';
    else if (!r.subtree) text = JSON.stringify(r.value);
    tr.append(el('td', { class: 'value mono', title: text, text }));
    tr.append(el('td', { class: 'mono', text: r.subtree ? '' : String(r.revision) }));
    const actions = el('td', { class: 'actions' });
    if (kind === 'counter') {
      actions.append(el('button', { type: 'button', text: '+1', onclick: () => incr(r.key, 1) }),
        el('button', { type: 'button', text: '−1', onclick: () => incr(r.key, -1) }), ' ');
    }
    if (kind === 'value' || kind === 'counter') actions.append(el('button', { type: 'button', text: 'Edit', onclick: () => edit(r.key) }), ' ');
    if (kind === 'file') actions.append(el('a', { href: r.key, target: '_blank', rel: 'noopener', text: 'Open' }), ' ');
    if (!r.subtree && kind !== 'lock') {
      actions.append(el('button', {
        type: 'button', class: 'danger', text: armed === r.key ? 'Really delete?' : 'Delete',
        onclick: () => remove(r),
      }));
    }
    tr.append(actions);
    return tr;
  }

  // ---- actions -----------------------------------------------------------------------------

  async function incr(key, by) {
    try { await client.incr(key, by); } catch (e) { show($('list-msg'), `${key}: ${why(e)}`, 'error'); }
  }

  async function remove(r) {
    if (armed !== r.key) { armed = r.key; render(); return; }
    armed = null;
    render();
    try {
      // Conditional on the revision shown: a delete never removes a value nobody has seen.
      const n = await client.delete(r.key, { revision: r.revision });
      show($('list-msg'), n ? `Deleted ${r.key}.` : `Not deleted: ${r.key} changed or is gone; look again.`, n ? 'ok' : 'warn');
    } catch (e) {
      show($('list-msg'), `${r.key}: ${why(e)}`, 'error');
    }
  }

  async function edit(key) {
    try {
      const [value, revision] = await client.get(key);
      if (revision < 0) { show($('list-msg'), `${key} does not exist.`, 'warn'); return; }
      editing = { key, revision };
      $('ed-key').textContent = key;
      $('ed-rev').textContent = String(revision);
      $('ed-value').value = JSON.stringify(value, null, 2);
      $('ed-reload').hidden = true;
      show($('ed-live'), '', 'warn');
      show($('ed-msg'), '');
      $('editor').hidden = false;
      $('ed-value').focus();
    } catch (e) {
      show($('list-msg'), `${key}: ${why(e)}`, 'error');
    }
  }

  $('ed-save').addEventListener('click', async () => {
    if (!editing) return;
    const ed = editing;
    let value;
    try { value = JSON.parse($('ed-value').value); } catch (e) { show($('ed-msg'), `Not JSON: ${e.message}`, 'error'); return; }
    try {
      if (await client.update(ed.key, value, ed.revision + 1)) {
        if (editing !== ed) return;
        ed.revision += 1;
        $('ed-rev').textContent = String(ed.revision);
        show($('ed-live'), '', 'warn');
        show($('ed-msg'), `Saved: revision ${ed.revision}.`, 'ok');
        return;
      }
      const [, now] = await client.get(ed.key);
      if (editing !== ed) return;
      show($('ed-msg'), now < 0
        ? `Conflict: ${ed.key} was deleted after revision ${ed.revision}. Nothing was written.`
        : `Conflict: ${ed.key} is at revision ${now}, not ${ed.revision}. Nothing was written; load the current value and edit again.`, 'error');
      $('ed-reload').hidden = now < 0;
    } catch (e) {
      show($('ed-msg'), why(e), 'error');
    }
  });
  $('ed-reload').addEventListener('click', () => editing && edit(editing.key));
  $('ed-cancel').addEventListener('click', () => { editing = null; $('editor').hidden = true; });

  $('new-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = $('new-key').value.trim();
    const key = name.startsWith('/') ? name : prefix + name;
    if (!isKey(key)) { show($('new-msg'), `${key} is not a valid key (components of letters, digits, - and _).`, 'error'); return; }
    let value;
    try { value = JSON.parse($('new-value').value); } catch (e) { show($('new-msg'), `Not JSON: ${e.message}`, 'error'); return; }
    try {
      const created = await client.update(key, value, 0); // create only if absent
      show($('new-msg'), created ? `Created ${key}.` : `${key} exists already: edit it instead.`, created ? 'ok' : 'warn');
      if (created) { $('new-key').value = ''; $('new-value').value = ''; }
    } catch (e) {
      show($('new-msg'), `${key}: ${why(e)}`, 'error');
    }
  });

  // ---- navigation: the hash is the open prefix (or a key to edit) ---------------------------

  function navigate() {
    let p = decodeURIComponent(location.hash.slice(1)) || '/';
    if (!p.startsWith('/')) p = `/${p}`;
    if (isKey(p)) {
      const parent = p.slice(0, p.lastIndexOf('/') + 1);
      if (parent !== prefix || !unsub) open(parent);
      edit(p);
      return;
    }
    if (!isPrefix(p)) { show($('list-msg'), `${p} is neither a key nor a prefix.`, 'error'); return; }
    open(p);
  }

  $('go-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    let p = $('go-path').value.trim();
    if (!p) return;
    if (!p.startsWith('/')) p = prefix + p;
    $('go-path').value = '';
    location.hash = p;
  });
  window.addEventListener('hashchange', navigate);

  connect();
  navigate();
})();
