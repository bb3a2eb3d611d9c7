"""What the exact unbalanced OT problem of UOTM's outlier experiment does with the outliers.

    python benchmarks/uotm_outliers_exact.py [--taus 0.001 0.003 0.01] [--n-source 1000]
                                             [--draws 3] [--iters 1000]

UOTM-KL's population objective (uotm-sjko.md §1.1) is the unbalanced OT problem

    min_pi  ∫ tau·‖x − y‖² dpi + KL(pi_0 | mu) + KL(pi_1 | nu)

between mu = N(0, I) in 16×16 pixels and nu = the built-in train digits with 3 % outlier images
(``configs/digits_uotm_outliers.yaml``). This script solves it exactly between ``--n-source`` draws
of mu and every image of nu, with POT's unregularised KL solver (``ot.unbalanced.mm_unbalanced``,
reg_m = 1: alpha = 1 as the config), and reports the outliers' share

* of the relaxed target marginal pi_1 (its mass on outlier images over its total mass), and
* of T#mu: the generator's law, each source point sent where its row of the plan goes (the share
  of outliers in each row, averaged over the source points with equal weight),

beside the data's share and balanced OT's (``ot.emd``), for four outlier kinds: ``inverted`` (the
experiment's, ``with_outliers(kind="inverted")``), ``noise`` (``kind="noise"``, uniform pixels) and
``binarised`` (sign of an inverted digit: every pixel ±1, the largest norm a [-1, 1] image can have,
built here only) and ``far`` (``kind="far"``: the binarised ones doubled, pixels ±2, outside the
data's range, so out of reach of a tanh generator; ``uotm_outliers_digits.py --kind far`` trains
on them with an unbounded generator output). Each kind's outliers are listed with their mean
squared norm against the inliers': under N(0, I) the expected cost of reaching y is
tau·(256 + ‖y‖²), so only the norm tells an outlier apart from the source's side. Mean and range
over ``--draws`` source draws. Writes ``benchmarks/results/uotm_outliers_exact.{md,json}``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

import numpy as np
import ot
import torch

from bench_runs import write_results
from otgen.bench import machine_meta
from otgen.distributions import digits
from otgen.distributions.images import OUTLIER_LABEL, with_outliers

KINDS = ("inverted", "noise", "binarised", "far")


def target_set(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(images as (N, 256) float64, is_outlier (N,) bool) of the config's target with ``kind`` outliers."""
    base = digits(size=16, split="train", seed=0)
    data = with_outliers(base, fraction=0.03, kind="inverted" if kind == "binarised" else kind, seed=0)
    y = data.images.reshape(len(data), -1).double().numpy()
    out = (data.labels == OUTLIER_LABEL).numpy()
    if kind == "binarised":
        y = y.copy()
        y[out] = np.where(y[out] >= 0, 1.0, -1.0)
    return y, out


def shares(plan: np.ndarray, out: np.ndarray) -> tuple[float, float, float]:
    """(outlier share of pi_1, outlier share of T#mu, total mass of the plan)."""
    col = plan.sum(0)
    rows = plan.sum(1)
    row_share = plan[:, out].sum(1) / np.maximum(rows, 1e-300)
    return float(col[out].sum() / col.sum()), float(row_share.mean()), float(plan.sum())


def solve(kind: str, taus: list[float], n_source: int, draws: int, iters: int) -> list[dict]:
    y, out = target_set(kind)
    b = np.full(len(y), 1.0 / len(y))
    rows = []
    norms = (float((y[~out] ** 2).sum(1).mean()), float((y[out] ** 2).sum(1).mean()))
    balanced = []
    per_tau = {tau: [] for tau in taus}
    for d in range(draws):
        x = torch.randn(n_source, y.shape[1], generator=torch.Generator().manual_seed(d), dtype=torch.float64).numpy()
        a = np.full(n_source, 1.0 / n_source)
        sq = ot.dist(x, y)  # squared Euclidean
        balanced.append(shares(ot.emd(a, b, sq, numItermax=2_000_000), out)[0])
        for tau in taus:
            t0 = time.perf_counter()
            plan = ot.unbalanced.mm_unbalanced(a, b, tau * sq, reg_m=1.0, div="kl", numItermax=iters)
            per_tau[tau].append((*shares(plan, out), time.perf_counter() - t0))
    for tau in taus:
        r = per_tau[tau]
        rows.append({"kind": kind, "tau": tau, "data_share": float(out.mean()), "inlier_sq_norm": norms[0],
                     "outlier_sq_norm": norms[1], "balanced_share": statistics.mean(balanced),
                     "pi1_share": [v[0] for v in r], "tmu_share": [v[1] for v in r], "mass": [v[2] for v in r],
                     "seconds": statistics.mean(v[3] for v in r)})
    return rows


def fmt(values: list[float]) -> str:
    return f"{100 * statistics.mean(values):.2f} % ({100 * min(values):.2f}–{100 * max(values):.2f})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--taus", type=float, nargs="+", default=[0.001, 0.003, 0.01])
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--n-source", type=int, default=1000)
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--iters", type=int, default=1000, help="mm_unbalanced's iterations")
    args = p.parse_args()
    rows = [r for kind in args.kinds for r in solve(kind, args.taus, args.n_source, args.draws, args.iters)]
    meta = machine_meta(torch.get_num_threads())
    lines = [f"Measured {date.today().isoformat()} on {meta['machine']} ({meta['gflops']} GFLOP/s single-thread "
             f"float32 matmul), torch {torch.__version__}, POT {ot.__version__}; `python "
             f"benchmarks/uotm_outliers_exact.py --n-source {args.n_source} --draws {args.draws} --iters {args.iters}`. "
             f"Exact KL-unbalanced OT (reg_m = 1) between {args.n_source} draws of N(0, I) (16×16) and the "
             f"{len(target_set('inverted')[0])} train digits with 3 % outliers, cost tau·‖x − y‖²; mean "
             f"(min–max) over {args.draws} source draws.", "",
             "| outliers | mean ‖y‖², inliers / outliers | tau | data | balanced OT | UOT: pi_1 | UOT: T#mu | "
             "plan mass | seconds per solve |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['inlier_sq_norm']:.0f} / {r['outlier_sq_norm']:.0f} | {r['tau']:g} | "
                     f"{100 * r['data_share']:.2f} % | {100 * r['balanced_share']:.2f} % | {fmt(r['pi1_share'])} | "
                     f"{fmt(r['tmu_share'])} | {statistics.mean(r['mass']):.3f} | {r['seconds']:.1f} |")
    text = "\n".join(lines) + "\n"
    write_results("uotm_outliers_exact", text, {"meta": meta, "args": vars(args), "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
