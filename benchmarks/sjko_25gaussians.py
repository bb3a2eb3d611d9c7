"""S-JKO on the 25-Gaussian toy: the cost of every phase (the O(K) claim) and the quality per phase.

    .venv/bin/python benchmarks/sjko_25gaussians.py       # ~8 min on one thread

Trains configs/sjko_25gaussians.yaml as it is (10 phases x 5000 steps, batch 400; one thread) and
prints a Markdown row per phase k = 1..10: the seconds of its 5000 training steps (every phase
evaluates one frozen network T_{k-1} for its cost, so this should not grow with k; an S-JKO that
composed the k previous maps would grow linearly), the milliseconds to transport 4000 points with
T_k, and the quality of T_k # mu_0 on 4000 points: W2² to 4000 target samples (exact, POT ot.emd2;
two independent target sets give the floor), the share of points within 4 std of a centre, and the
number of the 25 modes holding at least 1 % of the points.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import ot
import torch

from otgen import config as cfgmod
from otgen.runtime import keep_freed_memory

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "sjko_25gaussians.yaml"
N = 4000


def w2sq(a: torch.Tensor, b: torch.Tensor) -> float:
    w = np.full(len(a), 1.0 / len(a))
    return float(ot.emd2(w, w, ot.dist(a.double().numpy(), b.double().numpy()), numItermax=10**7))


def main() -> None:
    keep_freed_memory()
    torch.set_num_threads(1)
    cfg = cfgmod.validate(cfgmod.load_yaml(CONFIG))
    source, target, _ = cfgmod.build_data(cfg["data"])
    model = cfgmod.build_model(cfg["model"])
    tr = cfg["train"]
    ends: list[float] = []
    t0 = time.perf_counter()

    def clock(step, solver, metrics):  # the wall time at the end of every phase
        if len(ends) < len(solver.phase_states):
            ends.append(time.perf_counter() - t0)

    model.fit(source, target, n_iters=tr["n_iters"], batch_size=tr["batch_size"], seed=tr["seed"],
              progress=False, callbacks=[clock])
    seconds = [b - a for a, b in zip([0.0] + ends[:-1], ends)]

    x = source(N, generator=torch.Generator().manual_seed(1))
    y = target(N, generator=torch.Generator().manual_seed(2))
    floor = w2sq(y, target(N, generator=torch.Generator().manual_seed(3)))
    centres, std = target.centers, target.std
    print(f"training: {sum(seconds):.0f} s for {model.step} steps ({sum(seconds) / model.step * 1e3:.2f} ms/step); "
          f"W2² floor between two target sets of {N}: {floor:.4f}")
    print("| phase k | train s | transport ms (4000 pts) | W2² to target | within 4 std of a centre | modes ≥ 1 % |")
    print("|---|---|---|---|---|---|")
    for k in range(model.n_phases):
        t = time.perf_counter()
        yk = model.transport(x, phase=k, rng=torch.Generator().manual_seed(4))
        ms = 1e3 * (time.perf_counter() - t)
        dist, idx = torch.cdist(yk, centres).min(1)
        near = dist < 4 * std
        modes = int((torch.bincount(idx[near], minlength=25) >= 0.01 * N).sum())
        print(f"| {k + 1} | {seconds[k]:.1f} | {ms:.1f} | {w2sq(yk, y):.3f} | {100 * near.float().mean():.1f} % | "
              f"{modes} |", flush=True)


if __name__ == "__main__":
    main()
