"""One cell of the mixture grid with EgNOT options other than its defaults.

`otgen bench eot-mixture` trains EgNOT with its defaults; this script trains one cell with the given
constructor options, through the same harness (``otgen.bench.run_cell``: the same pair, training
budget and scoring as the grid), and prints EgNOT's scores beside the exact-draw floor and E[y|x].
docs/egnot.md quotes it for the training-length and particle-count choices at D = 2, eps = 0.1:

    .venv/bin/python benchmarks/mixture_cell_options.py --dim 2 --eps 0.1 --iters 3000
    .venv/bin/python benchmarks/mixture_cell_options.py --dim 2 --eps 0.1 --iters 3000 --option particles=8
    .venv/bin/python benchmarks/mixture_cell_options.py --dim 2 --eps 0.1 --iters 3000 --option langevin_steps=10
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import torch
import yaml

import otgen
from otgen import bench


def egnot_options(parser: argparse.ArgumentParser, items: list[str], dim: int, eps: float) -> dict:
    """``--option KEY=VALUE`` items (values read as YAML) -> EgNOT keyword arguments, checked by
    building the model once, so that a bad option fails before any training."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--option must be KEY=VALUE, got {item!r}")
        options[key] = yaml.safe_load(value)
    reserved = sorted({"dim", "eps", "seed"} & set(options))
    if reserved:
        parser.error(f"--option {reserved[0]}: set by --dim, --eps and --seed")
    try:
        otgen.EgNOT(dim=dim, eps=eps, **options)
    except (TypeError, ValueError) as e:
        parser.error(f"--option: {e}")
    return options


def cell_parser(description: str, iters: int) -> argparse.ArgumentParser:
    """The arguments of a one-cell EgNOT script: --dim, --eps, --iters, --option KEY=VALUE, --threads."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--eps", type=float, required=True)
    p.add_argument("--iters", type=int, default=iters)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="an EgNOT constructor option (the value is read as YAML), e.g. refresh_every=0")
    p.add_argument("--threads", type=int, default=2)
    return p


def main() -> None:
    p = cell_parser(__doc__, bench.FULL_BUDGET.n_iters)
    p.add_argument("--seed", type=int, default=0, help="the pair's and the training's seed, as `otgen bench --seed`")
    args = p.parse_args()
    if args.iters < 1:
        p.error(f"--iters must be >= 1, got {args.iters}")
    options = egnot_options(p, args.option, args.dim, args.eps)
    torch.set_num_threads(args.threads)
    bench.EOT_SOLVERS["egnot_options"] = bench.fit_registered(
        "egnot", lambda cell: dict(dim=cell.dim, eps=cell.eps, **options))
    budget = dataclasses.replace(bench.FULL_BUDGET, n_iters=args.iters)
    result = bench.run_cell(bench.Cell("mixture", args.dim, args.eps), "egnot_options", budget, seed=args.seed)
    m = result["methods"]
    keys = ("cbw2_uvp", "loglik_gap", "weight_tv", "bw2_uvp", "train_seconds", "eval_seconds")
    print(json.dumps({"dim": args.dim, "eps": args.eps, "seed": args.seed, "iters": args.iters, "options": options,
                      "threads": args.threads,
                      **{name: {k: m[name].get(k) for k in keys if k in m[name]} | ({"error": m[name]["error"]}
                                                                                   if "error" in m[name] else {})
                         for name in ("egnot_options", "exact", "conditional_mean")}}, indent=1))


if __name__ == "__main__":
    main()
