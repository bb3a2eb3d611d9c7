"""Per-process cost of a training step as the number of processes grows, at a fixed local batch.

    python benchmarks/per_process_cost.py [--config configs/digits_uotm.yaml] [--world 32] [--steps 20]
    python benchmarks/per_process_cost.py --test-configs     # every solver, the small configs of the test

This one process trains the config's model as one process with the config's batch B, and as rank 0
of K processes (torch's fake process group: collectives do nothing, so what is timed is the
process's own work) with the global batch K·B, i.e. the same local batch. It prints, for both, the
random numbers drawn per step (torch's samplers plus ``otgen.shard``'s keyed draws) and the median
wall time per step after a warm-up. Threads: 1 (``--threads``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.distributed as dist
from torch.overrides import TorchFunctionMode

import otgen
from otgen import config as cfgmod
from otgen import shard
from otgen.models import get_solver
from otgen.train.distributed import ProcessGroup, SingleProcess

RANDOM = {"randn", "rand", "randint", "randperm", "normal", "bernoulli", "multinomial", "rand_like",
          "randn_like", "normal_", "uniform_", "random_", "exponential_", "bernoulli_"}


class CountDraws(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.numbers = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if getattr(func, "__name__", "") in RANDOM and isinstance(out, torch.Tensor):
            self.numbers += out.numel()
        return out


def build(cfg: dict):
    model_cls = get_solver(cfg["model"]["name"])
    *data, pair = cfgmod.build_data(cfg["data"], model_cls.data_sides)
    return cfgmod.build_model(cfg["model"], pair), data


def measure(cfg: dict, world: int, steps: int, warmup: int) -> tuple[float, float]:
    """(random numbers per step, median seconds per step) of this process with local batch B."""
    batch = cfg["train"]["batch_size"]
    model, data = build(cfg)
    context = ProcessGroup(torch.device("cpu")) if world > 1 else SingleProcess()
    times: list[float] = []
    last = [time.perf_counter()]

    def clock(step, solver, metrics):
        now = time.perf_counter()
        if step > warmup:
            times.append(now - last[0])
        last[0] = now

    counter = CountDraws()
    drawn = getattr(shard, "numbers_drawn", lambda: 0)  # (code before the keyed draws: torch counts all)
    keyed = drawn()
    with counter:
        otgen.train.train(model, data, n_iters=warmup + steps, batch_size=batch * world, progress=False,
                          dist=context, callbacks=[clock], log_every=50)
    per_step = (counter.numbers + drawn() - keyed) / (warmup + steps)
    return per_step, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/digits_uotm.yaml")
    parser.add_argument("--world", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--test-configs", action="store_true",
                        help="count the numbers per step of every solver's config in tests/test_per_process_draws.py")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.test_configs:
        return per_solver(args.world)
    cfg = cfgmod.validate(cfgmod.load_yaml(args.config))
    one = measure(cfg, 1, args.steps, args.warmup)
    from torch.testing._internal.distributed.fake_pg import FakeStore

    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=args.world)
    try:
        many = measure(cfg, args.world, args.steps, args.warmup)
    finally:
        dist.destroy_process_group()
    b = cfg["train"]["batch_size"]
    print(f"{args.config}: local batch {b}, {args.threads} thread(s), {args.steps} timed steps after {args.warmup}")
    print("| processes | global batch | random numbers per step (rank 0) | median s/step (rank 0) |")
    print("|---|---|---|---|")
    print(f"| 1 | {b} | {one[0]:.0f} | {one[1]:.4f} |")
    print(f"| {args.world} | {b * args.world} | {many[0]:.0f} | {many[1]:.4f} |")
    print(f"ratio K={args.world} / K=1: numbers {many[0] / one[0]:.3f}, time {many[1] / one[1]:.3f}")


def per_solver(world: int) -> None:
    """The table of tests/test_per_process_draws.py's counts: numbers per step, 1 process and rank 0
    of ``world``, the same local batch."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import test_per_process_draws as t
    from torch.testing._internal.distributed.fake_pg import FakeStore

    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=world)
    try:
        print(f"| solver | 1 process | rank 0 of {world} | ratio |\n|---|---|---|---|")
        for name in t.SOLVERS:
            one, many = t.numbers_per_step(name, 1), t.numbers_per_step(name, world)
            print(f"| {name} | {one:.0f} | {many:.0f} | {many / one:.2f} |", flush=True)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
