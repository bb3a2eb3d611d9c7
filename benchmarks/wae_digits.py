"""WAE-MMD and WAE-GAN on the built-in digits (16×16 grey): digits-FD, coverage, reconstruction, time, memory.

    python benchmarks/wae_digits.py [--threads 2] [--out DIR]

Trains ``configs/digits_wae.yaml`` and ``configs/digits_wae_gan.yaml`` with ``otgen train``, each in its
own process (so that its wall time and peak resident memory are its own), then scores beside them:

* the floor: held-out test digits (359) against the training digits (1438);
* an untrained decoder on prior noise (the same config, no step taken);
* a Gaussian fitted to the training pixels (mean and covariance, draws clipped to [−1, 1]).

Every score of generated images is against the held-out test split: digits-FD (the Fréchet distance in
the penultimate features of otgen's digit classifier; **not** Inception FID), classes covered (>= 4 % of
1000 samples), mean classifier confidence. Writes ``benchmarks/results/wae_digits.md`` and ``.json`` and
copies the runs' sample and reconstruction grids to ``docs/images/``.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import torch
import yaml

from bench_runs import fresh_out, parser, train_run
from otgen import io
from otgen.bench import machine_meta
from otgen.image_metrics import digits_evaluator
from otgen.image_runs import digits_splits
from otgen.models import from_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"WAE-MMD": ROOT / "configs" / "digits_wae.yaml", "WAE-GAN": ROOT / "configs" / "digits_wae_gan.yaml"}
N = 1000


def train(name: str, config: Path, out: Path, threads: int) -> dict:
    result = train_run(name, config, out, threads)
    stdout = result.pop("stdout")
    print(name + ": " + next(line for line in stdout.splitlines() if "digits-FD" in line), flush=True)
    return result


def baselines(seed: int = 0) -> dict:
    ev = digits_evaluator()
    spec = yaml.safe_load(CONFIGS["WAE-MMD"].read_text())
    train_x, test_x = digits_splits(spec["data"]["data"])
    out = {"floor (test vs train digits)": ev.sample_scores(test_x, train_x)}
    model = dict(spec["model"])
    untrained = from_config(model.pop("name"), model)
    samples = untrained.transport(untrained.sample_prior(N, rng=torch.Generator().manual_seed(seed)))
    out["untrained decoder on prior noise"] = ev.sample_scores(samples, test_x)
    flat = train_x.flatten(1).double()
    gauss = torch.distributions.MultivariateNormal(flat.mean(0), torch.cov(flat.T) + 1e-4 * torch.eye(flat.shape[1]))
    torch.manual_seed(seed)
    pixels = gauss.sample((N,)).float().clamp(-1, 1).reshape(N, *train_x.shape[1:])
    out["Gaussian fitted to the pixels"] = ev.sample_scores(pixels, test_x)
    return out


def markdown(results: dict, base: dict, meta: dict, threads: int) -> str:
    lines = [f"Measured {date.today().isoformat()} on {meta['machine']} ({meta['gflops']} GFLOP/s "
             f"single-thread float32 matmul), {threads} threads, torch {torch.__version__}; "
             "`python benchmarks/wae_digits.py`. digits-FD: Fréchet distance in otgen's digit-classifier "
             "features (not Inception FID) of 1000 samples against the 359 held-out test digits; classes "
             "covered: classes with >= 4 % of the samples (of 10).", "",
             "| | digits-FD ↓ | classes covered | confidence | held-out reconstruction E‖x − G(E(x))‖² | "
             "train time | peak memory |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} (`{CONFIGS[name].relative_to(ROOT)}`) | {r['samples_fd']:.1f} | "
                     f"{r['samples_coverage']}/10 | {r['samples_confidence']:.3f} | {r['heldout_reconstruction']:.2f} | "
                     f"{r['wall_min']:.1f} min | {r['peak_rss_mib']:.0f} MiB |")
    for name, r in base.items():
        lines.append(f"| {name} | {r['fd']:.1f} | {r['coverage']}/10 | {r['confidence']:.3f} | – | – | – |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = parser(__doc__, "wae_digits")
    args = p.parse_args()
    out = fresh_out(args, "wae_digits")
    torch.set_num_threads(args.threads)
    results = {name: train(name, cfg, out / cfg.stem, args.threads) for name, cfg in CONFIGS.items()}
    base = baselines()
    meta = machine_meta(args.threads)
    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    for name, cfg in CONFIGS.items():
        for plot in ("samples", "reconstructions"):
            shutil.copyfile(out / cfg.stem / "plots" / f"{plot}.png", images / f"{cfg.stem}_{plot}.png")
    text = markdown(results, base, meta, args.threads)
    results_dir = ROOT / "benchmarks" / "results"
    io.write_text(results_dir / "wae_digits.md", text)
    io.write_text(results_dir / "wae_digits.json", json.dumps({"meta": meta, "runs": results, "baselines": base},
                                                              indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
