"""Digits with outlier images (UOTM's outlier experiment in small) and the outlier share of samples."""

from __future__ import annotations

import pytest
import torch

from otgen.distributions import make
from otgen.distributions.images import OUTLIER_LABEL, ImageSet, digits, with_outliers
from otgen.image_metrics import outlier_share
from otgen.image_runs import is_digits, outlier_reference


def test_with_outliers_adds_the_asked_share_of_labelled_outlier_images():
    clean = digits(size=8)
    for kind in ("inverted", "noise", "far"):
        data = with_outliers(clean, fraction=0.03, kind=kind, seed=1)
        out = data.labels == OUTLIER_LABEL
        assert abs(out.double().mean().item() - 0.03) < 0.001
        assert torch.equal(data.images[: len(clean)], clean.images)
        extra = data.images[out]
        if kind == "inverted":  # every outlier is the negative of one of the digits
            assert all(any(torch.equal(-e, c) for c in clean.images) for e in extra[:5])
        elif kind == "far":  # the same inverted digits (same seed), binarised and doubled: pixels ±2
            inverted = with_outliers(clean, fraction=0.03, kind="inverted", seed=1).images[out]
            assert torch.equal(extra, torch.where(inverted >= 0, 2.0, -2.0)) and data.value_range == (-2.0, 2.0)
            # ‖y‖² = 4·D, against at most D for an image in [-1, 1]: far from N(0, I) in cost
            assert extra.flatten(1).square().sum(1).eq(4 * 64).all()
        else:
            assert extra.min() >= -1 and extra.max() <= 1 and abs(extra.mean().item()) < 0.1
    assert data.class_names[OUTLIER_LABEL] == "outlier"
    spec = make("digits_with_outliers", size=8, outlier_fraction=0.05, outlier_kind="noise")
    assert abs((spec.labels == OUTLIER_LABEL).double().mean().item() - 0.05) < 0.001


@pytest.mark.parametrize("kwargs, message", [
    ({"fraction": 0.0}, "fraction must be a number in \\(0, 0.5\\)"),
    ({"fraction": 0.6}, "fraction must be a number in \\(0, 0.5\\)"),
    ({"kind": "mnist"}, "kind must be one of \\('inverted', 'noise', 'far'\\)"),
    ({"seed": -1}, "seed must be an int >= 0"),
])
def test_with_outliers_names_a_bad_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        with_outliers(digits(size=8), **kwargs)


def test_outlier_share_finds_outliers_by_their_nearest_neighbour():
    train, test = digits(size=8).images, digits(size=8, split="test").images
    reference = -train
    assert outlier_share(test, train, reference) == 0.0  # held-out digits are digits
    assert outlier_share(-test, train, reference) == 1.0  # held-out inverted digits are outliers
    mixed = torch.cat([test[:90], -test[:10]])
    assert outlier_share(mixed, train, reference) == pytest.approx(0.1)
    noise = torch.rand(50, 1, 8, 8) * 2 - 1
    assert outlier_share(noise, train, torch.rand(200, 1, 8, 8) * 2 - 1) == 1.0
    with pytest.raises(ValueError, match="same image shape"):
        outlier_share(test, train, torch.zeros(3, 1, 4, 4))


def test_the_scored_digits_specs_include_the_outlier_variant():
    train = digits(size=8).images
    assert is_digits({"name": "digits_with_outliers", "size": 8})
    assert outlier_reference({"name": "digits"}, train) is None
    assert torch.equal(outlier_reference({"name": "digits_with_outliers"}, train), -train)
    noise = outlier_reference({"name": "digits_with_outliers", "outlier_kind": "noise"}, train)
    assert noise.shape == train.shape and noise.min() >= -1
    far = outlier_reference({"name": "digits_with_outliers", "outlier_kind": "far"}, train)
    assert torch.equal(far, torch.where(-train >= 0, 2.0, -2.0))
    # on the data itself the rule is exact: every added far outlier, and only those, is counted
    data = with_outliers(digits(size=8), fraction=0.03, kind="far", seed=0)
    share = outlier_share(data.images, train, far)
    assert share == pytest.approx((data.labels == OUTLIER_LABEL).double().mean().item())


def test_an_image_set_outside_its_value_range_is_refused():
    with pytest.raises(ValueError, match=r"images must lie in \[-1, 1\], got values in \[-2, 2\]"):
        ImageSet(torch.full((2, 1, 4, 4), 2.0) * torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
    for bad in [(1.0, -1.0), 2.0, (1, 2, 3), "12", (0, float("inf"))]:
        with pytest.raises(ValueError, match="value_range must be a pair \\(low, high\\) of finite numbers"):
            ImageSet(torch.zeros(2, 1, 4, 4), value_range=bad)
    assert ImageSet(torch.full((2, 1, 4, 4), 2.0), value_range=(-2.0, 2.0)).value_range == (-2.0, 2.0)
