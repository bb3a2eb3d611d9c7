"""Tests for otgen.distributions: toy samplers, Gaussians, Empirical and the name registry."""

from __future__ import annotations

import math
import os
import pickle
import struct
import tempfile

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import integrate

from otgen import distributions as D
from otgen.distributions import (
    Checkerboard,
    Circles,
    EightGaussians,
    Empirical,
    Gaussian,
    GaussianMixture,
    Moons,
    Spiral,
    SwissRoll,
    TwentyFiveGaussians,
    make,
    names,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


EXPECTED_NAMES = [
    "gaussian", "standard_gaussian", "normal", "gaussian_mixture", "swiss_roll", "8gaussians",
    "25gaussians", "moons", "circles", "checkerboard", "spiral", "empirical", "npy",
    "digits", "digits_with_outliers", "image_folder", "mnist_idx", "cifar10",
    "outliers_1d", "mixture_p_1d", "mixture_q_1d",
]

_IMAGE_FILES = tempfile.TemporaryDirectory()  # removed when the test process ends


def _image_file(name: str) -> str:
    """A tiny file (or folder) for the image reader ``name``, written once into a temporary folder."""
    root = _IMAGE_FILES.name
    rng = np.random.default_rng(0)
    if name == "image_folder":
        path = os.path.join(root, "folder")
        if not os.path.isdir(path):
            os.mkdir(path)
            for k in range(3):
                Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8)).save(os.path.join(path, f"{k}.png"))
        return path
    if name == "mnist_idx":
        path = os.path.join(root, "train-images-idx3-ubyte")
        with open(path, "wb") as f:
            f.write(struct.pack(">IIII", 0x803, 3, 4, 4) + rng.integers(0, 256, 48, dtype=np.uint8).tobytes())
        return path
    path = os.path.join(root, "data_batch_1")  # cifar10
    with open(path, "wb") as f:
        pickle.dump({b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8), b"labels": [0, 1, 2]}, f)
    return path


def default_kwargs(name: str) -> dict:
    """Minimal keyword arguments for building ``name`` with the registry."""
    if name in ("gaussian", "standard_gaussian", "normal"):
        return {"dim": 3}
    if name == "gaussian_mixture":
        return {"weights": [0.3, 0.7], "means": [[0.0, 0.0], [2.0, 1.0]], "covs": [np.eye(2), 0.5 * np.eye(2)]}
    if name in ("empirical", "npy"):
        return {"samples": np.arange(12, dtype=np.float64).reshape(6, 2)}
    if name in ("image_folder", "mnist_idx", "cifar10"):
        return {"path": _image_file(name)}
    return {}


TOYS = [SwissRoll, EightGaussians, TwentyFiveGaussians, Moons, Circles, Checkerboard, Spiral]


# --------------------------------------------------------------------------- generic behaviour


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_shape_dtype_and_seeding(name):
    s = make(name, **default_kwargs(name))
    assert isinstance(s, D.Sampler)
    x = s(257, generator=gen(0))
    assert x.shape == (257, *s.event_shape)
    assert x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert torch.equal(x, s(257, generator=gen(0)))
    assert not torch.equal(x, s(257, generator=gen(1)))


@pytest.mark.parametrize("cls", TOYS)
def test_toys_use_only_the_given_generator(cls):
    s = cls()
    assert s.event_shape == (2,)
    np_state = np.random.get_state()[1].copy()
    torch_state = torch.get_rng_state().clone()
    s(1000, generator=gen(3))
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert cls.__doc__ and len(cls.__doc__) > 100


@pytest.mark.parametrize("bad_n", [0, -3, 2.5, True, "4"])
def test_bad_n_rejected(bad_n):
    with pytest.raises(ValueError, match="n must be"):
        SwissRoll()(bad_n)


