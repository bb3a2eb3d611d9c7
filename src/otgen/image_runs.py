"""What a run on images writes and measures: image grids, samples, and its scores (``eval.json``).

A face (beside ``cli`` and ``bench``): it asks any solver through the core's hooks (``own_source``,
``run_arrays``, ``transport``) and scores with ``otgen.evaluate``; no solver-specific branch.

* ``image_scores(model, data_spec, data, n, features, ref)`` — every image run's scores, for
  ``otgen train``'s ``eval.json`` and ``otgen eval``: FD, KID and precision/recall of ``n`` outputs,
  generated in batches, in the ``features`` space (``"digits"``, ``"inception"`` or a module) against
  the held-out split of the data (digits, CIFAR-10 and MNIST trained on "train"), the target data
  itself (a folder, an array), or a statistics file ``ref`` (``mu``, ``sigma``).
* ``write_image_run(model, data, out, seed)`` — ``out/plots/*.png`` (``viz.plot_image_run``: samples,
  data, reconstructions, source | outputs) and ``out/samples/samples.npz`` (``x``, ``y``, ``y_hat``,
  [``y_rec``], all in the data's [−1, 1] scale).
* ``digits_scores(model, data_spec, n, seed)`` — for runs on ``digits`` data: ``image_scores`` in
  the digit classifier's features and, beside them, digits-FD of ``n`` model samples against the
  held-out test split of the same digits (same classes, size, colour),
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

import inspect
import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from . import io
from .distributions import make as make_distribution
from .distributions.base import draw
from .distributions.images import digits, far_outliers
from .evaluate.images import compare, feature_network, image_batches, reference_stats
from .evaluate.scores import FeatureStats
from .image_metrics import digits_evaluator, hue_error, outlier_share
from .train.logging import progress_bar

IMAGE_SAMPLES = 100  # images drawn for the plots and samples.npz of an image run
DRAW_SOURCES, DRAWS_PER_SOURCE = 10, 6  # the "source | draws" grid of image-to-image runs
MAX_PHASES_SHOWN = 10  # an S-JKO run of more phases plots and stores these many, evenly spread, the last included


def plan_keywords(model, temperature: float = 1.0) -> dict[str, float]:
    """The keywords of ``model.sample`` / ``transport`` for a sampling ``temperature`` (none for 1);
    ValueError where the model's draws take no temperature (only EgNOT's plans do)."""
    if temperature == 1:
        return {}
    if "temperature" not in inspect.signature(model.sample).parameters:
        raise ValueError(f"temperature={temperature!r}: {getattr(model, 'name', type(model).__name__)}'s draws "
                         "take no temperature (EgNOT's plans do)")
    model.check_temperature(temperature)
    return {"temperature": temperature}


def own_source(model, latent: str = "prior"):
    """``model.own_source(latent)`` (a solver written before ``latent`` existed is asked without it
    for the prior)."""
    return model.own_source() if latent == "prior" else model.own_source(latent)


def draw_sources(model, data, n: int, generator: torch.Generator, latent: str = "prior") -> torch.Tensor:
    """n source points: from the model's own source (a WAE's prior, or with ``latent="fitted"`` its
    fitted latent sampler) or the first data side."""
    source = own_source(model, latent)
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
        numbers = arrays.get("phase_numbers", torch.arange(1, len(arrays["phases"]) + 1))  # S-JKO's keep_phases
        arrays["phases"], arrays["phase_numbers"] = arrays["phases"][keep], numbers[keep]
    if x.ndim == 4:  # image sources: several draws of T(x, z) / pi(·|x) per source
        draws = model.sample(x[:DRAW_SOURCES].to(model.device), DRAWS_PER_SOURCE,
                             rng=torch.Generator(device=model.device).manual_seed(seed + 2))
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
    images: every train digit inverted (and for "far" binarised and doubled), or fresh uniform noise
    images; None for clean digits."""
    if str(spec.get("name", "")).lower() != "digits_with_outliers":
        return None
    kind = spec.get("outlier_kind", "inverted")
    if kind == "inverted":
        return -train
    if kind == "far":
        return far_outliers(-train)
    return torch.rand(train.shape, generator=torch.Generator().manual_seed(seed + 7)) * 2.0 - 1.0


