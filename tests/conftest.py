import os
import signal

import pytest
import torch

# `make test` runs one pytest-xdist worker per core (-n auto): each worker computes on one thread, so
# that the workers do not oversubscribe the cores. A plain `pytest` run (one process) keeps two.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


@pytest.fixture
def ctrl_c_after():
    """``ctrl_c_after(k)``: a training callback that sends SIGINT after step k, as Ctrl-C would."""

    def make(k: int):
        def callback(step, solver, metrics):
            if step == k:
                os.kill(os.getpid(), signal.SIGINT)

        return callback

    return make


@pytest.fixture
def one_thread():
    """torch at one thread for the test (restored after it): tests that time or count work per step."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
