"""S-JKO against the exact Gaussian JKO recursion: accuracy per phase and time to reach it.

    .venv/bin/python benchmarks/sjko_gaussian.py          # ~5 min on one thread

The pair and settings of the jko-gaussian suite of ``otgen bench`` (otgen.bench_maps; also those of
tests/test_sjko.py: KL towards N(mu, Sigma), diagonal covariances, h = 0.5, 3 phases, Adam 5e-4 with a
cosine in every phase, batch 1024, phase 0 of 2000 steps and the others of 1000). ``otgen bench
jko-gaussian`` scores seed 0 beside its baselines; this script adds seeds, per-phase times and the
budgets where the accuracy gives way. For D = 2 and 8 and seeds 0, 1, 2, prints a Markdown row: BW2-UVP (%) of T_k # mu_0 against
the exact iterate mu_{k+1} after each phase, the seconds each phase took (one thread; evaluation
excluded) and the time to accuracy: the training seconds of a run whose phases all end within 2 %.
Two more blocks: half the steps (1000 / 500), where the budget stops being enough; and D = 8 with a
mean gap of 3 in every coordinate (norm 8.5 instead of 4.24), where mu_1 and nu barely overlap.
"""

from __future__ import annotations

import time

import torch

from otgen.bench_maps import JKO_GAP as GAP
from otgen.bench_maps import JKO_SOLVERS, JKOBudget, JKOCell, jko_gaussian_problem, jko_phase_errors
from otgen.distributions import Gaussian
from otgen.models import get_solver
from otgen.runtime import keep_freed_memory


def train_jko_check(dim: int, seed: int, first: int, per: int, gap: float, callbacks=()):
    m0, S0, mu, Sigma = jko_gaussian_problem(dim, gap)
    budget = JKOBudget(first_phase_iters=first, n_iters=per)
    model = get_solver("sjko")(**JKO_SOLVERS["sjko"](JKOCell(dim), budget), seed=seed)
    model.fit(Gaussian(m0, S0), Gaussian(mu, Sigma), n_iters=per, batch_size=budget.batch_size, progress=False,
              callbacks=callbacks)
    return model


def run(dim: int, seed: int, first: int, per: int, gap: float = GAP) -> tuple[list[float], list[float]]:
    ends: list[float] = []
    t0 = time.perf_counter()

    def clock(step, solver, metrics):  # the wall time at the end of every phase
        if len(ends) < len(solver.phase_states):
            ends.append(time.perf_counter() - t0)

    model = train_jko_check(dim, seed=seed, first=first, per=per, gap=gap, callbacks=[clock])
    seconds = [b - a for a, b in zip([0.0] + ends[:-1], ends)]
    return jko_phase_errors(model, dim, gap=gap), seconds


def main() -> None:
    keep_freed_memory()
    torch.set_num_threads(1)
    print("| D | mean gap | seed | steps (phase 0 / others) | BW2-UVP % after phases 0, 1, 2 | s per phase | "
          "time to ≤ 2 % in every phase |")
    print("|---|---|---|---|---|---|---|")
    blocks = [(dim, GAP, seed, 2000, 1000) for dim in (2, 8) for seed in (0, 1, 2)]
    blocks += [(dim, GAP, 0, 1000, 500) for dim in (2, 8)] + [(8, 3.0 * 8**0.5, 0, 2000, 1000)]
    for dim, gap, seed, first, per in blocks:
        errors, seconds = run(dim, seed, first, per, gap)
        reached = f"{sum(seconds):.0f} s" if max(errors) <= 2.0 else "not reached"
        print(f"| {dim} | {gap:.2f} | {seed} | {first} / {per} | {' / '.join(f'{e:.2f}' for e in errors)} | "
              f"{' / '.join(f'{s:.1f}' for s in seconds)} | {reached} |", flush=True)


if __name__ == "__main__":
    main()