@pytest.mark.parametrize(
    "cls, kwargs, arg",
    [
        (SwissRoll, {"noise": -0.1}, "noise"),
        (SwissRoll, {"scale": 0.0}, "scale"),
        (SwissRoll, {"noise": float("nan")}, "noise"),
        (EightGaussians, {"radius": -1.0}, "radius"),
        (EightGaussians, {"std": -0.02}, "std"),
        (TwentyFiveGaussians, {"spacing": 0}, "spacing"),
        (Moons, {"noise": -1}, "noise"),
        (Circles, {"factor": 1.5}, "factor"),
        (Circles, {"factor": 0.0}, "factor"),
        (Circles, {"noise": "big"}, "noise"),
        (Checkerboard, {"cells": 1}, "cells"),
        (Checkerboard, {"cells": 2.5}, "cells"),
        (Checkerboard, {"half_width": -2}, "half_width"),
        (Spiral, {"n_arms": 0}, "n_arms"),
        (Spiral, {"turns": 0}, "turns"),
    ],
)
def test_bad_parameters_name_the_argument(cls, kwargs, arg):
    with pytest.raises(ValueError, match=arg) as info:
        cls(**kwargs)
    assert repr(next(iter(kwargs.values()))) in str(info.value)


# --------------------------------------------------------------------------- Swiss roll


def _moment(f) -> float:
    """E[f(t)] with t = 1.5 pi (1 + 2u), u ~ U[0, 1]."""
    return integrate.quad(lambda u: f(1.5 * math.pi * (1.0 + 2.0 * u)), 0.0, 1.0, limit=200)[0]


@pytest.mark.parametrize("noise", [0.5, 3.0])  # large noise: checks it is added before scaling
def test_swiss_roll_statistics_match_the_construction(noise):
    scale, n = 1.0 / 8.0, 200_000
    x = SwissRoll(noise=noise, scale=scale)(n, generator=gen(0)).double().numpy()
    for col, f in ((0, lambda t: t * math.cos(t)), (1, lambda t: t * math.sin(t))):
        m1 = _moment(f)
        m2 = _moment(lambda t: f(t) ** 2)
        mean = scale * m1
        var = scale**2 * (m2 - m1**2 + noise**2)
        assert abs(x[:, col].mean() - mean) < 5 * math.sqrt(var / n), (col, x[:, col].mean(), mean)
        # sample variance: relative standard error ~ sqrt(2/n) ~ 0.3 %; allow 2 %
        assert abs(x[:, col].var() / var - 1) < 0.02, (col, x[:, col].var(), var)
    # cross moment E[xy] = scale^2 E[t^2 cos t sin t] (the noise is independent)
    exy = scale**2 * _moment(lambda t: t * t * math.cos(t) * math.sin(t))
    assert abs((x[:, 0] * x[:, 1]).mean() - exy) < 0.01


def test_swiss_roll_noiseless_points_lie_on_the_curve():
    x = SwissRoll(noise=0.0, scale=1.0)(5000, generator=gen(1)).double()
    t = x.norm(dim=1)  # the radius of (t cos t, t sin t) is t
    assert t.min() >= 1.5 * math.pi - 1e-4 and t.max() <= 4.5 * math.pi + 1e-4
    assert torch.allclose(x, torch.stack([t * torch.cos(t), t * torch.sin(t)], 1), atol=1e-4)
    # default scale is 1/8 (EgNOT): the same roll, shrunk
    y = SwissRoll(noise=0.0)(5000, generator=gen(1)).double()
    assert torch.allclose(y, x / 8, atol=1e-5)


# --------------------------------------------------------------------------- Gaussian grids


def test_eight_gaussians_centres_and_balance():
    radius, std, n = 2.0, 0.05, 80_000
    x = EightGaussians(radius=radius, std=std)(n, generator=gen(0))
    k = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
    centres = radius * torch.stack([torch.cos(k), torch.sin(k)], 1).float()
    d = torch.cdist(x, centres)
    dmin, idx = d.min(1)
    assert dmin.max() < 6 * std
    counts = torch.bincount(idx, minlength=8).double() / n
    assert torch.all((counts - 1 / 8).abs() < 0.01), counts
    # default: radius 2, std 0.02
    y = EightGaussians()(1000, generator=gen(1))
    assert ((y.norm(dim=1) - 2.0).abs() < 0.15).all()


