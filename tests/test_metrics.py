"""Metrics: Bures quantities, cBW2-UVP floors and trivial-predictor baselines, exact W2, RBF-MMD."""

import math

import numpy as np
import ot
import pytest
import torch

from otgen import metrics
from otgen.groundtruth import GaussianEOTPair, MixtureEOTPair


def _random_spd(rng, d, lo=0.3, hi=3.0):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * rng.uniform(lo, hi, d)) @ q.T


# ----------------------------------------------------------------------------- bw2 / bw2_uvp


def test_bw2_is_half_the_squared_bures_wasserstein_distance():
    rng = np.random.default_rng(0)
    for d in (1, 3, 6):
        m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
        S1, S2 = _random_spd(rng, d), _random_spd(rng, d)
        ref = 0.5 * float(ot.gaussian.bures_wasserstein_distance(m1, m2, S1, S2)) ** 2  # POT returns W2
        assert metrics.bw2(m1, S1, m2, S2) == pytest.approx(ref, rel=1e-9)
        assert metrics.bw2(torch.tensor(m1), torch.tensor(S1), m2, S2) == pytest.approx(ref, rel=1e-9)
        assert metrics.bw2(m1, S1, m1, S1) == pytest.approx(0.0, abs=1e-9)


def test_bw2_with_singular_covariances():
    rng = np.random.default_rng(1)
    d = 4
    m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
    S = _random_spd(rng, d)
    Z = np.zeros((d, d))
    half_mean = 0.5 * np.sum((m1 - m2) ** 2)
    assert metrics.bw2(m1, Z, m2, S) == pytest.approx(half_mean + 0.5 * np.trace(S))
    assert metrics.bw2(m1, S, m2, Z) == pytest.approx(half_mean + 0.5 * np.trace(S))
    assert metrics.bw2(m1, Z, m2, Z) == pytest.approx(half_mean)
    u = rng.standard_normal(d)
    P = np.outer(u, u)  # rank one, neither side invertible
    assert metrics.bw2(m1, P, m1, P) == pytest.approx(0.0, abs=1e-9)
    assert metrics.bw2(m1, P, m1, 4 * P) == pytest.approx(0.5 * u @ u, rel=1e-9)  # ½(√4 − 1)²|u|²


def test_bw2_uvp_of_exact_and_constant_samples():
    pair = GaussianEOTPair(dim=16, eps=1.0, seed=0)
    y = pair.target(20000, generator=torch.Generator().manual_seed(0))
    assert metrics.bw2_uvp(y, pair.target_mean, pair.target_cov) < 0.1  # floor ≈ 0.02 (§6.1)
    const = torch.zeros(50, 16)  # E[y] repeated: zero sample covariance
    assert metrics.bw2_uvp(const, pair.target_mean, pair.target_cov) == pytest.approx(100.0, rel=1e-9)


# ----------------------------------------------------------------------------- cbw2_uvp


def _exact(pair, seed=1):
    g = torch.Generator().manual_seed(seed)
    return lambda x, k: pair.conditional_sample(x, k, generator=g)


@pytest.mark.parametrize("dim, eps, bound", [(2, 0.1, 0.1), (16, 1.0, 1.0)])
def test_exact_samples_score_at_the_floor(dim, eps, bound):
    pair = GaussianEOTPair(dim=dim, eps=eps, seed=0)
    score = metrics.cbw2_uvp(_exact(pair), pair, n_conditions=100, n_per_condition=500)
    assert 0.0 < score < bound  # floors ≈ 0.02% and ≈ 0.45% (groundtruth.md §6.2)


def test_constant_predictor_scores_100():
    pair = GaussianEOTPair(dim=16, eps=0.1, seed=0)
    mean_y = torch.as_tensor(pair.target_mean, dtype=torch.float32)
    score = metrics.cbw2_uvp(
        lambda x, k: mean_y.expand(len(x), k, -1), pair, n_conditions=3000, n_per_condition=2
    )
    assert 97.0 < score < 103.0


