"""Values move from tensors to Python at most once per training step on average (log_every = 50).

On a GPU every such read (``item()``, ``float()``, ``bool()``, ``tolist()``, ...) waits for the
device's queue. Counted here through the whole training loop, setup and final checkpoint included:
the metrics stay on the device between log steps, the NaN/Inf guard is a device flag, and the stop
request is a host flag (``docs/distributed.md``, "Metrics, NaN/Inf and host syncs").
"""

import math

import pytest
import torch

import otgen
from otgen.train import TrainingDiverged
from host_reads import HostReads
from test_per_process_draws import SOLVERS, make

STEPS = 100  # reads counted by HostReads (tests/host_reads.py) by any code outside torch: torch's own,
# Adam reading its step counter (kept on the host even for CUDA parameters), wait for no device


@pytest.mark.parametrize("name", SOLVERS)
def test_a_run_reads_tensors_at_most_once_per_step_on_average(name, tmp_path):
    torch.set_num_threads(1)
    model, data = make(name)
    with HostReads() as count:
        model.fit(*data, n_iters=STEPS, batch_size=16, progress=False, log_every=50, out=tmp_path / "run")
    steps = model.step  # S-JKO: STEPS per phase
    assert steps >= STEPS
    assert count.count(None) <= steps, (name, count.count(None), steps)
    logged = [line for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(logged) == steps // 50


def test_callbacks_read_the_metrics_only_when_they_look_at_them():
    model, data = make("uotm")
    seen = []

    def look_at_step_3(step, solver, metrics):
        if step == 3:
            seen.append(dict(metrics))

    with HostReads() as count:
        model.fit(*data, n_iters=6, batch_size=16, progress=False, log_every=50, callbacks=[look_at_step_3])
    quiet = HostReads()
    with quiet:
        make("uotm")[0].fit(*data, n_iters=6, batch_size=16, progress=False, log_every=50)
    assert count.count(None) == quiet.count(None) + 1  # one read for all of step 3's values
    assert set(seen[0]) >= {"loss_v"} and all(isinstance(v, float) and math.isfinite(v) for v in seen[0].values())


def test_divergence_found_at_a_log_step_names_the_step_it_happened(tmp_path):
    """A poisoned step 7 is found at the checkpoint step 8 (log_every 50), named as step 7, and the
    checkpoint of step 4 is kept."""
    model, data = make("uotm")

    def poison(step, solver, metrics):
        if step == 6:
            with torch.no_grad():
                next(solver.potential.parameters()).fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match=r"diverged at step 7: .*last good checkpoint \(step 4\)"):
        model.fit(*data, n_iters=20, batch_size=16, progress=False, out=tmp_path, checkpoint_every=4,
                  callbacks=[poison])
    assert otgen.load(tmp_path / "checkpoints" / "last.pt").step == 4
