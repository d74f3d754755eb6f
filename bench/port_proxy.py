#!/usr/bin/env python3
"""Port proxy benchmark: a small-response GET through Warren's port proxy vs nginx proxy_pass in
front of the same in-sandbox server, measured with wrk in the same run.

  python3 bench/port_proxy.py [--duration 10] [--connections 64] [--rounds 1]

The upstream is bench/port_proxy_upstream.c (static, epoll, keep-alive, 2-byte body). One copy
runs inside a busybox sandbox, bound to 0.0.0.0 (port 8000). nginx on the host reaches it on
the sandbox's veth address (the jail driver routes 10.201.0.0/16 to each sandbox;
docs/design/jail.md), the only way in for a proxy on the host; Warren, as it does for every
server, on the sandbox's loopback from a socket in its network namespace (docs/api.md), which
skips the veth, conntrack and nftables. A second copy in the sandbox is bound to the sandbox's
address only (port 8001), so that Warren takes the veth too: the same path as nginx, the
proxies' own costs compared. One more copy runs on the host (127.0.0.1) as a reference. nginx runs with as many
workers as Warren has front-door I/O threads, an upstream keep-alive pool and logging off (the
usual production proxy setup); Warren logs proxied requests at debug level, so neither writes
a log line per request. Each target gets requests/s at --connections keep-alive connections and
p50 latency at 1 connection (no queueing); with --rounds > 1 the targets are measured
round-robin and the median of each figure is reported. Each Warren target runs right before or
right after nginx in front of the sandbox, in alternating order; a ratio is the geometric mean
of the rounds' paired Warren/nginx ratios (a pair measured seconds apart sees the same host load; use an
even number of rounds, so that each proxy runs first as often as second).

  A. host loopback reference: direct vs nginx -> the host copy (what a proxy costs when its
     upstream is on loopback, the cheapest path there is).
  B. the goal: direct (veth) vs nginx -> veth vs Warren -> the same in-sandbox server, each on
     its own way in. Warren/nginx req/s is the issue's ratio; Warren's added p50 is over direct.
     Then the same path: Warren -> the copy bound to the sandbox's address (veth) vs nginx.
  C. conservative: Warren -> in-sandbox server vs nginx -> the host copy on loopback.
Goals (issue 5): Warren/nginx >= 1.0 req/s; added p50 <= 0.2 ms.
Needs: wrk, nginx, gcc (Debian packages; scripts/install-deps.sh). Not part of CTest."""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from warren_harness import Daemon, create_sandbox, destroy_sandbox, exec_, free_port, shared_images  # noqa: E402


def wrk(url, conns, secs, host=None):
    args = ["wrk", "-t", str(min(2, conns)), "-c", str(conns), "-d", "%ds" % secs, "--latency", url]
    if host:
        args[1:1] = ["-H", "Host: " + host]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError("wrk saw errors against %s:\n%s" % (url, out))
    return rps, float(p50.group(1)) * scale


def nginx_conf(tmp, servers, workers):
    """servers: [(listen port, upstream name, upstream address)]."""
    ups = "".join("  upstream %s { server %s; keepalive 128; }\n" % (name, addr) for _, name, addr in servers)
    srv = "".join("""  server {
    listen 127.0.0.1:%d;
    location / {
      proxy_pass http://%s;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Real-IP $remote_addr;
    }
  }
""" % (port, name) for port, name, _ in servers)
    return """
worker_processes %d;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
%s%s}
""" % (workers, tmp, tmp, ups, srv)


def wait_up(url, host=None):
    args = ["curl", "-sf", "-o", "/dev/null", url] + (["-H", "Host: " + host] if host else [])
    for _ in range(100):
        if subprocess.run(args).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("not answering: " + url)


def upstream_paths(d):
    """Warren's upstream connections opened so far, by path (address, loopback, agent)."""
    s, text, _ = d.request("GET", "/metrics")
    assert s == 200
    return {m.group(1): int(m.group(2)) for m in
            re.finditer(r'warren_port_proxy_upstream_connections_total\{path="(\w+)"\} (\d+)', text)}


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2




