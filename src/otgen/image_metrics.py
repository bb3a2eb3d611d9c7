"""otgen's own image evaluator: a small digit classifier and the scores built on its features.

**Not Inception FID.** FID needs Inception weights, which cannot be downloaded here. The scores below
use a small CNN that otgen trains on the *train* split of ``distributions.digits`` (rebuilt by
``benchmarks/train_digits_classifier.py``; weights shipped in ``otgen/weights/``: 49 850 parameters, 99.4 % accuracy
on the 359 held-out test digits).
Report them as "digits-FD (otgen classifier features)", never as FID; they compare runs of otgen
with each other and with the floors that ``benchmarks/wae_digits.py`` records. The feature network
is pluggable: ``ImageEvaluator(features=my_inception_pool3)`` computes a Fréchet distance in any
features (standard FID, where a user has the weights).

Images are (n, C, H, W) in [−1, 1]. The digit classifier sees them as grey 16×16: a 3-channel image
is reduced to its channel maximum (which is exactly the grey digit for ``digits(colored=True)``:
each pixel is g·rgb(hue) with max(rgb) = 1), and other sizes are resized (area averaging down,
bilinear up).

Scores (``ImageEvaluator``):

* ``frechet_distance(x, y)`` — ‖m_x − m_y‖² + Tr(S_x + S_y − 2 (S_x^½ S_y S_x^½)^½) between Gaussian
  fits of the features (unbiased covariances); with digits features this is **digits-FD**.
* ``class_histogram(x)`` — the fraction of images the classifier assigns to each class;
  ``coverage(x)`` the number of classes holding at least 4 % of them; ``confidence(x)`` the mean
  maximum class probability.
* ``translation_scores(x, y, target)`` — for translation x -> y: target-class accuracy of y and
  content preservation E‖x − y‖² (sum over pixels, the ½-free squared distance).

Colour (free functions, no classifier): ``stroke_hue(images)`` is the hue of each RGB image's stroke,
the circular mean of the per-pixel hues weighted by chroma (max − min of R, G, B), so the black
background and grey pixels do not count; ``hue_error(x, y)`` the mean circular distance between the
stroke hues of x_i and y_i, in [0, 0.5] (0: same colour; 0.25: the mean for independent hues).
``outlier_share(samples, inliers, outliers)`` is the share of samples whose nearest neighbour in pixel
space, among reference inliers and reference outliers together, is an outlier (UOTM's outlier test).
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


__all__ = ["DigitClassifier", "ImageEvaluator", "digits_evaluator", "frechet_distance", "to_classifier_input",
           "stroke_hue", "hue_error", "outlier_share", "WEIGHTS", "COVERAGE_THRESHOLD"]

WEIGHTS = Path(__file__).parent / "weights" / "digits_classifier.pt"
INPUT_SIZE = 16
COVERAGE_THRESHOLD = 0.04  # a class is covered if it holds at least 4 % of the samples


class DigitClassifier(nn.Module):
    """A small CNN for grey 16×16 digits in [−1, 1]: (n, 1, 16, 16) -> logits (n, 10).

    conv3×3(16)–conv3×3(16)–maxpool–conv3×3(32)–conv3×3(32)–maxpool, ReLU after each conv, then a
    64-wide ReLU layer (``features``: the penultimate features, (n, 64)) and a linear layer to 10.
    """

    FEATURES = 64

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 4 * 4, self.FEATURES), nn.ReLU())
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.FEATURES, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, 1, 16, 16) -> (n, 64)."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"DigitClassifier takes (n, 1, 16, 16) images, got {tuple(x.shape)}; "
                             "use to_classifier_input first")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def _as_float_tensor(name: str, value) -> torch.Tensor:
    """``value`` (a Tensor, an array, a list of numbers) as a float32 Tensor; TypeError naming ``name``
    for what holds no real numbers (a string, None, a dict, complex numbers, a ragged list)."""
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise TypeError(f"{name} must hold real numbers, got a tensor of dtype {value.dtype}")
        return value.to(torch.float32)
    if value is None or isinstance(value, (str, bytes, dict)):
        raise TypeError(f"{name} must be a tensor or an array of numbers, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a tensor or an array of numbers, got a {type(value).__name__} "
                        f"numpy cannot read as one ({e})") from None
    if not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return torch.from_numpy(np.array(arr, dtype=np.float32))


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def to_classifier_input(images: torch.Tensor) -> torch.Tensor:
    """(n, C, H, W) images in [−1, 1], C in {1, 3} -> (n, 1, 16, 16): the channel maximum, resized."""
    x = _as_float_tensor("images", images)
    if x.ndim != 4 or x.shape[1] not in (1, 3) or min(x.shape[2:]) < 4:
        raise ValueError(f"images must have shape (n, C, H, W) with C in (1, 3) and H, W >= 4, got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("images have non-finite values (nan or inf)")
    x = x.clamp(-1.0, 1.0).amax(dim=1, keepdim=True)
    if tuple(x.shape[2:]) != (INPUT_SIZE, INPUT_SIZE):
        down = x.shape[2] >= INPUT_SIZE and x.shape[3] >= INPUT_SIZE
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="area" if down else "bilinear",
                          **({} if down else {"align_corners": False}))
    return x


def frechet_distance(features_x, features_y) -> float:
    """Fréchet distance between Gaussian fits of two feature sets (n, k) and (m, k), n, m >= 2:
    ‖m_x − m_y‖² + Tr(S_x + S_y − 2 (S_x^½ S_y S_x^½)^½) = W2² of the two Gaussians (float64;
    ``otgen.evaluate.scores.fd_from_features``, the one FD of every image score)."""
    from .evaluate.scores import fd_from_features

    fx, fy = (_as_float_tensor(name, f).cpu().double() for name, f in (("features_x", features_x),
                                                                    ("features_y", features_y)))
    if fx.ndim != 2 or fy.ndim != 2 or fx.shape[1] != fy.shape[1] or min(len(fx), len(fy)) < 2:
        raise ValueError(f"features must be (n, k) and (m, k) with n, m >= 2, got {tuple(fx.shape)} and {tuple(fy.shape)}")
    for name, f in (("features_x", fx), ("features_y", fy)):
        if not bool(torch.isfinite(f).all()):
            raise ValueError(f"{name} has non-finite values (nan or inf)")
    return fd_from_features(fx, fy)


class ImageEvaluator:
    """Scores of generated or translated images from a classifier and/or a feature network.

    Args:
        classifier: a module images -> logits (n, K) (on ``preprocess``ed input); with a ``features``
            method, that gives the default feature network. None: no class scores.
        features: a callable images -> (n, k) for the Fréchet distance (overrides the classifier's).
        preprocess: applied to images before either network (default: identity).
        batch_size: images per forward pass.
    """

    def __init__(self, classifier: nn.Module | None = None, features: Callable | None = None,
                 preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None, batch_size: int = 500):
        if features is None and classifier is not None and hasattr(classifier, "features"):
            features = classifier.features
        if classifier is None and features is None:
            raise ValueError("ImageEvaluator needs a classifier, a feature network, or both")
        self.classifier, self._features = classifier, features
        self.preprocess = preprocess or (lambda x: x)
        self.batch_size = _check_positive_int("batch_size", batch_size)
        if classifier is not None:
            classifier.eval()

    @torch.no_grad()
    def _map(self, fn: Callable, images) -> torch.Tensor:
        """``fn`` over batches of preprocessed images, on the device of the evaluator's networks; (n, k)
        float64 on the CPU."""
        images = _as_float_tensor("images", images)
        if images.ndim != 4 or images.shape[0] < 1:
            raise ValueError(f"images must have shape (n, C, H, W) with n >= 1, got {tuple(images.shape)}")
        out = [fn(self.preprocess(images[i:i + self.batch_size].to(self.device))).cpu()
               for i in range(0, len(images), self.batch_size)]
        return torch.cat(out).double()

    @property
    def device(self) -> torch.device:
        """Where the networks' parameters are (the CPU for parameter-free callables)."""
        for net in (self.classifier, getattr(self._features, "__self__", None), self._features):
            if isinstance(net, nn.Module):
                for p in net.parameters():
                    return p.device
        return torch.device("cpu")

    def features(self, images) -> torch.Tensor:
        """(n, C, H, W) -> (n, k) features (float64)."""
        if self._features is None:
            raise ValueError("this evaluator has no feature network")
        return self._map(self._features, images)

    def probabilities(self, images) -> torch.Tensor:
        """(n, C, H, W) -> (n, K) class probabilities (float64)."""
        if self.classifier is None:
            raise ValueError("this evaluator has no classifier")
        return torch.softmax(self._map(self.classifier, images), dim=1)

    def predict(self, images) -> torch.Tensor:
        """(n, C, H, W) -> (n,) predicted classes."""
        return self.probabilities(images).argmax(1)

    def frechet_distance(self, images_x, images_y) -> float:
        """The Fréchet distance between the two image sets' features (digits-FD for the digits evaluator)."""
        return frechet_distance(self.features(images_x), self.features(images_y))

    def accuracy(self, images, labels) -> float:
        """Fraction of images classified as their ``labels`` (n,)."""
        labels = _as_float_tensor("labels", labels)
        if not bool(torch.isfinite(labels).all()) or not bool((labels == labels.round()).all()):
            raise ValueError("labels must be integer class labels")
        labels = labels.long().reshape(-1)
        pred = self.predict(images)
        if labels.shape != pred.shape:
            raise ValueError(f"labels must have shape ({len(pred)},), got {tuple(labels.shape)}")
        return float((pred == labels).double().mean())

    def class_scores(self, images, threshold: float = COVERAGE_THRESHOLD) -> dict[str, Any]:
        """One pass of the classifier: ``histogram`` (K,) fractions of the images predicted in each
        class, ``coverage`` (how many classes hold at least ``threshold`` of them) and ``confidence``
        (the mean largest class probability)."""
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be a fraction in [0, 1], got {threshold!r}")
        probs = self.probabilities(images)
        hist = np.bincount(probs.argmax(1).numpy(), minlength=probs.shape[1]) / len(probs)
        return {"histogram": hist, "coverage": int((hist >= threshold).sum()),
                "confidence": float(probs.max(1).values.mean())}

    def class_histogram(self, images) -> np.ndarray:
        """(K,) fractions of the images predicted in each class (sum 1)."""
        return self.class_scores(images)["histogram"]

    def coverage(self, images, threshold: float = COVERAGE_THRESHOLD) -> int:
        """How many classes hold at least ``threshold`` of the images."""
        return self.class_scores(images, threshold)["coverage"]

    def confidence(self, images) -> float:
        """Mean over images of the largest class probability."""
        return self.class_scores(images)["confidence"]

    def sample_scores(self, samples, reference) -> dict[str, Any]:
        """Scores of generated ``samples`` against ``reference`` images (e.g. held-out data): ``fd``,
        and with a classifier ``coverage``, ``confidence`` and ``histogram`` (a list of K fractions)."""
        out: dict[str, Any] = {}
        if self._features is not None:
            out["fd"] = self.frechet_distance(samples, reference)
        if self.classifier is not None:
            scores = self.class_scores(samples)
            out.update(coverage=scores["coverage"], confidence=scores["confidence"],
                       histogram=[round(float(h), 4) for h in scores["histogram"]])
        return out

    def translation_scores(self, x, y, target: int | Sequence[int]) -> dict[str, float]:
        """For translations y (n, ...) of sources x (n, ...): ``accuracy``, the fraction of y classified
        into ``target`` (a class or a collection of classes), and ``content`` = mean_i ‖x_i − y_i‖²
        (sum over pixels; x and y must have the same shape)."""
        x, y = _as_float_tensor("x", x), _as_float_tensor("y", y)
        if x.shape != y.shape:
            raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        if isinstance(target, (np.ndarray, torch.Tensor)):
            classes = target.reshape(-1).tolist()
        else:
            classes = list(target) if isinstance(target, (list, tuple, set, range)) else [target]
        if not classes or not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) and c >= 0
                                  for c in classes):
            raise ValueError(f"target must be a class (an int >= 0) or a collection of classes, got {target!r}")
        targets = torch.as_tensor(classes).long()
        probs = self.probabilities(y)
        if int(targets.max()) >= probs.shape[1]:
            raise ValueError(f"target must name classes of the classifier (0..{probs.shape[1] - 1}), got {target!r}")
        pred = probs.argmax(1)
        return {"accuracy": float(torch.isin(pred, targets).double().mean()),
                "content": float((x - y).pow(2).flatten(1).sum(1).mean())}


