// web/admin/app.js — the web admin console (docs/guides/operations-console.md). The session is an
// HttpOnly, SameSite=Strict cookie set by POST /admin/login; every state-changing request also
// sends the session's CSRF token in X-Warren-CSRF. The tree is kept live by /v1/admin/events.
'use strict';

const $ = (sel) => document.querySelector(sel);
let csrf = null;
let events = null;
let tree = null;
let term = null;
let termSocket = null;
let termFor = null;  // the sandbox whose page opened the terminal (opened once per visit)
let ticker = null;  // counters are not events: the tree is also read every 2 s

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function show(view) {
  $('#login-view').hidden = view !== 'login';
  $('#main-view').hidden = view !== 'main';
  $('#logout').hidden = view !== 'main';
}

async function api(method, path, body) {
  const headers = {};
  if (method !== 'GET') headers['X-Warren-CSRF'] = csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, credentials: 'same-origin',
                                body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (r.status === 401) { loggedOut(); throw new Error('logged out'); }
  if (!r.ok) throw new Error((data && data.error) ? data.error.code + ': ' + data.error.message : 'HTTP ' + r.status);
  return data;
}

function age(s) {
  if (s < 120) return s + 's';
  if (s < 7200) return Math.floor(s / 60) + 'm';
  if (s < 172800) return Math.floor(s / 3600) + 'h';
  return Math.floor(s / 86400) + 'd';
}

function bytes(n) {
  if (typeof n !== 'number') return '-';
  const u = ['B', 'K', 'M', 'G', 'T'];
  let i = 0;
  while (n >= 1024 && i < 4) { n /= 1024; i++; }
  return (i && n < 10 ? n.toFixed(1) : Math.round(n)) + u[i];
}

function walk(entry, fn, parent) {
  fn(entry, parent);
  for (const c of entry.children || []) walk(c, fn, entry);
}

function counters(e) {
  return Object.entries(e.counters || {}).filter(([, v]) => v !== null)
    .map(([k, v]) => k + '=' + (k.includes('bytes') ? bytes(v) : v)).join(' ');
}

function actorList(entries) {
  const ul = el('ul');
  for (const e of entries) {
    const li = el('li', { class: 'actor', 'data-id': e.id },
      el('span', { class: 'kind' }, e.kind), ' ', e.id, ' ',
      el('span', { class: 'badge state-' + e.state }, e.state),
      ' age ' + age(e.age_s) + ' mailbox ' + (e.mailbox === null ? '-' : e.mailbox) + ' restarts ' + e.restarts + ' ',
      el('span', { class: 'counters' }, counters(e)));
    if (e.kind === 'shell' || e.kind === 'terminal') {
      li.append(' ', el('button', { class: 'kill', onclick: () => act(e.id, 'kill', e.kind + ' ' + e.id) }, 'Kill'));
    }
    if ((e.children || []).length) li.append(actorList(e.children));
    ul.append(li);
  }
  return ul;
}

function renderOverview() {
  const body = $('#sandboxes tbody');
  body.replaceChildren();
  let n = 0;
  for (const node of tree.nodes) {
    walk(node, (e) => {
      if (e.kind !== 'sandbox') return;
      n++;
      const c = e.counters || {};
      body.append(el('tr', { 'data-id': e.id },
        el('td', {}, el('a', { href: '#/sandbox/' + e.id }, el('code', {}, e.id))),
        el('td', {}, e.tenant || ''), el('td', {}, el('span', { class: 'badge state-' + e.state }, e.state)),
        el('td', {}, e.image || ''), el('td', {}, node.id), el('td', {}, age(e.age_s)),
        el('td', {}, typeof c.cpu_ms === 'number' ? c.cpu_ms + 'ms' : '-'),
        el('td', {}, bytes(c.mem_current_bytes)), el('td', {}, c.execs), el('td', {}, c.open_streams),
        el('td', {}, el('button', { class: 'danger destroy', onclick: () => destroy(e.id) }, 'Destroy…'))));
    });
  }
  $('#no-sandboxes').hidden = n > 0;
  $('#tree').replaceChildren(actorList(tree.nodes));
  renderSandbox();
}

function findEntry(id) {
  let found = null;
  for (const node of tree ? tree.nodes : []) walk(node, (e) => { if (e.id === id) found = e; });
  return found;
}

