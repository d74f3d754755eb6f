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
let ticker = null;
const history = {};  // sandbox id → [{t, cpu_ms, mem}] from each tree read, for the sparklines
const HISTORY = 30;
let filesPath = '/';  // counters are not events: the tree is also read every 2 s

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

// Remembers each sandbox's CPU and memory at every tree read (at most HISTORY points).
function record(t) {
  const now = Date.now();
  const seen = new Set();
  for (const node of t.nodes) walk(node, (e) => {
    if (e.kind !== 'sandbox') return;
    seen.add(e.id);
    const h = history[e.id] || (history[e.id] = []);
    const c = e.counters || {};
    if (h.length && now - h[h.length - 1].t < 500) return;
    h.push({ t: now, cpu: c.cpu_ms, mem: c.mem_current_bytes });
    if (h.length > HISTORY) h.shift();
  });
  for (const id of Object.keys(history)) if (!seen.has(id)) delete history[id];
}

// A small SVG line of the values (null values are skipped).
function sparkline(values, label) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('width', '60');
  svg.setAttribute('height', '16');
  svg.setAttribute('aria-label', label);
  const v = values.filter((x) => typeof x === 'number');
  if (v.length > 1) {
    const max = Math.max(...v), min = Math.min(...v), span = max - min || 1;
    const pts = v.map((x, i) => (i * 60 / (v.length - 1)).toFixed(1) + ',' + (15 - (x - min) * 14 / span).toFixed(1));
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', pts.join(' '));
    svg.append(line);
  }
  return svg;
}

// CPU use between reads (ms of CPU per second) and memory, over the last reads.
function cpuRates(h) {
  const out = [];
  for (let i = 1; i < h.length; i++)
    if (typeof h[i].cpu === 'number' && typeof h[i - 1].cpu === 'number')
      out.push((h[i].cpu - h[i - 1].cpu) * 1000 / Math.max(1, h[i].t - h[i - 1].t));
  return out;
}

function renderOverview() {
  record(tree);
  const nodes = $('#nodes tbody');
  nodes.replaceChildren();
  for (const n of tree.nodes) {
    const c = n.counters || {};
    nodes.append(el('tr', { 'data-id': n.id }, el('td', {}, n.id),
      el('td', {}, el('span', { class: 'badge state-' + n.state }, n.state)), el('td', {}, n.address || ''),
      el('td', {}, age(n.age_s)), el('td', {}, n.mailbox), el('td', {}, c.sandboxes), el('td', {}, c.snapshots)));
  }
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
        el('td', { class: 'cpu' }, typeof c.cpu_ms === 'number' ? c.cpu_ms + 'ms' : '-',
           sparkline(cpuRates(history[e.id] || []), 'CPU of ' + e.id)),
        el('td', { class: 'mem' }, bytes(c.mem_current_bytes),
           sparkline((history[e.id] || []).map((p) => p.mem), 'memory of ' + e.id)),
        el('td', {}, c.execs), el('td', {}, c.open_streams),
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
  if (e && termFor !== id) { closeTerminal(); termFor = id; filesPath = '/'; openTerminal(id); }
  if (e) loadPanes(id).catch((err) => { $('#main-error').textContent = err.message; });
}

let panesBusy = false;

// The sandbox page's files (one directory), exposures and snapshots, through the public API.
async function loadPanes(id) {
  if (panesBusy) return;
  panesBusy = true;
  try {
    const [ls, exp, snaps] = await Promise.all([
      api('GET', '/v1/sandboxes/' + id + '/ls?path=' + encodeURIComponent(filesPath)),
      api('GET', '/v1/sandboxes/' + id + '/exposures'),
      api('GET', '/v1/snapshots'),
    ]);
    if (currentSandbox() !== id) return;
    $('#files-path').textContent = filesPath;
    const files = $('#files tbody');
    files.replaceChildren();
    if (filesPath !== '/') {
      const up = filesPath.replace(/\/[^/]+\/?$/, '') || '/';
      files.append(el('tr', {}, el('td', {}, el('a', { onclick: () => { filesPath = up; loadPanes(id); } }, '..')),
                      el('td', {}, 'dir'), el('td', {}), el('td', {})));
    }
    for (const f of ls.entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const name = f.type === 'dir'
        ? el('a', { onclick: () => { filesPath = f.path; loadPanes(id); } }, f.name + '/') : f.name;
      files.append(el('tr', { 'data-name': f.name }, el('td', {}, name), el('td', {}, f.type),
                      el('td', {}, bytes(f.size)), el('td', {}, f.mode)));
    }
    const ex = $('#exposures tbody');
    ex.replaceChildren();
    for (const x of exp.exposures)
      ex.append(el('tr', { 'data-port': x.port }, el('td', {}, x.port), el('td', {}, x.auth ? 'token' : 'public'),
                    el('td', {}, el('a', { href: x.url, target: '_blank', rel: 'noopener' }, x.url)),
                    el('td', {}, x.created_at)));
    $('#no-exposures').hidden = exp.exposures.length > 0;
    const sn = $('#snapshots tbody');
    sn.replaceChildren();
    const mine = snaps.snapshots.filter((x) => x.sandbox_id === id);
    for (const x of mine)
      sn.append(el('tr', { 'data-id': x.snapshot_id }, el('td', {}, el('code', {}, x.snapshot_id)),
                    el('td', {}, x.name || ''), el('td', {}, bytes(x.size_bytes)), el('td', {}, x.created_at)));
    $('#no-snapshots').hidden = mine.length > 0;
  } finally {
    panesBusy = false;
  }
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

const VERBS = { kill: 'Kill', destroy: 'Destroy', reconnect: 'Reconnect the agent of' };

async function act(id, action, what) {
  if (!confirm(VERBS[action] + ' ' + what + '?')) return;
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
$('#sb-reconnect').addEventListener('click', () => {
  const id = currentSandbox();
  if (id) act(id, 'reconnect', 'sandbox ' + id);
});

window.addEventListener('hashchange', () => { if (tree) renderSandbox(); });

(async () => {
  const r = await fetch('/admin/session');
  if (r.ok) loggedIn(await r.json());
  else show('login');
})();
