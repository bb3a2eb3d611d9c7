"""One cell of the mixture grid with EgNOT options other than its defaults.

`otgen bench eot-mixture` trains EgNOT with its defaults; this script trains one cell with the given
constructor options, through the same harness (``otgen.bench.run_cell``: the same pair, training
budget and scoring as the grid), and prints EgNOT's scores beside the exact-draw floor and E[y|x].
docs/egnot.md quotes it for the training-length and particle-count choices at D = 2, eps = 0.1:

    .venv/bin/python benchmarks/mixture_cell_options.py --dim 2 --eps 0.1 --iters 3000
    .venv/bin/python benchmarks/mixture_cell_options.py --dim 2 --eps 0.1 --iters 3000 --option particles=8
    .venv/bin/python benchmarks/mixture_cell_options.py --dim 2 --eps 0.1 --iters 3000 --option langevin_steps=10

An ``--option`` KEY is an option of EgNOT (``sampler``, ``optim``, ...; docs/egnot.md), a dotted path
into one (``sampler.chains.refresh_every=0``) or a flat option of otgen's first layout (``particles``,
``langevin_steps``, ``refresh_every``, ...), converted by ``EgNOTOptions.from_legacy``; the results
print the options in today's nested layout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any, Mapping

import torch
import yaml

import otgen
from otgen import bench
from otgen.solvers.egnot import EgNOTOptions
from otgen.spec import Spec, encode


def egnot_options(parser: argparse.ArgumentParser, items: list[str], dim: int, eps: float,
                  base: Mapping[str, Any] | None = None) -> dict:
    """``--option KEY=VALUE`` items (values read as YAML) -> EgNOT's options in the nested layout of
    ``EgNOTOptions`` (plain data), over the script's own ``base`` options; checked by building the
    model once, so that a bad option fails before any training.

    A KEY is an option (``sampler={name: langevin}``), a dotted path into one
    (``sampler.chains.refresh_every=0``: the mappings on the way keep what they do not name) or a flat
    option of otgen's first layout (``refresh_every=0``, ``particles=8``, ``langevin_steps=10``,
    ``lr=1e-3``), converted by ``EgNOTOptions.from_legacy(..., saved=False)`` together with ``base``,
    so that the quoted commands of BENCHMARKS.md and docs/egnot.md build the models they built."""
    flat: dict[str, Any] = {}
    dotted: list[tuple[list[str], Any]] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--option must be KEY=VALUE, got {item!r}")
        path = key.split(".")
        if not all(path):
            parser.error(f"--option {key}: a dotted KEY needs a name between every two dots")
        if len(path) == 1:
            flat[key] = yaml.safe_load(value)
        else:
            dotted.append((path, yaml.safe_load(value)))
    reserved = sorted({"dim", "eps", "seed"} & (set(flat) | {path[0] for path, _ in dotted}))
    if reserved:
        parser.error(f"--option {reserved[0]}: set by --dim, --eps and --seed")
    options = encode(dict(base or {}))
    try:
        if flat:
            options = encode(EgNOTOptions.from_legacy({**options, **flat}, saved=False))
        for path, value in dotted:
            options = set_path(options, path, value)
        otgen.EgNOT(dim=dim, eps=eps, **options)
    except (TypeError, ValueError) as e:
        parser.error(f"--option: {e}")
    return options


def set_path(options: Mapping[str, Any], path: list[str], value: Any) -> dict:
    """A copy of ``options`` with ``value`` at ``path`` (``["sampler", "chains", "refresh_every"]``); a
    name on the way becomes ``{name: ...}`` and a missing entry ``{}`` (a spec's mapping keeps the
    defaults of what it does not name)."""
    out = dict(options)
    head, rest = path[0], path[1:]
    if not rest:
        out[head] = value
        return out
    inner = out.get(head)
    if isinstance(inner, Spec):
        inner = encode(inner)
    inner = {} if inner is None else {"name": inner} if isinstance(inner, str) else inner
    if not isinstance(inner, Mapping):
        raise ValueError(f"--option {'.'.join(path)}: {head} is {inner!r}, which has no options")
    out[head] = set_path(inner, rest, value)
    return out


def merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict:
    """``over`` merged into ``base`` mapping by mapping (nested options); a spec of another ``name``
    replaces the one of ``base`` whole."""
    out = dict(base)
    for key, value in over.items():
        inner = out.get(key)
        same = not (isinstance(inner, Mapping) and isinstance(value, Mapping)
                    and "name" in value and inner.get("name", value["name"]) != value["name"])
        out[key] = merged(inner, value) if isinstance(inner, Mapping) and isinstance(value, Mapping) and same \
            else value
    return out


def cell_parser(description: str, iters: int) -> argparse.ArgumentParser:
    """The arguments of a one-cell EgNOT script: --dim, --eps, --iters, --option KEY=VALUE, --threads."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--eps", type=float, required=True)
    p.add_argument("--iters", type=int, default=iters)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="an EgNOT option (the value is read as YAML): a flat one of the first layout, e.g. "
                        "refresh_every=0, or a (dotted) one of today's, e.g. sampler.chains.refresh_every=0")
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
