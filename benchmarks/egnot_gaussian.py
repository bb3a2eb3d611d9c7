"""EgNOT on Gaussian pairs with closed-form entropic plans: accuracy, time to train, and speed.

Rerunnable; writes the JSON results and regenerates the EgNOT section of BENCHMARKS.md:

    .venv/bin/python benchmarks/egnot_gaussian.py --write BENCHMARKS.md           # full grid, ~40 min
    .venv/bin/python benchmarks/egnot_gaussian.py --cells 2:0.1 --no-speed        # one cell
    .venv/bin/python benchmarks/egnot_gaussian.py --cells 2:0.1 --no-speed --seed 1 --option sampler=langevin \
        --json benchmarks/results/egnot_gaussian_seeds.json                       # another seed and sampler

For each cell (D, eps): train with the settings of SETTINGS, then score with 100 conditions x 500
draws (cBW2-UVP) and 10 000 transported samples (target BW2-UVP), beside the finite-sample floor
(exact samples scored the same way) and the exact trivial baselines of the pair.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import torch

import otgen
from otgen.bench import evaluate_pair, exact_sample_floor, matmul_gflops
from otgen.groundtruth import GaussianEOTPair
from otgen.runtime import keep_freed_memory

from mixture_cell_options import egnot_options, merged  # a sibling script: benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "egnot_gaussian.json"
BEGIN, END = "<!-- egnot-gaussian:begin -->", "<!-- egnot-gaussian:end -->"

# Per-cell settings: EgNOT options (nested, as EgNOTOptions) and (n_iters, batch_size), chosen to keep
# training <= 5 min on 2 threads; see docs/egnot.md for why these values.
# Every cell uses EgNOT's defaults (2x256 SiLU MLP + bounded quadratic term, Adam 3e-4 with cosine
# decay, the "smc" sampler: 4 weighted particles for each of 4096 pool points, 5 adaptive MALA moves
# per iteration, the visited particles redrawn by a 60-move tempered SMC every 20 iterations; tempered
# SMC with 300 moves per draw for sampling).
SETTINGS = {cell: ({}, 3000, 256) for cell in [(2, 0.1), (2, 1.0), (16, 0.1), (16, 1.0), (64, 0.1), (64, 1.0)]}


def run_cell(dim: int, eps: float, seed: int = 0, options: dict | None = None) -> dict:
    kwargs, n_iters, batch = SETTINGS[(dim, eps)]
    kwargs = merged(kwargs, options or {})
    pair = GaussianEOTPair(dim=dim, eps=eps, seed=seed)
    model = otgen.EgNOT(dim=dim, eps=eps, seed=seed, **kwargs)
    t0 = time.perf_counter()
    model.fit(pair.source, pair.target, n_iters=n_iters, batch_size=batch, progress=False)
    train_s = time.perf_counter() - t0
    scores = evaluate_pair(model, pair, n_conditions=100, n_per_condition=500, n_samples=10_000, seed=seed)
    floor = exact_sample_floor(pair, n_conditions=100, n_per_condition=500, n_samples=10_000, seed=seed)
    return {"dim": dim, "eps": eps, "seed": seed, "n_iters": n_iters, "batch_size": batch,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
            "train_seconds": round(train_s, 1), "eval_seconds": round(scores["eval_seconds"], 1),
            "cbw2_uvp": scores["cbw2_uvp"], "bw2_uvp": scores["bw2_uvp"],
            "floor_cbw2_uvp": floor["cbw2_uvp"], "floor_bw2_uvp": floor["bw2_uvp"],
            "baselines": pair.baselines()}


def _best_times(fns: list, repeats: list[int], rounds: int = 15) -> list[float]:
    """Best seconds per call of each fn, measured in interleaved rounds (so that a noisy neighbour on
    a shared machine slows every candidate alike, and the best round of each is compared)."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, (fn, rep) in enumerate(zip(fns, repeats)):
            t0 = time.perf_counter()
            for _ in range(rep):
                fn()
            best[i] = min(best[i], (time.perf_counter() - t0) / rep)
    return best