function currentSandbox() {
  const m = location.hash.match(/^#\/sandbox\/([0-9a-f]{16})$/);
  return m ? m[1] : null;
}

function renderSandbox() {
  const id = currentSandbox();
  $('#overview').hidden = !!id;
  $('#sandbox-view').hidden = !id;
  if (!id) return closeTerminal();
  $('#sb-id').textContent = id;
  const e = findEntry(id);
  $('#sb-state').textContent = e ? e.state : 'gone';
  $('#sb-state').className = 'badge state-' + (e ? e.state : 'gone');
  $('#sb-tree').replaceChildren(e ? actorList([e]) : el('p', {}, 'This sandbox is gone.'));
  const flat = e ? Object.assign({}, e) : null;
  if (flat) delete flat.children;
  $('#sb-json').textContent = flat ? JSON.stringify(flat, null, 2) : '';
  if (e && termFor !== id) { closeTerminal(); termFor = id; openTerminal(id); }
}

function openTerminal(id) {
  if (typeof Terminal === 'undefined') {
    $('#term-status').textContent = 'The terminal is not available: xterm.js was not built (npm was unreachable at build time).';
    return;
  }
  term = new Terminal({ cursorBlink: true, fontSize: 14 });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  $('#terminal').replaceChildren();
  term.open($('#terminal'));
  fit.fit();
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(proto + '//' + location.host + '/v1/sandboxes/' + id + '/pty?cols=' + term.cols + '&rows=' + term.rows);
  ws.binaryType = 'arraybuffer';
  termSocket = ws;
  const enc = new TextEncoder();
  ws.onopen = () => { $('#term-status').textContent = 'connected'; term.focus(); };
  ws.onmessage = (m) => term.write(typeof m.data === 'string' ? m.data : new Uint8Array(m.data));
  ws.onclose = (ev) => { $('#term-status').textContent = 'disconnected' + (ev.reason ? ': ' + ev.reason : ''); if (termSocket === ws) termSocket = null; };
  term.onData((d) => { if (ws.readyState === 1) ws.send(enc.encode(d)); });
  term.onResize(({ cols, rows }) => { if (ws.readyState === 1) ws.send(JSON.stringify({ op: 'resize', cols, rows })); });
}

function closeTerminal() {
  termFor = null;
  if (termSocket) { const ws = termSocket; termSocket = null; ws.close(); }
  if (term) { term.dispose(); term = null; }
  $('#term-status').textContent = '';
}

async function act(id, action, what) {
  if (!confirm((action === 'kill' ? 'Kill ' : 'Destroy ') + what + '?')) return;
  try {
    await api('POST', '/v1/admin/actors/' + id + '/' + action, {});
    await refresh();
  } catch (err) { $('#main-error').textContent = err.message; }
}

function destroy(id) {
  return act(id, 'destroy', 'sandbox ' + id);
}

async function refresh() {
  tree = await api('GET', '/v1/admin/actors');
  renderOverview();
}

function connectEvents() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(proto + '//' + location.host + '/v1/admin/events');
  events = ws;
  ws.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.type === 'snapshot') { tree = ev.tree; renderOverview(); }
    else refresh().catch(() => {});
    $('#live').textContent = 'live';
  };
  ws.onclose = () => {
    $('#live').textContent = 'disconnected';
    if (events === ws && csrf) setTimeout(connectEvents, 1000);
  };
}

function loggedIn(session) {
  csrf = session.csrf;
  $('#whoami').textContent = 'key ' + session.key_id + ' (' + session.tenant + ')';
  show('main');
  connectEvents();
  refresh().catch((err) => { $('#main-error').textContent = err.message; });
  clearInterval(ticker);
  ticker = setInterval(() => refresh().catch(() => {}), 2000);
}

function loggedOut() {
  csrf = null;
  clearInterval(ticker);
  if (events) { const ws = events; events = null; ws.close(); }
  closeTerminal();
  show('login');
}

$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('#login-error').textContent = '';
  const r = await fetch('/admin/login', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                          body: JSON.stringify({ key: $('#key').value }) });
  const data = await r.json();
  $('#key').value = '';
  if (!r.ok) { $('#login-error').textContent = data.error.code + ': ' + data.error.message; return; }
  loggedIn(data);
});

$('#logout').addEventListener('click', async () => {
  await fetch('/admin/logout', { method: 'POST', headers: { 'X-Warren-CSRF': csrf } });
  loggedOut();
});

$('#sb-destroy').addEventListener('click', () => { const id = currentSandbox(); if (id) destroy(id); });

window.addEventListener('hashchange', () => { if (tree) renderSandbox(); });

(async () => {
  const r = await fetch('/admin/session');
  if (r.ok) loggedIn(await r.json());
  else show('login');
})();