def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--io-threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="warren-bench-pp-")
    binary = os.path.join(tmp, "upstream")
    subprocess.run(["gcc", "-O2", "-static", "-o", binary, os.path.join(HERE, "port_proxy_upstream.c")], check=True)
    d = Daemon(images=shared_images(("busybox:latest",)),
               extra_args=["--default-image", "busybox:latest", "--io-threads", str(a.io_threads)]).start()
    nginx = host_up = None
    sid = None
    try:
        sid = create_sandbox(d)["id"]
        with open(binary, "rb") as f:
            s, body, _ = d.request("PUT", "/v1/sandboxes/%s/files?path=/srv/upstream" % sid, body=f.read())
        assert s == 200, body
        ip = re.search(r"inet (\d+\.\d+\.\d+\.\d+)", exec_(d, sid, "ip -4 addr show eth0")["stdout"]).group(1)
        exec_(d, sid, "chmod +x /srv/upstream && (setsid /srv/upstream 8000 > /dev/null 2>&1 &) && "
                      "(setsid /srv/upstream 8001 %s > /dev/null 2>&1 &)" % ip)
        hport = free_port()
        host_up = subprocess.Popen([binary, str(hport)])
        direct_sb = "http://%s:8000/" % ip
        wait_up("http://%s:8001/" % ip)
        direct_lo = "http://127.0.0.1:%d/" % hport
        wait_up(direct_sb)
        wait_up(direct_lo)
        n_sb, n_lo = free_port(), free_port()
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write(nginx_conf(tmp, [(n_sb, "sb", ip + ":8000"), (n_lo, "lo", "127.0.0.1:%d" % hport)], a.io_threads))
        nginx = subprocess.Popen(["nginx", "-c", os.path.join(tmp, "nginx.conf"), "-g", "daemon off;"])
        host = "8000-%s.localhost:%d" % (sid, d.port)
        targets = [  # name, url, Host header
            ("direct_lo", direct_lo, None),
            ("nginx_lo", "http://127.0.0.1:%d/" % n_lo, None),
            ("direct_sb", direct_sb, None),
            ("warren_addr", "http://127.0.0.1:%d/" % d.port, "8001-%s.localhost:%d" % (sid, d.port)),
            ("nginx_sb", "http://127.0.0.1:%d/" % n_sb, None),
            ("warren_sb", "http://127.0.0.1:%d/" % d.port, host),
        ]
        paths = {}
        for name, url, h in targets:  # warm-up (pools, page cache); which path Warren took
            before = upstream_paths(d)
            wait_up(url, h)
            wrk(url, a.connections, 2, h)
            after = upstream_paths(d)
            paths[name] = " ".join("%s +%d" % (k, after[k] - before[k]) for k in after if after[k] > before[k])

        raw = {name: {"rps": [], "p50": []} for name, _, _ in targets}
        for i in range(a.rounds):
            # The two proxies of section B run back to back, first one then the other in turn, so
            # that a change in the host's load between them moves the pair's ratio least.
            order = targets if i % 2 == 0 else targets[:3] + targets[3:][::-1]
            for name, url, h in order:
                raw[name]["rps"].append(wrk(url, a.connections, a.duration, h)[0])
            for name, url, h in order:
                raw[name]["p50"].append(wrk(url, 1, max(3, a.duration // 2), h)[1])
        res = {k: {"rps": median(v["rps"]), "p50_ms_1conn": median(v["p50"])} for k, v in raw.items()}
        # The geometric mean: with an even number of rounds each Warren target runs before nginx
        # as often as after it. (A run right after direct_sb is 8-10 % slower here; that falls
        # on a Warren target in every other round and never on nginx: bench/README.md.)
        def paired(w):
            rs = [x / n for x, n in zip(raw[w]["rps"], raw["nginx_sb"]["rps"])]
            return math.exp(sum(math.log(x) for x in rs) / len(rs)), rs
        ratio, pair_ratios = paired("warren_sb")
        same_ratio, same_pairs = paired("warren_addr")
        odd = "" if a.rounds % 2 == 0 else " — an odd number of rounds: the order is not balanced"
        r = lambda k: res[k]["rps"]  # noqa: E731
        p = lambda k: res[k]["p50_ms_1conn"]  # noqa: E731

        print("port proxy benchmark: GET, 2-byte body, %d keep-alive connections, %d s x %d round(s) (median), "
              "%d front-door threads / nginx workers, load average %.1f"
              % (a.connections, a.duration, a.rounds, a.io_threads, os.getloadavg()[0]))
        print("A. host loopback peer (same server on 127.0.0.1): the cost of a proxy whose upstream is on loopback")
        print("   direct                 %10.0f req/s   p50 (1 conn) %.3f ms" % (r("direct_lo"), p("direct_lo")))
        print("   nginx -> loopback      %10.0f req/s   p50 (1 conn) %.3f ms   nginx/direct %.2f   added p50 %.3f ms"
              % (r("nginx_lo"), p("nginx_lo"), r("nginx_lo") / r("direct_lo"), p("nginx_lo") - p("direct_lo")))
        print("B. the goal: the same in-sandbox server (0.0.0.0:8000), each proxy on its way in")
        print("   direct (veth)          %10.0f req/s   p50 (1 conn) %.3f ms" % (r("direct_sb"), p("direct_sb")))
        print("   nginx -> veth          %10.0f req/s   p50 (1 conn) %.3f ms   nginx/direct %.2f   added p50 %.3f ms"
              % (r("nginx_sb"), p("nginx_sb"), r("nginx_sb") / r("direct_sb"), p("nginx_sb") - p("direct_sb")))
        print("   warren (%s)   %10.0f req/s   p50 (1 conn) %.3f ms   warren/direct %.2f   added p50 %.3f ms"
              % (paths["warren_sb"], r("warren_sb"), p("warren_sb"), r("warren_sb") / r("direct_sb"),
                 p("warren_sb") - p("direct_sb")))
        print("   warren/nginx req/s: %.2f (goal >= 1.0; geometric mean of the rounds' paired ratios: %s%s; "
              "ratio of the medians %.2f); warren added p50 %.3f ms (goal <= 0.2 ms)"
              % (ratio, " ".join("%.2f" % x for x in pair_ratios), odd,
                 r("warren_sb") / r("nginx_sb"), p("warren_sb") - p("direct_sb")))
        print("   the same path: warren -> a copy bound to the sandbox's address only (%s, veth as nginx)"
              % paths["warren_addr"])
        print("   warren -> veth         %10.0f req/s   p50 (1 conn) %.3f ms   warren/direct %.2f   added p50 %.3f ms"
              % (r("warren_addr"), p("warren_addr"), r("warren_addr") / r("direct_sb"),
                 p("warren_addr") - p("direct_sb")))
        print("   warren/nginx req/s on the same path: %.2f (paired: %s%s)"
              % (same_ratio, " ".join("%.2f" % x for x in same_pairs), odd))
        fair = r("warren_sb") / r("nginx_lo")
        print("C. conservative: Warren -> in-sandbox server vs nginx -> the host copy on loopback")
        print("   warren/nginx req/s: %.2f; added p50 over direct-loopback: nginx %.3f ms, warren %.3f ms"
              % (fair, p("nginx_lo") - p("direct_lo"), p("warren_sb") - p("direct_lo")))
        print(json.dumps({"median": res, "runs": raw, "ratio": ratio, "round_ratios": pair_ratios,
                          "same_path_ratio": same_ratio, "same_path_round_ratios": same_pairs, "paths": paths,
                          "ratio_of_medians": r("warren_sb") / r("nginx_sb"), "conservative_ratio": fair}))
    finally:
        if nginx:
            nginx.terminate()
            nginx.wait()
        if host_up:
            host_up.terminate()
            host_up.wait()
        if sid:
            destroy_sandbox(d, sid)
        d.close()


if __name__ == "__main__":
    main()
