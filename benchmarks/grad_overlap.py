"""Wall time of one training step of the digits UOTM config's networks in 2 gloo processes of 1 thread
each: gradients averaged by one flat all-reduce after each backward (``shard.average_gradients``)
against bucketed all-reduces launched from hooks while the backward runs (``otgen.gradsync``), with
the default buckets (1 MiB first, 25 MiB after) and with small ones.

Each process builds the model of configs/digits_uotm.yaml (U-Net generator and conv critic, R1 on the
critic), holds its half of the global batch, and runs ``train_step`` (one critic and one generator
update, each with its all-reduce) inside ``shard.using(Shard(rank, 2))``, as the training loop does.
The modes take turns, ``--rounds`` times ``--steps`` steps each, after warm-up steps; the table gives
the median over rounds of each mode's mean step time (rank 0's clock; the all-reduces keep the ranks
in step), and the time of the all-reduces alone (one flat all-reduce of each optimiser's gradient
bytes, as many as a step makes): the most an overlap could hide.

    python benchmarks/grad_overlap.py                 # writes benchmarks/results/grad_overlap_digits_uotm_cpu.{md,json}
    python benchmarks/grad_overlap.py --steps 10 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from bench_runs import write_results

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "digits_uotm.yaml"
WORLD = 2
# mode -> (gradsync.OVERLAP, bucket_bytes, first_bucket_bytes); None: gradsync's defaults
MODES = {
    "flat all-reduce after backward": (False, None, None),
    "buckets in backward, 25 MiB (first 1 MiB)": (True, None, None),
    "buckets in backward, 256 KiB (first 64 KiB)": (True, 2**18, 2**16),
}


def _worker(rank: int, init_file: str, steps: int, rounds: int, warmup: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    from otgen import config, gradsync, shard

    s = shard.Shard(rank, WORLD)
    cfg = config.validate(config.load_yaml(CONFIG))
    batch = cfg["train"]["batch_size"]
    source, target, _ = config.build_data(cfg["data"])
    g = torch.Generator().manual_seed(0)
    x, y = s.mine(source(batch, generator=g)), s.mine(target(batch, generator=g))
    defaults = gradsync.BUCKET_BYTES, gradsync.FIRST_BUCKET_BYTES
    models, buckets = {}, {}
    for mode, (overlap, size, first) in MODES.items():
        gradsync.OVERLAP = overlap  # the reducers are made (with these bucket sizes) on the first update
        gradsync.BUCKET_BYTES, gradsync.FIRST_BUCKET_BYTES = size or defaults[0], first or defaults[1]
        models[mode] = config.build_model(cfg["model"], seed=0)
        with shard.using(s):
            for _ in range(warmup):
                models[mode].train_step(x, y)
        reducers = [o.reducer for o in models[mode]._optimizers.values()]
        buckets[mode] = [len(r.buckets) if r is not None else 1 for r in reducers]
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for mode, (overlap, _, _) in MODES.items():
            gradsync.OVERLAP = overlap
            dist.barrier()
            t0 = time.perf_counter()
            with shard.using(s):
                for _ in range(steps):
                    models[mode].train_step(x, y)
            times[mode].append((time.perf_counter() - t0) / steps)
    # the all-reduces alone: one flat all-reduce of each optimiser's gradient bytes, per step
    sizes = [sum(p.numel() for p in o.params) for o in models[next(iter(MODES))]._optimizers.values()]
    flats = [torch.randn(n) for n in sizes]
    comm = []
    for _ in range(rounds):
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(steps):
            for f in flats:
                dist.all_reduce(f)
        comm.append((time.perf_counter() - t0) / steps)
    if rank == 0:
        torch.save({"times": times, "buckets": buckets, "comm": comm, "grad_mib": [4 * n / 2**20 for n in sizes],
                    "local_batch": x.shape[0]}, Path(out) / "result.pt")
    dist.destroy_process_group()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20, help="steps per mode per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_worker, args=(str(Path(tmp) / "init"), args.steps, args.rounds, args.warmup, tmp),
                 nprocs=WORLD, join=True)
        r = torch.load(Path(tmp) / "result.pt", weights_only=True)
    from otgen.bench import machine_meta

    meta = machine_meta(1)
    flat = statistics.median(r["times"][next(iter(MODES))])
    lines = [f"One `train_step` of `configs/digits_uotm.yaml` (critic + generator update, R1, local batch "
             f"{r['local_batch']}) in {WORLD} gloo processes x 1 thread; {meta['machine']} "
             f"({meta['gflops']} GFLOP/s single-thread float32 matmul), torch {meta['torch']}, {meta['date']}. "
             f"Median over {args.rounds} rounds of {args.steps} steps (min–max in brackets); gradients: "
             f"generator {r['grad_mib'][0]:.2f} MiB, critic {r['grad_mib'][1]:.2f} MiB.", "",
             "| gradient sync | buckets (generator, critic) | ms / step | vs flat |", "|---|---|---|---|"]
    for mode, ts in r["times"].items():
        med = statistics.median(ts)
        lines.append(f"| {mode} | {', '.join(map(str, r['buckets'][mode]))} | {1e3 * med:.1f} "
                     f"({1e3 * min(ts):.1f}–{1e3 * max(ts):.1f}) | {med / flat - 1:+.1%} |")
    comm = statistics.median(r["comm"])
    lines += ["", f"The all-reduces alone (one flat all-reduce per optimiser's gradients, per step): "
                  f"{1e3 * comm:.1f} ms ({1e3 * min(r['comm']):.1f}–{1e3 * max(r['comm']):.1f}), "
                  f"{comm / flat:.0%} of a flat step: the most an overlap could hide.", "",
              f"Command: `python benchmarks/grad_overlap.py --steps {args.steps} --rounds {args.rounds}`"]
    write_results("grad_overlap_digits_uotm_cpu", "\n".join(lines) + "\n", {**r, "meta": meta, "args": vars(args)})


if __name__ == "__main__":
    main()
