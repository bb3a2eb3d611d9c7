"""Exact JKO step of KL to a Gaussian and the OU flow: against direct minimisation and SDE simulation."""

import numpy as np
import pytest
import scipy.optimize
import torch

from otgen.groundtruth.gaussian_eot import _bures_cross_term
from otgen.groundtruth.jko_gaussian import (
    jko_commuting_std,
    jko_gaussian_path,
    jko_gaussian_step,
    jko_gaussian_step_map,
    ou_flow,
)


def _random_spd(dim: int, rng: np.random.Generator, lo: float = 0.4, hi: float = 2.5) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    return (q * np.geomspace(lo, hi, dim)) @ q.T


def _problem(dim: int, commuting: bool, seed: int = 0):
    """(m0, S0, mu, Sigma); diagonal covariances when commuting, random rotations otherwise."""
    rng = np.random.default_rng(seed)
    if commuting:
        S0 = np.diag(rng.uniform(0.3, 3.0, dim))
        Sigma = np.diag(rng.uniform(0.3, 3.0, dim))
    else:
        S0, Sigma = _random_spd(dim, rng), _random_spd(dim, rng)
    return rng.standard_normal(dim), S0, rng.standard_normal(dim), Sigma


def _gaussian_kl(m, S, mu, Sigma) -> float:
    d = m - mu
    Si = np.linalg.inv(Sigma)
    logdet_ratio = np.linalg.slogdet(Sigma)[1] - np.linalg.slogdet(S)[1]
    return 0.5 * float(np.trace(Si @ S) + d @ Si @ d - m.size + logdet_ratio)


def _bures_w2sq(m1, S1, m2, S2) -> float:
    """W2² for the full cost ‖x − y‖² (no ½)."""
    return float(np.sum((m1 - m2) ** 2) + np.trace(S1) + np.trace(S2) - 2.0 * _bures_cross_term(S1, S2))


def _unpack(p: np.ndarray, dim: int):
    """Parameters -> (m, S = L Lᵀ) with L lower triangular with a positive (exp) diagonal."""
    L = np.zeros((dim, dim))
    L[np.tril_indices(dim)] = p[dim:]
    L[np.diag_indices(dim)] = np.exp(np.diag(L))
    return p[:dim], L @ L.T


