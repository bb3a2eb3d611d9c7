"""WAE-MMD on digits: images decoded from the prior against images decoded from the fitted latent sampler.

    python benchmarks/wae_latent_sampler.py [--threads 1] [--seeds 0 1 2] [--draws 6] [--components 10 20 50]
                                            [--out DIR]

Trains ``configs/digits_wae.yaml`` once per seed (``train.seed`` and ``model.seed`` set to it; each
``otgen train`` in its own process), which fits the latent sampler at the end (a 10-component
full-covariance Gaussian mixture on the codes of the 1438 training digits, ``WAE.fit_latent_sampler``).
Each run is then scored ``--draws`` times (``image_runs.digits_scores`` with seeds 0, 1, ..., as
``otgen eval RUN --seed S`` scores): digits-FD of 1000 images decoded from prior draws, and of 1000
decoded from the fitted sampler's draws for each ``--components`` K (the sampler refitted with K
components), against the 359 held-out test digits, with the classes covered. Prints the mean over
seeds and draws with the spread of the draws within a seed and of the seed means, and writes
``benchmarks/results/wae_latent_sampler.md`` and ``.json``.
"""

from __future__ import annotations

import statistics
import sys
from datetime import date
from pathlib import Path

import torch

import otgen
from bench_runs import fresh_out, parser, train_run, write_results
from otgen import config
from otgen.bench import machine_meta
from otgen.image_runs import digits_scores

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "digits_wae.yaml"


def scores(run: Path, components: list[int], draws: int) -> dict:
    """digits-FD and classes covered of each draw seed: from the prior, and from the fitted sampler
    refitted with each number of components."""
    model = otgen.load(run / "model.pt")
    cfg = config.validate(config.load_yaml(run / "config.yaml"))
    data = config.build_data(cfg["data"], model.data_sides)[:-1]
    spec = cfg["data"]["data"]

    def score(latent: str) -> list[dict]:
        out = []
        for seed in range(draws):
            s = digits_scores(model, spec, data, n=1000, seed=seed, latent=latent)
            out.append({"fd": s["fd"], "coverage": s["samples_coverage"]})
        return out

    result = {"prior": score("prior")}
    for k in components:
        model.fit_latent_sampler(data[0], components=k)
        result[f"fitted_{k}"] = score("fitted")
    return result


def spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def main() -> int:
    p = parser(__doc__, "wae_latent_sampler")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--draws", type=int, default=6, help="scorings of each run, eval seeds 0 .. draws − 1")
    p.add_argument("--components", type=int, nargs="+", default=[10, 20, 50])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = fresh_out(args, "wae_latent_sampler")
    runs = {}
    for seed in args.seeds:
        run = out / f"seed{seed}"
        trained = train_run(f"seed {seed}", CONFIG, run, args.threads, [f"train.seed={seed}", f"model.seed={seed}"])
        trained.pop("stdout")
        runs[seed] = {"wall_min": trained["wall_min"], **scores(run, args.components, args.draws)}
        print(f"seed {seed}: " + ", ".join(f"{k} FD {spread([d['fd'] for d in v])}" for k, v in runs[seed].items()
                                           if k != "wall_min"), flush=True)

    meta = machine_meta(args.threads)
    samplers = ["prior"] + [f"fitted_{k}" for k in args.components]
    names = {"prior": "prior N(0, I)", **{f"fitted_{k}": f"fitted, {k} components" for k in args.components}}
    lines = [f"Measured {date.today().isoformat()} on {meta['machine']} ({meta['gflops']} GFLOP/s single-thread "
             f"float32 matmul), {args.threads} threads, torch {torch.__version__}; "
             f"`python benchmarks/wae_latent_sampler.py --threads {args.threads}`. `configs/digits_wae.yaml`, "
             f"{len(args.seeds)} training seeds × {args.draws} draws of 1000 images each; digits-FD against the 359 "
             "held-out test digits (otgen's classifier features, not Inception FID). A seed's figure is the mean of "
             "its draws, in brackets the range of its draws; the last columns: the mean over seeds (their range) and "
             "its ratio to the prior's.", "",
             "| codes from | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean (seeds) | ratio to prior | "
             "classes covered (fewest) |", "|---|" + "---|" * (len(args.seeds) + 3)]
    means = {}
    for sampler in samplers:
        per_seed = [statistics.mean(d["fd"] for d in runs[s][sampler]) for s in args.seeds]
        means[sampler] = statistics.mean(per_seed)
        cells = [spread([d["fd"] for d in runs[s][sampler]]) for s in args.seeds]
        fewest = min(d["coverage"] for s in args.seeds for d in runs[s][sampler])
        lines.append(f"| {names[sampler]} | " + " | ".join(cells) + f" | **{means[sampler]:.1f}** ({min(per_seed):.1f}–"
                     f"{max(per_seed):.1f}) | {means[sampler] / means['prior']:.2f} | {fewest}/10 |")
    lines.append("")
    lines.append("Training: " + ", ".join(f"seed {s} {runs[s]['wall_min']:.1f} min" for s in args.seeds) + ".")
    write_results("wae_latent_sampler", "\n".join(lines) + "\n", {"meta": meta, "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
