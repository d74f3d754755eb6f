#!/usr/bin/python3
# bench/snapshots.py — fork, checkpoint, restore, hibernate and resume on the jail driver, with
# a sandbox that has written --write-mib of data. Prints medians, the ratio of a fork child to a
# fresh create measured in the same run, and the floor of the disk copy itself (cp --sparse of
# the same image). Starts its own daemon (tests/integration/warren_harness.py) over the shared
# busybox image cache and destroys everything it made. Never a pass/fail test.
"""Warren snapshots benchmark (see bench/README.md)."""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from warren_harness import Daemon, TEST_IMAGE, cleanup_sandboxes, shared_images  # noqa: E402

GOAL_FORK_CHILD_MS = 30.0  # issue 14: jail fork of a sandbox with 100 MB written, per child


def ms(t0):
    return (time.perf_counter() - t0) * 1000


def call(d, method, path, body=None, want=(200, 201, 204)):
    status, out, _ = d.request(method, path, body, timeout=600)
    if status not in want:
        raise RuntimeError("%s %s → %s %s" % (method, path, status, out))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--write-mib", type=int, default=100)
    ap.add_argument("--disk-mib", type=int, default=2048)
    ap.add_argument("--children", type=int, default=5)
    args = ap.parse_args()
    d = Daemon(images=shared_images((TEST_IMAGE,)), extra_args=["--default-image", TEST_IMAGE]).start()
    rows = []
    try:
        def create():
            return call(d, "POST", "/v1/sandboxes", {"disk_mib": args.disk_mib, "sandbox_timeout": -1})

        src = create()["id"]
        call(d, "POST", "/v1/sandboxes/%s/exec" % src,
             {"command": "dd if=/dev/urandom of=/root/blob bs=1M count=%d 2>/dev/null; sync" % args.write_mib,
              "timeout": 300})
        creates, fork1, forkn, ckpts, restores, hibs, resumes, floors = [], [], [], [], [], [], [], []
        size = 0
        for r in range(args.rounds):
            # fresh create and a one-child fork, order alternating (the second of a pair is slower)
            pair = [("create", None), ("fork", None)]
            if r % 2:
                pair.reverse()
            for kind, _ in pair:
                t0 = time.perf_counter()
                if kind == "create":
                    sid = create()["id"]
                    creates.append(ms(t0))
                else:
                    sid = call(d, "POST", "/v1/sandboxes/%s/fork" % src, {"count": 1})["sandboxes"][0]["id"]
                    fork1.append(ms(t0))
                call(d, "DELETE", "/v1/sandboxes/" + sid)
            t0 = time.perf_counter()
            kids = call(d, "POST", "/v1/sandboxes/%s/fork" % src, {"count": args.children})["sandboxes"]
            forkn.append(ms(t0) / args.children)
            for k in kids:
                call(d, "DELETE", "/v1/sandboxes/" + k["id"])
            t0 = time.perf_counter()
            snap = call(d, "POST", "/v1/sandboxes/%s/checkpoints" % src, {})
            ckpts.append(ms(t0))
            size = snap["size_bytes"]
            img = os.path.join(d.data_dir, "snapshots", snap["snapshot_id"], "scratch.img")
            with tempfile.TemporaryDirectory(dir=os.path.join(d.data_dir, "scratch")) as tmp:
                t0 = time.perf_counter()
                subprocess.run(["cp", "--sparse=always", img, os.path.join(tmp, "copy.img")], check=True)
                floors.append(ms(t0))
            t0 = time.perf_counter()
            rs = call(d, "POST", "/v1/snapshots/%s/restore" % snap["snapshot_id"])
            restores.append(ms(t0))
            call(d, "DELETE", "/v1/sandboxes/" + rs["id"])
            call(d, "DELETE", "/v1/snapshots/" + snap["snapshot_id"])
            t0 = time.perf_counter()
            call(d, "POST", "/v1/sandboxes/%s/hibernate" % src)
            hibs.append(ms(t0))
            t0 = time.perf_counter()
            call(d, "POST", "/v1/sandboxes/%s/resume" % src)
            call(d, "POST", "/v1/sandboxes/%s/exec" % src, {"command": "true"})
            resumes.append(ms(t0))
        med = statistics.median
        info = call(d, "GET", "/v1/info")["drivers"]["jail"]
        print("jail snapshots, busybox, disk_mib %d, %d MiB written, %d rounds, reflink=%s" % (
            args.disk_mib, args.write_mib, args.rounds, info.get("snapshot_storage", {}).get("reflink")))
        rows = [
            ("fresh create (peer)", med(creates), ""),
            ("fork, 1 child", med(fork1), "ratio to create %.2f" % (med(fork1) / med(creates))),
            ("fork, per child of %d" % args.children, med(forkn),
             "goal <= %.0f ms: %s" % (GOAL_FORK_CHILD_MS, "MET" if med(forkn) <= GOAL_FORK_CHILD_MS else "MISSED")),
            ("disk copy floor (cp --sparse)", med(floors), ""),
            ("checkpoint", med(ckpts), "snapshot on disk %.1f MiB" % (size / 2**20)),
            ("restore", med(restores), ""),
            ("hibernate", med(hibs), ""),
            ("resume -> exec works", med(resumes), ""),
        ]
        for name, v, note in rows:
            print("  %-32s p50 %8.1f ms   %s" % (name, v, note))
        call(d, "DELETE", "/v1/sandboxes/" + src)
    finally:
        cleanup_sandboxes(d)
        d.close()


if __name__ == "__main__":
    main()
