"""Gaussian-mixture EOT pairs: the constructed plan against POT Sinkhorn, sampler moments, bad input."""

import numpy as np
import ot
import pytest
import torch

from otgen.distributions import Gaussian, GaussianMixture
from otgen.groundtruth import MixtureEOTPair, eps_to_pot_reg


def _pair_1d(eps: float, source=None) -> MixtureEOTPair:
    return MixtureEOTPair.from_potential([0.5, 0.3, 0.2], [[-2.0], [0.5], [2.5]], [[[0.2]], [[0.05]], [[0.4]]],
                                         eps=eps, source=source)


def _grid_plan(pair: MixtureEOTPair, x_grid: np.ndarray, y_grid: np.ndarray, source_weights: np.ndarray):
    """The constructed plan restricted to a grid: P_i · pi(y_j | x_i) normalised over j."""
    x = torch.from_numpy(x_grid[:, None])
    y = torch.from_numpy(np.broadcast_to(y_grid[None, :, None], (len(x_grid), len(y_grid), 1)).copy())
    logp = pair.conditional_log_prob(x, y).double().numpy()
    rows = np.exp(logp - logp.max(axis=1, keepdims=True))
    rows /= rows.sum(axis=1, keepdims=True)
    return source_weights[:, None] * rows


@pytest.mark.parametrize("eps", [0.1, 1.0])
@pytest.mark.parametrize("mixture_source", [False, True])
def test_constructed_1d_plan_equals_pot_sinkhorn(eps, mixture_source):
    """The plan built from w_k(x), m_k(x), S_k is the entropic plan between its marginals: POT's
    log-domain Sinkhorn (M = |x − y|², reg = 2 eps) on the same grid marginals finds it (TV ≤ 1e-6)."""
    source = GaussianMixture([0.6, 0.4], [[-1.0], [1.5]], [[[0.3]], [[0.5]]]) if mixture_source else None
    pair = _pair_1d(eps, source)
    xg = np.linspace(-5, 5, 500)
    yg = np.linspace(-6, 7, 600)
    src = pair.source
    dens = sum(w * np.exp(-0.5 * (xg - m[0]) ** 2 / c[0, 0]) / np.sqrt(c[0, 0])
               for w, m, c in zip(src.weights, src.means, src.covs)) if mixture_source else np.exp(-0.5 * xg**2)
    a = dens / dens.sum()
    plan = _grid_plan(pair, xg, yg, a)
    b = plan.sum(axis=0)
    res = ot.solve(ot.dist(xg[:, None], yg[:, None]), a, b, reg=eps_to_pot_reg(eps), reg_type="KL",
                   method="sinkhorn_log", max_iter=50_000, tol=1e-12)
    tv = 0.5 * np.abs(np.asarray(res.plan) - plan).sum()
    assert tv <= 1e-6, tv  # measured ~1e-8; eps off by 1 % gives 2e-3


