"""EgNOT with the tempered-SMC sampler beside EgNOT with the paper's Langevin sampler, cell by cell.

Reads two saved runs of the mixture grid (nothing is trained here):

* ``benchmarks/results/bench_eot_mixture_langevin.json``: `otgen bench eot-mixture --solver egnot`
  run on 2026-11-21, when ``sampler="langevin"`` (ULA) was EgNOT's only sampler;
* ``benchmarks/results/bench_eot_mixture.json``: the same command with ``sampler="smc"``.

    .venv/bin/python benchmarks/compare_samplers.py      # prints a Markdown table

Per cell: cBW2-UVP and weight TV of each, the E[y|x] baseline, and training / scoring seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def cells(name: str) -> dict:
    data = json.loads((RESULTS / name).read_text())
    return {(c["dim"], c["eps"]): c["methods"] for c in data["cells"]}, data["meta"]


def fmt(scores: dict, key: str, digits: int) -> str:
    if "error" in scores or key not in scores:
        return "failed"
    return f"{scores[key]:.{digits}f}"


def main() -> None:
    old, old_meta = cells("bench_eot_mixture_langevin.json")
    new, new_meta = cells("bench_eot_mixture.json")
    print(f"Langevin run: {old_meta.get('date', '?')}; SMC run: {new_meta.get('date', '?')} "
          f"({new_meta.get('machine', '?')}, {new_meta.get('threads', '?')} threads)\n")
    print("| D | eps | cBW2-UVP % langevin | cBW2-UVP % smc | E[y\\|x] | w TV langevin | w TV smc | floor w TV "
          "| train s langevin | train s smc | score s langevin | score s smc |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted(new):
        o, n = old.get(key, {}), new[key]
        lo, sm = o.get("egnot", {"error": "missing"}), n["egnot"]
        print(f"| {key[0]} | {key[1]:g} | {fmt(lo, 'cbw2_uvp', 1)} | **{fmt(sm, 'cbw2_uvp', 2)}** | "
              f"{n['conditional_mean']['cbw2_uvp']:.1f} | {fmt(lo, 'weight_tv', 3)} | **{fmt(sm, 'weight_tv', 3)}** | "
              f"{n['exact']['weight_tv']:.3f} | {lo.get('train_seconds', 0):.0f} | {sm['train_seconds']:.0f} | "
              f"{lo.get('eval_seconds', 0):.0f} | {sm['eval_seconds']:.0f} |")


if __name__ == "__main__":
    main()
