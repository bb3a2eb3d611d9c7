"""Image scores as a mean over training seeds and draws: a table from trained digits runs.

    python benchmarks/digits_seed_table.py --group LABEL RUN [RUN ...] [--group LABEL RUN ...]
                                           [--draws 0 1 2] [--name NAME] [--threads 1]

Each RUN is a directory written by ``otgen train`` on the built-in digits (one training seed each).
Every run is scored with ``otgen eval RUN --seed D --json RUN/eval_seedD.json`` for each draw seed D
(1000 samples, the config's ``eval.n_samples``; a score file already there is read, not redone), and
the table gives each run's digits-FD per draw and their mean, then each group's mean over its runs
with the standard deviation of the run means (the training seeds' spread) and the range of the
single draws. Where the runs' scores hold a fitted latent sampler's (``fitted_latent``: a WAE), the
group gets a second row, ``LABEL, fitted latent``, from the same draws. A single draw of one seed is
not a figure to compare methods by: one draw of 1000 digits moves digits-FD by about ±10–20, a
training seed by about as much again (BENCHMARKS.md).
Writes ``benchmarks/results/NAME.{md,json}`` (default NAME: digits_seed_table).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import date
from pathlib import Path

import torch

from bench_runs import write_results
from otgen.bench import machine_meta


def draw_scores(run: Path, draws: list[int], threads: int) -> list[dict]:
    """The eval.json of every draw seed of ``run`` (scored now where missing)."""
    scores = []
    for d in draws:
        path = run / f"eval_seed{d}.json"
        if not path.is_file():
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            cmd = [sys.executable, "-m", "otgen", "eval", str(run), "--seed", str(d), "--json", str(path)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode:
                raise SystemExit(f"otgen eval {run} --seed {d} failed:\n{proc.stdout}\n{proc.stderr}")
        scores.append(json.loads(path.read_text()))
    return scores


def classes(coverage: list[int]) -> str:
    """The classes covered over the draws: "10", or "9–10" where they differ."""
    return f"{min(coverage)}" if min(coverage) == max(coverage) else f"{min(coverage)}–{max(coverage)}"


def group_row(label: str, scored: list[tuple[Path, list[dict]]], pick) -> dict:
    """A group's runs and means; ``pick(score)`` gives one draw's (digits-FD, classes covered)."""
    rows = []
    for run, scores in scored:
        fds, coverage = zip(*map(pick, scores))
        rows.append({"run": str(run), "fd": list(fds), "mean": statistics.mean(fds), "coverage": list(coverage),
                     "floor": scores[0].get("fd_floor_test_vs_train")})
    means = [r["mean"] for r in rows]
    return {"label": label, "runs": rows, "mean": statistics.mean(means),
            "seed_sd": statistics.stdev(means) if len(means) > 1 else None,
            "draw_range": [min(f for r in rows for f in r["fd"]), max(f for r in rows for f in r["fd"])]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--group", nargs="+", action="append", required=True, metavar=("LABEL", "RUN"),
                   help="a label and the run directories (one training seed each) it averages")
    p.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2], help="draw seeds of otgen eval")
    p.add_argument("--name", default="digits_seed_table")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    groups = []
    for label, *runs in args.group:
        if not runs:
            raise SystemExit(f"--group {label!r} names no run directory")
        scored = []
        for run in map(Path, runs):
            if not (run / "model.pt").is_file():
                raise SystemExit(f"{run} holds no trained model (model.pt)")
            scored.append((run, draw_scores(run, args.draws, args.threads)))
        groups.append(group_row(label, scored, lambda s: (s["samples_fd"], s["samples_coverage"])))
        if all("fitted_latent" in s for _, scores in scored for s in scores):
            groups.append(group_row(f"{label}, fitted latent", scored,
                                    lambda s: (s["fitted_latent"]["fd"], s["fitted_latent"]["coverage"])))
    meta = machine_meta(args.threads)
    argv = " ".join(f"--group '{g[0]}' {' '.join(g[1:])}" for g in args.group)
    lines = [f"Scored {date.today().isoformat()} on {meta['machine']}, torch {torch.__version__}; `python "
             f"benchmarks/digits_seed_table.py {argv} --draws {' '.join(map(str, args.draws))}`. digits-FD of "
             f"1000 samples per draw against the held-out digits (floor {groups[0]['runs'][0]['floor']:.1f}).", "",
             f"| run | digits-FD, draw seeds {' / '.join(map(str, args.draws))} | mean | classes |", "|---|---|---|---|"]
    for g in groups:
        for r in g["runs"]:
            lines.append(f"| {g['label']}: {r['run']} | {' / '.join(f'{f:.1f}' for f in r['fd'])} | {r['mean']:.1f} | "
                         f"{classes(r['coverage'])}/10 |")
        sd = f", seeds' sd {g['seed_sd']:.1f}" if g["seed_sd"] is not None else ""
        lines.append(f"| **{g['label']}: mean of {len(g['runs'])} seeds** | draws {g['draw_range'][0]:.1f}–"
                     f"{g['draw_range'][1]:.1f} | **{g['mean']:.1f}**{sd} | |")
    write_results(args.name, "\n".join(lines) + "\n", {"meta": meta, "draws": args.draws, "groups": groups})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
