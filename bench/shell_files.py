#!/usr/bin/python3
# bench/shell_files.py — shell session and file transfer benchmark (issue 4 "Performance"):
# shell `run` round trip of `true` vs one-shot exec of `true`, and upload/download throughput
# of a 256 MiB file through the API vs `cat` of the same file inside the sandbox. Prints
# figures; never a pass/fail test. Starts its own daemon on an ephemeral port with a temp data
# dir (helpers imported from sandbox_lifecycle.py) and destroys what it created, also on errors
# and Ctrl-C. Needs python3-websockets for the shell WebSocket.
"""Warren shell session and files benchmark (see bench/README.md)."""

import argparse
import asyncio
import hashlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sandbox_lifecycle import (DEFAULT_CACHE, REPO, Api, BenchError, Daemon, machine_lines,  # noqa: E402
                               run_with_teardown, summary)

import websockets  # noqa: E402  (python3-websockets)

GOAL_SHELL_P50_MS = 1.0
MiB = 2 ** 20


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = self.daemon = self.api = None
        self.sid = None
        self.rows = []

    # -- setup / teardown ----------------------------------------------------------------------
    def setup(self):
        bin_src = os.path.join(self.args.build_dir, "bin")
        if not os.access(os.path.join(bin_src, "warren"), os.X_OK):
            raise BenchError(f"{bin_src}/warren missing: build first")
        self.tmp = tempfile.mkdtemp(prefix="wbench-sf-", dir="/tmp")
        self.data_dir = os.path.join(self.tmp, "d")
        os.makedirs(self.data_dir)
        # Private copies of every executable the daemon runs (warren, warren-agent, helpers):
        # others rebuild the shared build dir while we measure.
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir)
        for name in os.listdir(bin_src):
            p = os.path.join(bin_src, name)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                shutil.copy2(p, bindir)
        name, tag = self.args.image.split(":", 1)
        if not os.path.isdir(os.path.join(self.args.image_cache, name, tag, "rootfs")):
            raise BenchError(f"image {self.args.image} not in {self.args.image_cache}: run "
                             f"bench/sandbox_lifecycle.py once (it builds the cache) or warren image build")
        os.symlink(os.path.abspath(self.args.image_cache), os.path.join(self.data_dir, "images"))
        self.daemon = Daemon(os.path.join(bindir, "warren"), self.data_dir, os.path.join(self.tmp, "daemon.log"))
        self.daemon.start()
        self.api = Api(self.daemon.port, self.daemon.key)
        st, js, _ = self.api.call("POST", "/v1/sandboxes", {"image": self.args.image, "sandbox_timeout": 900,
                                                           "disk_mib": 4096, "timeout": 300})
        if st != 201:
            raise BenchError(f"create → {st}: {js}")
        self.sid = js["id"]
        print(f"daemon: pid {self.daemon.proc.pid}, port {self.daemon.port}; sandbox {self.sid} ({self.args.image})",
              flush=True)

    def teardown(self):
        ok = True
        try:
            if self.api and self.sid:
                self.api.close()
                st, js, _ = Api(self.daemon.port, self.daemon.key).call("DELETE", f"/v1/sandboxes/{self.sid}")
                if st not in (200, 404):
                    print(f"cleanup: destroy {self.sid} → {st}: {js}", file=sys.stderr)
                    ok = False
        except Exception as e:  # noqa: BLE001
            print(f"cleanup: {e}", file=sys.stderr)
            ok = False
        if self.daemon:
            self.daemon.stop()
        if self.tmp:
            link = os.path.join(self.data_dir, "images")
            if os.path.islink(link):
                os.unlink(link)  # never rmtree through the cache
            if ok and not self.args.keep:
                shutil.rmtree(self.tmp, ignore_errors=True)
            else:
                print(f"left {self.tmp} in place (daemon log inside)")
        return ok

    # -- helpers -------------------------------------------------------------------------------
    def exec_(self, command, timeout=300):
        st, js, dt = self.api.call("POST", f"/v1/sandboxes/{self.sid}/exec", {"command": command, "timeout": timeout})
        if st != 200 or js.get("exit_code") != 0:
            raise BenchError(f"exec {command!r} → {st}: {js}")
        return js, dt

    def row(self, metric, figure, goal="", met=None):
        self.rows.append((metric, figure, goal, "" if met is None else ("MET" if met else "MISSED")))

    def dist(self, metric, xs, goal=None):
        s = summary(xs)
        fig = f"p50 {s['p50']:7.3f}  p90 {s['p90']:7.3f}  min {s['min']:7.3f}  max {s['max']:8.3f}  (n={s['n']})"
        if goal is None:
            self.row(metric + " [ms]", fig)
        else:
            self.row(metric + " [ms]", fig, f"p50 ≤ {goal:g} ms", s["p50"] <= goal)
        return s

    def print_table(self):
        hdr = ("metric", "figure", "goal", "verdict")
        w = [max(len(r[i]) for r in self.rows + [hdr]) for i in range(4)]
        print()
        print("  ".join(h.ljust(w[i]) for i, h in enumerate(hdr)))
        print("  ".join("-" * x for x in w))
        for r in self.rows:
            print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
        print("  ".join("-" * x for x in w), flush=True)

    # -- phases --------------------------------------------------------------------------------
    def phase_shell(self):
        n = self.args.runs
        print(f"[shell] {n} × run `true` on one shell WebSocket (after {n // 10} warm-up runs) ...", flush=True)

        async def go():
            uri = f"ws://127.0.0.1:{self.daemon.port}/v1/sandboxes/{self.sid}/shell"
            async with websockets.connect(uri, extra_headers={"Authorization": f"Bearer {self.daemon.key}"},
                                          max_size=None, ping_interval=None, compression=None) as ws:
                rtt, server = [], []
                for i in range(n + n // 10):
                    t0 = time.perf_counter()
                    await ws.send(json.dumps({"op": "run", "id": i, "command": "true"}))
                    r = json.loads(await ws.recv())
                    dt = (time.perf_counter() - t0) * 1e3
                    if r.get("id") != i or r.get("exit_code") != 0:
                        raise BenchError(f"shell run → {r}")
                    if i >= n // 10:
                        rtt.append(dt)
                        server.append(r["duration_ms"])
                return rtt, server

        rtt, server = asyncio.run(go())
        s = self.dist("shell run `true` round trip (client)", rtt, GOAL_SHELL_P50_MS)
        self.dist("shell run `true` duration_ms (server)", server)
        return s

    def phase_exec(self):
        n = self.args.execs
        print(f"[exec] {n} × POST …/exec `true` on one keep-alive connection ...", flush=True)
        for _ in range(max(5, n // 10)):
            self.exec_("true")
        rtt, server = [], []
        for _ in range(n):
            js, dt = self.exec_("true")
            rtt.append(dt * 1e3)
            server.append(js["duration_ms"])
        s = self.dist("exec `true` round trip (client)", rtt)
        self.dist("exec `true` duration_ms (server)", server)
        return s

    def phase_files(self):
        size = self.args.file_mib * MiB
        reps = self.args.file_reps
        path = os.path.join(self.tmp, "payload.bin")
        with open(path, "wb") as f:
            for _ in range(self.args.file_mib):
                f.write(os.urandom(MiB))
        with open(path, "rb") as f:
            want = hashlib.sha256(f.read()).hexdigest()
        auth = {"Authorization": f"Bearer {self.daemon.key}"}
        up, down = [], []
        print(f"[files] {reps} × upload and download of {self.args.file_mib} MiB ...", flush=True)
        for i in range(reps):
            c = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=600)
            with open(path, "rb") as f:
                h = dict(auth, **{"Content-Length": str(size), "Content-Type": "application/octet-stream"})
                t0 = time.perf_counter()
                c.request("PUT", f"/v1/sandboxes/{self.sid}/files?path=/bench/f.bin", body=f, headers=h)
                r = c.getresponse()
                body = r.read()
                up.append(time.perf_counter() - t0)
            c.close()
            if r.status != 200 or json.loads(body).get("size") != size:
                raise BenchError(f"upload → {r.status}: {body[:200]!r}")
            c = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=600)
            t0 = time.perf_counter()
            c.request("GET", f"/v1/sandboxes/{self.sid}/files?path=/bench/f.bin", headers=auth)
            r = c.getresponse()
            hsh, n = hashlib.sha256() if i == 0 else None, 0
            while True:
                chunk = r.read(MiB)
                if not chunk:
                    break
                n += len(chunk)
                if hsh:
                    hsh.update(chunk)
            down.append(time.perf_counter() - t0)
            c.close()
            if r.status != 200 or n != size or (hsh and hsh.hexdigest() != want):
                raise BenchError(f"download → {r.status}, {n} bytes, hash ok: {hsh and hsh.hexdigest() == want}")
        cat_read, cat_copy = [], []
        for _ in range(max(3, reps)):
            js, _ = self.exec_("cat /bench/f.bin > /dev/null")
            cat_read.append(js["duration_ms"] / 1e3)
            js, _ = self.exec_("cat /bench/f.bin > /bench/copy.bin; rm /bench/copy.bin")
            cat_copy.append(js["duration_ms"] / 1e3)
        self.exec_("rm -rf /bench")

        def mbs(secs):
            return self.args.file_mib / secs

        med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        u, dn, cr, cc = med(up), med(down), med(cat_read), med(cat_copy)
        self.row(f"upload {self.args.file_mib} MiB (PUT /files)", f"{mbs(u):8.1f} MiB/s  ({u:.2f} s, median of {reps})")
        self.row(f"download {self.args.file_mib} MiB (GET /files)", f"{mbs(dn):8.1f} MiB/s  ({dn:.2f} s, median of {reps})")
        self.row("cat f > /dev/null inside (duration_ms)", f"{mbs(cr):8.1f} MiB/s  ({cr:.3f} s)")
        self.row("cat f > f2 inside (duration_ms)", f"{mbs(cc):8.1f} MiB/s  ({cc:.3f} s)")
        self.row("ratio download / cat-read", f"{cr / dn:8.3f}  (1.0 = as fast as reading it inside)")
        self.row("ratio upload / cat-read", f"{cr / u:8.3f}")
        self.row("ratio upload / cat-copy (write side)", f"{cc / u:8.3f}")

    def run(self):
        for line in machine_lines():
            print(line)
        self.setup()
        shell = self.phase_shell()
        exe = self.phase_exec()
        self.row("ratio exec / shell run (p50)", f"{exe['p50'] / shell['p50']:8.1f}×  "
                 f"(reference platform claims 30–60× for shell over exec)")
        if not self.args.no_files:
            self.phase_files()
        self.print_table()
        print(f"loadavg at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
              f"(other work on the host skews every figure)")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--image", default="debian:bookworm", help="needs bash (default %(default)s)")
    ap.add_argument("--quick", action="store_true", help="small N and one file transfer")
    ap.add_argument("--file-mib", type=int, default=256)
    ap.add_argument("--no-files", action="store_true", help="skip the file throughput phase")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    ap.add_argument("--image-cache", default=DEFAULT_CACHE,
                    help="dir holding <name>/<tag>/rootfs (default $WARREN_IMAGE_CACHE or %(default)s)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir and daemon log")
    args = ap.parse_args()
    args.runs = 200 if args.quick else 2000
    args.execs = 50 if args.quick else 300
    args.file_reps = 1 if args.quick else 3
    if os.geteuid() != 0:
        print("warning: the jail driver needs root; creates will fail", file=sys.stderr)

    return run_with_teardown(Bench(args))


if __name__ == "__main__":
    sys.exit(main())