def test_conditional_mean_predictor_matches_its_baseline():
    pair = GaussianEOTPair(dim=16, eps=1.0, seed=0)
    score = metrics.cbw2_uvp(
        lambda x, k: pair.plan.conditional_mean(x)[:, None].expand(-1, k, -1), pair, n_per_condition=2
    )
    assert score == pytest.approx(pair.baselines()["conditional_mean"], rel=1e-4)


def test_independent_and_ot_map_predictors_match_their_baselines():
    pair = GaussianEOTPair(dim=16, eps=0.1, seed=0)
    bl = pair.baselines()
    g = torch.Generator().manual_seed(2)
    indep = metrics.cbw2_uvp(
        lambda x, k: pair.target(len(x) * k, generator=g).reshape(len(x), k, -1),
        pair, n_conditions=1000, n_per_condition=200,
    )
    assert indep == pytest.approx(bl["independent"], rel=0.05)
    T, b = ot.gaussian.bures_wasserstein_mapping(pair.source_mean, pair.target_mean, pair.source_cov, pair.target_cov)
    T = torch.as_tensor(T, dtype=torch.float32)
    b = torch.as_tensor(np.asarray(b).reshape(-1), dtype=torch.float32)
    ot_map = metrics.cbw2_uvp(
        lambda x, k: (x @ T + b)[:, None].expand(-1, k, -1), pair, n_conditions=3000, n_per_condition=2
    )
    assert ot_map == pytest.approx(bl["ot_map"], rel=0.05)


def test_model_with_sample_method_and_explicit_x():
    pair = GaussianEOTPair(dim=2, eps=1.0, seed=0)

    class Model:
        def sample(self, x, n_per_x):
            return pair.conditional_sample(x, n_per_x, generator=torch.Generator().manual_seed(5))

    def fn(x, n_per_x):
        return pair.conditional_sample(x, n_per_x, generator=torch.Generator().manual_seed(5))

    s1 = metrics.cbw2_uvp(Model(), pair, n_conditions=20, n_per_condition=100, seed=3)
    s2 = metrics.cbw2_uvp(fn, pair, n_conditions=20, n_per_condition=100, seed=3)
    assert s1 == s2
    x = pair.source(20, generator=torch.Generator().manual_seed(3))
    assert metrics.cbw2_uvp(fn, pair, n_per_condition=100, x=x) == s1
    assert metrics.cbw2_uvp(fn, pair, n_per_condition=100, x=x.numpy()) == s1
    assert metrics.cbw2_uvp(fn, pair, n_conditions=20, n_per_condition=100, seed=4) != s1


def test_cbw2_uvp_bad_input():
    pair = GaussianEOTPair(dim=2, eps=1.0, seed=0)
    with pytest.raises(ValueError, match=r"must have shape \(n_conditions, n_per_condition, D\)"):
        metrics.cbw2_uvp(lambda x, k: torch.zeros(len(x), k, 3), pair, n_conditions=5, n_per_condition=4)
    with pytest.raises(ValueError, match=r"must have shape \(n_conditions, n_per_condition, D\)"):
        metrics.cbw2_uvp(lambda x, k: torch.zeros(len(x) * k, 2), pair, n_conditions=5, n_per_condition=4)
    with pytest.raises(ValueError, match="non-finite"):
        metrics.cbw2_uvp(lambda x, k: torch.full((len(x), k, 2), float("nan")), pair, n_conditions=5, n_per_condition=4)
    with pytest.raises(ValueError, match="n_per_condition"):
        metrics.cbw2_uvp(_exact(pair), pair, n_per_condition=1)
    with pytest.raises(ValueError, match="n_conditions"):
        metrics.cbw2_uvp(_exact(pair), pair, n_conditions=0)
    with pytest.raises(ValueError, match="x must have shape"):
        metrics.cbw2_uvp(_exact(pair), pair, x=torch.zeros(5))
    with pytest.raises(ValueError, match="model_or_sampler"):
        metrics.cbw2_uvp(42, pair)


