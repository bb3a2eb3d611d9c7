"""Training time of EgNOT with the mixture potential (bench's egnot_mixture settings) against the
LightSB peer (bench_peers.lightsb_settings) on one mixture cell, interleaved so that both see the same
load: ``--rounds`` rounds of (egnot_mixture: a fresh model, ``--steps`` steps, its k-means start
included; LightSB: a fresh model, ``--steps`` steps), one process, ``--threads`` torch threads.

    python benchmarks/mixture_step_time.py [--dim 128] [--eps 10] [--steps 2000] [--rounds 5] [--threads 1]

Prints each round's seconds and the totals: with the same number of steps each, egnot_mixture's
total holds ``rounds`` k-means starts where one run has one (an upper bound on its time).
"""

from __future__ import annotations

import argparse
import time

import torch

from otgen.bench import Cell, mixture_settings
from otgen.bench_peers import lightsb_settings
from otgen.models import get_solver


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--eps", type=float, default=10.0)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cell = Cell("mixture", args.dim, args.eps)
    pair = cell.pair(0)  # the suite's pair of this cell (seed 0)
    totals = {"egnot_mixture": 0.0, "lightsb": 0.0}
    for r in range(args.rounds):
        for name, settings in (("egnot_mixture", mixture_settings(cell)),
                               ("lightsb", lightsb_settings(args.dim, args.eps))):
            model = get_solver("egnot")(**settings, seed=r)
            t0 = time.perf_counter()
            model.fit(pair.source, pair.target, n_iters=args.steps, batch_size=128, progress=False)
            seconds = time.perf_counter() - t0
            totals[name] += seconds
            print(f"round {r} {name}: {seconds:.1f} s", flush=True)
    print({k: round(v, 1) for k, v in totals.items()}, f"ratio {totals['egnot_mixture'] / totals['lightsb']:.3f}")


if __name__ == "__main__":
    main()
