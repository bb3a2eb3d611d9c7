"""EgNOT with the tempered-SMC sampler beside EgNOT with the paper's Langevin sampler, cell by cell.

Reads saved runs of the mixture grid (nothing is trained here):

* ``benchmarks/results/bench_eot_mixture_langevin.json``: `otgen bench eot-mixture --solver egnot`
  run on 2026-11-21, when ``sampler="langevin"`` (ULA) was EgNOT's only sampler (3000 iterations);
* ``benchmarks/results/bench_eot_mixture_smc_3000_norefresh.json``: the same command with
  ``sampler="smc"`` (2026-12-01, before the particles were refreshed; D = 2, 16, 64);
* ``benchmarks/results/bench_eot_mixture_smc_6000_norefresh.json``: the same with ``--iters 6000``,
  stopped after D = 2 and 16 (it showed that without the refresh longer training loses the mode
  weights at D = 16, eps = 1; docs/egnot.md);
* ``benchmarks/results/bench_eot_mixture_smc_onegroup.json``: with the particles refreshed every 20
  iterations (2026-12-02), when ``sample`` still drew each condition's 500 draws in one SMC group;
* ``benchmarks/results/bench_eot_mixture.json``: BENCHMARKS.md's table, today's defaults
  (the same training; ``sample`` draws in independent groups of 20; 2026-12-03).

    .venv/bin/python benchmarks/compare_samplers.py      # prints a Markdown table

Per cell and run: cBW2-UVP and weight TV, the E[y|x] baseline and the exact-draw floor of weight TV,
and training / scoring seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = (("langevin", "bench_eot_mixture_langevin.json"),
        ("smc no refresh", "bench_eot_mixture_smc_3000_norefresh.json"),
        ("smc no refresh", "bench_eot_mixture_smc_6000_norefresh.json"),
        ("smc one group", "bench_eot_mixture_smc_onegroup.json"),
        ("smc", "bench_eot_mixture.json"))
CURRENT = len(RUNS) - 1  # the run of BENCHMARKS.md's table: its cells are the rows, its baselines the columns


def load(name: str) -> tuple[dict, dict, int]:
    """(cell (D, eps) -> methods, the run's meta, its iterations per cell)."""
    data = json.loads((RESULTS / name).read_text())
    return ({(c["dim"], c["eps"]): c["methods"] for c in data["cells"]}, data["meta"],
            data["cells"][0]["budget"]["n_iters"])


def fmt(scores: dict, key: str, digits: int) -> str:
    if "error" in scores:
        return "failed"
    if key not in scores:
        return "—"
    return f"{scores[key]:.{digits}f}"


def seconds(scores: dict, key: str) -> str:
    """Time is recorded for failed cells too (up to the failure)."""
    return f"{scores[key]:.0f}" if key in scores else "—"


def main() -> None:
    runs = [(sampler, *load(name)) for sampler, name in RUNS]
    labels = [f"{sampler} {iters}" for sampler, _, _, iters in runs]
    for label, (_, _, meta, _) in zip(labels, runs):
        print(f"- {label}: {meta.get('date', '?')}, {meta.get('machine', '?')}, {meta.get('threads', '?')} threads")
    print()
    head = (["D", "eps"] + [f"cBW2-UVP % {lb}" for lb in labels] + ["E[y\\|x]"] + [f"w TV {lb}" for lb in labels]
            + ["floor w TV"] + [f"train s {lb}" for lb in labels] + [f"score s {lb}" for lb in labels])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    current = runs[CURRENT][1]
    for key in sorted(current):
        per_run = [cells.get(key, {}).get("egnot", {"missing": True}) for _, cells, _, _ in runs]
        base = current[key]
        cbw = [fmt(s, "cbw2_uvp", 2) for s in per_run]
        tv = [fmt(s, "weight_tv", 3) for s in per_run]
        cbw[CURRENT], tv[CURRENT] = f"**{cbw[CURRENT]}**", f"**{tv[CURRENT]}**"
        row = ([str(key[0]), f"{key[1]:g}"] + cbw + [f"{base['conditional_mean']['cbw2_uvp']:.1f}"] + tv
               + [f"{base['exact']['weight_tv']:.3f}"] + [seconds(s, "train_seconds") for s in per_run]
               + [seconds(s, "eval_seconds") for s in per_run])
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
