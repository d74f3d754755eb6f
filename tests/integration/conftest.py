"""pytest fixtures: a running daemon per test module."""
import pytest

from warren_harness import Daemon


@pytest.fixture(scope="module")
def daemon():
    d = Daemon().start()
    yield d
    d.close()