def test_bw2_bad_input():
    with pytest.raises(ValueError, match="cov1 must be positive semidefinite"):
        metrics.bw2(np.zeros(2), -np.eye(2), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="cov2 must be symmetric"):
        metrics.bw2(np.zeros(2), np.eye(2), np.zeros(2), np.array([[1.0, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="mean2 must have shape"):
        metrics.bw2(np.zeros(2), np.eye(2), np.zeros(3), np.eye(2))
    with pytest.raises(ValueError, match="mean1 has non-finite"):
        metrics.bw2(np.array([np.nan, 0.0]), np.eye(2), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="samples must hold at least 2"):
        metrics.bw2_uvp(np.zeros((1, 2)), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="cov must have shape"):
        metrics.bw2_uvp(np.zeros((5, 2)), np.zeros(2), np.eye(3))


# ----------------------------------------------------------------------------- w2


def test_w2_hand_example():
    x = np.array([[0.0], [1.0]])
    y = np.array([[0.0], [3.0]])
    assert metrics.w2_squared(x, y) == pytest.approx(2.0)  # ½(0² + 2²)
    assert metrics.w2(x, y) == pytest.approx(math.sqrt(2.0))  # W2, not squared
    assert metrics.w2(torch.tensor(x), torch.tensor(y), a=[0.25, 0.75], b=[0.25, 0.75]) == pytest.approx(math.sqrt(3.0))
    assert metrics.w2(x, x) == pytest.approx(0.0)


def test_w2_approaches_the_gaussian_closed_form():
    rng = np.random.default_rng(0)
    m1, m2 = np.zeros(2), np.array([2.0, -1.0])
    S1, S2 = np.diag([1.0, 0.5]), np.array([[0.8, 0.3], [0.3, 1.5]])
    x = rng.multivariate_normal(m1, S1, 1500)
    y = rng.multivariate_normal(m2, S2, 1500)
    exact = math.sqrt(2 * metrics.bw2(m1, S1, m2, S2))
    assert metrics.w2(x, y) == pytest.approx(exact, rel=0.05)


def test_w2_bad_input():
    with pytest.raises(ValueError, match=r"y must have shape"):
        metrics.w2(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"a must be non-negative and sum to 1"):
        metrics.w2(np.zeros((2, 1)), np.zeros((2, 1)), a=[0.5, 0.6])
    with pytest.raises(ValueError, match="x has non-finite"):
        metrics.w2(np.full((2, 1), np.inf), np.zeros((2, 1)))


# ----------------------------------------------------------------------------- mmd


def _mmd2_gaussians(m1, S1, m2, S2, ell):
    """Closed-form RBF-MMD² between N(m1, S1) and N(m2, S2) (groundtruth.md §2.5)."""
    d = len(m1)

    def ek(ma, Sa, mb, Sb):
        diff = ma - mb
        M = ell**2 * np.eye(d) + Sa + Sb
        return np.linalg.det(np.eye(d) + (Sa + Sb) / ell**2) ** -0.5 * math.exp(-0.5 * diff @ np.linalg.solve(M, diff))

    return ek(m1, S1, m1, S1) + ek(m2, S2, m2, S2) - 2 * ek(m1, S1, m2, S2)


def test_mmd_same_distribution_is_near_zero_and_different_matches_closed_form():
    g = torch.Generator().manual_seed(0)
    d = 3
    m1, m2 = np.zeros(d), np.array([0.8, 0.0, -0.3])
    S1, S2 = np.eye(d), np.diag([1.5, 0.7, 1.0])
    L1, L2 = torch.as_tensor(np.linalg.cholesky(S1)), torch.as_tensor(np.linalg.cholesky(S2))
    n = 3000
    x = torch.randn(n, d, generator=g, dtype=torch.float64) @ L1.T + torch.as_tensor(m1)
    x2 = torch.randn(n, d, generator=g, dtype=torch.float64) @ L1.T + torch.as_tensor(m1)
    y = torch.randn(n, d, generator=g, dtype=torch.float64) @ L2.T + torch.as_tensor(m2)
    ell = 1.5
    exact = _mmd2_gaussians(m1, S1, m2, S2, ell)
    assert metrics.mmd(x, y, bandwidth=ell) == pytest.approx(exact, rel=0.1)
    assert abs(metrics.mmd(x, x2, bandwidth=ell)) < 0.1 * exact
    assert abs(metrics.mmd(x.float(), x2.float())) < 0.1 * exact  # median heuristic, float32 inputs
    assert metrics.mmd(x, y) > 10 * abs(metrics.mmd(x, x2))


def test_mmd_bad_input():
    x = torch.zeros(5, 2)
    with pytest.raises(ValueError, match="kernel"):
        metrics.mmd(x, x, kernel="laplace")
    with pytest.raises(ValueError, match="bandwidth"):
        metrics.mmd(x, x, bandwidth=-1.0)
    with pytest.raises(ValueError, match="y must have shape"):
        metrics.mmd(x, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="x has non-finite"):
        metrics.mmd(torch.full((5, 2), float("nan")), x)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.mmd(torch.zeros(1, 2), x)


# ----------------------------------------------------------------------------- shape-sensitive scores


def test_conditional_scores_of_exact_draws_gaussian_pair():
    """Exact draws: log-likelihood gap ≈ 0, and the mean log-density equals minus the conditional
    entropy ½ log det(2πe S) / D of the closed-form plan."""
    pair = GaussianEOTPair(dim=3, eps=0.5, seed=0)
    gen = torch.Generator().manual_seed(5)
    s = metrics.conditional_scores(lambda x, k: pair.conditional_sample(x, k, generator=gen), pair, 100, 500)
    S = pair.plan.conditional_cov
    entropy_per_dim = 0.5 * np.linalg.slogdet(2 * np.pi * np.e * S)[1] / 3
    assert s["loglik_exact"] == pytest.approx(-entropy_per_dim, abs=0.01)
    assert abs(s["loglik_gap"]) < 0.01
    assert "weight_tv" not in s
    assert s["cbw2_uvp"] == pytest.approx(metrics.cbw2_uvp(
        lambda x, k: pair.conditional_sample(x, k, generator=torch.Generator().manual_seed(5)), pair, 100, 500))


def test_shape_scores_see_what_cbw_cannot_on_a_mixture_pair():
    """A Gaussian with the exact conditional mean and covariance of pi*(y|x) scores cBW ≈ 0 (moment
    matching) but is caught by the weight recovery and the log-likelihood gap."""
    pair = MixtureEOTPair(dim=2, eps=1.0, seed=0)
    gen = torch.Generator().manual_seed(1)

    def moment_matched(x, k):
        mean, cov = pair.conditional_moments(x)
        z = torch.randn(x.shape[0], k, 2, generator=gen)
        return mean[:, None] + z @ torch.linalg.cholesky(cov.double()).float().transpose(1, 2)

    exact = metrics.conditional_scores(lambda x, k: pair.conditional_sample(x, k, generator=gen), pair, 100, 500)
    wrong = metrics.conditional_scores(moment_matched, pair, 100, 500)
    assert wrong["cbw2_uvp"] < 3 * exact["cbw2_uvp"] + 0.05  # moments agree: cBW is blind to the shape
    # measured: weight TV 0.020 (exact, the Monte Carlo floor) vs 0.044; LL gap -0.001 vs +4.1 nats/dim
    assert exact["weight_tv"] < 0.03 and wrong["weight_tv"] > 1.5 * exact["weight_tv"]
    assert abs(exact["loglik_gap"]) < 0.02 and wrong["loglik_gap"] > 1.0


def test_conditional_scores_bad_input():
    pair = MixtureEOTPair(dim=2, eps=1.0, seed=0)
    with pytest.raises(ValueError, match="n_per_condition"):
        metrics.conditional_scores(lambda x, k: x[:, None].expand(-1, k, -1), pair, 10, 1)
    with pytest.raises(ValueError, match="shape"):
        metrics.conditional_scores(lambda x, k: x, pair, 10, 5)