def test_twenty_five_gaussians_grid():
    std, n = 0.05, 50_000
    x = TwentyFiveGaussians(std=std)(n, generator=gen(0))
    g = torch.arange(-2, 3, dtype=torch.float32)
    centres = torch.cartesian_prod(g, g)
    dmin, idx = torch.cdist(x, centres).min(1)
    assert dmin.max() < 6 * std
    counts = torch.bincount(idx, minlength=25).double() / n
    assert torch.all((counts - 1 / 25).abs() < 0.006), counts
    y = TwentyFiveGaussians(spacing=0.5, std=0.0)(500, generator=gen(1))
    assert torch.allclose(y * 2, torch.round(y * 2)) and y.abs().max() <= 1.0


# --------------------------------------------------------------------------- moons, circles


def test_moons_radii():
    x = Moons(noise=0.0)(4000, generator=gen(0)).double()
    r_upper = x.norm(dim=1)
    r_lower = (x - torch.tensor([1.0, 0.5], dtype=torch.float64)).norm(dim=1)
    upper = (r_upper - 1).abs() < 1e-5
    lower = (r_lower - 1).abs() < 1e-5
    assert (upper | lower).all()
    assert (x[upper, 1] >= -1e-6).all() and (x[lower & ~upper, 1] <= 0.5 + 1e-6).all()
    assert abs(upper.double().mean().item() - 0.5) < 0.05
    # with noise, the distance to the nearest moon has roughly the noise's spread
    y = Moons(noise=0.1)(20_000, generator=gen(1)).double()
    dist = torch.minimum(
        (y.norm(dim=1) - 1).abs(), ((y - torch.tensor([1.0, 0.5], dtype=torch.float64)).norm(dim=1) - 1).abs()
    )
    assert 0.03 < dist.mean().item() < 0.1


def test_circles_radii():
    factor, scale = 0.3, 2.0
    x = Circles(factor=factor, noise=0.0, scale=scale)(4000, generator=gen(0)).double()
    r = x.norm(dim=1)
    outer = (r - scale).abs() < 1e-5
    inner = (r - factor * scale).abs() < 1e-5
    assert (outer | inner).all()
    assert abs(inner.double().mean().item() - 0.5) < 0.05
    angles = torch.atan2(x[:, 1], x[:, 0])
    hist = torch.histc(angles, bins=8, min=-math.pi, max=math.pi) / len(x)
    assert torch.all((hist - 1 / 8).abs() < 0.03)


# --------------------------------------------------------------------------- checkerboard, spiral


def test_checkerboard_black_squares_only():
    n = 40_000
    x = Checkerboard()(n, generator=gen(0))
    assert x.min() >= -2.0 and x.max() <= 2.0
    fx, fy = torch.floor(x[:, 0]), torch.floor(x[:, 1])
    assert ((fx + fy) % 2 == 0).all()
    cell = ((fx + 2) * 4 + (fy + 2)).long()
    counts = torch.bincount(cell, minlength=16).double() / n
    black = counts > 0
    assert black.sum() == 8
    assert torch.all((counts[black] - 1 / 8).abs() < 0.01)
    # other sizes: cells of side 2*half_width/cells, (i + j) even
    y = Checkerboard(cells=6, half_width=3.0)(5000, generator=gen(1))
    ij = torch.floor(y + 3.0)
    assert (ij.sum(1) % 2 == 0).all() and y.abs().max() <= 3.0


def test_spiral_noiseless_points_on_arms():
    n_arms, turns, scale = 3, 2.0, 0.5
    x = Spiral(n_arms=n_arms, turns=turns, noise=0.0, scale=scale)(5000, generator=gen(0)).double()
    phi = x.norm(dim=1) / scale
    assert phi.max() <= 2 * math.pi * turns + 1e-4
    ang = torch.atan2(x[:, 1], x[:, 0])
    # the angle offset from phi must be a multiple of 2 pi / n_arms
    off = torch.remainder(ang - phi, 2 * math.pi / n_arms)
    off = torch.minimum(off, 2 * math.pi / n_arms - off)
    assert off.max() < 1e-3
    arm = torch.round(torch.remainder(ang - phi, 2 * math.pi) / (2 * math.pi / n_arms)) % n_arms
    assert torch.bincount(arm.long(), minlength=n_arms).min() > 5000 / n_arms * 0.9
    # default: two arms within radius ~ pi (+ noise)
    assert Spiral()(5000, generator=gen(1)).norm(dim=1).max() < 4.0


