"""UOTM and S-JKO generating digits from noise (16×16 grey): digits-FD, classes, time, memory, phase cost.

    python benchmarks/generation_digits.py [--threads 2] [--only uotm|sjko] [--seeds 0 1 2]
                                           [--draws 0 1 2] [--out DIR]

Trains ``configs/digits_uotm.yaml`` and ``configs/digits_sjko.yaml`` with ``otgen train`` once per
training seed (``--set train.seed=S --set model.seed=S``), each in its own process (its wall time and
peak resident memory are its own), and scores every run on each draw seed (``otgen eval RUN --seed D``,
1000 samples; ``digits_seed_table.draw_scores``): digits-FD against the 359 held-out digits (otgen's
classifier features, not Inception FID) as the mean over the seeds with their spread and the range
of the single draws, the classes covered (>= 4 % of the samples) and the smallest class share, beside
the floor (held-out vs train digits). For S-JKO also the seconds of every phase of the first seed's
run (``sjko_phase_cost.phase_costs``). Writes ``benchmarks/results/generation_digits.md`` and ``.json``
(``generation_digits_uotm.*`` etc. with ``--only``) and copies the first seed's grids to
``docs/images/`` (``digits_uotm_samples.png``, ``digits_sjko_samples.png``, ``digits_sjko_phases.png``).
"""

from __future__ import annotations

import shutil
import statistics
from datetime import date
from pathlib import Path

import torch

from bench_runs import fresh_out, parser, train_run, write_results
from digits_seed_table import draw_scores
from otgen.bench import machine_meta
from sjko_phase_cost import phase_costs

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"uotm": ROOT / "configs" / "digits_uotm.yaml", "sjko": ROOT / "configs" / "digits_sjko.yaml"}
GRIDS = {"uotm": ["samples"], "sjko": ["samples", "phases"]}


def main() -> int:
    p = parser(__doc__, "generation_digits")
    p.add_argument("--only", choices=sorted(CONFIGS), nargs="+", default=sorted(CONFIGS, reverse=True))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (model and data)")
    p.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2], help="draw seeds of otgen eval")
    args = p.parse_args()
    out = fresh_out(args, "generation_digits")
    runs = {}
    for name in args.only:
        seeds = []
        for seed in args.seeds:
            run_dir = out / name / f"seed{seed}"
            r = train_run(name, CONFIGS[name], run_dir, args.threads, [f"train.seed={seed}", f"model.seed={seed}"])
            print(r.pop("stdout"), flush=True)
            draws = draw_scores(run_dir, args.draws, args.threads)
            r.update(seed=seed, run=str(run_dir), draw_fd=[d["samples_fd"] for d in draws],
                     draw_coverage=[d["samples_coverage"] for d in draws],
                     draw_smallest=[min(d["samples_histogram"]) for d in draws])
            r["mean_fd"] = statistics.mean(r["draw_fd"])
            seeds.append(r)
        runs[name] = {"seeds": seeds, "mean_fd": statistics.mean(r["mean_fd"] for r in seeds),
                      "seed_sd": statistics.stdev([r["mean_fd"] for r in seeds]) if len(seeds) > 1 else None}
        if name == "sjko":
            runs[name]["phases"] = phase_costs(Path(seeds[0]["run"]))
    meta = machine_meta(args.threads)
    lines = [f"Measured {date.today().isoformat()} on {meta['machine']} ({meta['gflops']} GFLOP/s single-thread "
             f"float32 matmul), {args.threads} threads, torch {torch.__version__}; "
             f"`python benchmarks/generation_digits.py --seeds {' '.join(map(str, args.seeds))} --draws "
             f"{' '.join(map(str, args.draws))}`. Each run: 1000 samples per draw seed against the 359 held-out "
             "digits; a model's digits-FD is the mean over its training seeds (sd: their spread), with the range "
             "of the single draws.", "",
             "| model | seed | digits-FD ↓ (draws) | classes covered | smallest class share | train time | peak memory |",
             "|---|---|---|---|---|---|---|"]
    for name, m in runs.items():
        label = f"{name.upper()} (`{CONFIGS[name].relative_to(ROOT)}`)"
        for r in m["seeds"]:
            lines.append(f"| {label} | {r['seed']} | {r['mean_fd']:.1f} ({' / '.join(f'{f:.1f}' for f in r['draw_fd'])}) | "
                         f"{min(r['draw_coverage'])}/10 | {min(r['draw_smallest']):.1%} | {r['wall_min']:.1f} min | "
                         f"{r['peak_rss_mib']:.0f} MiB |")
        fds = [f for r in m["seeds"] for f in r["draw_fd"]]
        sd = f" (seeds' sd {m['seed_sd']:.1f})" if m["seed_sd"] is not None else ""
        lines.append(f"| **{label}** | **mean** | **{m['mean_fd']:.1f}**{sd}, draws {min(fds):.1f}–{max(fds):.1f} | | | "
                     f"{statistics.mean(r['wall_min'] for r in m['seeds']):.1f} min | |")
    floor = next(iter(runs.values()))["seeds"][0]["fd_floor_test_vs_train"]
    lines.append(f"| floor (test vs train digits) | | {floor:.1f} | – | – | – | – |")
    if "sjko" in runs:
        lines += ["", "| S-JKO phase k (first seed) | steps | seconds | s/step |", "|---|---|---|---|"]
        lines += [f"| {r['phase']} | {r['steps']} | {r['seconds']:.1f} | {r['s_per_step']:.4f} |"
                  for r in runs["sjko"]["phases"]]
    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    for name, m in runs.items():
        for grid in GRIDS[name]:
            shutil.copyfile(Path(m["seeds"][0]["run"]) / "plots" / f"{grid}.png", images / f"digits_{name}_{grid}.png")
    stem = "generation_digits" if set(runs) == set(CONFIGS) else f"generation_digits_{'_'.join(runs)}"
    write_results(stem, "\n".join(lines) + "\n", {"meta": meta, "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
