import os
import signal

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def ctrl_c_after():
    """``ctrl_c_after(k)``: a training callback that sends SIGINT after step k, as Ctrl-C would."""

    def make(k: int):
        def callback(step, solver, metrics):
            if step == k:
                os.kill(os.getpid(), signal.SIGINT)

        return callback

    return make