def _rgb_batch(name: str, images) -> torch.Tensor:
    images = _as_float_tensor(name, images)
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must be RGB images (n, 3, H, W) in [-1, 1], got shape {tuple(images.shape)}")
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{name} have non-finite values (nan or inf)")
    return images


def stroke_hue(images) -> torch.Tensor:
    """The stroke hue (n,) in [0, 1) of RGB images (n, 3, H, W) in [−1, 1] (see the module docstring).

    Per pixel, with r, g, b in [0, 1], M = max, m = min and chroma C = M − m, the hue angle is
    atan2(√3·(g − b), 2r − g − b) (the circular hue: equal to HSV's hexagonal hue at the six
    primaries and secondaries, and within 0.0032 turns of it on ``digits(colored=True)``); the
    image's hue is the angle of Σ C·e^{i·angle}. An image with no chroma at all has hue 0.
    """
    rgb = (_rgb_batch("images", images) + 1.0) / 2.0
    r, g, b = rgb.unbind(1)
    chroma = rgb.amax(1) - rgb.amin(1)
    angle = torch.atan2(3.0 ** 0.5 * (g - b), 2.0 * r - g - b)
    re = (chroma * torch.cos(angle)).flatten(1).sum(1)
    im = (chroma * torch.sin(angle)).flatten(1).sum(1)
    return torch.remainder(torch.atan2(im, re) / (2 * torch.pi), 1.0)


