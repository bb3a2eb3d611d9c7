"""How well do EgNOT's samplers do when they are given the EXACT potential of a mixture pair?

EgNOT's plan is only as good as its sampler. Here the potential is the pair's own optimal one,
f* = eps·log v (``MixtureEOTPair.optimal_potential``), so u = (f* − ½‖x − y‖²)/eps is log pi*(y | x) up
to a constant and every remaining error is the sampler's. Both samplers run through
``otgen.EgNOT(potential=f*, sampler=...).sample``, the code path of a trained model:

* ``langevin``: the paper's ULA from N(0, I) with eta = 0.05·eps, 300 steps (EgNOT's old default) and
  3000 steps;
* ``smc``: tempered SMC from the cost's kernel N(x, eps·I) with adaptive MALA moves, 300 moves per
  particle (the default ``sample_steps``): the same number of network evaluations per draw as ULA's
  300 steps.

    .venv/bin/python benchmarks/langevin_exact_mixture.py            # ~5 min on 2 cores
    .venv/bin/python benchmarks/langevin_exact_mixture.py --sweep    # the SMC settings compared in docs/egnot.md
    .venv/bin/python benchmarks/langevin_exact_mixture.py --cells 64:0.1 64:1 --samplers smc

Prints one Markdown table row per cell and sampler: cBW2-UVP, log-likelihood gap and weight TV of
the draws (50 conditions x 300 draws), beside the floor of exact draws scored the same way.
"""

from __future__ import annotations

import argparse

import torch

import otgen
from otgen import metrics
from otgen.groundtruth import MixtureEOTPair
from otgen.sampling import TemperedSMC

CELLS = [(2, 0.1), (2, 1.0), (2, 10.0), (16, 0.1), (16, 1.0), (16, 10.0), (16, 100.0)]
RUNS = [("langevin", 300), ("langevin", 3000), ("smc", 300)]
N_CONDITIONS, N_PER_CONDITION = 50, 300


def row(scores: dict) -> str:
    return f"{scores['cbw2_uvp']:.2f} | {scores['loglik_gap']:+.3f} | {scores['weight_tv']:.3f}"


SWEEP_CELLS = [(2, 1.0), (16, 0.1), (16, 1.0), (16, 10.0)]
# (moves per particle, moves per level, conditional-ESS target, largest share of moves spent tempering)
SWEEP = [(300, 2, 0.9, 0.5), (300, 2, 0.97, 0.5), (300, 3, 0.98, 0.5), (300, 6, 0.98, 0.5), (300, 6, 0.98, 0.8),
         (600, 6, 0.98, 0.5), (900, 3, 0.98, 0.5)]


def sweep() -> None:
    """Tempered-SMC settings on the exact potential: which tempering schedule the default uses."""
    print("| moves per draw | moves per level | CESS target | tempering share | D | eps | cBW2-UVP % | LL gap | w TV |")
    print("|---|---|---|---|---|---|---|---|---|")
    for steps, per_level, cess, share in SWEEP:
        for dim, eps in SWEEP_CELLS:
            pair = MixtureEOTPair(dim=dim, eps=eps, n_components=4, seed=0)
            model = otgen.EgNOT(dim=dim, eps=eps, potential=pair.optimal_potential(),
                                sampler={"name": "smc", "sample_steps": steps}, seed=0)
            model.smc = TemperedSMC(steps, per_level, anneal_fraction=share, cess_target=cess)
            scores = row(metrics.conditional_scores(model, pair, N_CONDITIONS, N_PER_CONDITION))
            print(f"| {steps} | {per_level} | {cess} | {share} | {dim} | {eps:g} | {scores} |", flush=True)


def cell_arg(text: str) -> tuple[int, float]:
    """``D:EPS`` -> (D, eps), for --cells."""
    try:
        dim, eps = text.split(":")
        cell = int(dim), float(eps)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a cell is D:EPS, e.g. 64:0.1; got {text!r}") from None
    if cell[0] < 1 or not cell[1] > 0:
        raise argparse.ArgumentTypeError(f"a cell needs D >= 1 and eps > 0; got {text!r}")
    return cell


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sweep", action="store_true", help="compare tempered-SMC settings instead")
    p.add_argument("--cells", nargs="*", metavar="D:EPS", type=cell_arg, help="cells to run (default: %s)"
                   % " ".join(f"{d}:{e:g}" for d, e in CELLS))
    p.add_argument("--samplers", nargs="*", choices=sorted({s for s, _ in RUNS}), help="samplers to run (default: all)")
    args = p.parse_args()
    if args.sweep and (args.cells or args.samplers):
        p.error("--sweep runs its own cells and sampler; drop --cells / --samplers")
    cells = args.cells or CELLS
    runs = [r for r in RUNS if not args.samplers or r[0] in args.samplers]
    torch.set_num_threads(2)
    if args.sweep:
        sweep()
        return
    print("| D | eps | sampler | evaluations per draw | cBW2-UVP % | LL gap | w TV |")
    print("|---|---|---|---|---|---|---|")
    for dim, eps in cells:
        pair = MixtureEOTPair(dim=dim, eps=eps, n_components=4, seed=0)
        gen = torch.Generator().manual_seed(29)
        floor = metrics.conditional_scores(lambda x, k: pair.conditional_sample(x, k, generator=gen), pair,
                                           N_CONDITIONS, N_PER_CONDITION)
        print(f"| {dim} | {eps:g} | exact draws (floor) | — | {row(floor)} |", flush=True)
        for sampler, steps in runs:
            model = otgen.EgNOT(dim=dim, eps=eps, potential=pair.optimal_potential(),
                                sampler={"name": sampler, "sample_steps": steps}, seed=0)
            try:
                scores = row(metrics.conditional_scores(model, pair, N_CONDITIONS, N_PER_CONDITION))
            except ValueError as e:  # non-finite draws: the step is unstable for this curvature
                scores = "diverged | — | —" if "non-finite" in str(e) else f"error: {e} | | "
            print(f"| {dim} | {eps:g} | {sampler} | {steps} | {scores} |", flush=True)


if __name__ == "__main__":
    main()
