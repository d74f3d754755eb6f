// tests/e2e/admin_console.mjs — the web admin console in headless Chromium (playwright-core),
// run by tests/integration/test_admin_web.py with: BASE (http://127.0.0.1:PORT), ADMIN_KEY,
// TENANT_KEY, IMAGE, CHROMIUM, SHOTS (a directory for screenshots), E2E_NODE_MODULES (the
// node_modules holding playwright-core). Prints one JSON line of results; exits non-zero on the
// first failed check.
import { createRequire } from 'node:module';

const require = createRequire((process.env.E2E_NODE_MODULES || '.') + '/');
const { chromium } = require('playwright-core');

const { BASE, ADMIN_KEY, TENANT_KEY, IMAGE, CHROMIUM, SHOTS } = process.env;
const out = {};

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

async function apiCall(method, path, body, key = ADMIN_KEY) {
  const r = await fetch(BASE + path, {
    method, headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
let sandboxId = null;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.on('dialog', (d) => d.accept());
  await page.goto(BASE + '/admin/');
  await page.waitForSelector('#login-form', { state: 'visible' });

  // Without logging in, the console's data routes refuse (no key → 401).
  const noKey = await page.evaluate(async () => (await fetch('/v1/admin/actors')).status);
  check(noKey === 401, 'no key: /v1/admin/actors is 401, got ' + noKey);

  // A tenant key cannot log in.
  await page.fill('#key', TENANT_KEY);
  await page.click('#login');
  await page.waitForFunction(() => document.querySelector('#login-error').textContent.includes('forbidden'));
  out.tenant_refused = await page.textContent('#login-error');
  check((await context.cookies()).length === 0, 'no cookie for a tenant key');
  await page.screenshot({ path: SHOTS + '/login.png' });

  // The admin key logs in: an HttpOnly, SameSite=Strict cookie.
  await page.fill('#key', ADMIN_KEY);
  await page.click('#login');
  await page.waitForSelector('#main-view', { state: 'visible' });
  const cookies = await context.cookies();
  check(cookies.length === 1 && cookies[0].name === 'warren_admin', 'one session cookie');
  check(cookies[0].httpOnly === true && cookies[0].sameSite === 'Strict', 'HttpOnly SameSite=Strict');
  check(!cookies[0].value.includes(ADMIN_KEY.slice(-12)), 'the cookie does not hold the key');
  check(await page.evaluate(() => document.cookie) === '', 'scripts cannot read the cookie');
  await page.waitForFunction(() => document.querySelector('#live').textContent === 'live');

  // A sandbox created through the API appears live (events WebSocket), with no reload.
  await page.evaluate(() => { window.__marker = 1; });
  const created = await apiCall('POST', '/v1/sandboxes', { image: IMAGE, sandbox_timeout: -1, disk_mib: 256 });
  check(created.status === 201, 'create: ' + JSON.stringify(created));
  sandboxId = created.body.id;
  const row = `#sandboxes tr[data-id="${sandboxId}"]`;
  await page.waitForSelector(row, { timeout: 20000 });
  await page.waitForFunction((id) => document.querySelector(`#tree li[data-id="${id}"]`), sandboxId);
  check(await page.evaluate(() => window.__marker) === 1, 'no reload');
  check((await page.textContent('#nodes tr[data-id="n1"]')).includes('up'), 'the node row');
  // CPU and memory sparklines fill in as the tree is read every 2 s.
  await page.waitForFunction((r) => document.querySelector(r + ' td.mem svg.spark polyline'), row, { timeout: 20000 });
  out.row = await page.textContent(row);
  await page.screenshot({ path: SHOTS + '/overview.png', fullPage: true });

  // A state-changing request with the cookie but without the CSRF token is refused.
  const csrf = await page.evaluate(async (id) => {
    const r = await fetch('/v1/admin/actors/' + id + '/hibernate', { method: 'POST', body: '{}',
                                                                     headers: { 'Content-Type': 'application/json' } });
    return { status: r.status, body: await r.json() };
  }, sandboxId);
  check(csrf.status === 403 && csrf.body.error.code === 'forbidden', 'no CSRF token: 403, got ' + JSON.stringify(csrf));

  // An exposure and a snapshot, for the sandbox page's panes.
  const exp = await apiCall('POST', '/v1/sandboxes/' + sandboxId + '/expose', { port: 8080 });
  check(exp.status === 200 || exp.status === 201, 'expose: ' + JSON.stringify(exp));
  const snap = await apiCall('POST', '/v1/sandboxes/' + sandboxId + '/checkpoints', { name: 'web' });
  check(snap.status === 201, 'checkpoint: ' + JSON.stringify(snap));

  // Its page: a terminal over the pty WebSocket; run a command in it.
  await page.click(`${row} a`);
  await page.waitForSelector('#sandbox-view', { state: 'visible' });
  await page.waitForFunction(() => document.querySelector('#term-status').textContent === 'connected', null,
                             { timeout: 20000 });
  await page.click('#terminal');
  await page.keyboard.type('echo web-$((6*7))\n');
  await page.waitForFunction(() => document.querySelector('#terminal .xterm-rows').textContent.includes('web-42'),
                             null, { timeout: 20000 });
  out.terminal = (await page.textContent('#terminal .xterm-rows')).replace(/\s+/g, ' ').trim();
  await page.waitForFunction(() => document.querySelector('#sb-tree').textContent.includes('terminal pty_'),
                             null, { timeout: 10000 });
  // Its files (the root directory, then one level down), exposures and snapshots.
  await page.waitForSelector('#files tr[data-name="bin"]', { timeout: 20000 });
  await page.waitForSelector('#exposures tr[data-port="8080"]');
  await page.waitForSelector(`#snapshots tr[data-id="${snap.body.snapshot_id}"]`);
  await page.click('#files tr[data-name="etc"] a');
  await page.waitForFunction(() => document.querySelector('#files-path').textContent === '/etc');
  await page.waitForSelector('#files tr[data-name="passwd"]');
  await page.screenshot({ path: SHOTS + '/sandbox.png', fullPage: true });
  await apiCall('DELETE', '/v1/snapshots/' + snap.body.snapshot_id);

  // Reconnecting the agent (confirmed) ends the terminal, which lived on the old connection.
  await page.click('#sb-reconnect');
  await page.waitForFunction(() => document.querySelector('#term-status').textContent.startsWith('disconnected'),
                             null, { timeout: 30000 });
  const again = await apiCall('POST', '/v1/sandboxes/' + sandboxId + '/exec', { command: 'echo again' });
  check(again.status === 200 && again.body.stdout === 'again\n', 'exec after reconnect: ' + JSON.stringify(again));

  // Destroy, confirmed: the sandbox vanishes from the console and from the API.
  await page.click('#sb-destroy');
  await page.waitForFunction(() => document.querySelector('#sb-state').textContent === 'gone', null, { timeout: 60000 });
  await page.goto(BASE + '/admin/#/');
  await page.waitForSelector('#main-view', { state: 'visible' });
  await page.waitForFunction(() => document.querySelector('#live').textContent === 'live');
  check(await page.$(row) === null, 'the row is gone');
  const gone = await apiCall('GET', '/v1/sandboxes/' + sandboxId);
  check(gone.status === 404, 'destroyed: ' + gone.status);
  sandboxId = null;

  // Logout ends the session: the API refuses the old cookie too.
  const oldCookie = (await context.cookies())[0].value;
  await page.click('#logout');
  await page.waitForSelector('#login-form', { state: 'visible' });
  const after = await fetch(BASE + '/v1/admin/actors', { headers: { Cookie: 'warren_admin=' + oldCookie } });
  check(after.status === 401, 'old cookie after logout: ' + after.status);
  out.ok = true;
} finally {
  if (sandboxId) await apiCall('DELETE', '/v1/sandboxes/' + sandboxId);
  await browser.close();
}
console.log(JSON.stringify(out));