# --------------------------------------------------------------------------- Gaussians


def test_gaussian_mean_and_cov():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    cov = a @ a.T + 0.5 * np.eye(3)
    mean = np.array([1.0, -2.0, 0.5])
    x = Gaussian(mean, cov)(200_000, generator=gen(0)).double().numpy()
    assert np.allclose(x.mean(0), mean, atol=0.03)
    assert np.allclose(np.cov(x.T), cov, atol=0.05 * np.abs(cov).max())
    g = make("gaussian", mean=mean, cov=cov)
    assert np.allclose(g.cov, cov) and np.allclose(g.mean, mean)
    assert np.allclose(make("gaussian", dim=4).cov, np.eye(4))
    assert np.allclose(make("gaussian", mean=[1.0, 2.0]).cov, np.eye(2))


def test_gaussian_mixture_mean_and_cov():
    w = [0.2, 0.5, 0.3]
    means = [[0.0, 0.0], [3.0, 1.0], [-2.0, 2.0]]
    covs = [np.eye(2) * 0.5, np.array([[1.0, 0.3], [0.3, 0.4]]), np.eye(2) * 0.1]
    gm = make("gaussian_mixture", weights=w, means=means, covs=covs)
    assert isinstance(gm, GaussianMixture)
    x = gm(200_000, generator=gen(0)).double().numpy()
    assert np.allclose(x.mean(0), gm.mean, atol=0.03)
    assert np.allclose(np.cov(x.T), gm.cov, atol=0.06)


# --------------------------------------------------------------------------- Empirical


def test_empirical_resamples_only_existing_rows():
    data = torch.randn(7, 3, 2, generator=gen(0))
    e = Empirical(data)
    assert e.event_shape == (3, 2) and len(e) == 7
    x = e(2000, generator=gen(1))
    assert x.shape == (2000, 3, 2) and x.dtype == torch.float32
    match = (x[:, None] == data[None]).flatten(2).all(-1)  # (2000, 7)
    assert (match.sum(1) == 1).all()
    counts = match.sum(0)
    assert (counts > 2000 / 7 * 0.7).all()  # every row used, roughly uniformly
    # numpy input, float64 -> float32
    e2 = Empirical(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert e2(10, generator=gen(0)).dtype == torch.float32


@pytest.mark.parametrize(
    "bad, msg",
    [
        (np.zeros((0, 2)), "non-empty"),
        (np.zeros((3, 0)), "non-empty"),
        (np.array(1.0), "non-empty"),
        (np.array([[1.0, np.nan]]), "non-finite"),
        (torch.tensor([[np.inf, 0.0]]), "non-finite"),
        (np.array(["a", "b"]), "real numbers"),
    ],
)
def test_empirical_validation(bad, msg):
    with pytest.raises(ValueError, match=msg):
        Empirical(bad)


# --------------------------------------------------------------------------- registry


def test_names_listed():
    assert names() == EXPECTED_NAMES


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_registry_builds_each_name(name):
    s = make(name, **default_kwargs(name))
    assert isinstance(s, D.Sampler)


def test_registry_types_and_kwargs_forwarded():
    assert isinstance(make("swiss_roll"), SwissRoll)
    assert make("Swiss-Roll", noise=0.1).noise == 0.1
    assert isinstance(make("8gaussians", std=0.1), EightGaussians)
    assert isinstance(make("25gaussians"), TwentyFiveGaussians)
    assert make("circles", factor=0.25).factor == 0.25
    assert make("checkerboard", cells=6).cells == 6
    assert make("spiral", n_arms=3).n_arms == 3
    assert isinstance(make("moons"), Moons)
    assert make("normal", dim=5).event_shape == (5,)


def test_registry_rejects_unknown_name():
    with pytest.raises(ValueError) as info:
        make("swiss_cheese")
    msg = str(info.value)
    assert "swiss_cheese" in msg
    for n in EXPECTED_NAMES:
        assert n in msg


def test_registry_rejects_unknown_kwargs():
    with pytest.raises(ValueError) as info:
        make("swiss_roll", nosie=0.5)
    msg = str(info.value)
    assert "nosie" in msg and "noise" in msg and "scale" in msg
    with pytest.raises(ValueError, match="bogus.*dim"):
        make("gaussian", bogus=1)
    with pytest.raises(ValueError, match="missing.*dim"):
        make("normal")
    with pytest.raises(ValueError, match="noise"):
        make("moons", noise=-1)


def test_make_npy_reads_a_file(tmp_path):
    data = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float64)
    p = tmp_path / "data.npy"
    np.save(p, data)
    s = make("npy", path=p)
    assert isinstance(s, Empirical) and s.event_shape == (3,)
    x = s(100, generator=gen(0)).double().numpy()
    assert all(np.isclose(data.astype(np.float32), row).all(1).any() for row in x)
    assert torch.equal(make("empirical", path=str(p))(50, generator=gen(2)), s(50, generator=gen(2)))
    with pytest.raises(ValueError, match="key"):
        make("npy", path=p, key="a")


