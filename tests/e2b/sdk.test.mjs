// E2B's own JS SDK (e2b@2.51.0, unmodified) against a Warren node. Run by
// tests/integration/test_e2b_sdk.py, which starts the daemon and sets E2B_API_URL,
// E2B_SANDBOX_URL, E2B_API_KEY (a tenant key), E2B_OTHER_KEY (another tenant's) and
// E2B_DOMAIN_HOST (the node's public domain).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Sandbox, CommandExitError, NotFoundError, AuthenticationError, FileNotFoundError, SandboxNotFoundError } from 'e2b';

const TEMPLATE = process.env.E2B_TEMPLATE || 'base';
const made = [];
async function create(opts = {}) {
  const sb = await Sandbox.create(TEMPLATE, { timeoutMs: 120_000, ...opts });
  made.push(sb);
  return sb;
}
after(async () => { for (const sb of made) await sb.kill().catch(() => {}); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('create, run: stdout, stderr, exit code, env, cwd, default user', async () => {
  const sb = await create({ envs: { FROM_CREATE: 'yes' }, metadata: { suite: 'e2b' } });
  assert.match(sb.sandboxId, /^[0-9a-f]{16}$/);
  const r = await sb.commands.run('echo out; echo err >&2; whoami; pwd; echo "$FROM_CREATE"');
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout, 'out\nuser\n/home/user\nyes\n');
  assert.equal(r.stderr, 'err\n');
  const env = await sb.commands.run('echo $ONE; pwd', { envs: { ONE: '1' }, cwd: '/tmp' });
  assert.equal(env.stdout, '1\n/tmp\n');
  await assert.rejects(sb.commands.run('exit 3'), (e) => e instanceof CommandExitError && e.exitCode === 3);
  const root = await sb.commands.run('id -u', { user: 'root' });
  assert.equal(root.stdout.trim(), '0');
  const sudo = await sb.commands.run('sudo -n id -u');
  assert.equal(sudo.stdout.trim(), '0');
  const tools = await sb.commands.run('python3 -c "print(6*7)"; git --version >/dev/null && curl --version >/dev/null && pip3 --version >/dev/null && echo tools');
  assert.equal(tools.stdout, '42\ntools\n');
});

test('background command: connect by pid, stdin, kill, list', async () => {
  const sb = await create();
  const seen = [];
  const h = await sb.commands.run('cat', { background: true, stdin: true, timeoutMs: 0, onStdout: (d) => seen.push(d) });
  assert.ok(h.pid > 0);
  await sb.commands.sendStdin(h.pid, 'hello\n');
  for (let i = 0; i < 100 && !seen.join('').includes('hello'); i++) await sleep(50);
  assert.equal(seen.join(''), 'hello\n');
  const procs = await sb.commands.list();
  assert.ok(procs.some((p) => p.pid === h.pid && p.cmd === '/bin/bash'), JSON.stringify(procs));
  // Disconnect: the process keeps running; connect again by pid and close its stdin.
  await h.disconnect();
  const again = await sb.commands.connect(h.pid, { timeoutMs: 0 });
  await sb.commands.closeStdin(h.pid);
  const res = await again.wait();
  assert.equal(res.exitCode, 0);
  // kill
  const sleeper = await sb.commands.run('sleep 300', { background: true, timeoutMs: 0 });
  assert.equal(await sb.commands.kill(sleeper.pid), true);
  await assert.rejects(sleeper.wait(), (e) => e instanceof CommandExitError);
  assert.equal(await sb.commands.kill(999999), false);
});

test('command timeout kills the process', async () => {
  const sb = await create();
  await assert.rejects(sb.commands.run('sleep 30', { timeoutMs: 1500 }));
  // Killed at the deadline: gone (reaped) within moments, not after its 30 s.
  let ps = '';
  for (let i = 0; i < 20; i++) {
    ps = (await sb.commands.run('pgrep -x sleep || true')).stdout;
    if (ps === '') break;
    await sleep(100);
  }
  assert.equal(ps, '');
});

test('files: write, read, list, stat, exists, rename, remove, makeDir, ownership', async () => {
  const sb = await create();
  const info = await sb.files.write('notes/a.txt', 'hello e2b');
  assert.equal(info.path, '/home/user/notes/a.txt');
  assert.equal(await sb.files.read('/home/user/notes/a.txt'), 'hello e2b');
  const bytes = new Uint8Array(300_000).map((_, i) => i % 251);
  await sb.files.write('/tmp/bin.dat', bytes.buffer, { useOctetStream: true });
  const back = await sb.files.read('/tmp/bin.dat', { format: 'bytes' });
  assert.deepEqual(Buffer.from(back), Buffer.from(bytes));
  const owner = await sb.commands.run('stat -c %U:%G /home/user/notes/a.txt /home/user/notes');
  assert.equal(owner.stdout, 'user:user\nuser:user\n');
  const many = await sb.files.write([{ path: 'm/one.txt', data: '1' }, { path: 'm/two.txt', data: '22' }]);
  assert.equal(many.length, 2);
  const list = await sb.files.list('m');
  assert.deepEqual(list.map((e) => [e.name, e.type, e.size]), [['one.txt', 'file', 1], ['two.txt', 'file', 2]]);
  const deep = await sb.files.list('/home/user', { depth: 2 });
  assert.ok(deep.some((e) => e.path === '/home/user/m/two.txt'));
  const st = await sb.files.getInfo('notes/a.txt');
  assert.equal(st.size, 9);
  assert.equal(st.owner, 'user');
  assert.equal(st.permissions, '-rw-r--r--');
  assert.ok(st.modifiedTime instanceof Date && !isNaN(st.modifiedTime));
  assert.equal(await sb.files.exists('notes/a.txt'), true);
  assert.equal(await sb.files.exists('notes/nope.txt'), false);
  const moved = await sb.files.rename('notes/a.txt', 'notes/b.txt');
  assert.equal(moved.path, '/home/user/notes/b.txt');
  assert.equal(await sb.files.makeDir('newdir/sub'), true);
  assert.equal(await sb.files.makeDir('newdir/sub'), false);
  await sb.files.remove('notes');
  assert.equal(await sb.files.exists('notes/b.txt'), false);
  await assert.rejects(sb.files.read('/nope/missing.txt'), (e) => e instanceof FileNotFoundError);
  // hostile paths stay inside the sandbox
  await sb.files.write('/tmp/../../../etc/warren-probe', 'x');
  assert.equal((await sb.commands.run('cat /etc/warren-probe')).stdout, 'x');
});

test('watch a directory', async () => {
  const sb = await create();
  await sb.files.makeDir('w');
  const events = [];
  const h = await sb.files.watchDir('w', (e) => events.push(e), { recursive: true });
  await sb.files.write('w/new.txt', 'x');
  for (let i = 0; i < 100 && !events.some((e) => e.name === 'new.txt'); i++) await sleep(50);
  await h.stop();
  assert.ok(events.some((e) => e.name === 'new.txt' && ['create', 'write'].includes(e.type)), JSON.stringify(events));
});

test('file metadata (envd 0.6.2), gzip upload, watch with entries (0.6.3/0.6.4)', async () => {
  const sb = await create();
  const w = await sb.files.write('meta.txt', 'x', { metadata: { author: 'mish', purpose: 'test' } });
  assert.deepEqual(w.metadata, { author: 'mish', purpose: 'test' });
  assert.deepEqual((await sb.files.getInfo('meta.txt')).metadata, { author: 'mish', purpose: 'test' });
  const listed = await sb.files.list('/home/user');
  assert.deepEqual(listed.find((e) => e.name === 'meta.txt').metadata, { author: 'mish', purpose: 'test' });
  const attr = await sb.commands.run('getfattr -n user.e2b.author --only-values meta.txt 2>/dev/null || python3 -c "import os; print(os.getxattr(\'meta.txt\', \'user.e2b.author\').decode(), end=\'\')"');
  assert.equal(attr.stdout, 'mish');
  await sb.files.write('meta.txt', 'y');  // an upload replaces the whole set
  assert.equal((await sb.files.getInfo('meta.txt')).metadata, undefined);
  const gz = await sb.files.write('gz.txt', 'hello gzip '.repeat(1000), { gzip: true });
  assert.equal(gz.path, '/home/user/gz.txt');
  assert.equal(await sb.files.read('gz.txt'), 'hello gzip '.repeat(1000));
  await sb.files.makeDir('we');
  const events = [];
  const h = await sb.files.watchDir('we', (e) => events.push(e), { includeEntry: true, allowNetworkMounts: true });
  await sb.files.write('we/e.txt', 'abc');
  for (let i = 0; i < 100 && !events.some((e) => e.entry && e.entry.size === 3); i++) await sleep(50);
  await h.stop();
  const withEntry = events.find((e) => e.entry && e.entry.name === 'e.txt');
  assert.ok(withEntry, JSON.stringify(events));
  assert.equal(withEntry.entry.path, '/home/user/we/e.txt');
});

test('raw envd: the polling watchers (Python SDK), access token required', async () => {
  const sb = await create();
  const base = process.env.E2B_SANDBOX_URL;
  const headers = { 'E2b-Sandbox-Id': sb.sandboxId, 'E2b-Sandbox-Port': '49983', 'Content-Type': 'application/json',
                    'X-Access-Token': sb.envdAccessToken };
  const call = async (method, body, h = headers) => {
    const r = await fetch(`${base}/filesystem.Filesystem/${method}`, { method: 'POST', headers: h, body: JSON.stringify(body) });
    return [r.status, await r.json()];
  };
  await sb.files.makeDir('pw');
  const [s1, created] = await call('CreateWatcher', { path: '/home/user/pw', recursive: true });
  assert.equal(s1, 200, JSON.stringify(created));
  await sb.files.write('pw/a.txt', '1');
  let got = [];
  for (let i = 0; i < 100 && !got.some((e) => e.name === 'a.txt'); i++) {
    const [s, r] = await call('GetWatcherEvents', { watcherId: created.watcherId });
    assert.equal(s, 200);
    got.push(...r.events);
    await sleep(50);
  }
  assert.ok(got.some((e) => e.name === 'a.txt' && e.type === 'EVENT_TYPE_CREATE'), JSON.stringify(got));
  assert.equal((await call('RemoveWatcher', { watcherId: created.watcherId }))[0], 200);
  const [s404, e404] = await call('GetWatcherEvents', { watcherId: created.watcherId });
  assert.equal(s404, 404);
  assert.equal(e404.code, 'not_found');
  const [s401, e401] = await call('Stat', { path: '/etc/hostname' }, { ...headers, 'X-Access-Token': 'wrong' });
  assert.equal(s401, 401);
  assert.equal(e401.code, 'unauthenticated');
  const { 'X-Access-Token': _, ...noToken } = headers;
  assert.equal((await call('Stat', { path: '/etc/hostname' }, noToken))[0], 401);
});

test('other ports: E2b-Sandbox-Port routes to the port proxy; allowPublicTraffic: false', async () => {
  const sb = await create();
  await sb.files.write('site/index.html', 'served from the sandbox');
  await sb.commands.run('cd site && exec python3 -m http.server 3000 --bind 127.0.0.1', { background: true, timeoutMs: 0 });
  const headers = { 'E2b-Sandbox-Id': sb.sandboxId, 'E2b-Sandbox-Port': '3000' };
  let body = '';
  for (let i = 0; i < 100 && body !== 'served from the sandbox'; i++) {
    const r = await fetch(`${process.env.E2B_SANDBOX_URL}/index.html`, { headers }).catch(() => null);
    body = r && r.ok ? await r.text() : '';
    if (body !== 'served from the sandbox') await sleep(100);
  }
  assert.equal(body, 'served from the sandbox');
  // allowPublicTraffic: false — the port demands the sandbox's traffic token.
  const priv = await create({ network: { allowPublicTraffic: false } });
  assert.match(priv.trafficAccessToken, /^[0-9a-f]{48}$/);
  await priv.commands.run('mkdir -p site && echo private > site/index.html');
  await priv.commands.run('cd site && exec python3 -m http.server 3000 --bind 127.0.0.1', { background: true, timeoutMs: 0 });
  const ph = { 'E2b-Sandbox-Id': priv.sandboxId, 'E2b-Sandbox-Port': '3000' };
  let status = 0;
  for (let i = 0; i < 100 && status !== 401; i++) {
    status = (await fetch(`${process.env.E2B_SANDBOX_URL}/index.html`, { headers: ph })).status;
    if (status !== 401) await sleep(100);
  }
  assert.equal(status, 401);
  let text = '';
  for (let i = 0; i < 100 && text !== 'private\n'; i++) {
    const r = await fetch(`${process.env.E2B_SANDBOX_URL}/index.html`,
                          { headers: { ...ph, 'e2b-traffic-access-token': priv.trafficAccessToken } });
    text = r.ok ? await r.text() : '';
    if (text !== 'private\n') await sleep(100);
  }
  assert.equal(text, 'private\n');
});

test('pty: input, resize, kill', async () => {
  const sb = await create();
  let out = '';
  const dec = new TextDecoder();
  const t = await sb.pty.create({ cols: 80, rows: 24, onData: (d) => { out += dec.decode(d); }, timeoutMs: 0 });
  await sb.pty.sendInput(t.pid, new TextEncoder().encode('stty size; echo pty-$((6*7))\n'));
  for (let i = 0; i < 100 && !out.includes('pty-42'); i++) await sleep(50);
  assert.match(out, /24 80/);
  await sb.pty.resize(t.pid, { cols: 100, rows: 30 });
  await sb.pty.sendInput(t.pid, new TextEncoder().encode('stty size\n'));
  for (let i = 0; i < 100 && !out.includes('30 100'); i++) await sleep(50);
  assert.match(out, /30 100/);
  assert.equal(await sb.pty.kill(t.pid), true);
  await assert.rejects(t.wait());
});

test('getInfo, setTimeout, list with paging, metrics, getHost', async () => {
  const a = await create({ metadata: { page: 'yes', n: '1' } });
  const b = await create({ metadata: { page: 'yes', n: '2' } });
  const c = await create({ metadata: { page: 'yes', n: '3' } });
  const info = await a.getInfo();
  assert.equal(info.sandboxId, a.sandboxId);
  assert.equal(info.templateId, TEMPLATE);
  assert.equal(info.state, 'running');
  assert.deepEqual(info.metadata, { page: 'yes', n: '1' });
  assert.ok(info.endAt - info.startedAt > 100_000 && info.endAt - info.startedAt < 140_000);
  await a.setTimeout(600_000);
  const later = await a.getInfo();
  assert.ok(later.endAt - Date.now() > 500_000);
  const seen = [];
  const pager = Sandbox.list({ query: { metadata: { page: 'yes' } }, limit: 2 });
  let pages = 0;
  while (pager.hasNext) {
    const items = await pager.nextItems();
    pages++;
    seen.push(...items.map((i) => i.sandboxId));
  }
  assert.equal(pages, 2);
  assert.deepEqual(new Set(seen), new Set([a.sandboxId, b.sandboxId, c.sandboxId]));
  const m = await a.getMetrics();
  assert.equal(m.length, 1);
  assert.ok(m[0].memUsed > 0 && m[0].memTotal > 0);
  assert.equal(a.getHost(3000), `3000-${a.sandboxId}.${process.env.E2B_DOMAIN_HOST}`);
});

test('a short timeout ends the sandbox', async () => {
  const sb = await create({ timeoutMs: 2_000 });
  for (let i = 0; i < 100 && (await sb.isRunning()); i++) await sleep(200);
  assert.equal(await sb.isRunning(), false);
  await assert.rejects(Sandbox.getInfo(sb.sandboxId), (e) => e instanceof SandboxNotFoundError || e instanceof NotFoundError);
});

test('pause, then connect: state kept', async () => {
  const sb = await create();
  await sb.commands.run('echo kept > /home/user/state.txt');
  const bg = await sb.commands.run('sleep 600', { background: true, timeoutMs: 0 });
  assert.equal(await sb.pause(), true);
  assert.equal((await sb.getInfo()).state, 'paused');
  assert.equal(await Sandbox.pause(sb.sandboxId), false);  // already paused → 409 → false
  const back = await Sandbox.connect(sb.sandboxId, { timeoutMs: 60_000 });
  assert.equal((await back.getInfo()).state, 'running');
  assert.equal(await back.files.read('state.txt'), 'kept\n');
  const ps = await back.commands.run(`kill -0 ${bg.pid} && echo alive`);
  assert.equal(ps.stdout, 'alive\n');
});

test('kill; unknown ids, wrong key, another tenant', async () => {
  const sb = await create();
  assert.equal(await sb.kill(), true);
  assert.equal(await Sandbox.kill(sb.sandboxId), false);
  assert.equal(await Sandbox.kill('0123456789abcdef'), false);
  await assert.rejects(Sandbox.connect('0123456789abcdef'), (e) => e instanceof SandboxNotFoundError || e instanceof NotFoundError);
  await assert.rejects(Sandbox.create(TEMPLATE, { apiKey: 'wrn_live_bogus_key' }), (e) => e instanceof AuthenticationError);
  await assert.rejects(Sandbox.create('no-such-template-xyz'), (e) => /404: template not found/.test(String(e)));
  const mine = await create();
  const other = { apiKey: process.env.E2B_OTHER_KEY };
  await assert.rejects(Sandbox.getInfo(mine.sandboxId, other), (e) => e instanceof SandboxNotFoundError || e instanceof NotFoundError);
  assert.equal(await Sandbox.kill(mine.sandboxId, other), false);
  const theirs = await Sandbox.list({ ...other }).nextItems();
  assert.ok(!theirs.some((s) => s.sandboxId === mine.sandboxId));
  assert.ok(await mine.isRunning());
});