def digits_splits(spec: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(train images, held-out test images) of the digits a data spec names (its classes, size, colour);
    ValueError if the spec trains on other than the train split (nothing would be held out)."""
    if spec.get("split", "train") != "train":
        raise ValueError(f"digits scores compare with the held-out test split; data split {spec['split']!r} "
                         "holds test images, so there is nothing held out to score against")
    kw = {k: v for k, v in spec.items() if k in ("classes", "size", "colored", "seed")}
    return digits(split="train", **kw).images, digits(split="test", **kw).images


def generated_batches(model, data, n: int, batch_size: int, seed: int = 0,
                      latent: str = "prior", temperature: float = 1.0) -> Iterator[torch.Tensor]:
    """``n`` model outputs as the user sees them (``present``), on the CPU, ``batch_size`` at a time:
    source points drawn block by block from ``Generator().manual_seed(seed)`` (``draw_sources`` with
    ``latent``), the model's draws from one ``Generator(device).manual_seed(seed + 1)`` (for n <=
    batch_size: the draws of one call; ``temperature``: ``plan_keywords``)."""
    gen = torch.Generator().manual_seed(seed)
    sample_gen = torch.Generator(device=model.device).manual_seed(seed + 1)
    keywords = plan_keywords(model, temperature)
    for lo in range(0, n, batch_size):
        x = draw_sources(model, data, min(batch_size, n - lo), gen, latent)
        with torch.no_grad():
            yield model.present(model.transport(x.to(model.device), rng=sample_gen, **keywords)).cpu()


#: readers whose data come in a train and a test split: a run on "train" is scored against "test"
HELD_OUT_SPLITS = {"cifar10": "test", "mnist_idx": "test"}


def reference_images(spec: dict, target: Any) -> tuple[Any, str, dict]:
    """(the images a run on the data ``spec`` is scored against, their description, the spec that
    names them): the held-out test split where the data have one (digits, CIFAR-10, MNIST trained on
    "train"), else the target data themselves."""
    name = str(spec.get("name", "")).lower()
    if is_digits(spec):
        test = digits_splits(spec)[1]
        return test, f"digits test split ({len(test)} images)", {**spec, "name": "digits", "split": "test"}
    if name in HELD_OUT_SPLITS and spec.get("split", "train") == "train":
        held = {**spec, "split": HELD_OUT_SPLITS[name], "flip": False}
        args = {k: v for k, v in held.items() if k != "name"}
        images = make_distribution(name, **args)
        return images, f"{name} {held['split']} split of {spec.get('path')} ({len(images)} images)", held
    return target, f"the target data ({len(target) if hasattr(target, '__len__') else '?'} images)", spec


class _Spread:
    """``n`` images of a data set spread over all of it (a seeded choice, kept in file order), so that a
    capped reference is not just the first files of a folder sorted by class."""

    def __init__(self, dataset, n: int, seed: int = 0):
        pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n]
        self.dataset, self.indices = dataset, sorted(pick.tolist())

    def __len__(self) -> int:
        return len(self.indices)

    def batches(self, batch_size: int, limit: int | None = None):
        return self.dataset.batches(batch_size, limit=limit, indices=self.indices)


@torch.no_grad()
def image_scores(model, spec: dict | None, data, n: int = 1000, features: Any = "digits", ref: str | None = None,
                 seed: int = 0, batch_size: int = 1000, n_reference: int = 50_000, cache: Path | None = None,
                 progress: bool = False, samples: torch.Tensor | None = None, latent: str = "prior",
                 temperature: float = 1.0) -> dict[str, Any]:
    """FD, KID and precision/recall (``evaluate.images``) of ``n`` model outputs in ``features`` space
    against the run's reference images (``reference_images``: at most ``n_reference``) or the
    statistics file ``ref``; generated ``batch_size`` at a time (``generated_batches``), or given as
    ``samples`` (``latent``, ``temperature``: as ``generated_batches``). ``cache``: the ``.npz`` where
    the reference statistics are kept between calls (recomputed if the data spec or features change)."""
    net = feature_network(features, model.device)
    if ref is not None:
        reference = reference_stats(net, path=ref)
    else:
        images, source, ref_spec = reference_images(spec or {}, data[-1])
        key = json.dumps({"data": ref_spec, "features": net.name, "n_reference": n_reference}, sort_keys=True,
                         default=str)
        if hasattr(images, "batches") and len(images) > n_reference:
            images, source = _Spread(images, n_reference), f"{n_reference} images spread over {source}"
        reference = reference_stats(net, images, cache=cache, key=key, source=source, limit=n_reference)
    stats = FeatureStats(keep_features=True)
    bar = progress_bar(n, 0, progress, desc="eval")
    batches = (generated_batches(model, data, n, batch_size, seed, latent, temperature) if samples is None
               else image_batches(samples, batch_size))
    for batch in batches:
        stats.update(net(batch).cpu())
        bar.update(len(batch))
    bar.close()
    return {"features": net.name, **compare(stats, reference, seed=seed), "reference": reference.source, "seed": seed}


@torch.no_grad()
def digits_scores(model, spec: dict, data, n: int = 1000, seed: int = 0, batch_size: int = 1000,
                  cache: Path | None = None, latent: str = "prior", temperature: float = 1.0) -> dict[str, Any]:
    """Scores of a run on the digits ``spec`` (see the module docstring): ``image_scores`` in the digit
    classifier's features, with the digits-specific ones beside them. A model with a fitted latent
    sampler scored on its prior also gets ``fitted_latent``: the same scores of n samples decoded
    from the fitted sampler (the same seed)."""
    samples = torch.cat(list(generated_batches(model, data, n, batch_size, seed, latent, temperature)))  # n digits
    scores = image_scores(model, spec, data, n, "digits", seed=seed, batch_size=batch_size, cache=cache,
                          samples=samples)
    evaluator = digits_evaluator()
    train, test = digits_splits(spec)
    scores.update({"n_samples": n, "samples_fd": scores["fd"]})
    classes = evaluator.class_scores(samples)
    scores.update(samples_coverage=classes["coverage"], samples_confidence=classes["confidence"],
                  samples_histogram=[round(float(h), 4) for h in classes["histogram"]])
    scores["fd_floor_test_vs_train"] = evaluator.frechet_distance(test, train)
    gen = torch.Generator().manual_seed(seed)
    draw_sources(model, data, n, gen, latent)  # the data draws below follow the source draws, as they always have
    reference = outlier_reference(spec, train, seed)
    if reference is not None:  # the share of generated images that look like the added outliers
        scores["samples_outlier_share"] = outlier_share(samples, train, reference)
        scores["data_outlier_share"] = outlier_share(draw(data[-1], n, gen), train, reference)
    if model.reconstructs:  # a model with an encoder and a decoder (a WAE)
        rec = model.reconstruct(test.to(model.device)).cpu()
        scores["heldout_reconstruction"] = float((rec - test).pow(2).flatten(1).sum(1).mean())
    if latent != "prior":
        scores["latent"] = latent
    elif "fitted" in getattr(model, "latent_choices", tuple)():
        fitted = torch.cat(list(generated_batches(model, data, n, batch_size, seed, "fitted")))
        other = image_scores(model, spec, data, n, "digits", seed=seed, batch_size=batch_size, cache=cache,
                             samples=fitted)
        classes = evaluator.class_scores(fitted)
        scores["fitted_latent"] = {"fd": other["fd"], "kid": other.get("kid"), "precision": other.get("precision"),
                                   "recall": other.get("recall"), "coverage": classes["coverage"],
                                   "confidence": classes["confidence"]}
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
def translation_draws(model, source_spec: dict, n_draws: int = 4, seed: int = 0,
                      temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of ``translation_scores``: the held-out test images x (n, C, H, W) of ``source_spec``
    and ``n_draws`` draws of the model for each, as images y (n, n_draws, C, H, W) on the CPU, from
    ``Generator(device).manual_seed(seed + 1)`` at ``temperature``."""
    _, x = digits_splits(source_spec)
    gen = torch.Generator(device=model.device).manual_seed(seed + 1)
    y = model.sample(x.to(model.device), n_draws, rng=gen, **plan_keywords(model, temperature))
    return x, model.present(y).cpu()


