"""The cost of the keyed draws (``otgen.shard`` inside a training step) against torch's own.

    python benchmarks/keyed_draws.py [--threads 1]

Milliseconds per ``shard.randn((n,))`` inside ``shard.using`` (one process) and per ``torch.randn((n,))``
on the CPU, best of 5 rounds, for n from 1 024 to 1 048 576. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import torch

from otgen import shard


def best_ms(fn, reps: int, rounds: int = 5) -> float:
    fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        times.append((time.perf_counter() - t) / reps)
    return min(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    print(f"{args.threads} thread(s)\n| numbers | keyed shard.randn, ms | torch.randn, ms | ratio |\n|---|---|---|---|")
    for n in (1024, 16384, 262144, 1048576):
        reps = max(3, 2_000_000 // n)
        with shard.using(shard.Shard()):
            keyed = best_ms(lambda: shard.randn((n,), generator=g), reps)
        plain = best_ms(lambda: torch.randn((n,), generator=g), reps)
        print(f"| {n} | {keyed:.3f} | {plain:.3f} | {keyed / plain:.1f} |")


if __name__ == "__main__":
    main()
