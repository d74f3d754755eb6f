#!/usr/bin/python3
# bench/sandbox_lifecycle.py — sandbox lifecycle benchmark: create, exec `true`, destroy, idle
# memory, and bubblewrap over the same rootfs as the peer. Prints figures; never a pass/fail test.
# It starts its own daemon on an ephemeral port with a temp data dir and destroys every sandbox
# it created, also on errors and Ctrl-C. Stdlib only (http.client, keep-alive).
"""Warren sandbox lifecycle benchmark (see bench/README.md)."""

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CACHE = os.environ.get("WARREN_IMAGE_CACHE", "/var/tmp/warren-image-cache")

# Goals of issue 3 ("Performance"), on the 2-core dev machine with the debian image.
GOAL_CREATE_P50_MS = 25.0
GOAL_EXEC_P50_MS = 3.0
GOAL_IDLE_MIB = 2.0


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# statistics and host readings

def pct(xs, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def summary(xs):
    return {"n": len(xs), "p50": statistics.median(xs), "p90": pct(xs, 90),
            "min": min(xs), "max": max(xs), "mean": statistics.fmean(xs)}


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0]) * 1024  # kB → bytes
    return out


def node_used(mi):
    return mi["MemTotal"] - mi["MemAvailable"]


def proc_status_bytes(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def proc_pss_bytes(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def machine_lines():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mi = meminfo()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [f"machine: nproc={os.cpu_count()}  kernel={platform.release()}  cpu={cpu}",
            f"         mem={mi['MemTotal'] / 2**30:.1f} GiB  loadavg={load}  "
            f"python={platform.python_version()}"]


def mib(b):
    return b / 2**20


# ---------------------------------------------------------------------------------------------
# the daemon and its API

class Daemon:
    """One `warren serve` on an ephemeral port with a temp data dir whose images/ is the cache."""

    def __init__(self, warren, data_dir, log_path):
        self.warren, self.data_dir, self.log_path = warren, data_dir, log_path
        self.proc = None
        self.port = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.warren, "serve", "--data-dir", self.data_dir, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
            start_new_session=True)  # Ctrl-C reaches us, not the daemon: we stop it ourselves
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode(errors="replace")
            if not line:
                break
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.stop()
            raise BenchError(f"daemon did not start; see {self.log_path}")
        with open(os.path.join(self.data_dir, "admin.key")) as f:
            self.key = f.read().strip()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None


class Api:
    """Keep-alive HTTP/1.1 client; reconnects once if the server closed the connection."""

    def __init__(self, port, key):
        self.port, self.key = port, key
        self.conn = None

    def _connect(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        self.conn.connect()

    def call(self, method, path, body=None):
        """Returns (status, parsed JSON or text, seconds from request to full reply)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.key}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.conn is None:
                self._connect()
            try:
                t0 = time.perf_counter()
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                dt = time.perf_counter() - t0
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return resp.status, parsed, dt

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


class Bench:
    def __init__(self, args):
        self.args = args
        self.warren = os.path.join(args.build_dir, "bin", "warren")
        self.agent = os.path.join(args.build_dir, "bin", "warren-agent")
        self.jail_init = os.path.join(args.build_dir, "bin", "warren-jail-init")
        self.tmp = None
        self.daemon = None
        self.api = None
        self.live = set()  # sandbox ids created and not yet destroyed
        self.rows = []     # (section, metric, figure text, goal text, verdict)

    # -- setup ---------------------------------------------------------------------------------
    def image_rootfs(self):
        name, tag = self.args.image.split(":", 1)
        return os.path.join(self.args.image_cache, name, tag, "rootfs")

    def setup(self):
        for b in (self.warren, self.agent, self.jail_init):
            if not os.access(b, os.X_OK):
                raise BenchError(f"{b} missing: build first (bench/run.sh does)")
        os.makedirs(self.args.image_cache, exist_ok=True)
        # Short path: <data_dir>/sandboxes/<id>/agent.sock must stay under 108 bytes.
        self.tmp = tempfile.mkdtemp(prefix="wbench-", dir="/tmp")
        self.data_dir = os.path.join(self.tmp, "d")
        os.makedirs(self.data_dir)
        # Private copies: others rebuild the shared build dir while we measure. The daemon finds
        # warren-agent and warren-jail-init next to its own executable.
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir)
        for b in (self.warren, self.agent, self.jail_init):
            shutil.copy2(b, bindir)
        self.warren = os.path.join(bindir, "warren")
        self.agent = os.path.join(bindir, "warren-agent")
        os.symlink(os.path.abspath(self.args.image_cache), os.path.join(self.data_dir, "images"))
        if not os.path.isdir(self.image_rootfs()):
            print(f"image {self.args.image} not in cache {self.args.image_cache}: building it "
                  f"(debian takes minutes, once)", flush=True)
            r = subprocess.run([self.warren, "image", "build", self.args.image,
                                "--data-dir", self.data_dir])
            if r.returncode != 0 or not os.path.isdir(self.image_rootfs()):
                raise BenchError(f"image build of {self.args.image} failed")
        self.daemon = Daemon(self.warren, self.data_dir, os.path.join(self.tmp, "daemon.log"))
        self.daemon.start()
        self.api = Api(self.daemon.port, self.daemon.key)
        print(f"daemon: pid {self.daemon.proc.pid}, port {self.daemon.port}, "
              f"data dir {self.data_dir}, log {self.daemon.log_path}")
        print(f"image:  {self.args.image} ({self.image_rootfs()})", flush=True)

    # -- API steps -----------------------------------------------------------------------------
    def create(self, sandbox_timeout=600):
        body = {"image": self.args.image, "sandbox_timeout": sandbox_timeout}
        st, js, dt = self.api.call("POST", "/v1/sandboxes", body)
        if st != 201 or not isinstance(js, dict) or js.get("state") != "running":
            raise BenchError(f"create → {st}: {js}")
        self.live.add(js["id"])
        return js, dt

    def exec_true(self, sid):
        st, js, dt = self.api.call("POST", f"/v1/sandboxes/{sid}/exec", {"command": "true"})
        if st != 200 or js.get("exit_code") != 0:
            raise BenchError(f"exec in {sid} → {st}: {js}")
        return js, dt

    def destroy(self, sid, missing_ok=False):
        st, js, dt = self.api.call("DELETE", f"/v1/sandboxes/{sid}")
        if st == 404 and missing_ok:
            self.live.discard(sid)
            return None, dt
        if st != 200:
            raise BenchError(f"destroy {sid} → {st}: {js}")
        self.live.discard(sid)
        return js, dt

    def cgroup_memory(self, sid):
        """memory.usage_in_bytes (+ kmem part) of the sandbox's memory cgroup, v1 or v2."""
        try:
            with open(os.path.join(self.data_dir, "sandboxes", sid, "state.json")) as f:
                dirs = json.load(f).get("cgroup_dirs", [])
        except (OSError, ValueError):
            return 0, 0
        for d in dirs:
            for usage, kmem in (("memory.usage_in_bytes", "memory.kmem.usage_in_bytes"),
                                ("memory.current", None)):
                try:
                    with open(os.path.join(d, usage)) as f:
                        u = int(f.read())
                except OSError:
                    continue
                k = 0
                if kmem:
                    try:
                        with open(os.path.join(d, kmem)) as f:
                            k = int(f.read())
                    except OSError:
                        pass
                return u, k
        return 0, 0

    def agent_pid(self, sid):
        """PID 1 of the sandbox (the agent), from the jail driver's state.json (jail.md)."""
        try:
            with open(os.path.join(self.data_dir, "sandboxes", sid, "state.json")) as f:
                pid = int(json.load(f).get("init_pid", 0))
        except (OSError, ValueError):
            return None
        return pid if pid > 0 and proc_comm(pid) == "warren-agent" else None

    # -- reporting -----------------------------------------------------------------------------
    def row(self, section, metric, figure, goal="", met=None):
        verdict = "" if met is None else ("MET" if met else "MISSED")
        self.rows.append((section, metric, figure, goal, verdict))

    def row_dist(self, section, metric, xs_ms, goal_p50=None):
        s = summary(xs_ms)
        fig = f"p50 {s['p50']:7.2f}  p90 {s['p90']:7.2f}  min {s['min']:7.2f}  max {s['max']:7.2f}  (n={s['n']})"
        if goal_p50 is None:
            self.row(section, metric + " [ms]", fig)
        else:
            self.row(section, metric + " [ms]", fig, f"p50 ≤ {goal_p50:g} ms", s["p50"] <= goal_p50)
        return s

    def print_table(self):
        w = [max(len(r[i]) for r in self.rows + [("section", "metric", "figure", "goal", "")])
             for i in range(5)]
        line = "  ".join("-" * x for x in w)
        hdr = ("section", "metric", "figure", "goal", "verdict")
        print()
        print("  ".join(h.ljust(w[i]) for i, h in enumerate(hdr)))
        print(line)
        for r in self.rows:
            print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
        print(line, flush=True)

    # -- the phases ----------------------------------------------------------------------------
    def warm_up(self):
        for _ in range(self.args.warmup):
            js, _ = self.create()
            for _ in range(5):
                self.exec_true(js["id"])
            self.destroy(js["id"])

    def phase_lifecycle(self):
        """(a)+(c)+(e, Warren side): create → first exec `true` → destroy, N times sequentially."""
        n = self.args.creates
        client, server, first_exec, create_exec, destroy = [], [], [], [], []
        print(f"[a] create → exec true → destroy, N={n} sequential ...", flush=True)
        for _ in range(n):
            js, dt_c = self.create()
            _, dt_e = self.exec_true(js["id"])
            _, dt_d = self.destroy(js["id"])
            client.append(dt_c * 1e3)
            server.append(float(js.get("create_ms", float("nan"))))
            first_exec.append(dt_e * 1e3)
            create_exec.append((dt_c + dt_e) * 1e3)
            destroy.append(dt_d * 1e3)
        self.row_dist("create", "request → 201 running (client)", client, GOAL_CREATE_P50_MS)
        self.row_dist("create", "create_ms (server, from reply)", server)
        self.row_dist("create", "first exec true after create", first_exec)
        self.row_dist("destroy", "DELETE → 200 DestroyStats", destroy)
        return create_exec

    def phase_exec(self):
        """(b) exec `true` round trip on one sandbox over one keep-alive connection."""
        n = self.args.execs
        print(f"[b] exec true round trip, N={n} on one sandbox ...", flush=True)
        js, _ = self.create()
        sid = js["id"]
        for _ in range(20):
            self.exec_true(sid)
        rt, srv = [], []
        for _ in range(n):
            r, dt = self.exec_true(sid)
            rt.append(dt * 1e3)
            srv.append(float(r.get("duration_ms", float("nan"))))
        self.destroy(sid)
        self.row_dist("exec", "exec true round trip (client)", rt, GOAL_EXEC_P50_MS)
        self.row_dist("exec", "duration_ms (server, from reply)", srv)

    def phase_idle(self):
        """(d) N idle sandboxes at once: node memory per sandbox, daemon RSS, agents' RSS."""
        n = self.args.idle
        if n <= 0:
            return
        print(f"[d] {n} idle sandboxes ...", flush=True)
        dpid = self.daemon.proc.pid
        # The "before" window also measures how much the node's memory drifts on its own (other
        # work on the host): that drift, divided by n, is the noise of the per-sandbox figure.
        samples = []
        for _ in range(5):
            time.sleep(self.args.settle / 5)
            samples.append(node_used(meminfo()))
        drift = max(samples) - min(samples)
        before = meminfo()
        d_rss0 = proc_status_bytes(dpid, "VmRSS")
        d_anon0 = proc_status_bytes(dpid, "RssAnon") or 0
        ids, create_ms = [], []
        t0 = time.perf_counter()
        for i in range(n):
            js, dt = self.create(sandbox_timeout=3600)
            ids.append(js["id"])
            create_ms.append(dt * 1e3)
            if (i + 1) % 50 == 0:
                print(f"    {i + 1}/{n} created", flush=True)
        t_all = time.perf_counter() - t0
        time.sleep(self.args.settle)
        after = meminfo()
        d_rss1 = proc_status_bytes(dpid, "VmRSS")
        d_anon1 = proc_status_bytes(dpid, "RssAnon") or 0
        pids = [self.agent_pid(s) for s in ids]
        found = [p for p in pids if p]
        agent_rss = sum(proc_status_bytes(p, "VmRSS") or 0 for p in found)
        agent_anon = sum(proc_status_bytes(p, "RssAnon") or 0 for p in found)
        agent_pss = sum(proc_pss_bytes(p) or 0 for p in found)
        cg = [self.cgroup_memory(s) for s in ids]
        cg_usage, cg_kmem = sum(u for u, _ in cg), sum(k for _, k in cg)
        st, lst, _ = self.api.call("GET", "/v1/sandboxes")
        running = sum(1 for s in (lst or {}).get("sandboxes", []) if s.get("state") == "running")

        used = node_used(after) - node_used(before)
        # Anonymous memory that other processes gained or lost meanwhile (compilers, tests):
        # node-wide AnonPages minus what the daemon and the agents gained.
        others_anon = (after["AnonPages"] - before["AnonPages"]) - ((d_anon1 - d_anon0) + agent_anon)
        corrected = used - others_anon
        kernel = sum(after[k] - before[k] for k in ("SUnreclaim", "KernelStack", "PageTables", "Percpu")
                     if k in after and k in before)
        parts = (d_rss1 - d_rss0) + agent_pss + kernel
        self.row_dist("idle", f"create with 0..{n - 1} others alive", create_ms)
        self.row("idle", "sandboxes running (GET /v1/sandboxes)", f"{running} of {n} ({t_all:.1f} s to create all)")
        self.row("idle", "node memory per idle sandbox [MiB]",
                 f"{mib(corrected / n):.2f}  (MemTotal−MemAvailable {mib(used):+.1f} MiB, other processes' "
                 f"anon {mib(others_anon):+.1f} MiB taken out, / {n}; noise ±{mib(drift / n):.2f})",
                 f"≤ {GOAL_IDLE_MIB:g} MiB", mib(corrected / n) <= GOAL_IDLE_MIB)
        if mib(drift / n) > GOAL_IDLE_MIB / 4:  # the host moved more than the figure can resolve
            r = self.rows[-1]
            self.rows[-1] = r[:4] + (r[4] + " (noisy host)",)
        self.row("idle", "  uncorrected (raw node delta / n) [MiB]", f"{mib(used / n):.2f}")
        self.row("idle", "  sum of parts per sandbox [MiB]",
                 f"{mib(parts / n):.2f}  (daemon ΔRSS + agents' PSS + ΔSUnreclaim/KernelStack/PageTables/Percpu)",
                 f"≤ {GOAL_IDLE_MIB:g} MiB", mib(parts / n) <= GOAL_IDLE_MIB)
        self.row("idle", "  daemon RSS growth [MiB]",
                 f"{mib(d_rss1 - d_rss0):.1f} total, {mib(d_rss1 - d_rss0) / n * 1024:.0f} KiB/sandbox "
                 f"(RSS {mib(d_rss0):.1f} → {mib(d_rss1):.1f})")
        self.row("idle", "  agents (PID 1) summed RSS / PSS [MiB]",
                 f"RSS {mib(agent_rss):.1f} ({agent_rss / max(1, len(found)) / 1024:.0f} KiB each), "
                 f"PSS {mib(agent_pss):.1f} ({agent_pss / max(1, len(found)) / 1024:.0f} KiB each); "
                 f"{len(found)} agents found")
        self.row("idle", "  sandbox memory cgroups Σ usage [MiB]",
                 f"{mib(cg_usage):.1f} ({cg_usage / n / 1024:.0f} KiB each, of which kmem "
                 f"{cg_kmem / n / 1024:.0f} KiB)")
        # Where the rest goes: the meminfo fields that moved the most.
        fields = ["Slab", "SUnreclaim", "SReclaimable", "KernelStack", "PageTables", "Shmem",
                  "AnonPages", "Buffers", "Cached", "Percpu", "VmallocUsed"]
        parts = []
        for k in fields:
            if k in before and k in after:
                d = after[k] - before[k]
                parts.append(f"{k} {d / n / 1024:+.0f}")
        self.row("idle", "  meminfo deltas [KiB/sandbox]", ", ".join(parts[:6]))
        self.row("idle", "", ", ".join(parts[6:]))

        print(f"    destroying {n} ...", flush=True)
        dd = []
        for sid in ids:
            _, dt = self.destroy(sid)
            dd.append(dt * 1e3)
        self.row_dist("idle", f"destroy with {n - 1}..0 others alive", dd)

    def phase_bwrap(self, create_exec):
        """(e) the peer: bubblewrap over the same rootfs, /bin/true, N times."""
        bwrap = shutil.which("bwrap")
        if not bwrap:
            self.row("peer", "bwrap", "not installed (apt-get install bubblewrap)")
            return
        n = self.args.creates
        root = self.image_rootfs()
        argv = [bwrap, "--unshare-all", "--ro-bind", root, "/", "--proc", "/proc",
                "--dev", "/dev", "--tmpfs", "/tmp", "/bin/true"]
        print(f"[e] bwrap --unshare-all … /bin/true over the same rootfs, N={n} ...", flush=True)
        for _ in range(3):
            subprocess.run(argv, check=True)
        xs = []
        for _ in range(n):
            t0 = time.perf_counter()
            r = subprocess.run(argv)
            xs.append((time.perf_counter() - t0) * 1e3)
            if r.returncode != 0:
                raise BenchError(f"bwrap exited {r.returncode}")
        w = self.row_dist("ratio", "Warren create + first exec true", create_exec)
        b = self.row_dist("ratio", "bwrap --unshare-all /bin/true", xs)
        self.row("ratio", "Warren / bwrap (create+exec)",
                 f"p50 {w['p50'] / b['p50']:.1f}x   p90 {w['p90'] / b['p90']:.1f}x")

    # -- teardown ------------------------------------------------------------------------------
    def teardown(self):
        problems = []
        if self.api:
            self.api.close()  # an interrupted request may have left it mid-reply
        if self.daemon and (self.live or not self.daemon.alive()):
            if not self.daemon.alive() and os.path.isdir(os.path.join(self.data_dir, "sandboxes")):
                # Sandboxes outlive their daemon; a restarted one re-adopts them, then destroys.
                try:
                    self.daemon.stop()
                    self.daemon.start()
                except BenchError as e:
                    problems.append(str(e))
        if self.daemon and self.daemon.alive():
            self.api = Api(self.daemon.port, self.daemon.key)
            try:
                # The data dir is ours alone: whatever it lists (also a create interrupted
                # before its reply reached us) was made by this run.
                st, js, _ = self.api.call("GET", "/v1/sandboxes")
                listed = {s["id"] for s in (js or {}).get("sandboxes", [])
                          if s.get("state") not in ("destroyed", "lost")}
            except Exception as e:  # noqa: BLE001
                problems.append(f"list: {e}")
                listed = set()
            left = sorted(self.live | listed)
            if left:
                print(f"cleanup: destroying {len(left)} sandbox(es) left by this run ...", flush=True)
            for sid in left:
                try:
                    self.destroy(sid, missing_ok=True)
                except Exception as e:  # noqa: BLE001 — keep cleaning the rest
                    problems.append(f"{sid}: {e}")
            self.api.close()
        if self.daemon:
            self.daemon.stop()
        if self.tmp:
            link = os.path.join(self.data_dir, "images")
            if os.path.islink(link):
                os.unlink(link)  # never rmtree through the cache
            if problems or self.mounts_under(self.tmp):
                print(f"cleanup problems, left {self.tmp} in place: {problems}", file=sys.stderr)
            elif self.args.keep:
                print(f"kept {self.tmp} (daemon log: {os.path.join(self.tmp, 'daemon.log')})")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
        return not problems

    @staticmethod
    def mounts_under(path):
        with open("/proc/self/mountinfo") as f:
            return [l.split()[4] for l in f if l.split()[4].startswith(path)]

    def run(self):
        for line in machine_lines():
            print(line)
        self.setup()
        print(f"warm-up: {self.args.warmup} × (create, 5 × exec, destroy)", flush=True)
        self.warm_up()
        create_exec = self.phase_lifecycle()
        self.phase_exec()
        self.phase_idle()
        self.phase_bwrap(create_exec)
        self.print_table()
        print(f"loadavg at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
              f"(other work on the host skews every figure)")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--image", default="debian:bookworm", choices=["debian:bookworm", "busybox:latest"])
    ap.add_argument("--quick", action="store_true", help="small N for a smoke run")
    ap.add_argument("--idle", type=int, default=None, help="idle sandboxes at once (default 200)")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    ap.add_argument("--image-cache", default=DEFAULT_CACHE,
                    help="dir holding <name>/<tag>/rootfs; symlinked as <data-dir>/images "
                         "(default $WARREN_IMAGE_CACHE or %(default)s)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir and daemon log")
    args = ap.parse_args()
    args.creates = 10 if args.quick else 50
    args.execs = 50 if args.quick else 500
    args.warmup = 1 if args.quick else 3
    args.settle = 1.0 if args.quick else 5.0
    if args.idle is None:
        args.idle = 20 if args.quick else 200
    if os.geteuid() != 0:
        print("warning: the jail driver needs root; creates will fail", file=sys.stderr)

    return run_with_teardown(Bench(args))


def run_with_teardown(bench):
    """Runs bench.run(); whatever happens (error, Ctrl-C, SIGTERM), bench.teardown() destroys
    every sandbox and stops the daemon. Exit status 0 only if both went well."""
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    ok = False
    try:
        bench.run()
        ok = True
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
    except BenchError as e:
        print(f"\nbench failed: {e}", file=sys.stderr)
    finally:
        # Ignore further Ctrl-C while cleaning up: half a cleanup is worse than a slow one.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if not bench.teardown():
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
