// A collaborative board: notes under /board/<room>/notes/<id>, moved with compare-and-swap, and
// the members of the room from Statehub.presence (ephemeral keys under /board/<room>/people/).
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const COMPONENT = /^[\p{L}\p{N}_-]{1,64}$/u;
  const params = new URLSearchParams(location.search);
  const room = COMPONENT.test(params.get('room') || '') ? params.get('room') : 'lobby';
  const notesPath = `/board/${room}/notes/`;
  const board = $('board');
  const notes = new Map(); // key -> {value, revision, el}
  let dragging = null; // {key, el, dx, dy, revision, value}

  const rand = () => Math.random().toString(36).slice(2, 10);
  const show = (text, cls = '') => { $('msg').textContent = text; $('msg').className = `msg ${cls}`; };
  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
  const num = (v, d) => (Number.isFinite(v) ? v : d);

  $('room').textContent = room;
  document.title = `Statehub board: ${room}`;

  // ---- presence --------------------------------------------------------------------------------

  // The name: ?name=, else the one this tab used before (sessionStorage survives a reload), else a guest name.
  const NAME = 'statehub.board.name';
  let name = (params.get('name') || sessionStorage.getItem(NAME) || `guest-${rand().slice(0, 4)}`).slice(0, 40);
  sessionStorage.setItem(NAME, name);
  $('name').value = name;

  // A reload gives the page a new member id; the old one lives on for the server's grace period,
  // so the list shows names, once each, and a reloading member never vanishes from it.
  // A member who leaves (and did not come back under another id: a reload) is named in the
  // message line with the server's reason: closed (the tab closed), timeout (its connection
  // dropped) or node_lost (its server went away).
  const known = {}; // member id -> name, of every member seen
  const presence = Statehub.presence(`/board/${room}/people`, { name }, renderPeople);
  function renderPeople(members, change) {
    const names = new Set();
    for (const id in members) {
      const n = members[id] && typeof members[id].name === 'string' ? members[id].name : id;
      names.add(n);
      known[id] = n;
    }
    if (change && change.type === 'delete' && change.reason && change.reason !== 'replaced' && known[change.id] && !names.has(known[change.id])) {
      show(`${known[change.id]} left (${change.reason.replace('_', ' ')})`);
    }
    $('people').dataset.members = String(Object.keys(members).length); // connections, for the curious
    $('people').replaceChildren(...[...names].sort().map((n) => {
      const li = document.createElement('li');
      li.textContent = n;
      if (n === name) li.className = 'me';
      return li;
    }));
  }
  $('name-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const n = $('name').value.trim().slice(0, 40);
    if (!n) return;
    name = n;
    sessionStorage.setItem(NAME, name);
    presence.set({ name }).catch((e) => show(`rename: ${e.message}`, 'error'));
  });

  // ---- notes -------------------------------------------------------------------------------

  Statehub.on(notesPath, (key, value, revision) => {
    if (key.lastIndexOf('/') !== notesPath.length - 1) return;
    if (revision < 0 || value === null || typeof value !== 'object') {
      const n = notes.get(key);
      if (n) n.el.remove();
      notes.delete(key);
      return;
    }
    let n = notes.get(key);
    if (!n) {
      n = { el: makeNote(key) };
      notes.set(key, n);
      board.append(n.el);
    }
    n.value = value;
    n.revision = revision;
    if (!dragging || dragging.key !== key) place(n);
  }, { snapshot: true });

  function makeNote(key) {
    const el = document.createElement('div');
    el.className = 'note';
    el.dataset.key = key;
    const text = document.createElement('span');
    const del = document.createElement('button');
    del.type = 'button';
    del.title = 'delete this note';
    del.textContent = '×';
    del.addEventListener('pointerdown', (ev) => ev.stopPropagation());
    del.addEventListener('click', async () => {
      const n = notes.get(key);
      if (!n) return;
      const deleted = await Statehub.delete(key, { revision: n.revision }).catch((e) => (show(e.message, 'error'), 0));
      if (!deleted) show('Not deleted: someone changed the note meanwhile.', 'warn');
    });
    el.append(text, del);
    el.addEventListener('pointerdown', (ev) => startDrag(ev, key));
    return el;
  }

  function place(n) {
    n.el.firstChild.textContent = typeof n.value.text === 'string' ? n.value.text : '';
    n.el.style.left = `${num(n.value.x, 0)}px`;
    n.el.style.top = `${num(n.value.y, 0)}px`;
  }

  // ---- dragging: local while the pointer is down, one CAS at the end ---------------------------

  function startDrag(ev, key) {
    const n = notes.get(key);
    if (!n || ev.button !== 0) return;
    ev.preventDefault();
    const r = n.el.getBoundingClientRect();
    // The CAS is against the revision seen when the drag started.
    dragging = { key, el: n.el, dx: ev.clientX - r.left, dy: ev.clientY - r.top, revision: n.revision, value: n.value };
    n.el.classList.add('dragging');
    n.el.classList.remove('conflict');
    n.el.setPointerCapture(ev.pointerId);
  }

  board.addEventListener('pointermove', (ev) => {
    if (!dragging) return;
    // Notes are placed relative to the board's padding box, inside its border.
    const b = board.getBoundingClientRect();
    const x = clamp(ev.clientX - b.left - board.clientLeft - dragging.dx, 0, board.clientWidth - dragging.el.offsetWidth);
    const y = clamp(ev.clientY - b.top - board.clientTop - dragging.dy, 0, board.clientHeight - dragging.el.offsetHeight);
    dragging.el.style.left = `${Math.round(x)}px`;
    dragging.el.style.top = `${Math.round(y)}px`;
  });

  const endDrag = async () => {
    if (!dragging) return;
    const d = dragging;
    dragging = null;
    d.el.classList.remove('dragging');
    const moved = { ...d.value, x: parseInt(d.el.style.left, 10), y: parseInt(d.el.style.top, 10) };
    if (moved.x === d.value.x && moved.y === d.value.y) return; // a click, not a move
    let ok = false;
    try {
      ok = await Statehub.update(d.key, moved, d.revision + 1);
    } catch (e) {
      show(e.message, 'error');
    }
    const n = notes.get(d.key);
    if (!ok) {
      // Someone else moved or edited it first: show where it really is.
      if (n) { place(n); n.el.classList.add('conflict'); }
      show('Someone else moved this note first: it is back where they put it.', 'warn');
    } else if (n && n.revision < d.revision + 1) {
      n.value = moved;
      n.revision = d.revision + 1;
    }
  };
  board.addEventListener('pointerup', endDrag);
  board.addEventListener('pointercancel', endDrag);

  $('note-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = $('note-text').value.trim();
    if (!text) return;
    const value = { text, x: Math.round(Math.random() * Math.max(0, board.clientWidth - 200)), y: Math.round(Math.random() * Math.max(0, board.clientHeight - 120)), by: name };
    try {
      await Statehub.update(`${notesPath}${rand()}`, value, 0);
      $('note-text').value = '';
    } catch (e) {
      show(e.message, 'error');
    }
  });
})();
