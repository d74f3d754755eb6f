#!/usr/bin/python3
# bench/e2b.py — `commands.run("true")` round trip through the E2B surface (E2B's JS SDK
# 2.51.0, unmodified, from tests/e2b) against Warren's native exec of the same command in the
# same sandbox, in one run. Prints medians and the ratio (goal ≤ 1.3×, issue 17). E2B's
# commands.run runs `/bin/bash -l -c true` (a login shell) where the native exec runs
# `/bin/sh -c true`: the SDK's own choice, part of what an E2B user pays. Never a pass/fail test.
"""Warren E2B-surface exec benchmark (see bench/README.md)."""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from warren_harness import Daemon, npm_modules, shared_images  # noqa: E402

GOAL_RATIO = 1.3


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=50)
    args = ap.parse_args()
    modules = npm_modules(os.path.join(REPO, "tests", "e2b"))
    d = Daemon(images=shared_images(("base:latest",)), extra_args=["--default-image", "base:latest"]).start()
    try:
        s, body, _ = d.request("POST", "/v1/admin/keys", {"tenant": "bench"})
        assert s == 201, body
        url = "http://127.0.0.1:%d" % d.port
        run_dir = os.path.dirname(modules)
        script = os.path.join(run_dir, "e2b_exec.mjs")
        shutil.copy(os.path.join(REPO, "bench", "e2b_exec.mjs"), script)
        env = dict(os.environ, E2B_API_URL=url, E2B_SANDBOX_URL=url, E2B_API_KEY=body["key"], ROUNDS=str(args.rounds))
        out = subprocess.run(["node", script], cwd=run_dir, env=env, check=True, stdout=subprocess.PIPE,
                             timeout=900).stdout.decode()
        r = json.loads(out.strip().splitlines()[-1])
        e2b, native = statistics.median(r["e2b_ms"]), statistics.median(r["native_ms"])
        login = statistics.median(r["native_login_ms"])
        ratio = e2b / native
        print("E2B surface exec benchmark (%d rounds, same sandbox, interleaved)" % args.rounds)
        print("  %-44s %8.2f ms" % ('E2B SDK commands.run("true") p50', e2b))
        print("  %-44s %8.2f ms" % ('native POST /v1/sandboxes/{id}/exec p50', native))
        print("  %-44s %8.2f ms" % ("native exec of bash -l -c true p50", login))
        print("  %-44s %8.2fx  goal <= %.1fx  %s" % ("ratio E2B / native true", ratio, GOAL_RATIO,
                                                      "MET" if ratio <= GOAL_RATIO else "MISSED"))
        print("  %-44s %8.2fx" % ("ratio E2B / native bash -l -c true", e2b / login))
    finally:
        d.close()


if __name__ == "__main__":
    main()
