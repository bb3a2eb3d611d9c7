"""The fitted latent sampler: a Gaussian mixture fitted to a WAE's training codes (``GaussianMixture.fit``,
``WAE.fit_latent_sampler``, ``sample_prior(latent="fitted")``, ``otgen sample/eval --latent fitted``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

import otgen
from otgen.cli import main
from otgen.distributions import GaussianMixture
from otgen.distributions.images import digits

from test_wae import CONV8, assert_same_state, tiny

KNOWN = GaussianMixture([0.5, 0.3, 0.2], [[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]],
                        [np.eye(2), [[2.0, 0.6], [0.6, 0.5]], 0.3 * np.eye(2)])


def test_a_mixture_fitted_to_draws_of_a_known_mixture_recovers_it():
    """EM on 20 000 draws of a 3-component mixture with well-separated means: the weights within 0.01,
    the means within 0.05, the covariances within 0.08 (the sampling error of 4 000–10 000 draws is
    a few times smaller); "diag" keeps only the diagonals."""
    x = KNOWN.sample(20_000, torch.Generator().manual_seed(0)).double().numpy()
    fitted = GaussianMixture.fit(x, components=3, seed=0)
    order = [int(np.argmin(np.linalg.norm(fitted.means - m, axis=1))) for m in KNOWN.means]
    assert sorted(order) == [0, 1, 2]
    assert np.abs(fitted.weights[order] - KNOWN.weights).max() < 0.01
    assert np.abs(fitted.means[order] - KNOWN.means).max() < 0.05
    assert np.abs(fitted.covs[order] - KNOWN.covs).max() < 0.08
    diag = GaussianMixture.fit(x, components=3, covariance="diag", seed=0)
    assert all(np.count_nonzero(c - np.diag(np.diag(c))) == 0 for c in diag.covs)


def test_log_prob_is_the_mixture_density():
    x = np.array([[0.3, -0.2], [5.0, 1.0], [-1.0, 5.5]])
    expected = np.log(sum(w * multivariate_normal(m, c).pdf(x) for w, m, c in zip(KNOWN.weights, KNOWN.means, KNOWN.covs)))
    assert np.allclose(KNOWN.log_prob(x).numpy(), expected, rtol=1e-10)


def test_fit_refuses_bad_input():
    with pytest.raises(ValueError, match="components must be an int in \\[1, 5\\]"):
        GaussianMixture.fit(np.zeros((5, 2)), components=6)
    with pytest.raises(ValueError, match="covariance must be 'full' or 'diag'"):
        GaussianMixture.fit(np.random.default_rng(0).normal(size=(50, 2)), covariance="spherical")


@pytest.fixture(scope="module")
def trained():
    """A tiny WAE trained 30 steps on the 8×8 digits (with its latent sampler refitted: 4 components)."""
    data = digits(size=8, split="train")
    model = tiny()
    model.fit(data, n_iters=30, batch_size=32, progress=False)
    assert model.latent_mixture.weights.shape == (20,)  # training fits the default: 20 components
    model.fit_latent_sampler(data, components=4)
    return model, data


def test_training_fits_the_sampler_to_the_codes(trained):
    """After fit: a 4-component mixture fitted to the codes of all 1438 train images (the mixture's
    mean and covariance are the codes' own, as EM's fixed point has them); its draws are keyed by the
    generator (the same generator state, the same codes) and land where the codes are."""
    model, data = trained
    assert model.latent_choices() == ("prior", "fitted")
    mixture = model.latent_mixture
    assert mixture.weights.shape == (4,) and mixture.means.shape == (4, 4)
    codes = model.encode(data.images).double().numpy()
    assert np.allclose(mixture.mean, codes.mean(0), atol=1e-4)
    assert np.allclose(mixture.cov, np.cov(codes.T, bias=True), atol=1e-3)
    z = model.sample_prior(5000, rng=torch.Generator().manual_seed(1), latent="fitted")
    assert z.shape == (5000, 4)
    assert torch.equal(z, model.sample_prior(5000, rng=torch.Generator().manual_seed(1), latent="fitted"))
    assert np.allclose(z.double().mean(0).numpy(), codes.mean(0), atol=0.1 * codes.std(0).max())
    three = model.sample_prior(3, rng=torch.Generator().manual_seed(1), latent="fitted")
    assert torch.equal(model.own_source("fitted")(3, generator=torch.Generator().manual_seed(1)), three)


def test_save_load_keeps_the_sampler(trained, tmp_path):
    model, _ = trained
    model.save(tmp_path / "wae.pt")
    back = otgen.load(tmp_path / "wae.pt")
    assert_same_state(model.state_dict(), back.state_dict())
    rng = lambda: torch.Generator().manual_seed(2)  # noqa: E731
    assert torch.equal(back.sample_prior(7, rng=rng(), latent="fitted"), model.sample_prior(7, rng=rng(), latent="fitted"))


def test_without_a_sampler_fitted_is_refused():
    """An untrained WAE has no fitted sampler; latent="fitted" then says how to get one; a solver that
    draws no codes of its own refuses any latent but the prior."""
    model = tiny()
    assert model.latent_mixture is None and model.latent_choices() == ("prior",)
    with pytest.raises(ValueError, match="holds no fitted latent sampler.*fit_latent_sampler"):
        model.sample_prior(3, latent="fitted")
    with pytest.raises(ValueError, match="latent must be 'prior' or 'fitted', got 'mixture'"):
        model.sample_prior(3, latent="mixture")
    model.fit_latent_sampler(digits(size=8, split="train"), components=2, codes=100)
    assert model.latent_mixture.weights.shape == (2,)
    with pytest.raises(ValueError, match="latent='fitted': EgNOT draws no latent codes of its own"):
        otgen.EgNOT(dim=2).own_source("fitted")


def test_a_data_set_smaller_than_the_components_gets_fewer(tmp_path):
    model = tiny()
    model.fit(digits(size=8, split="train").images[:6], n_iters=2, batch_size=4, progress=False)
    assert model.latent_mixture.weights.shape == (6,)


def test_command_line_samples_and_scores_from_the_fitted_sampler(tmp_path, capsys):
    """otgen train fits the sampler; otgen sample --latent fitted decodes its draws (x: the codes);
    otgen eval --latent fitted scores them, and train's eval.json holds both."""
    import json

    import yaml

    cfg = {"model": {"name": "WAE", "data_shape": [1, 8, 8], "latent_dim": 4, "encoder": CONV8, "decoder": CONV8,
},
           "data": {"data": {"name": "digits", "size": 8}},
           "train": {"n_iters": 20, "batch_size": 32, "seed": 0, "log_every": 10, "checkpoint_every": 20},
           "eval": {"n_samples": 200, "seed": 0}}
    path = tmp_path / "wae.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    assert main(["train", str(path), "--out", str(run), "--threads", "1"]) == 0
    scores = json.loads((run / "eval.json").read_text())
    assert scores["fitted_latent"]["fd"] > 0 and scores["fitted_latent"]["fd"] != scores["fd"]
    assert "from the fitted latent sampler" in capsys.readouterr().out
    model = otgen.load(run / "model.pt")
    assert main(["sample", str(run), "--n", "6", "--latent", "fitted", "--out", str(tmp_path / "f.npz")]) == 0
    arrays = np.load(tmp_path / "f.npz")
    z = model.sample_prior(6, rng=torch.Generator().manual_seed(0), latent="fitted")
    assert np.allclose(arrays["x"], z.numpy()) and arrays["y"].shape == (6, 1, 8, 8)
    assert main(["eval", str(run), "--latent", "fitted", "--json", str(tmp_path / "e.json")]) == 0
    again = json.loads((tmp_path / "e.json").read_text())
    assert again["latent"] == "fitted" and np.isclose(again["fd"], scores["fitted_latent"]["fd"])
