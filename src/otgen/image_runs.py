"""What a run on images writes and measures: image grids, samples, and the digits scores.

A face (beside ``cli`` and ``bench``): it asks any solver through the core's hooks (``own_source``,
``run_arrays``, ``transport``) and scores with ``image_metrics``; no solver-specific branch.

* ``write_image_run(model, data, out, seed)`` — ``out/plots/*.png`` (``viz.plot_image_run``: samples,
  data, reconstructions, source | outputs) and ``out/samples/samples.npz`` (``x``, ``y``, ``y_hat``,
  [``y_rec``], all in the data's [−1, 1] scale).
* ``digits_scores(model, data_spec, n, seed)`` — for runs on ``digits`` data: digits-FD of ``n``
  model samples against the held-out test split of the same digits (same classes, size, colour),
  the floor (test split vs train split), class histogram, coverage, confidence and, for a model that
  reconstructs (a WAE), the held-out reconstruction error E‖x − G(E(x))‖². For
  ``digits_with_outliers`` data also the outlier share of the samples and of the data themselves
  (``image_metrics.outlier_share`` against every train digit and as many outlier images).
* ``translation_scores(model, source_spec, target_spec, n_draws, seed)`` — for translation between
  two ``digits`` sets (class A -> class B): every held-out source image x gets ``n_draws`` draws y
  from the model; scored by the target-class accuracy, E‖x − y‖², the stroke-hue error (colour kept;
  RGB digits), digits-FD to the held-out target images, and the diversity per input (the unbiased
  variance of an input's draws, summed over pixels: Σ_j ‖y_ij − ȳ_i‖²/(k − 1), averaged over inputs;
  pure pixel noise of variance eps gives eps·pixels), beside two baselines: the identity map (y = x)
  and random target images (y independent of x). The model and random-target rows score n·k images,
  the identity row the n sources (digits-FD depends on the sample size: compare rows of equal n).
  Content and hue are scored only where x and y have the same shape (and hue for RGB images).

Every output is ``model.present``-ed first: for EgNOT in a generator's latent space, G(z).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import io
from .distributions.base import draw
from .distributions.images import digits
from .image_metrics import digits_evaluator, hue_error, outlier_share

IMAGE_SAMPLES = 100  # images drawn for the plots and samples.npz of an image run
DRAW_SOURCES, DRAWS_PER_SOURCE = 10, 6  # the "source | draws" grid of image-to-image runs
MAX_PHASES_SHOWN = 10  # an S-JKO run of more phases plots and stores these many, evenly spread, the last included


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
    if y.ndim != 4:  # latents of a generator (EgNOT's latent variant): the target as G shows it
        y = model.present(y.to(model.device)).cpu()
    produced = model.run_arrays(x.to(model.device), torch.Generator(device=model.device).manual_seed(seed + 1),
                                y=y.to(model.device))
    arrays = {"x": x.cpu(), "y": y, **{k: v.detach().cpu() for k, v in produced.items()}}
    if "phases" in arrays and len(arrays["phases"]) > MAX_PHASES_SHOWN:  # many JKO steps: a spread of them
        keep = torch.linspace(0, len(arrays["phases"]) - 1, MAX_PHASES_SHOWN).round().long()
        arrays["phases"], arrays["phase_numbers"] = arrays["phases"][keep], keep + 1
    if x.ndim == 4:  # image sources: several draws of T(x, z) / pi(·|x) per source
        draws = model.sample(x[:DRAW_SOURCES].to(model.device), DRAWS_PER_SOURCE,
                             generator=torch.Generator(device=model.device).manual_seed(seed + 2))
        arrays["draws"] = model.present(draws).detach().cpu()
    plots = plot_image_run(arrays, out / "plots", name=type(model).__name__)
    numpy_arrays = {k: v.numpy() for k, v in arrays.items()}
    samples = io.atomic_write(out / "samples" / "samples.npz", lambda f: np.savez(f, **numpy_arrays))
    return [*plots, samples]


DIGITS_NAMES = ("digits", "digits_with_outliers")


def is_digits(spec: Any) -> bool:
    """Whether a data spec names the built-in digits (with or without added outliers), trained on their
    train split (then scored)."""
    return (isinstance(spec, dict) and str(spec.get("name", "")).lower() in DIGITS_NAMES
            and spec.get("split", "train") == "train")


def outlier_reference(spec: dict, train: torch.Tensor, seed: int = 0) -> torch.Tensor | None:
    """For ``digits_with_outliers``, reference images of the outlier kind, as many as the clean train
    images: every train digit inverted, or fresh uniform noise images; None for clean digits."""
    if str(spec.get("name", "")).lower() != "digits_with_outliers":
        return None
    if spec.get("outlier_kind", "inverted") == "inverted":
        return -train
    return torch.rand(train.shape, generator=torch.Generator().manual_seed(seed + 7)) * 2.0 - 1.0


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
    samples = model.present(model.transport(x.to(model.device),
                                             generator=torch.Generator(device=model.device).manual_seed(seed + 1)))
    scores: dict[str, Any] = {"n_samples": n, "reference": f"digits test split ({len(test)} images)"}
    scores.update({f"samples_{k}": v for k, v in evaluator.sample_scores(samples.cpu(), test).items()})
    scores["fd_floor_test_vs_train"] = evaluator.frechet_distance(test, train)
    reference = outlier_reference(spec, train, seed)
    if reference is not None:  # the share of generated images that look like the added outliers
        scores["samples_outlier_share"] = outlier_share(samples.cpu(), train, reference)
        scores["data_outlier_share"] = outlier_share(draw(data[-1], n, gen), train, reference)
    if model.reconstructs:  # a model with an encoder and a decoder (a WAE)
        rec = model.reconstruct(test.to(model.device)).cpu()
        scores["heldout_reconstruction"] = float((rec - test).pow(2).flatten(1).sum(1).mean())
    return scores


def _translation_row(evaluator, x, y, target_classes, reference) -> dict[str, float]:
    """Scores of outputs y (n, k, C, H, W) for sources x (n, C, H, W) (see ``translation_scores``)."""
    n, k = y.shape[:2]
    xr, flat = x.repeat_interleave(k, dim=0), y.flatten(0, 1)
    if xr.shape == flat.shape:
        row = evaluator.translation_scores(xr, flat, target_classes)
        if x.shape[1] == 3:
            row["hue_error"] = hue_error(xr, flat)
    else:  # e.g. colour -> grey: only the class vote compares
        row = {"accuracy": float(torch.isin(evaluator.predict(flat), torch.as_tensor(target_classes)).double().mean())}
    row["fd"] = evaluator.frechet_distance(flat, reference)
    if k > 1:
        spread = (y - y.mean(1, keepdim=True)).pow(2).flatten(2).sum(2)  # (n, k)
        row["diversity"] = float(spread.sum(1).mean() / (k - 1))
    return row


@torch.no_grad()
def translation_scores(model, source_spec: dict, target_spec: dict, n_draws: int = 4,
                       seed: int = 0) -> dict[str, Any]:
    """Scores of a digits A -> digits B translation run (see the module docstring); the sources are
    the held-out test images of ``source_spec``, the reference the held-out images of ``target_spec``."""
    evaluator = digits_evaluator()
    _, x = digits_splits(source_spec)
    target_train, target_test = digits_splits(target_spec)
    classes = target_spec.get("classes", list(range(10)))
    classes = [classes] if isinstance(classes, int) else list(classes)
    gen = torch.Generator(device=model.device).manual_seed(seed + 1)
    y = model.present(model.sample(x.to(model.device), n_draws, generator=gen)).cpu()
    pick = torch.randint(len(target_train), (len(x), n_draws), generator=torch.Generator().manual_seed(seed))
    rows = {"model": _translation_row(evaluator, x, y, classes, target_test),
            "identity": _translation_row(evaluator, x, x[:, None], classes, target_test),
            "random_target": _translation_row(evaluator, x, target_train[pick], classes, target_test)}
    return {"n_sources": len(x), "n_draws": n_draws, "target_classes": classes,
            "sample_sizes": {"model": len(x) * n_draws, "identity": len(x), "random_target": len(x) * n_draws},
            "sources": f"digits test split of the source ({len(x)} images)",
            "reference": f"digits test split of the target ({len(target_test)} images)", **rows}