def test_make_npz_key(tmp_path):
    p = tmp_path / "data.npz"
    np.savez(p, first=np.ones((4, 2)), second=np.full((3, 5), 2.0))
    assert make("npy", path=p).event_shape == (2,)
    s = make("npy", path=p, key="second")
    assert s.event_shape == (5,) and torch.all(s(10, generator=gen(0)) == 2.0)
    with pytest.raises(ValueError, match="missing.*first.*second|'missing'"):
        make("npy", path=p, key="missing")
    bad = tmp_path / "data.txt"
    bad.write_text("1 2\n")
    with pytest.raises(ValueError, match=r"\.npy or \.npz"):
        make("npy", path=bad)
    with pytest.raises(ValueError, match="exactly one"):
        make("empirical")


def test_uotm_1d_toys():
    """The outlier toy puts exactly outlier_fraction of its mass in the outlier mode; p and q are
    the UOTM paper's 1-D map pair."""
    toy = make("outliers_1d")
    np.testing.assert_allclose(toy.weights, [0.99, 0.01])
    y = toy(200_000, generator=torch.Generator().manual_seed(0))
    assert y.shape == (200_000, 1)
    assert float((y < 0).double().mean()) == pytest.approx(0.01, abs=0.001)
    assert make("mixture_q_1d").mean[0] == pytest.approx(2 * 2 / 3 - 1 / 3)
    assert make("mixture_p_1d").mean[0] == pytest.approx(0.0)
    assert make("outliers_1d", outlier_fraction=0.0).weights.tolist() == [1.0]
    with pytest.raises(ValueError, match="outlier_fraction"):
        make("outliers_1d", outlier_fraction=1.0)
    with pytest.raises(ValueError, match="std"):
        make("outliers_1d", std=0.0)


def test_standard_normal_of_any_shape():
    """make("normal", shape=[1, 16, 16]): image-shaped N(0, I) noise (the source of image generators),
    reproducible, with unit variance and zero mean in every pixel."""
    s = make("normal", shape=[1, 16, 16])
    x = s(4000, generator=gen(0))
    assert x.shape == (4000, 1, 16, 16) and s.event_shape == (1, 16, 16)
    assert torch.equal(x, s(4000, generator=gen(0)))
    assert abs(x.mean().item()) < 0.01 and abs(x.var().item() - 1.0) < 0.01
    with pytest.raises(ValueError, match="exactly one of dim= .* or shape="):
        make("normal", dim=3, shape=[3])
    with pytest.raises(ValueError, match="shape must be a non-empty list of ints >= 1"):
        make("normal", shape=[1, 0, 4])
