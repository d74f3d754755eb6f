// bench/e2b_exec.mjs — driven by bench/e2b.py: the same sandbox, `true` run N times through
// E2B's SDK (commands.run: a Connect server stream on the envd surface) and N times through
// Warren's native exec (POST /v1/sandboxes/{id}/exec with fetch, keep-alive), interleaved so
// both see the same machine; and natively the same login shell as `user` that commands.run
// starts, to tell the surface's cost from the shell's. Prints one JSON line: {"e2b_ms": [...], "native_ms": [...]}.
import { Sandbox } from 'e2b';

const rounds = Number(process.env.ROUNDS || 50);
const sb = await Sandbox.create('base', { timeoutMs: 300_000 });
const url = `${process.env.E2B_API_URL}/v1/sandboxes/${sb.sandboxId}/exec`;
const headers = { Authorization: `Bearer ${process.env.E2B_API_KEY}`, 'Content-Type': 'application/json' };
const e2b = [], native = [], native_login = [];
const native_exec = async (command = 'true') => {
  const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ command }) });
  const j = await r.json();
  if (j.exit_code !== 0) throw new Error(JSON.stringify(j));
};
for (let i = 0; i < 5; i++) { await sb.commands.run('true'); await native_exec(); }  // warm-up
for (let i = 0; i < rounds; i++) {
  let t = performance.now();
  await sb.commands.run('true');
  e2b.push(performance.now() - t);
  t = performance.now();
  await native_exec();
  native.push(performance.now() - t);
  t = performance.now();
  await native_exec("exec /bin/bash -l -c true");  // the program commands.run starts, natively (as root)
  native_login.push(performance.now() - t);
}
await sb.kill();
console.log(JSON.stringify({ e2b_ms: e2b, native_ms: native, native_login_ms: native_login }));
