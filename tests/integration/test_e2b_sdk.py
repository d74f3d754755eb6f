"""E2B compatibility (issue 17, docs/guides/e2b-compat.md): E2B's own JS SDK, the npm package
`e2b` pinned at 2.51.0 in tests/e2b/package.json and used unmodified, runs the suite in
tests/e2b/sdk.test.mjs (node's test runner) against a real daemon, switched over by environment
variables only: E2B_API_URL and E2B_SANDBOX_URL point at the node, E2B_API_KEY is a Warren
tenant key. Sandboxes use the `base` image (`warren image build base:latest`: Debian with bash,
python3, pip, git, curl, sudo and the user `user`)."""
import os
import subprocess

from warren_harness import Daemon, shared_images, npm_modules, tool

HERE = os.path.dirname(os.path.abspath(__file__))
SUITE = os.path.realpath(os.path.join(HERE, "..", "e2b"))


def test_e2b_js_sdk_suite():
    modules = npm_modules(SUITE)
    images = shared_images(("base:latest", "busybox:latest"))
    d = Daemon(images=images, extra_args=["--default-image", "busybox:latest"]).start()
    try:
        keys = {}
        for tenant in ("e2b-a", "e2b-b"):
            s, body, _ = d.request("POST", "/v1/admin/keys", {"tenant": tenant})
            assert s == 201, body
            keys[tenant] = body["key"]
        url = "http://127.0.0.1:%d" % d.port
        env = dict(os.environ, E2B_API_URL=url, E2B_SANDBOX_URL=url, E2B_API_KEY=keys["e2b-a"],
                   E2B_OTHER_KEY=keys["e2b-b"], E2B_DOMAIN_HOST="localhost:%d" % d.port,
                   NODE_PATH=modules)
        # The suite imports `e2b` from the cached node_modules: run it from a directory beside them.
        run_dir = os.path.dirname(modules)
        test_file = os.path.join(run_dir, "sdk.test.mjs")
        with open(os.path.join(SUITE, "sdk.test.mjs")) as src, open(test_file, "w") as dst:
            dst.write(src.read())
        r = subprocess.run([tool("node"), "--test", "--test-concurrency=1", "--test-reporter=spec", test_file],
                           cwd=run_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
        out = r.stdout.decode(errors="replace")
        print(out)
        assert r.returncode == 0, out[-8000:] + "\n--- daemon log ---\n" + open(d.log_path).read()[-6000:]
    finally:
        d.close()
