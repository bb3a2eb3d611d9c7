"""Training time of EgNOT with the mixture potential (bench's egnot_mixture settings) against the
LightSB peer (bench_peers.lightsb_settings) on one mixture cell, interleaved so that both see the same
load: ``--rounds`` rounds of (egnot_mixture: a fresh model, its k-means start included; LightSB: a
fresh model), one process, ``--threads`` torch threads. Each trains its own budget of the bench
(``EvalBudget.mixture_iters`` = 9 800 and ``peer_iters`` = 10 000 steps of batch 128) times ``--scale``.

    python benchmarks/mixture_step_time.py [--dim 128] [--eps 10] [--scale 1] [--rounds 5] [--threads 1]
    python benchmarks/mixture_step_time.py --split [--dim 128] [--eps 10] [--rounds 6] [--threads 1]
    python benchmarks/mixture_step_time.py --interleave 100 [--dim 128] [--eps 10] [--rounds 5] [--threads 1]

Prints each round's seconds and the totals. With ``--scale`` below 1 each round still holds a whole
k-means start, so egnot_mixture's share is an upper bound on a full run's. ``--split`` measures the two
parts of the difference instead, in rounds of (egnot_mixture 1 step, LightSB 1 step, LightSB 201
steps): the k-means start (egnot_mixture's first step less LightSB's) against the steps that
egnot_mixture leaves out (``peer_iters − mixture_iters``, timed as LightSB's). ``--interleave N``
runs both whole trainings of a round at once, handing over every N steps (each ``fit`` in a thread of
its own, exactly one of them running at any moment), and charges each method the wall time of its own
turns: the load of the machine then falls on both alike, where whole runs one after the other see it
move by several per cent.
"""

from __future__ import annotations

import argparse
import threading
import time

import torch

from otgen.bench import FULL_BUDGET, Cell, mixture_settings
from otgen.bench_peers import lightsb_settings
from otgen.models import get_solver


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--eps", type=float, default=10.0)
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the bench's step budgets")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--split", action="store_true", help="time the k-means start against the steps left out")
    p.add_argument("--interleave", type=int, default=0, metavar="N",
                   help="train both of a round at once, handing over every N steps")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cell = Cell("mixture", args.dim, args.eps)
    pair = cell.pair(0)  # the suite's pair of this cell (seed 0)
    if args.split:
        split(pair, cell, args)
        return
    if args.interleave:
        totals = {"egnot_mixture": 0.0, "lightsb": 0.0}
        for r in range(args.rounds):
            seconds = interleaved(pair, cell, args, r)
            for name in totals:
                totals[name] += seconds[name]
            print(f"round {r}: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())
                  + f", ratio {seconds['egnot_mixture'] / seconds['lightsb']:.3f}", flush=True)
        print_totals(totals)
        return
    totals = {"egnot_mixture": 0.0, "lightsb": 0.0}
    for r in range(args.rounds):
        for name, settings, budget in (("egnot_mixture", mixture_settings(cell), FULL_BUDGET.mixture_iters),
                                       ("lightsb", lightsb_settings(args.dim, args.eps), FULL_BUDGET.peer_iters)):
            model = get_solver("egnot")(**settings, seed=r)
            steps = max(1, round(budget * args.scale))
            t0 = time.perf_counter()
            model.fit(pair.source, pair.target, n_iters=steps, batch_size=FULL_BUDGET.peer_batch, progress=False)
            seconds = time.perf_counter() - t0
            totals[name] += seconds
            print(f"round {r} {name}: {steps} steps, {seconds:.1f} s", flush=True)
    print_totals(totals)


def print_totals(totals: dict[str, float]) -> None:
    print({k: round(v, 1) for k, v in totals.items()}, f"ratio {totals['egnot_mixture'] / totals['lightsb']:.3f}")


def interleaved(pair, cell: Cell, args, seed: int) -> dict[str, float]:
    """One round of both trainings, taking turns of ``args.interleave`` steps; returns each one's seconds
    (its model's construction, its fit with the k-means start, not the other's turns)."""
    runs = {"egnot_mixture": (mixture_settings(cell), FULL_BUDGET.mixture_iters),
            "lightsb": (lightsb_settings(args.dim, args.eps), FULL_BUDGET.peer_iters)}
    names = list(runs)
    turn = {name: threading.Event() for name in names}
    seconds = dict.fromkeys(names, 0.0)
    done = dict.fromkeys(names, False)
    started = dict.fromkeys(names, 0.0)

    def hand_over(name: str) -> None:
        seconds[name] += time.perf_counter() - started[name]
        other = names[1 - names.index(name)]
        if not done[other]:
            turn[name].clear()
            turn[other].set()
            turn[name].wait()
        started[name] = time.perf_counter()

    def work(name: str) -> None:
        settings, steps = runs[name]
        turn[name].wait()
        started[name] = time.perf_counter()
        model = get_solver("egnot")(**settings, seed=seed)

        def every_n(step, solver, metrics):
            if step % args.interleave == 0:
                hand_over(name)

        model.fit(pair.source, pair.target, n_iters=steps, batch_size=FULL_BUDGET.peer_batch, progress=False,
                  callbacks=[every_n])
        seconds[name] += time.perf_counter() - started[name]
        done[name] = True
        turn[names[1 - names.index(name)]].set()

    threads = [threading.Thread(target=work, args=(name,)) for name in names]
    for t in threads:
        t.start()
    turn[names[seed % 2]].set()  # the rounds alternate which one starts
    for t in threads:
        t.join()
    return seconds


def split(pair, cell: Cell, args) -> None:
    left_out = FULL_BUDGET.peer_iters - FULL_BUDGET.mixture_iters

    def fit(settings: dict, steps: int, seed: int) -> float:
        model = get_solver("egnot")(**settings, seed=seed)
        t0 = time.perf_counter()
        model.fit(pair.source, pair.target, n_iters=steps, batch_size=FULL_BUDGET.peer_batch, progress=False)
        return time.perf_counter() - t0

    start = steps = 0.0
    for r in range(args.rounds):
        first = fit(mixture_settings(cell), 1, r)
        peer_first = fit(lightsb_settings(args.dim, args.eps), 1, r)
        peer_more = fit(lightsb_settings(args.dim, args.eps), 1 + left_out, r)
        start, steps = start + first - peer_first, steps + peer_more - peer_first
        print(f"round {r}: egnot_mixture 1 step {first:.3f} s, LightSB 1 step {peer_first:.3f} s, "
              f"LightSB {1 + left_out} steps {peer_more:.3f} s", flush=True)
    print(f"k-means start {start / args.rounds:.3f} s against {left_out} steps {steps / args.rounds:.3f} s "
          f"(means of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
