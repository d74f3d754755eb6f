#!/usr/bin/env python3
"""Port proxy benchmark: a small-response GET through Warren's port proxy vs nginx proxy_pass
in front of the same in-sandbox server, both measured with wrk in the same run.

  python3 bench/port_proxy.py [--duration 10] [--connections 64]

The upstream is bench/port_proxy_upstream.c (static, epoll, keep-alive, 2-byte body) inside a
busybox sandbox, bound to 0.0.0.0 so the host reaches it on the sandbox's veth address (the
jail driver routes 10.201.0.0/16 to each sandbox; docs/design/jail.md). nginx runs on the host
with the same number of workers as Warren has front-door I/O threads, an upstream keep-alive
pool and logging off — the usual production proxy setup. Prints requests/s, the ratio, and the
p50 latency each proxy adds over a direct connection (1 connection, so no queueing).
Needs: wrk, nginx, gcc (Debian packages; scripts/install-deps.sh). Not part of CTest."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from warren_harness import Daemon, create_sandbox, destroy_sandbox, exec_, shared_images  # noqa: E402


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


def nginx_conf(tmp, listen_port, upstream, workers):
    return """
worker_processes %d;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream sb { server %s; keepalive 128; }
  server {
    listen 127.0.0.1:%d;
    location / {
      proxy_pass http://sb;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Real-IP $remote_addr;
    }
  }
}
""" % (workers, tmp, tmp, upstream, listen_port)


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--io-threads", type=int, default=2)
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="warren-bench-pp-")
    binary = os.path.join(tmp, "upstream")
    subprocess.run(["gcc", "-O2", "-static", "-o", binary, os.path.join(HERE, "port_proxy_upstream.c")], check=True)
    d = Daemon(images=shared_images(("busybox:latest",)),
               extra_args=["--default-image", "busybox:latest", "--io-threads", str(a.io_threads)]).start()
    nginx = None
    try:
        sid = create_sandbox(d)["id"]
        with open(binary, "rb") as f:
            s, body, _ = d.request("PUT", "/v1/sandboxes/%s/files?path=/srv/upstream" % sid, body=f.read())
        assert s == 200, body
        exec_(d, sid, "chmod +x /srv/upstream && (setsid /srv/upstream 8000 > /dev/null 2>&1 &)")
        ip = re.search(r"inet (\d+\.\d+\.\d+\.\d+)", exec_(d, sid, "ip -4 addr show eth0")["stdout"]).group(1)
        direct = "http://%s:8000/" % ip
        for _ in range(50):
            if subprocess.run(["curl", "-sf", "-o", "/dev/null", direct]).returncode == 0:
                break
            time.sleep(0.1)
        nport = free_port()
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write(nginx_conf(tmp, nport, ip + ":8000", a.io_threads))
        nginx = subprocess.Popen(["nginx", "-c", os.path.join(tmp, "nginx.conf"), "-g", "daemon off;"])
        time.sleep(0.5)
        host = "8000-%s.localhost:%d" % (sid, d.port)
        warren_url = "http://127.0.0.1:%d/" % d.port
        nginx_url = "http://127.0.0.1:%d/" % nport
        # warm-up (pools, page cache)
        wrk(warren_url, a.connections, 2, host)
        wrk(nginx_url, a.connections, 2)

        res = {}
        for name, url, h in (("direct", direct, None), ("nginx", nginx_url, None), ("warren", warren_url, host)):
            res[name] = {"rps": wrk(url, a.connections, a.duration, h)[0],
                         "p50_ms_1conn": wrk(url, 1, max(3, a.duration // 2), h)[1]}
        w, n, dr = res["warren"], res["nginx"], res["direct"]
        print("port proxy benchmark: GET, 2-byte body, %d keep-alive connections, %d s, %d front-door threads"
              % (a.connections, a.duration, a.io_threads))
        for name in ("direct", "nginx", "warren"):
            print("  %-7s %10.0f req/s   p50 (1 conn) %.3f ms" % (name, res[name]["rps"], res[name]["p50_ms_1conn"]))
        print("  ratio warren/nginx req/s: %.2f (goal >= 1.0)" % (w["rps"] / n["rps"]))
        print("  added p50 over direct: warren %.3f ms (goal <= 0.2), nginx %.3f ms"
              % (w["p50_ms_1conn"] - dr["p50_ms_1conn"], n["p50_ms_1conn"] - dr["p50_ms_1conn"]))
        print(json.dumps(res))
        destroy_sandbox(d, sid)
    finally:
        if nginx:
            nginx.terminate()
            nginx.wait()
        d.close()


if __name__ == "__main__":
    main()