@torch.no_grad()
def translation_scores(model, source_spec: dict, target_spec: dict, n_draws: int = 4,
                       seed: int = 0, temperature: float = 1.0,
                       draws: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, Any]:
    """Scores of a digits A -> digits B translation run (see the module docstring); the sources are
    the held-out test images of ``source_spec``, the reference the held-out images of ``target_spec``;
    the draws at ``temperature`` (``plan_keywords``; recorded in the scores unless 1), or ``draws``,
    the (x, y) that ``translation_draws`` gives for these arguments, if already drawn."""
    keywords = plan_keywords(model, temperature)
    evaluator = digits_evaluator()
    x, y = translation_draws(model, source_spec, n_draws, seed, temperature) if draws is None else draws
    target_train, target_test = digits_splits(target_spec)
    classes = target_spec.get("classes", list(range(10)))
    classes = [classes] if isinstance(classes, int) else list(classes)
    pick = torch.randint(len(target_train), (len(x), n_draws), generator=torch.Generator().manual_seed(seed))
    rows = {"model": _translation_row(evaluator, x, y, classes, target_test),
            "identity": _translation_row(evaluator, x, x[:, None], classes, target_test),
            "random_target": _translation_row(evaluator, x, target_train[pick], classes, target_test)}
    return {"n_sources": len(x), "n_draws": n_draws, "target_classes": classes, **keywords,
            "sample_sizes": {"model": len(x) * n_draws, "identity": len(x), "random_target": len(x) * n_draws},
            "sources": f"digits test split of the source ({len(x)} images)",
            "reference": f"digits test split of the target ({len(target_test)} images)", **rows}


