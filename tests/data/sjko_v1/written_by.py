"""Run at commit 828695a (before S-JKO kept its phases in files): check it out in a second work tree
(git worktree add ../old 828695a) and run this file with that tree's src/ on PYTHONPATH.

Writes S-JKO files in the format of that commit, where every finished phase's weights sit in the
model's state (``phase_states``), and what they give:

- ``model.pt``: a model of 4 phases whose phase weights are set from fixed seeds (independent of any
  training randomness), saved with ``save``; ``expected.pt``: its transports of fixed x with a fixed
  generator for every phase (and for phase=None).
- ``run/checkpoints/last.pt``: a run of 3 phases x 2 steps stopped after step 3 (phase 0 finished,
  phase 1 half way); ``expected.pt`` also holds that checkpoint's T_0(x)."""
import os
import signal
from pathlib import Path

import torch

import otgen
from otgen.distributions import Gaussian

torch.set_num_threads(1)
out = Path(__file__).parent
x = torch.linspace(-1, 1, 12).reshape(6, 2)
g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
expected = {"x": x}

# a model whose phases are set explicitly
model = otgen.SJKO(dim=2, h=0.5, n_phases=4, hidden=(8, 8), noise_dim=2, seed=0)
model.iters_per_phase, model.total_steps = 2, 8
for k in range(4):
    weights = torch.Generator().manual_seed(100 + k)
    with torch.no_grad():
        for p in model.generator_net.parameters():
            p.copy_(torch.randn(p.shape, generator=weights) * 0.5)
    model.step = 2 * (k + 1)
    model._end_phase()
model.save(out / "model.pt")
for k in range(4):
    expected[f"phase{k}"] = model.transport(x, phase=k, generator=g())
expected["current"] = model.transport(x, generator=g())

# a run stopped part way
S, T = Gaussian.standard(2), Gaussian([1.0, 0.0], [[0.5, 0.0], [0.0, 0.5]])


def stop(step, solver, metrics):
    if step == 3:
        os.kill(os.getpid(), signal.SIGTERM)


try:
    otgen.SJKO(dim=2, h=0.5, n_phases=3, hidden=(8, 8), noise_dim=2, seed=0).fit(
        S, T, n_iters=2, batch_size=8, out=out / "run", progress=False, log_every=1, checkpoint_every=100,
        callbacks=[stop])
except KeyboardInterrupt:
    pass
for name in ("metrics.jsonl", "model.pt"):
    (out / "run" / name).unlink(missing_ok=True)
stopped = otgen.load(out / "run" / "checkpoints" / "last.pt")
assert stopped.step == 3 and len(stopped.phase_states) == 1
expected["run_phase0"] = stopped.transport(x, phase=0, generator=g())
torch.save(expected, out / "expected.pt")
print({k: tuple(v.shape) for k, v in expected.items()})