def hue_error(x, y) -> float:
    """Mean circular distance between the stroke hues of x_i and y_i, in turns: [0, 0.5]; x, y (n, 3, H, W)."""
    hx, hy = stroke_hue(x), stroke_hue(y)
    if hx.shape != hy.shape:
        raise ValueError(f"x and y must hold the same number of images, got {len(hx)} and {len(hy)}")
    d = torch.remainder(hx - hy, 1.0)
    return float(torch.minimum(d, 1.0 - d).mean())


def outlier_share(samples, inliers, outliers, batch_size: int = 256) -> float:
    """The share of ``samples`` (n, ...) whose nearest neighbour (Euclidean, over all pixels) among
    ``inliers`` (a, ...) and ``outliers`` (b, ...) together is one of the outliers."""
    batch_size = _check_positive_int("batch_size", batch_size)
    tensors = [_as_float_tensor(name, t) for name, t in (("samples", samples), ("inliers", inliers),
                                                          ("outliers", outliers))]
    for name, t in zip(("samples", "inliers", "outliers"), tensors):
        if t.ndim < 2:
            raise ValueError(f"{name} must be a batch of images (n, ...), got shape {tuple(t.shape)}")
    flat = [t.flatten(1) for t in tensors]
    if len({f.shape[1] for f in flat}) != 1:
        raise ValueError(f"samples, inliers and outliers must have the same image shape, got "
                         f"{[tuple(t.shape[1:]) for t in tensors]}")
    if not len(flat[1]) or not len(flat[2]):
        raise ValueError("inliers and outliers must each hold at least one image")
    found = 0
    for chunk in flat[0].split(batch_size):
        d_in = torch.cdist(chunk, flat[1]).amin(1)
        d_out = torch.cdist(chunk, flat[2]).amin(1)
        found += int((d_out < d_in).sum())
    return found / max(len(flat[0]), 1)


def load_digit_classifier(path: str | Path = WEIGHTS) -> DigitClassifier:
    """The shipped digit classifier (``torch.load(weights_only=True)``: no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"digit classifier weights not found at {path}; rebuild them with "
                                "`python benchmarks/train_digits_classifier.py`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = DigitClassifier()
    net.load_state_dict({k: v.float() for k, v in state["weights"].items()})
    return net.eval()


def digits_evaluator(path: str | Path = WEIGHTS, batch_size: int = 500) -> ImageEvaluator:
    """The evaluator of otgen's digit classifier (digits-FD, class histogram, coverage, confidence);
    takes (n, C, H, W) images in [−1, 1] of any size and 1 or 3 channels."""
    batch_size = _check_positive_int("batch_size", batch_size)
    return ImageEvaluator(load_digit_classifier(path), preprocess=to_classifier_input, batch_size=batch_size)
