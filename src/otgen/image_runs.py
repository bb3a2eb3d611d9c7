"""What a run on images writes and measures: image grids, samples, and the digits scores.

A face (beside ``cli`` and ``bench``): it asks any solver through the core's hooks (``own_source``,
``run_arrays``, ``transport``) and scores with ``image_metrics``; no solver-specific branch.

* ``write_image_run(model, data, out, seed)`` — ``out/plots/*.png`` (``viz.plot_image_run``: samples,
  data, reconstructions, source | outputs) and ``out/samples/samples.npz`` (``x``, ``y``, ``y_hat``,
  [``y_rec``], all in the data's [−1, 1] scale).
* ``digits_scores(model, data_spec, n, seed)`` — for runs on ``digits`` data: digits-FD of ``n``
  model samples against the held-out test split of the same digits (same classes, size, colour),
  the floor (test split vs train split), class histogram, coverage, confidence and, for a model that
  reconstructs (a WAE), the held-out reconstruction error E‖x − G(E(x))‖².
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import io
from .distributions.base import draw
from .distributions.images import digits
from .image_metrics import digits_evaluator

IMAGE_SAMPLES = 100  # images drawn for the plots and samples.npz of an image run


def draw_sources(model, data, n: int, generator: torch.Generator) -> torch.Tensor:
    """n source points: from the model's own source (a WAE's prior) or the first data side."""
    source = model.own_source()
    return source(n, generator=generator) if source is not None else draw(data[0], n, generator).float()


def write_image_run(model, data, out: Path, seed: int = 0, n: int = IMAGE_SAMPLES) -> list[Path]:
    """The PNGs and ``samples/samples.npz`` of a run whose data are images; returns their paths."""
    from .viz import plot_image_run

    gen = torch.Generator().manual_seed(seed)
    x = draw_sources(model, data, n, gen)
    y = draw(data[-1], n, gen).float()
    produced = model.run_arrays(x.to(model.device), torch.Generator(device=model.device).manual_seed(seed + 1),
                                y=y.to(model.device))
    arrays = {"x": x.cpu(), "y": y, **{k: v.detach().cpu() for k, v in produced.items()}}
    plots = plot_image_run(arrays, out / "plots", name=type(model).__name__)
    numpy_arrays = {k: v.numpy() for k, v in arrays.items()}
    samples = io.atomic_write(out / "samples" / "samples.npz", lambda f: np.savez(f, **numpy_arrays))
    return [*plots, samples]


def is_digits(spec: Any) -> bool:
    """Whether a data spec names the built-in digits, trained on their train split (then scored)."""
    return (isinstance(spec, dict) and str(spec.get("name", "")).lower() == "digits"
            and spec.get("split", "train") == "train")


def digits_splits(spec: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(train images, held-out test images) of the digits a data spec names (its classes, size, colour);
    ValueError if the spec trains on other than the train split (nothing would be held out)."""
    if spec.get("split", "train") != "train":
        raise ValueError(f"digits scores compare with the held-out test split; data split {spec['split']!r} "
                         "holds test images, so there is nothing held out to score against")
    kw = {k: v for k, v in spec.items() if k in ("classes", "size", "colored", "seed")}
    return digits(split="train", **kw).images, digits(split="test", **kw).images


@torch.no_grad()
def digits_scores(model, spec: dict, data, n: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Scores of a run on the digits ``spec`` (see the module docstring)."""
    evaluator = digits_evaluator()
    train, test = digits_splits(spec)
    gen = torch.Generator().manual_seed(seed)
    x = draw_sources(model, data, n, gen)
    samples = model.transport(x.to(model.device), generator=torch.Generator(device=model.device).manual_seed(seed + 1))
    scores: dict[str, Any] = {"n_samples": n, "reference": f"digits test split ({len(test)} images)"}
    scores.update({f"samples_{k}": v for k, v in evaluator.sample_scores(samples.cpu(), test).items()})
    scores["fd_floor_test_vs_train"] = evaluator.frechet_distance(test, train)
    if model.reconstructs:  # a model with an encoder and a decoder (a WAE)
        rec = model.reconstruct(test.to(model.device)).cpu()
        scores["heldout_reconstruction"] = float((rec - test).pow(2).flatten(1).sum(1).mean())
    return scores