def _minimise_jko_objective(m0, S0, mu, Sigma, h):
    """Direct BFGS over N(m, L Lᵀ) of KL(· ‖ N(mu, Sigma)) + W2²(·, N(m0, S0)) / (2h)."""
    dim = m0.size

    def objective(p):
        m, S = _unpack(p, dim)
        return _gaussian_kl(m, S, mu, Sigma) + _bures_w2sq(m, S, m0, S0) / (2.0 * h)

    start = np.zeros(dim + dim * (dim + 1) // 2)
    res = scipy.optimize.minimize(objective, start, method="BFGS", options={"gtol": 1e-9})
    m, S = _unpack(res.x, dim)
    return m, S, res.fun, objective


# ----------------------------------------------------------------------------- (a) vs direct minimisation


@pytest.mark.parametrize("commuting", [True, False])
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("h", [0.1, 1.0])
def test_step_matches_direct_minimisation(dim, commuting, h):
    m0, S0, mu, Sigma = _problem(dim, commuting, seed=dim)
    m_num, S_num, f_num, objective = _minimise_jko_objective(m0, S0, mu, Sigma, h)
    m, S = jko_gaussian_step(m0, S0, mu, Sigma, h)

    f_closed = _gaussian_kl(m, S, mu, Sigma) + _bures_w2sq(m, S, m0, S0) / (2.0 * h)
    assert f_closed <= f_num + 1e-10  # the closed form is at least as good as BFGS
    assert f_closed == pytest.approx(f_num, abs=1e-10)
    np.testing.assert_allclose(m, m_num, atol=1e-6)
    np.testing.assert_allclose(S, S_num, atol=1e-6)


# ----------------------------------------------------------------------------- (b) first-order condition, commuting


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("h", [0.05, 0.7, 5.0])
def test_step_map_satisfies_first_order_condition(dim, h):
    """M = (I + h Sigma⁻¹ − h S⁺⁻¹)⁻¹ is symmetric PD and pushes S to S⁺ (non-commuting case)."""
    m0, S0, mu, Sigma = _problem(dim, commuting=False, seed=10 + dim)
    m, S = jko_gaussian_step(m0, S0, mu, Sigma, h)
    M, b = jko_gaussian_step_map(m0, S0, mu, Sigma, h)
    eye = np.eye(dim)
    first_order = np.linalg.inv(eye + h * np.linalg.inv(Sigma) - h * np.linalg.inv(S))
    np.testing.assert_allclose(M, first_order, atol=1e-10)
    assert np.linalg.eigvalsh(M).min() > 0
    np.testing.assert_allclose(M @ S0 @ M, S, atol=1e-10)
    np.testing.assert_allclose(M @ m0 + b, m, atol=1e-12)
    mean_formula = np.linalg.solve(eye + h * np.linalg.inv(Sigma), m0 + h * np.linalg.solve(Sigma, mu))
    np.testing.assert_allclose(m, mean_formula, atol=1e-12)


@pytest.mark.parametrize("h", [0.05, 0.7, 5.0])
def test_commuting_formula_equals_general_step(h):
    rng = np.random.default_rng(3)
    dim = 3
    rot, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    s, sigma = rng.uniform(0.3, 2.0, dim), rng.uniform(0.3, 2.0, dim)
    S0 = (rot * s**2) @ rot.T  # same eigenbasis: commuting but not diagonal
    Sigma = (rot * sigma**2) @ rot.T
    _, S = jko_gaussian_step(np.zeros(dim), S0, np.zeros(dim), Sigma, h)
    s_next = jko_commuting_std(s, sigma, h)
    np.testing.assert_allclose(S, (rot * s_next**2) @ rot.T, atol=1e-12)


# ----------------------------------------------------------------------------- (c) JKO -> OU flow, (e) fixed point


def test_jko_path_converges_to_ou_flow_at_first_order():
    """Implicit Euler: the error at t = K h is O(h). Here it is ≈ 0.37 h; we ask < h and halving."""
    m0, S0, mu, Sigma = _problem(3, commuting=False, seed=7)
    t = 1.0
    m_t, S_t = ou_flow(m0, S0, mu, Sigma, t)
    errors = []
    for n_steps in (40, 80, 160):
        path = jko_gaussian_path(m0, S0, mu, Sigma, t / n_steps, n_steps)
        assert len(path) == n_steps + 1
        m_k, S_k = path[-1]
        errors.append(max(np.abs(m_k - m_t).max(), np.abs(S_k - S_t).max()))
        assert errors[-1] < t / n_steps
    for coarse, fine in zip(errors, errors[1:]):
        assert fine / coarse == pytest.approx(0.5, abs=0.03)


def test_target_is_stationary():
    m0, S0, mu, Sigma = _problem(3, commuting=False, seed=1)
    m, S = jko_gaussian_step(mu, Sigma, mu, Sigma, 0.3)
    np.testing.assert_allclose(m, mu, atol=1e-12)
    np.testing.assert_allclose(S, Sigma, atol=1e-12)
    m, S = ou_flow(mu, Sigma, mu, Sigma, 2.5)
    np.testing.assert_allclose(m, mu, atol=1e-12)
    np.testing.assert_allclose(S, Sigma, atol=1e-12)
    # and both converge to it
    m, S = jko_gaussian_path(m0, S0, mu, Sigma, 1.0, 60)[-1]
    np.testing.assert_allclose(S, Sigma, atol=1e-8)
    np.testing.assert_allclose(m, mu, atol=1e-8)
    m, S = ou_flow(m0, S0, mu, Sigma, 60.0)
    np.testing.assert_allclose(S, Sigma, atol=1e-8)
    m, S = ou_flow(m0, S0, mu, Sigma, 0.0)
    np.testing.assert_allclose(S, S0, atol=1e-12)
    np.testing.assert_allclose(m, m0, atol=1e-12)


# ----------------------------------------------------------------------------- (d) OU flow vs Euler–Maruyama


def test_ou_flow_matches_euler_maruyama():
    """50k particles, 400 steps of dt = 0.0025 to t = 1 (EM bias O(dt) ≈ 0.3% of the variances).

    Monte-Carlo standard errors: mean ≈ sqrt(S_ii / n) ≤ 0.007, covariance entries
    ≈ sqrt((S_ii S_jj + S_ij²) / n) ≤ 0.011; tolerances are about 4 standard errors.
    """
    m0, S0, mu, Sigma = _problem(2, commuting=False, seed=5)
    rng = np.random.default_rng(0)
    n, n_steps, t = 50_000, 400, 1.0
    dt = t / n_steps
    precision = np.linalg.inv(Sigma)
    x = m0 + rng.standard_normal((n, 2)) @ np.linalg.cholesky(S0).T
    for _ in range(n_steps):
        x = x - dt * (x - mu) @ precision.T + np.sqrt(2.0 * dt) * rng.standard_normal((n, 2))
    m_t, S_t = ou_flow(m0, S0, mu, Sigma, t)
    np.testing.assert_allclose(x.mean(0), m_t, atol=0.03)
    np.testing.assert_allclose(np.cov(x.T), S_t, atol=0.05)
    # the flow has moved well away from both ends, so the check is not vacuous
    assert np.abs(S_t - S0).max() > 0.2 and np.abs(S_t - Sigma).max() > 0.1


# ----------------------------------------------------------------------------- inputs and bad input


def test_accepts_torch_and_returns_float64_numpy():
    m0, S0, mu, Sigma = _problem(2, commuting=False)
    m, S = jko_gaussian_step(torch.tensor(m0), torch.tensor(S0, dtype=torch.float32), mu, torch.tensor(Sigma), 0.5)
    m_ref, S_ref = jko_gaussian_step(m0, S0, mu, Sigma, 0.5)
    assert isinstance(S, np.ndarray) and S.dtype == np.float64
    np.testing.assert_allclose(S, S_ref, atol=1e-6)
    np.testing.assert_allclose(m, m_ref, atol=1e-12)


@pytest.mark.parametrize("h", [0.0, -1.0, float("nan"), float("inf"), True, "0.1"])
def test_bad_step_size(h):
    m0, S0, mu, Sigma = _problem(2, commuting=True)
    with pytest.raises(ValueError, match=r"h must be a positive finite number \(0 < h < inf\)"):
        jko_gaussian_step(m0, S0, mu, Sigma, h)
    with pytest.raises(ValueError, match="h must be"):
        jko_gaussian_path(m0, S0, mu, Sigma, h, 3)


@pytest.mark.parametrize("n_steps", [0, -2, 1.5, True])
def test_bad_n_steps(n_steps):
    m0, S0, mu, Sigma = _problem(2, commuting=True)
    with pytest.raises(ValueError, match=r"n_steps must be an int >= 1, got"):
        jko_gaussian_path(m0, S0, mu, Sigma, 0.1, n_steps)


@pytest.mark.parametrize("t", [-0.1, float("nan"), float("inf")])
def test_bad_time(t):
    m0, S0, mu, Sigma = _problem(2, commuting=True)
    with pytest.raises(ValueError, match=r"t must be a finite number >= 0"):
        ou_flow(m0, S0, mu, Sigma, t)


def test_bad_covariances_and_shapes():
    m0, S0, mu, Sigma = _problem(2, commuting=True)
    with pytest.raises(ValueError, match="cov must be positive definite, smallest eigenvalue"):
        jko_gaussian_step(m0, np.diag([1.0, 0.0]), mu, Sigma, 0.1)
    with pytest.raises(ValueError, match="target_cov must be positive definite"):
        jko_gaussian_step(m0, S0, mu, np.diag([1.0, -1.0]), 0.1)
    with pytest.raises(ValueError, match="cov0 must be symmetric"):
        ou_flow(m0, np.array([[1.0, 0.5], [0.0, 1.0]]), mu, Sigma, 1.0)
    with pytest.raises(ValueError, match=r"target_cov must have shape \(2, 2\)"):
        jko_gaussian_step(m0, S0, mu, np.eye(3), 0.1)
    with pytest.raises(ValueError, match=r"target_mean must have shape \(2,\)"):
        jko_gaussian_path(m0, S0, np.zeros(3), Sigma, 0.1, 2)
    with pytest.raises(ValueError, match="mean has non-finite entries"):
        jko_gaussian_step_map([np.nan, 0.0], S0, mu, Sigma, 0.1)
    with pytest.raises(ValueError, match="target_std must be > 0"):
        jko_commuting_std([1.0, 1.0], [1.0, 0.0], 0.1)
