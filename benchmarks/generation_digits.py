"""UOTM and S-JKO generating digits from noise (16×16 grey): digits-FD, classes, time, memory, phase cost.

    python benchmarks/generation_digits.py [--threads 2] [--only uotm|sjko] [--out DIR]

Trains ``configs/digits_uotm.yaml`` and ``configs/digits_sjko.yaml`` with ``otgen train``, each in its
own process (its wall time and peak resident memory are its own), and reports for 1000 samples of
each: digits-FD against the 359 held-out digits (otgen's classifier features, not Inception FID), the
classes covered (>= 4 % of the samples) and the smallest class share, beside the floor (held-out vs
train digits). For S-JKO also the seconds of every phase (``sjko_phase_cost.phase_costs``). Writes
``benchmarks/results/generation_digits.md`` and ``.json`` (``generation_digits_uotm.*`` etc. with
``--only``) and copies the grids to ``docs/images/``
(``digits_uotm_samples.png``, ``digits_sjko_samples.png``, ``digits_sjko_phases.png``).
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import torch

from bench_runs import fresh_out, parser, train_run, write_results
from otgen.bench import machine_meta
from sjko_phase_cost import phase_costs

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"uotm": ROOT / "configs" / "digits_uotm.yaml", "sjko": ROOT / "configs" / "digits_sjko.yaml"}
GRIDS = {"uotm": ["samples"], "sjko": ["samples", "phases"]}


def main() -> int:
    p = parser(__doc__, "generation_digits")
    p.add_argument("--only", choices=sorted(CONFIGS), nargs="+", default=sorted(CONFIGS, reverse=True))
    args = p.parse_args()
    out = fresh_out(args, "generation_digits")
    runs = {}
    for name in args.only:
        runs[name] = train_run(name, CONFIGS[name], out / name, args.threads)
        print(runs[name].pop("stdout"), flush=True)
        if name == "sjko":
            runs[name]["phases"] = phase_costs(out / name)
    meta = machine_meta(args.threads)
    lines = [f"Measured {date.today().isoformat()} on {meta['machine']} ({meta['gflops']} GFLOP/s single-thread "
             f"float32 matmul), {args.threads} threads, torch {torch.__version__}; "
             "`python benchmarks/generation_digits.py`. 1000 samples against the 359 held-out digits.", "",
             "| model | digits-FD ↓ | classes covered | smallest class share | train time | peak memory |",
             "|---|---|---|---|---|---|"]
    for name, r in runs.items():
        lines.append(f"| {name.upper()} (`{CONFIGS[name].relative_to(ROOT)}`) | {r['samples_fd']:.1f} | "
                     f"{r['samples_coverage']}/10 | {min(r['samples_histogram']):.1%} | {r['wall_min']:.1f} min | "
                     f"{r['peak_rss_mib']:.0f} MiB |")
    floor = next(iter(runs.values()))["fd_floor_test_vs_train"]
    lines.append(f"| floor (test vs train digits) | {floor:.1f} | – | – | – | – |")
    if "sjko" in runs:
        lines += ["", "| S-JKO phase k | steps | seconds | s/step |", "|---|---|---|---|"]
        lines += [f"| {r['phase']} | {r['steps']} | {r['seconds']:.1f} | {r['s_per_step']:.4f} |"
                  for r in runs["sjko"]["phases"]]
    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    for name in runs:
        for grid in GRIDS[name]:
            shutil.copyfile(out / name / "plots" / f"{grid}.png", images / f"digits_{name}_{grid}.png")
    stem = "generation_digits" if set(runs) == set(CONFIGS) else f"generation_digits_{'_'.join(runs)}"
    write_results(stem, "\n".join(lines) + "\n", {"meta": meta, "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
