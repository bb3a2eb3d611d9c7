"""Pixel-space EgNOT translation (coloured 2 -> 3) sampled at lower temperatures, scored by otgen's
evaluator and by an independent scikit-learn classifier.

    python benchmarks/egnot_temperature.py RUN [RUN ...] [--temperatures 1 0.5 0.25 0.1] [--seeds 0 1 2]
                                           [--threads 1]

Each RUN is an ``otgen train configs/digits_egnot_pixel.yaml`` run directory. For every temperature T
and draw seed S: the 34 held-out coloured 2s, 4 draws each from pi(y|x)^(1/T) (``EgNOT.sample(...,
temperature=T)``; ``image_runs.translation_draws``, the draws ``otgen eval RUN --temperature T --seed S``
scores), scored by ``image_runs.translation_scores`` (the share read as a 3 by otgen's digit
classifier, the hue error, E‖x − y‖², digits-FD, diversity) and by an independent classifier: a
scikit-learn SVC (gamma = 0.001, C = 10) trained on the 1438 train-split 8×8 digits of
``sklearn.datasets.load_digits``, reading each draw as its stroke intensity (the channel maximum,
the inverse of the colouring) averaged over 2×2 blocks to 8×8. Its accuracy on the 359 held-out test
digits, coloured and upsampled like the data, is printed first. Writes
``benchmarks/results/egnot_temperature.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import date
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import otgen
from bench_runs import write_results
from otgen import config
from otgen.bench import machine_meta
from otgen.distributions.images import digits, digits_split_mask
from otgen.image_runs import translation_draws, translation_scores


def independent_classifier():
    """An SVC on the train split of scikit-learn's 8×8 digits (pixels 0..16)."""
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    d = load_digits()
    train = digits_split_mask("train", len(d.target))
    return SVC(gamma=0.001, C=10.0).fit(d.data[train], d.target[train])


def as_8x8(images: torch.Tensor) -> np.ndarray:
    """Images (n, C, 16, 16) in [-1, 1] -> (n, 64) stroke intensities in 0..16, as load_digits has them."""
    grey = ((images + 1) / 2).amax(1, keepdim=True).clamp(0, 1)
    return (F.avg_pool2d(grey, 2) * 16).flatten(1).double().numpy()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.1])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    svc = independent_classifier()
    test = digits(size=16, colored=True, split="test")
    check = float((svc.predict(as_8x8(test.images)) == test.labels.numpy()).mean())
    print(f"independent classifier on the held-out coloured test digits (16x16 -> 8x8): {check:.1%}", flush=True)

    rows: dict[float, list[dict]] = {t: [] for t in args.temperatures}
    for run in args.runs:
        model = otgen.load(run / "model.pt")
        cfg = config.validate(config.load_yaml(run / "config.yaml"))
        source, target = cfg["data"]["source"], cfg["data"]["target"]
        target_class = target["classes"][0] if isinstance(target["classes"], list) else target["classes"]
        for t in args.temperatures:
            for seed in args.seeds:
                x, y = translation_draws(model, source, 4, seed, t)
                s = translation_scores(model, source, target, n_draws=4, seed=seed, temperature=t, draws=(x, y))["model"]
                s["sklearn_accuracy"] = float((svc.predict(as_8x8(y.flatten(0, 1))) == target_class).mean())
                rows[t].append({"run": str(run), "seed": seed, **s})
                print(f"{run.name} T={t:g} seed {seed}: otgen {s['accuracy']:.1%}, sklearn {s['sklearn_accuracy']:.1%}, "
                      f"hue {s['hue_error']:.3f}, FD {s['fd']:.1f}", flush=True)

    meta = machine_meta(args.threads)
    lines = [f"Measured {date.today().isoformat()} on {meta['machine']}, torch {torch.__version__}; "
             f"`python benchmarks/egnot_temperature.py RUN ...` on {len(args.runs)} training runs of "
             "`configs/digits_egnot_pixel.yaml` × draw seeds " + ", ".join(map(str, args.seeds)) + "; each: 34 held-out "
             f"coloured 2s × 4 draws. Independent classifier (scikit-learn SVC on the 8×8 train digits): {check:.1%} "
             "on the held-out test digits. Means over runs and seeds (in brackets: the range).", "",
             "| temperature | read as 3 (otgen) | read as 3 (scikit-learn) | hue error | E‖x − y‖² | digits-FD | "
             "diversity |", "|---|---|---|---|---|---|---|"]

    def cell(values: list[float], fmt: str) -> str:
        return f"{format(statistics.mean(values), fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"

    for t, rs in rows.items():
        lines.append(f"| {t:g} | {cell([r['accuracy'] for r in rs], '.1%')} | "
                     f"{cell([r['sklearn_accuracy'] for r in rs], '.1%')} | {cell([r['hue_error'] for r in rs], '.3f')} | "
                     f"{cell([r['content'] for r in rs], '.1f')} | {cell([r['fd'] for r in rs], '.1f')} | "
                     f"{cell([r['diversity'] for r in rs], '.2f')} |")
    write_results("egnot_temperature", "\n".join(lines) + "\n",
                  {"meta": meta, "independent_classifier_test_accuracy": check,
                   "rows": {str(t): rs for t, rs in rows.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
