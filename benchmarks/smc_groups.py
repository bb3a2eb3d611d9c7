"""How large should one tempered-SMC group of ``EgNOT.sample`` be? Measured on the EXACT potential.

``sample(x, n)`` draws its n particles per x in independent groups of
max(``particles``, min(n, ``sample_group``)) particles. One large group gets the weights of separated
modes right when the tempering is easy, but when the kernel N(x, eps·I) is much wider than the
plan's modes (large eps) it weighs them wrongly, most likely because its particles share one
resampling ancestry (docs/egnot.md: two other causes were ruled out). Small groups are independent but each carries the O(1/N) bias of
self-normalised weights. This script scores each group size on the mixture pairs' exact potential
f* (``MixtureEOTPair.optimal_potential``), so every error is the sampler's; every size costs the same
(300 MALA moves per particle, 50 conditions x 300 draws).

    .venv/bin/python benchmarks/smc_groups.py                  # ~15 min on 2 cores
    .venv/bin/python benchmarks/smc_groups.py --cells 16:10 --groups 4 20 --threads 1

Prints one Markdown table row per cell: cBW2-UVP % / weight TV per group size, and the floor of exact
draws scored the same way.
"""

from __future__ import annotations

import argparse

import torch

import otgen
from otgen import metrics
from otgen.groundtruth import MixtureEOTPair

from langevin_exact_mixture import cell_arg

CELLS = [(2, 0.1), (2, 1.0), (16, 0.1), (16, 1.0), (16, 10.0), (16, 100.0), (64, 1.0), (64, 10.0)]
GROUPS = [4, 8, 20, 50, 300]
N_CONDITIONS, N_PER_CONDITION, STEPS = 50, 300, 300


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", nargs="*", metavar="D:EPS", type=cell_arg, default=CELLS)
    p.add_argument("--groups", nargs="*", type=int, default=GROUPS, help="sample_group values (>= 4)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    if any(g < 4 for g in args.groups):
        p.error(f"--groups: each size must be >= 4 (the default particles); got {args.groups}")
    torch.set_num_threads(args.threads)
    print("| D | eps | floor | " + " | ".join(f"groups of {g}" for g in args.groups) + " |")
    print("|---|---|---|" + "---|" * len(args.groups))
    for dim, eps in args.cells:
        pair = MixtureEOTPair(dim=dim, eps=eps, n_components=4, seed=0)
        gen = torch.Generator().manual_seed(29)
        floor = metrics.conditional_scores(lambda x, k: pair.conditional_sample(x, k, generator=gen), pair,
                                           N_CONDITIONS, N_PER_CONDITION)
        cells = [f"{floor['cbw2_uvp']:.2f} / {floor['weight_tv']:.3f}"]
        for group in args.groups:
            model = otgen.EgNOT(dim=dim, eps=eps, potential=pair.optimal_potential(),
                                sampler={"name": "smc", "sample_steps": STEPS, "sample_group": group}, seed=0)
            s = metrics.conditional_scores(model, pair, N_CONDITIONS, N_PER_CONDITION)
            cells.append(f"{s['cbw2_uvp']:.2f} / {s['weight_tv']:.3f}")
        print(f"| {dim} | {eps:g} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
