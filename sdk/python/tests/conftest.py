"""The SDK's tests run against a real `warren serve` started by the integration harness
(tests/integration/warren_harness.py), with the SDK imported from this checkout."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("WARREN_SOURCE_DIR") or os.path.join(HERE, "..", "..", "..")
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, ".."))

from warren_harness import Daemon, TEST_IMAGE, cleanup_sandboxes, shared_images  # noqa: E402


@pytest.fixture(scope="session")
def daemon():
    d = Daemon(images=shared_images((TEST_IMAGE,)),
               extra_args=["--default-image", TEST_IMAGE]).start()
    yield d
    cleanup_sandboxes(d)
    d.close()


@pytest.fixture(scope="session", autouse=True)
def api_env(daemon):
    """Points the SDK at the test daemon through the documented environment variables."""
    saved = {k: os.environ.get(k) for k in ("WARREN_API_URL", "WARREN_API_KEY")}
    os.environ["WARREN_API_URL"] = "http://127.0.0.1:%d" % daemon.port
    os.environ["WARREN_API_KEY"] = daemon.admin_key
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def sb(daemon):
    """A fresh sandbox, destroyed after the test."""
    from warren import Sandbox
    with Sandbox(sandbox_timeout=120) as s:
        yield s
