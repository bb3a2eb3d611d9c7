"""Run at commit be4f223 (before the nested options of issue 28): check it out in a second work tree
(git worktree add ../old be4f223) and run this file with that tree's src/ on PYTHONPATH.

Writes model files of the first format (flat options, "otgen-model-1") of UOTM and S-JKO, and what
the code of that commit gave for them (uotm_sjko_expected.pt): each model's initial weights, the batches of its
training steps and their losses, and its transport / sample of fixed inputs with fixed generators.
tests/test_uotm_options.py and tests/test_sjko_options.py check that ``Options.from_legacy`` of the
stored config builds a model of today's code with the same initial weights, the same losses and
weights after the same steps, and, from the stored state, the same outputs."""
import torch

import otgen

torch.set_num_threads(1)
out = str(__import__("pathlib").Path(__file__).parent)
MODELS = {
    "uotm_small": (lambda: otgen.UOTM(dim=2, tau=0.5, hidden=(8, 8), seed=0), 4),
    "uotm_options": (lambda: otgen.UOTM(dim=2, tau=0.5, phi1="chi", phi2="softplus", alpha1=0.5, alpha2=2.0,
                                        cost_reduce="mean", noise_dim=1, hidden=(8, 8), activation="relu", lr_g=2e-3,
                                        lr_v=1e-3, betas=(0.0, 0.99), grad_clip=1.0, r1=0.1, n_critic=2, ema=0.9,
                                        lr_schedule="cosine", seed=1), 4),
    # 2 phases (3 + 2 steps) trained without a run directory: both phases' weights are in the file
    "sjko_options": (lambda: otgen.SJKO(dim=2, h=0.5, n_phases=2, phi="chi", alpha=0.5, alpha_final=2.0,
                                        instance_noise=0.1, noise_dim=2, first_phase_iters=3,
                                        lr_schedule="phase_cosine", hidden=(8, 8), activation="relu", lr_g=1e-3,
                                        lr_v=2e-3, betas=(0.5, 0.99), grad_clip=1.0, r1=0.1, seed=2), 5),
}
x = torch.linspace(-1, 1, 12).reshape(6, 2)
g = lambda seed: torch.Generator().manual_seed(seed)  # noqa: E731
expected = {"x": x}
for name, (make, steps) in MODELS.items():
    m = make()
    init = {f"{k}.{p}": v.clone() for k in ("generator_net", "potential") for p, v in getattr(m, k).state_dict().items()}
    gen = g(10)
    batches = [(torch.randn(8, 2, generator=gen), 0.5 * torch.randn(8, 2, generator=gen) + 1.0) for _ in range(steps)]
    m.prepare(None, None, n_iters=steps)
    losses = [{k: torch.as_tensor(v) for k, v in m.train_step(bx, by).items()} for bx, by in batches]
    m.save(f"{out}/{name}.pt")
    expected[name] = {"init": init, "batches": batches, "losses": losses, "transport": m.transport(x, generator=g(3)),
                      "sample": m.sample(x, 2, generator=g(4))}
    if name.startswith("sjko"):
        expected[name]["phases"] = [m.transport(x, phase=k, generator=g(3)) for k in range(m.phases_trained)]
torch.save(expected, f"{out}/uotm_sjko_expected.pt")
print({name: sorted(v) for name, v in expected.items() if isinstance(v, dict)})
