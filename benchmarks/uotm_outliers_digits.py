"""UOTM's outlier experiment on the built-in digits: KL vs linear (balanced OTM) conjugates, 3 seeds.

    python benchmarks/uotm_outliers_digits.py [--threads 2] [--seeds 0 1 2] [--out DIR]

Trains ``configs/digits_uotm_outliers.yaml`` (16×16 digits with 3 % inverted digits added) with
phi1 = phi2 = kl and with phi1 = phi2 = linear, for each seed (model and data seed), each in its own
process, and reports per run the share of 1000 generated images that are outliers (nearest neighbour,
in pixels, among every train digit and every inverted train digit is an inverted one), the data's own
share by the same rule, digits-FD against the held-out digits, classes covered, minutes and peak memory.
Writes ``benchmarks/results/uotm_outliers_digits.md`` and ``.json``.
"""

from __future__ import annotations

import statistics
from datetime import date
from pathlib import Path

import torch

from bench_runs import fresh_out, parser, train_run, write_results
from otgen.bench import machine_meta

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "digits_uotm_outliers.yaml"
PENALTIES = {"UOTM-KL": "kl", "OTM (linear, balanced)": "linear"}


def main() -> int:
    p = parser(__doc__, "uotm_outliers")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args()
    out = fresh_out(args, "uotm_outliers")
    runs: dict[str, list[dict]] = {}
    for name, phi in PENALTIES.items():
        for seed in args.seeds:
            sets = [f"model.phi1={phi}", f"model.phi2={phi}", f"model.seed={seed}", f"train.seed={seed}"]
            r = train_run(name, CONFIG, out / f"{phi}_seed{seed}", args.threads, sets)
            r.pop("stdout")
            r["seed"] = seed
            runs.setdefault(name, []).append(r)
            print(f"{name} seed {seed}: outliers {r['samples_outlier_share']:.1%} (data {r['data_outlier_share']:.1%}), "
                  f"digits-FD {r['samples_fd']:.1f}, {r['samples_coverage']}/10 classes, {r['wall_min']:.1f} min",
                  flush=True)
    meta = machine_meta(args.threads)
    lines = [f"Measured {date.today().isoformat()} on {meta['machine']} ({meta['gflops']} GFLOP/s single-thread "
             f"float32 matmul), {args.threads} threads, torch {torch.__version__}; "
             "`python benchmarks/uotm_outliers_digits.py`. Target: 16×16 digits with 3 % inverted digits; "
             "1000 samples per run; outlier share by the nearest-neighbour rule; digits-FD against the 359 "
             "held-out (clean) digits.", "",
             "| conjugates | seed | generated outliers | data outliers | digits-FD | classes covered | train time "
             "| peak memory |", "|---|---|---|---|---|---|---|---|"]
    for name, rs in runs.items():
        for r in rs:
            lines.append(f"| {name} | {r['seed']} | {r['samples_outlier_share']:.1%} | {r['data_outlier_share']:.1%} | "
                         f"{r['samples_fd']:.1f} | {r['samples_coverage']}/10 | {r['wall_min']:.1f} min | "
                         f"{r['peak_rss_mib']:.0f} MiB |")
        med = statistics.median(r["samples_outlier_share"] for r in rs)
        lines.append(f"| {name} | median | {med:.1%} | | {statistics.median(r['samples_fd'] for r in rs):.1f} | | | |")
    text = "\n".join(lines) + "\n"
    write_results("uotm_outliers_digits", text, {"meta": meta, "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
