"""pytest fixtures: a running daemon per test module, over a shared prebuilt busybox image."""
import pytest

from warren_harness import Daemon, TEST_IMAGE, cleanup_sandboxes, shared_images


@pytest.fixture(scope="session")
def images():
    """`<cache>/images` with the busybox test image, built once per session (and kept)."""
    return shared_images((TEST_IMAGE,))


@pytest.fixture(scope="module")
def daemon(images):
    d = Daemon(images=images, extra_args=["--default-image", TEST_IMAGE]).start()
    yield d
    cleanup_sandboxes(d)
    d.close()
