"""UOTM on the 1-D outlier toy: N(0, 1) -> 99 % N(1, 0.1²) + 1 % N(−1, 0.1²).

    .venv/bin/python benchmarks/uotm_outliers.py          # ~2.5 min on one thread

For KL and linear (balanced OTM) conjugates and seeds 0, 1, 2, trains configs/uotm_outliers.yaml's
settings (tau = 0.05, 5 potential steps per generator step, Adam 2e-4 cosine, 8000 potential steps of
batch 256) and prints a Markdown row per run: the fraction of 20 000 generated points below 0, W1 to
the inlier mode N(1, 0.1²) (scipy, against 200 000 exact draws), and training seconds on one thread.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.stats import wasserstein_distance

import otgen
from otgen.distributions import make
from otgen.runtime import keep_freed_memory


def run(phi: str, seed: int, n_iters: int = 8000) -> tuple[float, float, float]:
    model = otgen.UOTM(dim=1, tau=0.05, phi1=phi, phi2=phi, n_critic=5, lr_g=2e-4, lr_v=2e-4,
                       lr_schedule="cosine", seed=seed)
    t0 = time.perf_counter()
    model.fit(make("normal", dim=1), make("outliers_1d"), n_iters=n_iters, batch_size=256, progress=False)
    seconds = time.perf_counter() - t0
    y = model.transport(make("normal", dim=1)(20_000, generator=torch.Generator().manual_seed(1)))[:, 0].numpy()
    inliers = 1.0 + 0.1 * np.random.default_rng(0).standard_normal(200_000)
    return float((y < 0).mean()), float(wasserstein_distance(y, inliers)), seconds


def main() -> None:
    keep_freed_memory()
    torch.set_num_threads(1)
    print("| conjugates | seed | mass below 0 | W1 to N(1, 0.1²) | train s (1 thread) |")
    print("|---|---|---|---|---|")
    for phi in ("kl", "linear"):
        for seed in (0, 1, 2):
            below, w1, seconds = run(phi, seed)
            print(f"| {phi} | {seed} | {100 * below:.2f} % | {w1:.3f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
