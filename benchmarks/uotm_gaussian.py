"""UOTM on Gaussian pairs against the closed-form unbalanced (sigma -> 0) and Bures maps.

    .venv/bin/python benchmarks/uotm_gaussian.py          # ~1 min on one thread

Source N(a, A), target N(b, B) (unequal means, rotated covariances; tests/test_uotm.py), cost
‖x − y‖² (tau = 1), alpha = 1, deterministic generator, Adam 1e-3 cosine, 4000 iterations of batch
256. Prints a Markdown row per (D, conjugates): L2-UVP of the learned map against the exact map of
its problem (KL: `groundtruth.uotm_gaussian_ground_truth`; linear: the Bures map), the L2-UVP
between the two exact maps (how different the problems are), and training seconds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

import otgen
from otgen.distributions import Gaussian
from otgen.groundtruth import uotm_gaussian_ground_truth

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_uotm import _bures_map, _gaussian_pair  # noqa: E402  (the pairs of the test)


def main() -> None:
    torch.set_num_threads(1)
    print("| D | conjugates | L2-UVP % vs its exact map | exact UOT vs Bures map, L2-UVP % | train s (1 thread) |")
    print("|---|---|---|---|---|")
    for dim in (1, 2, 8):
        a, A, b, B = _gaussian_pair(dim)
        unbalanced, bures = uotm_gaussian_ground_truth(a, A, b, B, tau=1.0, alpha=1.0), _bures_map(a, A, b, B)
        x = Gaussian(a, A)(20_000, generator=torch.Generator().manual_seed(1))
        xn = x.double().numpy()
        var_u = float(np.trace(unbalanced.marginal_y()[2]))
        gap = 100.0 * float(((unbalanced.map(xn) - bures(xn)) ** 2).sum(1).mean()) / var_u
        for phi, target_map, var in (("kl", unbalanced.map, var_u), ("linear", bures, float(np.trace(B)))):
            model = otgen.UOTM(dim=dim, tau=1.0, phi1=phi, phi2=phi, noise_dim=0, lr_g=1e-3, lr_v=1e-3,
                               lr_schedule="cosine", hidden=(128, 128), seed=0)
            t0 = time.perf_counter()
            model.fit(Gaussian(a, A), Gaussian(b, B), n_iters=4000, batch_size=256, progress=False)
            seconds = time.perf_counter() - t0
            err = 100.0 * float(((model.transport(x).double().numpy() - target_map(xn)) ** 2).sum(1).mean()) / var
            print(f"| {dim} | {phi} | {err:.2f} | {gap:.0f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
