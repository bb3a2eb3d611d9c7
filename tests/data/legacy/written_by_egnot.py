"""Run at commit be4f223 (the last commit of otgen's first file format, "otgen-model-1"): check it out in a
second work tree (git worktree add ../old be4f223) and run this file with that tree's src/ on PYTHONPATH.

Writes EgNOT model files of the first format, whose configs hold the flat constructor arguments
(``lr``, ``hidden``, ``langevin_steps``, ``buffer_size``, ...), one per sampler, and what each returns
for fixed inputs and generators: ``sample`` and ``transport`` right after loading, and the loss and
weights of one more training step after ``prepare`` (which continues the saved chains), so that
tests/test_egnot_options.py can check that ``EgNOTOptions.from_legacy`` rebuilds the same models."""
import torch, otgen
from otgen.distributions import Gaussian
torch.set_num_threads(1)
S, T = Gaussian.standard(2), Gaussian([1.0, 0.0], [[0.5, 0.0], [0.0, 0.5]])
out = str(__import__("pathlib").Path(__file__).parent)
g = lambda s: torch.Generator().manual_seed(s)
x = torch.linspace(-1, 1, 10).reshape(5, 2)
xb, yb = torch.randn(8, 2, generator=g(7)), torch.randn(8, 2, generator=g(8))
models = {
  "smc": otgen.EgNOT(dim=2, eps=0.5, hidden=(8, 8), langevin_steps=2, sample_steps=5, buffer_size=16,
                     refresh_every=2, refresh_steps=3, ema=0.9, seed=0),
  "langevin": otgen.EgNOT(dim=2, eps=0.5, hidden=(8, 8), sampler="langevin", chains="replay", buffer_size=16,
                          reinit_prob=0.2, langevin_steps=3, metropolis=True, lr_schedule="constant", seed=1),
}
expected = {"x": x, "xb": xb, "yb": yb}
for name, m in models.items():
    m.fit(S, T, n_iters=4, batch_size=8, progress=False)
    m.save(f"{out}/egnot_{name}.pt")
    m = otgen.load(f"{out}/egnot_{name}.pt")
    expected[f"{name}_sample"] = m.sample(x, 4, generator=g(3))
    expected[f"{name}_transport"] = m.transport(x, generator=g(4))
    m.prepare(S, T, n_iters=6)
    expected[f"{name}_loss"] = m.train_step(xb, yb)["loss"]
    expected[f"{name}_potential"] = m.potential.state_dict()
torch.save(expected, f"{out}/egnot_expected.pt")
print({k: tuple(v.shape) if hasattr(v, "shape") else len(v) for k, v in expected.items()})