# --------------------------------------------------------------------------- one eval.json for every image run


def generator_data(model_cfg: dict) -> dict | None:
    """For a model whose cost runs through the generator of another run (``{name: generator, run: DIR}``),
    the data spec that generator was trained on (the images its outputs G(z) should look like); else None."""
    from .config import load_yaml
    from .models import is_generator_spec

    cost = model_cfg.get("cost")
    if not is_generator_spec(cost) or not (Path(cost["run"]) / "config.yaml").is_file():
        return None
    data = load_yaml(Path(cost["run"]) / "config.yaml").get("data", {})
    return list(data.values())[-1] if data and "pair" not in data else None


def is_image_data(spec: Any, sampler: Any) -> bool:
    """Whether a data side holds images: the digits, or a sampler whose samples are (C, H, W)."""
    return is_digits(spec) or len(getattr(sampler, "event_shape", ())) == 3


def translation_line(scores: dict) -> str:
    def row(name: str) -> str:
        r = scores[name]
        hue = f", hue error {r['hue_error']:.3f}" if "hue_error" in r else ""
        return (f"{name}: target-class accuracy {r['accuracy']:.1%}, E|x - y|^2 {r['content']:.1f}{hue}, "
                f"digits-FD {r['fd']:.1f}")
    at = f" at temperature {scores['temperature']:g}" if "temperature" in scores else ""
    return (f"translation of {scores['n_sources']} held-out sources x {scores['n_draws']} draws{at} into classes "
            f"{scores['target_classes']}:\n  " + "\n  ".join(row(k) for k in ("model", "identity", "random_target")))


