"""Host reads of tensor values (device syncs on a GPU) per ``train_step`` of every digits config.

    python benchmarks/host_syncs.py [--steps 5] [--threads 1] [--verbose]

Builds each ``configs/digits_*.yaml`` model through the config loader (the latent EgNOT config with an
untrained WAE decoder as its generator cost: the count does not depend on the weights), calls
``prepare`` and then ``train_step`` ``--steps`` times on batches of the config's size, inside
``tests/host_reads.HostReads``, and prints the reads per step: those made by otgen's code (each a sync
on a GPU), and apart those inside torch (on the CPU Adam reads its step counters, which torch keeps on
the CPU for CUDA parameters too: no device sync). The training loop's own reads at log steps are not
part of ``train_step`` and not counted here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the counter is shared with tests/test_host_syncs.py

from host_reads import HostReads  # noqa: E402
from otgen import config as cfgmod, shard  # noqa: E402
from otgen.costs import GeneratorCost  # noqa: E402
from otgen.models import get_solver  # noqa: E402


def build(path: Path):
    """(model, the data samplers, batch size) of a config file."""
    cfg = cfgmod.validate(cfgmod.load_yaml(path))
    model_cfg = dict(cfg["model"])
    sides = get_solver(model_cfg["name"]).data_sides
    *data, pair = cfgmod.build_data(cfg["data"], sides)
    overrides = {}
    if isinstance(model_cfg.get("cost"), dict) and model_cfg["cost"].get("name") == "generator":
        wae_cfg = cfgmod.validate(cfgmod.load_yaml(ROOT / model_cfg["cost"]["config"]))
        wae = cfgmod.build_model(wae_cfg["model"])
        overrides["cost"] = GeneratorCost(wae.latent_generator())
    model = cfgmod.build_model(model_cfg, pair, **overrides)
    n_iters = model.run_steps(cfg["train"]["n_iters"])
    model.prepare(*data, n_iters=n_iters)
    return model, data, cfg["train"]["batch_size"]


def measure(path: Path, steps: int, seed: int = 0) -> tuple[HostReads, int]:
    model, data, batch_size = build(path)
    g = torch.Generator().manual_seed(seed)
    batches = [[side(batch_size, generator=g) for side in data] for _ in range(steps)]
    with HostReads() as reads, shard.using(shard.Shard()):  # as the loop runs a step (one process)
        for batch in batches:
            model.train_step(*batch)
    return reads, steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="list the call sites")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.steps} steps per config")
    print(f"{'config':28s} {'otgen reads/step':>17s} {'in torch/step':>14s}")
    for path in sorted((ROOT / "configs").glob("digits_*.yaml")):
        reads, steps = measure(path, args.steps)
        ours, in_torch = reads.count("otgen"), sum(reads.sites.values()) - reads.count(None)
        print(f"{path.name:28s} {ours / steps:17.1f} {in_torch / steps:14.1f}", flush=True)
        if args.verbose and ours:
            print(reads.report("otgen"))


if __name__ == "__main__":
    main()
