"""Run at commit 274dc4a: check it out in a second work tree (git worktree add ../old 274dc4a) and run this
file with that tree's src/ on PYTHONPATH.

Write format-1 model files with the code of commit 274dc4a (before the solver-core change), and
what each model returns for fixed inputs and generators, so that tests can check they still load."""
import torch, otgen
from otgen.distributions import Gaussian
torch.set_num_threads(1)
S, T = Gaussian.standard(2), Gaussian([1.0, 0.0], [[0.5, 0.0], [0.0, 0.5]])
out = str(__import__("pathlib").Path(__file__).parent)
x = torch.linspace(-1, 1, 12).reshape(6, 2)
g = lambda: torch.Generator().manual_seed(3)
models = {
  "egnot": otgen.EgNOT(dim=2, eps=0.5, hidden=(8, 8), langevin_steps=3, sample_steps=5, buffer_size=16, ema=0.9, seed=0),
  "uotm": otgen.UOTM(dim=2, tau=0.5, hidden=(8, 8), ema=0.9, n_critic=2, seed=0),
  "sjko": otgen.SJKO(dim=2, h=0.5, n_phases=2, hidden=(8, 8), seed=0),
}
expected = {}
for name, m in models.items():
    m.fit(S, T, n_iters=4, batch_size=8, progress=False)
    m.save(f"{out}/{name}.pt")
    expected[name] = m.transport(x, generator=g())
    if name == "sjko":
        expected["sjko_phase0"] = m.transport(x, phase=0, generator=g())
expected["x"] = x
torch.save(expected, f"{out}/expected.pt")
print({k: tuple(v.shape) for k, v in expected.items()})
