"""How well does EgNOT's sampler do when it is given the EXACT potential of a mixture pair?

EgNOT's plan is only as good as its Langevin sampler: pi(y | x) is sampled by ULA on
u(y) = (f(y) − ½‖x − y‖²) / eps from N(0, I) starts. Here f is replaced by the exact potential of a
MixtureEOTPair (u = log pi*(y | x) up to a constant), so every remaining error is the sampler's:
which mode a chain ends in is decided by where it starts, not by the weights w_k(x).

    .venv/bin/python benchmarks/langevin_exact_mixture.py            # ~3 min on 2 cores

Prints one Markdown table row per cell: cBW2-UVP, log-likelihood gap and weight TV of the draws
(50 conditions x 300 draws) after EgNOT's default 300 sampling steps of eta = 0.05 eps, and after
3000 steps.
"""

from __future__ import annotations

import torch

from otgen import metrics
from otgen.groundtruth import MixtureEOTPair
from otgen.sampling.langevin import LangevinSampler

CELLS = [(2, 0.1), (2, 1.0), (2, 10.0), (16, 0.1), (16, 1.0), (16, 10.0)]


def exact_potential_sampler(pair: MixtureEOTPair, n_steps: int, seed: int = 0):
    """ULA from N(0, I) with EgNOT's default step eta = 0.05 eps on log pi*(y | x)."""

    def sample(x: torch.Tensor, k: int) -> torch.Tensor:
        xr = x.repeat_interleave(k, 0).double()

        def log_density(y, need_value):
            with torch.enable_grad():
                y_ = y.detach().requires_grad_(True)
                lp = pair.conditional_log_prob(xr, y_[:, None, :].double())
                (grad,) = torch.autograd.grad(lp.sum(), y_)
            return None, grad.to(y.dtype)

        gen = torch.Generator().manual_seed(seed)
        y0 = torch.randn(xr.shape, generator=gen, dtype=torch.float64)
        y, _ = LangevinSampler(0.05 * pair.eps, n_steps).run(log_density, y0, gen)
        return y.reshape(x.shape[0], k, pair.dim).float()

    return sample


def main() -> None:
    torch.set_num_threads(2)
    print("| D | eps | steps | cBW2-UVP % | LL gap | w TV |")
    print("|---|---|---|---|---|---|")
    for dim, eps in CELLS:
        pair = MixtureEOTPair(dim=dim, eps=eps, n_components=4, seed=0)
        for steps in (300, 3000):
            try:
                s = metrics.conditional_scores(exact_potential_sampler(pair, steps), pair, 50, 300)
                row = f"{s['cbw2_uvp']:.1f} | {s['loglik_gap']:+.2f} | {s['weight_tv']:.2f}"
            except ValueError as e:  # non-finite draws: the step is unstable for this curvature
                row = "diverged | — | —" if "non-finite" in str(e) else f"error: {e} | | "
            print(f"| {dim} | {eps:g} | {steps} | {row} |", flush=True)


if __name__ == "__main__":
    main()