def scores_line(scores: dict) -> str:
    """One line of ``image_scores`` / ``digits_scores`` for the terminal."""
    name = "digits-FD (otgen classifier features)" if scores["features"] == "digits" else f"FD ({scores['features']})"
    line = f"{name} of {scores['n']} samples vs {scores['reference']}: {scores['fd']:.2f}"
    if scores.get("kid") is not None:
        line += (f"; KID {scores['kid']:.4g} ± {scores['kid_stderr']:.2g}; precision {scores['precision']:.3f}, "
                 f"recall {scores['recall']:.3f}")
    if "fd_floor_test_vs_train" in scores:
        line += (f"\n  (floor, test vs train digits: {scores['fd_floor_test_vs_train']:.2f}); classes covered "
                 f"{scores['samples_coverage']}/10")
    if "heldout_reconstruction" in scores:
        line += f"; held-out reconstruction error {scores['heldout_reconstruction']:.2f}"
    if scores.get("latent", "prior") != "prior":
        line += f"\n  (decoded draws of the {scores['latent']} latent sampler)"
    if "fitted_latent" in scores:
        f = scores["fitted_latent"]
        line += (f"\n  from the fitted latent sampler (latent=fitted): {name} {f['fd']:.2f}, classes covered "
                 f"{f['coverage']}/10")
    return line


def default_features() -> str:
    """"inception" where its weights file is on this machine, else "digits"."""
    from .evaluate.inception import find_weights

    return "inception" if find_weights() is not None else "digits"


def score_image_run(model, cfg: dict, data, out: Path | None = None, n: int | None = None, features: Any = None,
                    ref: str | None = None, seed: int | None = None, batch_size: int | None = None,
                    progress: bool = False, latent: str = "prior",
                    temperature: float | None = None) -> tuple[dict, str] | None:
    """The scores of a run on images and their terminal lines, or None for a run that is not on images:
    what ``otgen train`` writes to ``eval.json`` at the end and ``otgen eval`` computes again (the same
    seed gives the same numbers). A digits A -> B translation run gets ``translation_scores``; a run
    whose target is the digits gets ``digits_scores`` in the digit classifier's features (unless
    ``features`` or ``ref`` asks for others); any other image run ``image_scores`` in ``features``
    (``eval.features``; "auto": inception where its weights are found, else digits). ``out``: the run
    directory, where reference statistics are cached (``eval_reference_<features>.npz``). ``latent``:
    where a model that draws its own codes (a WAE) draws them from, "prior" or "fitted"
    (``Solver.own_source``; checked first). ``temperature``: of the draws of a plan (``eval.temperature``;
    ``plan_keywords``, checked first)."""
    own_source(model, latent)  # ValueError for a latent the model has not
    temperature = cfg["eval"].get("temperature", 1.0) if temperature is None else temperature
    plan_keywords(model, temperature)
    if "pair" in cfg["data"]:
        return None
    ev = cfg["eval"]
    n = ev["n_samples"] if n is None else n
    seed = ev["seed"] if seed is None else seed
    batch_size = ev.get("batch_size", 1000) if batch_size is None else batch_size
    features = features or ev.get("features", "auto")
    ref = ref if ref is not None else ev.get("ref")
    sides = model.data_sides
    first, last = cfg["data"].get(sides[0]), cfg["data"].get(sides[-1])
    target = last if is_image_data(last, data[-1]) else generator_data(cfg["model"])
    if target is None:
        return None
    plain = features in ("auto", "digits") and ref is None
    if plain and is_digits(target) and is_digits(first) and len(sides) == 2:  # digits A -> B
        scores = translation_scores(model, first, target, n_draws=ev["n_draws"], seed=seed, temperature=temperature)
        return scores, translation_line(scores)
    cache_name = None
    if plain and is_digits(target):
        cache = out / "eval_reference_digits.npz" if out is not None else None
        scores = digits_scores(model, target, data, n=n, seed=seed, batch_size=batch_size, cache=cache, latent=latent,
                               temperature=temperature)
        if temperature != 1:
            scores["temperature"] = temperature
        return scores, scores_line(scores)
    features = default_features() if features == "auto" else features
    if out is not None and isinstance(features, str):
        cache_name = out / f"eval_reference_{features}.npz"
    scores = image_scores(model, target, data, n, features, ref, seed, batch_size, ev.get("n_reference", 50_000),
                          cache_name, progress, latent=latent, temperature=temperature)
    if latent != "prior":
        scores["latent"] = latent
    if temperature != 1:
        scores["temperature"] = temperature
    return scores, scores_line(scores)