def test_conditional_moments_match_grid_integration_1d():
    pair = _pair_1d(0.5)
    x = torch.tensor([[-1.3], [0.0], [2.1]], dtype=torch.float64)
    yg = np.linspace(-8, 9, 20_001)
    y = torch.from_numpy(np.broadcast_to(yg[None, :, None], (3, len(yg), 1)).copy())
    p = pair.conditional_log_prob(x, y).double().exp().numpy()
    dy = yg[1] - yg[0]
    assert np.allclose(p.sum(1) * dy, 1.0, atol=1e-4)  # normalised density
    mean_grid = (p * yg).sum(1) * dy
    var_grid = (p * yg**2).sum(1) * dy - mean_grid**2
    mean, cov = pair.conditional_moments(x)
    np.testing.assert_allclose(mean[:, 0].numpy(), mean_grid, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(cov[:, 0, 0].numpy(), var_grid, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dim,eps", [(2, 0.1), (16, 1.0)])
def test_conditional_sampler_moments_weights_and_log_prob(dim, eps):
    pair = MixtureEOTPair(dim=dim, eps=eps, seed=1)
    x = pair.source(6, generator=torch.Generator().manual_seed(0))
    ys = pair.conditional_sample(x, 40_000, generator=torch.Generator().manual_seed(1))
    mean, cov = pair.conditional_moments(x)
    scale = cov.diagonal(dim1=1, dim2=2).mean(1).sqrt()[:, None]
    assert ((ys.mean(1) - mean).abs() / scale).max() < 0.03
    emp_cov = torch.stack([torch.cov(y.T) for y in ys])
    assert ((emp_cov - cov).abs().amax(dim=(1, 2)) / scale[:, 0] ** 2).max() < 0.05
    # responsibilities of exact draws average to w_k(x)
    w = pair.conditional_weights(x)
    resp = pair.conditional_responsibilities(x, ys)
    assert (resp.mean(1) - w).abs().max() < 0.015  # 6 binomial standard errors at 40 000 draws
    assert torch.allclose(w.sum(1), torch.ones(6), atol=1e-6)
    # log pi(y|x) = logsumexp of the component terms
    comp = pair.conditional_component_log_prob(x, ys[:, :10])
    assert torch.allclose(torch.logsumexp(comp, -1), pair.conditional_log_prob(x, ys[:, :10]), atol=1e-4)


def test_conditional_density_and_weights_against_scipy_full_covariances():
    """An independent computation in D = 3 with full, non-commuting component covariances:
    pi(y | x) ∝ N(y | x, eps I) v(y) normalised numerically against scipy densities, and
    w_k(x) ∝ w_k N(x | μ_k, Σ_k + eps I)."""
    from scipy.stats import multivariate_normal as mvn

    rng = np.random.default_rng(0)
    covs = []
    for _ in range(3):
        a = rng.standard_normal((3, 3))
        covs.append(a @ a.T + 0.2 * np.eye(3))
    weights, means, eps = np.array([0.2, 0.5, 0.3]), rng.standard_normal((3, 3)) * 2, 0.7
    pair = MixtureEOTPair.from_potential(weights, means, np.stack(covs), eps=eps)
    x = rng.standard_normal((4, 3))
    w_ref = np.array([[w * mvn(m, c + eps * np.eye(3)).pdf(xi) for w, m, c in zip(weights, means, covs)] for xi in x])
    w_ref /= w_ref.sum(1, keepdims=True)
    np.testing.assert_allclose(pair.conditional_weights(torch.from_numpy(x)).double().numpy(), w_ref, atol=1e-6)
    y = rng.standard_normal((4, 5, 3))
    # unnormalised N(y | x, eps I) v(y), normalised by Z(x) = Σ_k w_k N(x | μ_k, Σ_k + eps I)
    v = lambda pts: sum(w * mvn(m, c).pdf(pts) for w, m, c in zip(weights, means, covs))
    z = np.array([sum(w * mvn(m, c + eps * np.eye(3)).pdf(xi) for w, m, c in zip(weights, means, covs)) for xi in x])
    ref = np.array([np.log(mvn(xi, eps * np.eye(3)).pdf(yi) * v(yi) / zi) for xi, yi, zi in zip(x, y, z)])
    got = pair.conditional_log_prob(torch.from_numpy(x), torch.from_numpy(y)).double().numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_target_sampler_matches_target_moments():
    pair = MixtureEOTPair(dim=4, eps=0.3, seed=2)
    y = pair.target(200_000, generator=torch.Generator().manual_seed(5)).double()
    scale = np.sqrt(np.diag(pair.target_cov))
    assert np.abs((y.mean(0).numpy() - pair.target_mean) / scale).max() < 0.01
    np.testing.assert_allclose(torch.cov(y.T).numpy(), pair.target_cov, atol=0.02 * scale.max() ** 2)
    assert pair.target_variance() == pytest.approx(np.trace(pair.target_cov))


def test_target_moments_match_grid_integration_1d():
    pair = _pair_1d(0.5)
    xg = np.linspace(-7, 7, 1401)
    a = np.exp(-0.5 * xg**2)
    a /= a.sum()
    mean, cov = pair.conditional_moments(torch.from_numpy(xg[:, None]))
    m1 = float(a @ mean[:, 0].double().numpy())
    m2 = float(a @ (cov[:, 0, 0].double().numpy() + mean[:, 0].double().numpy() ** 2))
    assert pair.target_mean[0] == pytest.approx(m1, abs=5e-3)
    assert pair.target_variance() == pytest.approx(m2 - m1**2, rel=5e-3)


def test_same_seed_same_pair_and_draws():
    p1, p2 = MixtureEOTPair(dim=3, eps=1.0, seed=4), MixtureEOTPair(dim=3, eps=1.0, seed=4)
    np.testing.assert_array_equal(p1.means, p2.means)
    y1 = p1.target(10, generator=torch.Generator().manual_seed(0))
    y2 = p2.target(10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y1, y2)
    assert not np.array_equal(MixtureEOTPair(dim=3, eps=1.0, seed=5).means, p1.means)
    np.testing.assert_allclose(np.linalg.norm(p1.means, axis=1), 3.0)


def test_gaussian_to_moons_target_looks_like_moons():
    pair = MixtureEOTPair.gaussian_to_moons(eps=0.05, n_components=100, seed=0)
    assert pair.n_components == 100 and pair.dim == 2
    y = pair.target(4000, generator=torch.Generator().manual_seed(0))
    from otgen.distributions import Moons

    curve = Moons(noise=0.0)(4000, generator=torch.Generator().manual_seed(1))
    far = Gaussian.standard(2)(4000, generator=torch.Generator().manual_seed(2))
    dist_y = torch.cdist(y, curve).min(1).values.median()
    dist_far = torch.cdist(far, curve).min(1).values.median()
    assert dist_y < 0.15 < dist_far  # the moons' noise is 0.1; N(0, I) lies 0.4 away


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"dim": 0, "eps": 0.1}, "dim"),
        ({"dim": 2.5, "eps": 0.1}, "dim"),
        ({"dim": 2, "eps": 0.0}, "eps"),
        ({"dim": 2, "eps": float("nan")}, "eps"),
        ({"dim": 2, "eps": -1.0}, "eps"),
        ({"dim": 2, "eps": 0.1, "n_components": 0}, "n_components"),
        ({"dim": 2, "eps": 0.1, "mean_radius": float("inf")}, "mean_radius"),
        ({"dim": 2, "eps": 0.1, "component_variance": 0.0}, "component_variance"),
        ({"dim": 2, "eps": 0.1, "source": Gaussian.standard(3)}, "source"),
        ({"dim": 2, "eps": 0.1, "source": "normal"}, "source"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MixtureEOTPair(**kwargs)


@pytest.mark.parametrize(
    "weights,means,covs,match",
    [
        ([1.0, 1.0], [[0.0, 0.0], [1.0, 1.0]], [np.eye(2), [[1.0, 0.5], [0.0, 1.0]]], "symmetric"),
        ([1.0, 1.0], [[0.0, 0.0], [1.0, 1.0]], [np.eye(2), [[1.0, 1.0], [1.0, 1.0]]], "positive definite"),
        ([1.0, 1.0], [[0.0, 0.0], [1.0, np.nan]], [np.eye(2), np.eye(2)], "means"),
        ([1.0, -1.0], [[0.0, 0.0], [1.0, 1.0]], [np.eye(2), np.eye(2)], "weights"),
        ([1.0, np.inf], [[0.0, 0.0], [1.0, 1.0]], [np.eye(2), np.eye(2)], "weights"),
        ([1.0, 1.0], [[0.0, 0.0], [1.0, 1.0]], [np.eye(2)], "covs"),
        ([1.0, 1.0], [[0.0, 0.0], [1.0, 1.0]], [np.eye(2), np.full((2, 2), np.inf)], "non-finite"),
    ],
)
def test_bad_potential(weights, means, covs, match):
    with pytest.raises(ValueError, match=match):
        MixtureEOTPair.from_potential(weights, means, covs, eps=0.1)


def test_bad_points_and_queries():
    with pytest.raises(ValueError, match="n_components"):
        MixtureEOTPair.from_points(np.zeros((5, 2)), eps=0.1, n_components=6)
    with pytest.raises(ValueError, match="non-finite"):
        MixtureEOTPair.from_points(np.full((5, 2), np.nan), eps=0.1, n_components=2)
    pair = MixtureEOTPair(dim=2, eps=0.1)
    with pytest.raises(ValueError, match="x must have shape"):
        pair.conditional_moments(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="non-finite"):
        pair.conditional_weights(torch.full((3, 2), float("nan")))
    with pytest.raises(ValueError, match="y must have shape"):
        pair.conditional_log_prob(torch.zeros(3, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="n_per_x"):
        pair.conditional_sample(torch.zeros(3, 2), 0)
