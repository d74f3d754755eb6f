"""Runs the Python SDK's own pytest suite (sdk/python/tests, which starts its own daemon) as one
CTest entry, so `ctest` and `.ci/run` cover the SDK end to end."""
import os
import subprocess
import sys

SOURCE_DIR = os.environ.get("WARREN_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
SDK_TESTS = os.path.join(SOURCE_DIR, "sdk", "python", "tests")


def test_the_python_sdk_suite_passes_against_a_real_daemon():
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", SDK_TESTS],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=840)
    assert r.returncode == 0, r.stdout.decode(errors="replace")[-20000:]
