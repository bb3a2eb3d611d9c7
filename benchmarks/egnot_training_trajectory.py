"""EgNOT's plan on one mixture cell, scored while it trains: does longer training help or hurt?

Trains ``otgen.EgNOT(dim=D, eps=EPS, seed=0, **options)`` on ``MixtureEOTPair(D, EPS, 4, seed=0)``
(the cell of `otgen bench eot-mixture`) for ``--iters`` iterations of batch 256, and at every quarter
of the run prints cBW2-UVP and weight TV of the current potential (30 conditions × 200 draws: a
cheaper score than the grid's, so compare its numbers with each other) and the sampler's mean ESS
fraction, acceptance rate and MALA step over the last 50 iterations. docs/egnot.md quotes it:

    .venv/bin/python benchmarks/egnot_training_trajectory.py --dim 16 --eps 1 --iters 6000 --option refresh_every=0
    .venv/bin/python benchmarks/egnot_training_trajectory.py --dim 16 --eps 1 --iters 6000
"""

from __future__ import annotations

import json
import time

import torch

import otgen
from otgen import metrics
from otgen.groundtruth import MixtureEOTPair

from mixture_cell_options import cell_parser, egnot_options  # a sibling script: benchmarks/ is on sys.path


def main() -> None:
    p = cell_parser(__doc__, iters=6000)
    args = p.parse_args()
    if args.iters < 4:
        p.error(f"--iters must be >= 4 (it is scored at every quarter), got {args.iters}")
    options = egnot_options(p, args.option, args.dim, args.eps)
    torch.set_num_threads(args.threads)
    pair = MixtureEOTPair(dim=args.dim, eps=args.eps, n_components=4, seed=0)
    model = otgen.EgNOT(dim=args.dim, eps=args.eps, seed=0, **options)
    recent: list[dict] = []
    t0 = time.perf_counter()

    def score(step, solver, logged):
        recent.append({k: float(logged[k]) for k in ("ess", "accept", "mala_step") if k in logged})
        del recent[:-50]
        if step % (args.iters // 4) == 0:
            s = metrics.conditional_scores(solver, pair, 30, 200, seed=5)
            means = {k: round(sum(r.get(k, 0.0) for r in recent) / len(recent), 3) for k in ("ess", "accept", "mala_step")}
            print(json.dumps({"step": step, "seconds": round(time.perf_counter() - t0), "cbw2_uvp": round(s["cbw2_uvp"], 2),
                              "weight_tv": round(s["weight_tv"], 3), **means}), flush=True)

    model.fit(pair.source, pair.target, n_iters=args.iters, batch_size=256, progress=False, callbacks=[score],
              log_every=1)


if __name__ == "__main__":
    main()