def langevin_speed(batch: int = 1024, width: int = 256, dim: int = 2) -> dict:
    """One ULA step and one tempered-SMC MALA move of the 3 x width MLP potential (SiLU, EgNOT's default)
    on `batch` chains, one thread, against the machine's single-thread float32 matmul rate on the same
    (batch x width x width) shape. Both run through EgNOT's own sampling paths (frozen parameters)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        steps, particles = 10, 4
        potential = {"name": "mlp", "hidden": [width] * 3, "quadratic": "none"}
        model = otgen.EgNOT(dim=dim, eps=0.1, potential=potential, sampler={"name": "langevin", "steps": steps},
                            seed=0)
        smc = otgen.EgNOT(dim=dim, eps=0.1, potential=potential, seed=0)  # the kernel base
        x, y = torch.randn(batch, dim), torch.randn(batch, dim)
        a, w = torch.randn(batch, width), torch.randn(width, width)
        xs = x[: batch // particles]
        t_run, t_smc, t_mm = _best_times(
            [lambda: model._run_chains(x, y),  # the sampler's `steps` ULA steps
             lambda: smc._smc_draws(xs, particles, steps, None, smc.potential), lambda: a @ w], [1, 1, 20])
        t_step = t_run / steps
        t_move = t_smc / (steps + 1)  # 10 MALA moves and the first evaluation, tempering and resampling included
        mm_rate = 2 * batch * width * width / t_mm
        # forward (all layers) + backward to the input (no weight gradients): 2 matmuls per hidden layer
        flops = 2 * batch * (dim * width + 2 * width * width + width) + 2 * batch * (2 * width * width + width * dim)
        return {"batch": batch, "width": width, "step_ms": t_step * 1e3, "step_gflops": flops / t_step / 1e9,
                "matmul_gflops": mm_rate / 1e9, "ratio": flops / t_step / mm_rate,
                "smc_move_ms": t_move * 1e3, "smc_ratio": flops / t_move / mm_rate}
    finally:
        torch.set_num_threads(threads)


def table(results: list[dict], speed: dict | None, meta: dict) -> str:
    lines = [BEGIN, "",
             f"Measured {meta['date']} on {meta['machine']}"
             + (f" ({meta['gflops']} GFLOP/s single-thread float32 matmul)" if "gflops" in meta else "")
             + f", torch {meta['torch']}, {meta['threads']} torch threads "
             "(training and scoring; the speed line uses 1). "
             "Reproduce: `.venv/bin/python benchmarks/egnot_gaussian.py --write BENCHMARKS.md`.", "",
             "cBW2-UVP: 100 conditions x 500 draws; target BW2-UVP: 10 000 transported samples. Floor: exact "
             "samples scored the same way. Baselines are exact population values for the same pair: the "
             "deterministic conditional mean E[y|x], the independent coupling, and the eps = 0 OT map.", "",
             "| D | eps | iters x batch | train s | score s | cBW2-UVP % | floor | E[y\\|x] only | independent | "
             "OT map | BW2-UVP % | floor |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        b = r["baselines"]
        lines.append(f"| {r['dim']} | {r['eps']:g} | {r['n_iters']} x {r['batch_size']} | {r['train_seconds']:.0f} | "
                     f"{r['eval_seconds']:.0f} | **{r['cbw2_uvp']:.2f}** | {r['floor_cbw2_uvp']:.3f} | {b['conditional_mean']:.2f} | "
                     f"{b['independent']:.1f} | {b['ot_map']:.2f} | {r['bw2_uvp']:.2f} | {r['floor_bw2_uvp']:.3f} |")
    if speed:
        lines += ["", f"Sampler step speed (3 x {speed['width']} MLP, batch {speed['batch']}, 1 thread), against the "
                      f"single-thread float32 matmul rate of {speed['matmul_gflops']:.1f} GFLOP/s: a ULA step "
                      f"(`sampler=\"langevin\"`) {speed['step_ms']:.2f} ms = {speed['step_gflops']:.1f} GFLOP/s, "
                      f"**{100 * speed['ratio']:.0f} %**"]
        if "smc_move_ms" in speed:
            lines[-1] += (f"; a tempered-SMC MALA move (`sampler=\"smc\"`, {speed['batch'] // 4} points x 4 "
                          f"particles; value, gradient, Metropolis test, tempering and resampling) "
                          f"{speed['smc_move_ms']:.2f} ms, **{100 * speed['smc_ratio']:.0f} %**")
        lines[-1] += f" (measured {meta['speed_date']})." if meta.get("speed_date") else "."
    lines += ["", END]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", nargs="*", help="cells as D:eps (default: all of SETTINGS)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-speed", action="store_true")
    p.add_argument("--speed-only", action="store_true", help="re-measure the speed; keep the cells of --json")
    p.add_argument("--table-only", action="store_true", help="measure nothing: regenerate --write from --json")
    p.add_argument("--seed", type=int, default=0, help="the pair's and the training's seed (the table: 0)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="an EgNOT option for every cell (read as YAML), e.g. sampler=langevin; a flat one of "
                        "the first layout (refresh_every=0) or a dotted one (sampler.chains.refresh_every=0)")
    p.add_argument("--json", default=str(RESULTS))
    p.add_argument("--write", help="regenerate the EgNOT section of this Markdown file (e.g. BENCHMARKS.md)")
    args = p.parse_args(argv)
    if (args.seed or args.option) and (args.write or Path(args.json).resolve() == RESULTS.resolve()):
        p.error("--seed and --option leave the table's settings: pass another --json and no --write")
    options = egnot_options(p, args.option, 2, 0.1) if args.option else {}  # checked once, before any training
    if args.table_only:
        if not args.write:
            p.error("--table-only needs --write")
        previous = json.loads(Path(args.json).read_text())
        write_table(Path(args.write), table(previous["cells"], previous["speed"], previous["meta"]))
        return 0
    keep_freed_memory()  # as the otgen command does (otgen.runtime)
    torch.set_num_threads(args.threads)
    cells = [(int(c.split(":")[0]), float(c.split(":")[1])) for c in args.cells] if args.cells else list(SETTINGS)
    results = []
    if args.speed_only:
        previous = json.loads(Path(args.json).read_text())
        results, cells = previous["cells"], []
    if args.speed_only:
        meta = dict(previous["meta"], speed_date=datetime.date.today().isoformat())
    else:
        meta = {"date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "gflops": round(matmul_gflops()), "torch": torch.__version__, "threads": args.threads}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)

    def save(speed: dict | None) -> None:  # after every cell, so that a stopped run keeps what it measured
        Path(args.json).write_text(json.dumps({"meta": meta, "cells": results, "speed": speed}, indent=1) + "\n")

    for dim, eps in cells:
        r = run_cell(dim, eps, args.seed, options)
        print(json.dumps({k: v for k, v in r.items() if k not in ("settings", "baselines")}), flush=True)
        results.append(r)
        save(None)
    speed = None if args.no_speed else langevin_speed()
    if speed:
        print(json.dumps(speed), flush=True)
    save(speed)
    if args.write:
        write_table(Path(args.write), table(results, speed, meta))
    return 0


def write_table(path: Path, block: str) -> None:
    """Replace the marked section of ``path`` by ``block`` (append it where there is none)."""
    text = path.read_text() if path.exists() else ""
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
