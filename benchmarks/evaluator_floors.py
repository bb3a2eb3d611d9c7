"""The evaluator's scores at their floors and away from them, on the built-in digits.

    python benchmarks/evaluator_floors.py

FD, KID (mean over 100 subsets, standard error) and precision/recall (k = 3) of the 1438 train digits
against: the 359 held-out test digits (the floor: the same distribution), the 27 held-out 0s (one
class: precise, no recall) and 359 uniform-noise images; in the shipped digit classifier's features
(64-d). Prints a Markdown table.
"""

from __future__ import annotations

import torch

from otgen.distributions import digits
from otgen.evaluate import compare, feature_network, image_stats
from otgen.evaluate.images import ReferenceStats


def main() -> None:
    torch.set_num_threads(1)
    net = feature_network("digits")
    train = ReferenceStats.of(image_stats(net, digits(split="train").images), "train digits")
    others = {"held-out test digits (359)": digits(split="test").images,
              "held-out 0s (27)": digits(classes=[0], split="test").images,
              "uniform noise (359)": torch.rand((359, 1, 16, 16), generator=torch.Generator().manual_seed(0)) * 2 - 1}
    print("| train digits (1438) vs | FD | KID ± s.e. | precision | recall |\n|---|---|---|---|---|")
    for name, images in others.items():
        s = compare(image_stats(net, images), train)
        print(f"| {name} | {s['fd']:.2f} | {s['kid']:.4g} ± {s['kid_stderr']:.2g} | {s['precision']:.3f} | "
              f"{s['recall']:.3f} |")


if __name__ == "__main__":
    main()
