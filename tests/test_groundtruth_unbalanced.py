"""Closed-form unbalanced entropic OT between Gaussians (Janati et al. 2020, Thm 3), its sigma → 0
limit and the UOTM ground truth: against POT on grids, Gaussian-family optimality, limits, bad input."""

import dataclasses
import math

import numpy as np
import ot
import pytest
import torch
from scipy.stats import multivariate_normal

from grid_measures import grid_gaussian
from otgen.groundtruth import entropic_gaussian_plan
from otgen.groundtruth.unbalanced_gaussian import (
    UnbalancedGaussianPlan,
    UnbalancedOTLimit,
    _janati_closed_form,
    unbalanced_gaussian_plan,
    unbalanced_ot_limit,
    uotm_gaussian_ground_truth,
)

# ----------------------------------------------------------------------------- helpers


def _moments(points: np.ndarray, w: np.ndarray):
    """(mass, mean (D,), cov (D, D)) of the discrete measure Σ w_i δ_{points_i}."""
    mass = w.sum()
    m = w @ points / mass
    c = points - m
    return mass, m, (c.T * w) @ c / mass


def _gen_kl(p: np.ndarray, q: np.ndarray) -> float:
    """Generalised KL(p‖q) = Σ p log(p/q) − Σ p + Σ q of non-negative arrays."""
    p, q = p.ravel(), q.ravel()
    pos = p > 0
    return float(np.sum(p[pos] * np.log(p[pos] / q[pos])) - p.sum() + q.sum())


def _discrete_objective(P, M, a, b, reg, reg_m) -> float:
    """⟨P, M⟩ + reg KL(P‖a⊗b) + reg_m KL(P1‖a) + reg_m KL(Pᵀ1‖b), all generalised KLs (reg may be 0)."""
    ent = reg * _gen_kl(P, np.outer(a, b)) if reg > 0 else 0.0
    return float((P * M).sum()) + ent + reg_m * (_gen_kl(P.sum(1), a) + _gen_kl(P.sum(0), b))


def _plan_moments(points, P):
    """Mass, joint mean (2D,) and joint covariance (2D, 2D) of a grid plan P on points × points."""
    mass = P.sum()
    mx, my = P.sum(1) @ points / mass, P.sum(0) @ points / mass
    cx, cy = points - mx, points - my
    cov_xx = (cx.T * P.sum(1)) @ cx / mass
    cov_yy = (cy.T * P.sum(0)) @ cy / mass
    cov_xy = cx.T @ P @ cy / mass
    return mass, np.concatenate([mx, my]), np.block([[cov_xx, cov_xy], [cov_xy.T, cov_yy]])


def _random_spd(rng, d, lo=0.3, hi=3.0):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * rng.uniform(lo, hi, d)) @ q.T


def _sinkhorn_unbalanced(a, b, M, reg, reg_m):
    # 'sinkhorn_stabilized' stops after 3 iterations for reg = 0.2, reg_m = 2 on this grid (POT 0.9.7.post1),
    # so the translation-invariant scheme is used; it solves the same problem.
    return ot.unbalanced.sinkhorn_unbalanced(
        a, b, M, reg=reg, reg_m=reg_m, reg_type="kl", method="sinkhorn_translation_invariant",
        numItermax=20000, stopThr=1e-10,
    )  # fmt: skip


GRID_1D = np.linspace(-7, 7, 1000)[:, None]
MASS_X, MASS_Y = 1.3, 0.7


def _grid_pair_1d():
    """Unequal masses, means and variances on GRID_1D; inputs of the closed form = grid moments."""
    a = MASS_X * grid_gaussian(GRID_1D, [0.5], [[0.6]])
    b = MASS_Y * grid_gaussian(GRID_1D, [-0.4], [[1.7]])
    return a, b, _moments(GRID_1D, a), _moments(GRID_1D, b)


# ----------------------------------------------------------------------------- sigma > 0 vs POT Sinkhorn


@pytest.mark.parametrize("sigma2, gamma", [(0.1, 2.0), (0.5, 1.0), (1.0, 0.5)])
def test_closed_form_matches_pot_sinkhorn_unbalanced_1d(sigma2, gamma):
    # Observed agreement: ≤ 5e-6 relative on every quantity (1.2e-5 on the small target mean).
    a, b, (ea, ma, va), (eb, mb, vb) = _grid_pair_1d()
    M = ot.dist(GRID_1D, GRID_1D)
    P = _sinkhorn_unbalanced(a, b, M, reg=2 * sigma2, reg_m=gamma)
    plan = unbalanced_gaussian_plan(ma, va, mb, vb, sigma2, gamma, mass_x=ea, mass_y=eb)

    assert plan.value == pytest.approx(_discrete_objective(P, M, a, b, 2 * sigma2, gamma), rel=1e-4)
    mass, mean, cov = _plan_moments(GRID_1D, P)
    assert plan.mass == pytest.approx(mass, rel=1e-4)
    np.testing.assert_allclose(plan.mean, mean, rtol=0, atol=1e-5)
    np.testing.assert_allclose(plan.cov, cov, rtol=1e-4)
    assert plan.transport_cost() == pytest.approx(float((P * M).sum()), rel=1e-4)
    # the plan really is unbalanced here: neither marginal equals its input measure
    assert abs(plan.mass - MASS_X) > 0.1 and abs(plan.mass - MASS_Y) > 0.05


def test_closed_form_matches_pot_sinkhorn_unbalanced_2d_non_commuting():
    # 30² grid; observed: 2.5e-5 relative on the loss and mass, 3e-5 absolute on the moments.
    g = np.linspace(-5, 5, 30)
    grid = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    A0 = np.array([[1.0, 0.4], [0.4, 0.5]])
    B0 = np.array([[0.6, -0.3], [-0.3, 1.2]])
    a = 1.2 * grid_gaussian(grid, [0.3, -0.2], A0)
    b = 0.8 * grid_gaussian(grid, [-0.4, 0.5], B0)
    sigma2, gamma = 0.5, 1.5
    M = ot.dist(grid, grid)
    P = _sinkhorn_unbalanced(a, b, M, reg=2 * sigma2, reg_m=gamma)
    (ea, ma, va), (eb, mb, vb) = _moments(grid, a), _moments(grid, b)
    plan = unbalanced_gaussian_plan(ma, va, mb, vb, sigma2, gamma, mass_x=ea, mass_y=eb)

    assert plan.value == pytest.approx(_discrete_objective(P, M, a, b, 2 * sigma2, gamma), rel=2e-4)
    mass, mean, cov = _plan_moments(grid, P)
    assert plan.mass == pytest.approx(mass, rel=2e-4)
    np.testing.assert_allclose(plan.mean, mean, rtol=0, atol=2e-4)
    np.testing.assert_allclose(plan.cov, cov, rtol=0, atol=2e-4)
    assert abs(plan.cross_cov[0, 1] - plan.cross_cov[1, 0]) > 0.01  # H₁₂ genuinely not symmetric


def test_skoltech_eps_convention():
    """∫½‖x−y‖² dπ + eps KL(π‖α⊗β) + rho (KL(π₁‖α) + KL(π₂‖β)) = ½ UOT_{σ²=eps, γ=2rho}, same plan."""
    eps, rho = 0.3, 0.4
    a, b, (ea, ma, va), (eb, mb, vb) = _grid_pair_1d()
    M = 0.5 * ot.dist(GRID_1D, GRID_1D)
    P = _sinkhorn_unbalanced(a, b, M, reg=eps, reg_m=rho)
    plan = unbalanced_gaussian_plan(ma, va, mb, vb, sigma2=eps, gamma=2 * rho, mass_x=ea, mass_y=eb)
    assert 0.5 * plan.value == pytest.approx(_discrete_objective(P, M, a, b, eps, rho), rel=1e-4)
    mass, mean, cov = _plan_moments(GRID_1D, P)
    assert plan.mass == pytest.approx(mass, rel=1e-4)
    np.testing.assert_allclose(plan.cov, cov, rtol=1e-4)


# ----------------------------------------------------------------------------- Gaussian-family optimality


def _kl_gauss(m1, S1, m2, S2) -> float:
    """KL(N(m1, S1) ‖ N(m2, S2))."""
    P2 = np.linalg.inv(S2)
    d = m2 - m1
    return 0.5 * float(
        np.trace(P2 @ S1) + d @ P2 @ d - m1.size + np.linalg.slogdet(S2)[1] - np.linalg.slogdet(S1)[1]
    )


def _gen_kl_gauss(w1, m1, S1, w2, m2, S2) -> float:
    """Generalised KL between the measures w1 N(m1, S1) and w2 N(m2, S2)."""
    return w1 * math.log(w1 / w2) + w1 * _kl_gauss(m1, S1, m2, S2) - w1 + w2


def _gaussian_objective(w, mu, H, a, A, b, B, m_x, m_y, sigma2, gamma) -> float:
    """The UOT objective at the scaled Gaussian π = w N(mu, H), written with closed-form KLs."""
    d = a.size
    mx, my, H11, H22, H12 = mu[:d], mu[d:], H[:d, :d], H[d:, d:], H[:d, d:]
    cost = w * float((mx - my) @ (mx - my) + np.trace(H11) + np.trace(H22) - 2 * np.trace(H12))
    out = cost + gamma * (_gen_kl_gauss(w, mx, H11, m_x, a, A) + _gen_kl_gauss(w, my, H22, m_y, b, B))
    if sigma2 > 0:
        ref_cov = np.block([[A, np.zeros((d, d))], [np.zeros((d, d)), B]])
        out += 2 * sigma2 * _gen_kl_gauss(w, mu, H, m_x * m_y, np.concatenate([a, b]), ref_cov)
    return out


@pytest.mark.parametrize("sigma2, gamma", [(0.05, 3.0), (0.7, 0.4)])
def test_value_is_the_objective_at_a_stationary_gaussian_plan(sigma2, gamma):
    """D = 3, non-commuting covariances: the stated value is the objective of m_π N(μ, H), and that point
    is stationary over all scaled Gaussians (central differences in log-mass, mean, Cholesky factor)."""
    rng = np.random.default_rng(7)
    d = 3
    a, b = rng.standard_normal(d), rng.standard_normal(d)
    A, B = _random_spd(rng, d), _random_spd(rng, d)
    m_x, m_y = 1.4, 0.6
    plan = unbalanced_gaussian_plan(a, A, b, B, sigma2, gamma, m_x, m_y)
    args = (a, A, b, B, m_x, m_y, sigma2, gamma)
    assert plan.value == pytest.approx(_gaussian_objective(plan.mass, plan.mean, plan.cov, *args), rel=1e-10)

    L = np.linalg.cholesky(plan.cov)
    tril = np.tril_indices(2 * d)
    theta0 = np.concatenate([[math.log(plan.mass)], plan.mean, L[tril]])

    def f(theta):
        Lt = np.zeros((2 * d, 2 * d))
        Lt[tril] = theta[1 + 2 * d :]
        return _gaussian_objective(math.exp(theta[0]), theta[1 : 1 + 2 * d], Lt @ Lt.T, *args)

    h = 1e-5
    grad = np.array([(f(theta0 + h * e) - f(theta0 - h * e)) / (2 * h) for e in np.eye(theta0.size)])
    # ≈1e-10 here; a 0.1 % error in the mass alone gives ≥ 2e-4
    assert np.abs(grad).max() < 1e-6 * max(1.0, abs(plan.value))


def test_large_gamma_recovers_balanced_entropic_ot():
    """γ → ∞ (masses 1): the plan tends to the balanced EOT plan (Skoltech eps = σ²), value to 2·EOT_eps."""
    rng = np.random.default_rng(0)
    d = 3
    a, b = rng.standard_normal(d), rng.standard_normal(d)
    A, B = _random_spd(rng, d), _random_spd(rng, d)
    balanced = entropic_gaussian_plan(a, A, b, B, 0.4)
    plan = unbalanced_gaussian_plan(a, A, b, B, 0.4, 1e7)  # errors are O(1/γ)
    assert plan.mass == pytest.approx(1.0, abs=1e-5)
    assert plan.value == pytest.approx(2 * balanced.value, rel=1e-5)
    np.testing.assert_allclose(plan.cross_cov, balanced.cross_cov, atol=1e-5)
    np.testing.assert_allclose(plan.cov[:d, :d], A, atol=1e-5)


# ----------------------------------------------------------------------------- sigma → 0 limit


def test_limit_reproduces_the_reference_numbers():
    """groundtruth.md §2.3: γ = 1, masses (1, 1): loss 0.63312, mass 0.68344, means (0.25, 0.7188), slope 0.7806."""
    lim = unbalanced_ot_limit([-0.5], [[0.8]], [1.0], [[0.3]], gamma=1.0)
    assert lim.value == pytest.approx(0.63312, abs=2e-5)
    assert lim.mass == pytest.approx(0.68344, abs=2e-5)
    np.testing.assert_allclose(lim.mean, [0.25, 0.71875], atol=1e-12)
    assert lim.map_matrix[0, 0] == pytest.approx(0.7806, abs=1e-4)


@pytest.mark.parametrize(
    "mean_x, var_x, mean_y, var_y, mass_x, mass_y, gamma",
    [(-0.5, 0.8, 1.0, 0.3, 1.0, 1.0, 1.0), (0.3, 0.5, -0.6, 1.4, 1.3, 0.7, 2.0)],
)
def test_limit_matches_pot_mm_unbalanced_1d(mean_x, var_x, mean_y, var_y, mass_x, mass_y, gamma):
    # mm_unbalanced converges from above and slowly: after 5000 iterations on 300 points the loss is within
    # 7e-4 relative, the mass 1.5e-4, the slope 3e-4, the means 3e-5 (grid discretisation is far smaller).
    grid = np.linspace(-6, 6, 300)[:, None]
    a = mass_x * grid_gaussian(grid, [mean_x], [[var_x]])
    b = mass_y * grid_gaussian(grid, [mean_y], [[var_y]])
    M = ot.dist(grid, grid)
    P = ot.unbalanced.mm_unbalanced(a, b, M, reg_m=gamma, div="kl", numItermax=5000, stopThr=1e-15)
    (ea, ma, va), (eb, mb, vb) = _moments(grid, a), _moments(grid, b)
    lim = unbalanced_ot_limit(ma, va, mb, vb, gamma, mass_x=ea, mass_y=eb)

    assert lim.value == pytest.approx(_discrete_objective(P, M, a, b, 0.0, gamma), rel=1e-3)
    mass, mean, cov = _plan_moments(grid, P)
    assert lim.mass == pytest.approx(mass, rel=3e-4)
    np.testing.assert_allclose(lim.mean, mean, rtol=0, atol=1e-4)
    np.testing.assert_allclose(np.diag(lim.cov), np.diag(cov), rtol=1e-3)
    # map slope vs the least-squares slope of the grid plan's barycentric projection
    p1 = P.sum(1)
    x = grid[:, 0] - mean[0]
    bary = P @ grid[:, 0] / p1 - mean[1]
    slope = np.sum(p1 * x * bary) / np.sum(p1 * x * x)
    assert lim.map_matrix[0, 0] == pytest.approx(slope, rel=1e-3)
    # source reweighting dπ₁/dα vs P1/a, weighted by the plan's marginal
    w_grid = p1 / a
    w_cf = lim.source_weight(grid)
    assert np.sum(p1 * np.abs(w_cf / w_grid - 1)) / p1.sum() < 2e-3


def test_limit_equals_small_sigma_plan():
    """σ = 0 plugged into the formulas = the σ > 0 plan as σ² → 0 (D = 3, non-commuting)."""
    rng = np.random.default_rng(3)
    d = 3
    a, b = rng.standard_normal(d), rng.standard_normal(d)
    A, B = _random_spd(rng, d), _random_spd(rng, d)
    lim = unbalanced_ot_limit(a, A, b, B, 1.5, mass_x=0.8, mass_y=1.7)
    small = unbalanced_gaussian_plan(a, A, b, B, 1e-8, 1.5, mass_x=0.8, mass_y=1.7)
    assert small.mass == pytest.approx(lim.mass, rel=1e-6)  # σ-power factor: 1 − O(σ² log σ)
    assert small.value == pytest.approx(lim.value, rel=1e-6)
    np.testing.assert_allclose(small.mean, lim.mean, atol=1e-7)
    np.testing.assert_allclose(small.cov, lim.cov, atol=1e-6)
    # the small-σ plan is nearly deterministic along the limit's map
    np.testing.assert_allclose(small.conditional_gain, lim.map_matrix, atol=1e-5)
    assert np.abs(small.conditional_cov).max() < 1e-6
    # and the error shrinks with σ²
    errs = [abs(unbalanced_gaussian_plan(a, A, b, B, s2, 1.5, 0.8, 1.7).mass - lim.mass) for s2 in (1e-2, 1e-4, 1e-6)]
    assert errs[0] > errs[1] > errs[2]


def test_limit_is_stationary_among_deterministic_gaussian_plans():
    """D = 2: w (id, x ↦ μ_y + G(x − μ_x))#N(μ_x, LLᵀ) with any G; the closed form is stationary in (w, μ, L, G)."""
    rng = np.random.default_rng(5)
    d = 2
    a, b = rng.standard_normal(d), rng.standard_normal(d)
    A, B = _random_spd(rng, d), _random_spd(rng, d)
    gamma, m_x, m_y = 0.8, 1.1, 0.9
    lim = unbalanced_ot_limit(a, A, b, B, gamma, m_x, m_y)
    _, mu_x, H11 = lim.marginal_x()
    _, mu_y, _ = lim.marginal_y()
    tril = np.tril_indices(d)
    theta0 = np.concatenate([[math.log(lim.mass)], mu_x, mu_y, np.linalg.cholesky(H11)[tril], lim.map_matrix.ravel()])

    def f(theta):
        L = np.zeros((d, d))
        L[tril] = theta[1 + 2 * d : 1 + 2 * d + len(tril[0])]
        G = theta[-d * d :].reshape(d, d)
        S = L @ L.T
        H = np.block([[S, S @ G.T], [G @ S, G @ S @ G.T]])
        return _gaussian_objective(math.exp(theta[0]), theta[1 : 1 + 2 * d], H, a, A, b, B, m_x, m_y, 0.0, gamma)

    assert lim.value == pytest.approx(f(theta0), rel=1e-10)
    h = 1e-5
    grad = np.array([(f(theta0 + h * e) - f(theta0 - h * e)) / (2 * h) for e in np.eye(theta0.size)])
    assert np.abs(grad).max() < 1e-6


def test_limit_map_and_weights():
    rng = np.random.default_rng(4)
    d = 3
    a, b = rng.standard_normal(d), rng.standard_normal(d)
    A, B = _random_spd(rng, d), _random_spd(rng, d)
    lim = unbalanced_ot_limit(torch.as_tensor(a), torch.as_tensor(A), b, B, 2.0, mass_x=1.2, mass_y=0.9)
    assert isinstance(lim, UnbalancedOTLimit)
    m, mu_x, H11 = lim.marginal_x()
    _, mu_y, H22 = lim.marginal_y()
    K = lim.map_matrix
    np.testing.assert_allclose(K, K.T, atol=1e-12)
    assert np.linalg.eigvalsh(K).min() > 0
    np.testing.assert_allclose(K @ H11 @ K, H22, atol=1e-10)  # T pushes N(μ_x, H₁₁) to N(μ_y, H₂₂)
    np.testing.assert_allclose(lim.map(mu_x[None]), mu_y[None], atol=1e-12)
    # the closed form's H₁₂ at σ = 0 (before it is rebuilt from K) is H₁₁ K: the plan is that map's graph
    _, _, H, _ = _janati_closed_form(a, A, b, B, 1.2, 0.9, 0.0, 2.0)
    np.testing.assert_allclose(H[:d, d:], H11 @ K, atol=1e-10)
    np.testing.assert_allclose(lim.cross_cov, H11 @ K, atol=1e-12)

    x = rng.standard_normal((6, d))
    y = lim(x)
    assert isinstance(y, np.ndarray) and y.dtype == np.float64 and y.shape == (6, d)
    yt = lim(torch.as_tensor(x, dtype=torch.float32))
    assert yt.dtype == torch.float32 and yt.shape == (6, d)
    np.testing.assert_allclose(yt.numpy(), y, atol=1e-5)
    # source weight against scipy densities
    want = m * multivariate_normal(mu_x, H11).pdf(x) / (1.2 * multivariate_normal(a, A).pdf(x))
    np.testing.assert_allclose(lim.source_weight(x), want, rtol=1e-10)
    np.testing.assert_allclose(lim.source_weight(torch.as_tensor(x)).numpy(), want, rtol=1e-5)
    want_y = m * multivariate_normal(mu_y, H22).pdf(x) / (0.9 * multivariate_normal(b, B).pdf(x))
    np.testing.assert_allclose(lim.target_weight(x), want_y, rtol=1e-10)
    # unweighted push-forward of the source
    pf_mean, pf_cov = lim.pushforward()
    np.testing.assert_allclose(pf_mean, K @ a + lim.map_offset, atol=1e-12)
    np.testing.assert_allclose(pf_cov, K @ A @ K, atol=1e-12)


# ----------------------------------------------------------------------------- UOTM convention


def test_uotm_scaling_rule_against_mm_unbalanced():
    """UOTM: min ∫ tau‖x−y‖² dπ + alpha KL(π₁‖μ) + alpha KL(π₂‖ν) = tau · UOT_{0, alpha/tau}."""
    tau, alpha = 0.5, 0.8
    grid = np.linspace(-6, 6, 300)[:, None]
    mu = grid_gaussian(grid, [-0.5], [[0.8]])
    nu = grid_gaussian(grid, [1.0], [[0.3]])
    M = tau * ot.dist(grid, grid)
    P = ot.unbalanced.mm_unbalanced(mu, nu, M, reg_m=alpha, div="kl", numItermax=5000, stopThr=1e-15)
    (_, ma, va), (_, mb, vb) = _moments(grid, mu), _moments(grid, nu)
    gt = uotm_gaussian_ground_truth(ma, va, mb, vb, tau=tau, alpha=alpha)
    assert gt.value == pytest.approx(_discrete_objective(P, M, mu, nu, 0.0, alpha), rel=1e-3)
    assert gt.mass == pytest.approx(P.sum(), rel=3e-4)
    assert gt.gamma == pytest.approx(alpha / tau) and gt.cost_scale == tau
    plain = unbalanced_ot_limit(ma, va, mb, vb, gamma=alpha / tau)
    assert gt.value == pytest.approx(tau * plain.value, rel=1e-14)
    assert gt.value == pytest.approx(alpha * (2 - 2 * gt.mass), rel=1e-12)
    np.testing.assert_array_equal(gt.map_matrix, plain.map_matrix)
    np.testing.assert_array_equal(gt.cov, plain.cov)
    assert gt.mass == plain.mass
    # the balanced plan is feasible with zero penalties, so value ≤ tau · W2²(μ, ν)
    w2 = (ma[0] - mb[0]) ** 2 + va[0, 0] + vb[0, 0] - 2 * math.sqrt(va[0, 0] * vb[0, 0])
    assert gt.value < tau * w2


# ----------------------------------------------------------------------------- object, types


def test_plan_object_shapes_types_and_conditionals():
    rng = np.random.default_rng(6)
    d = 2
    A, B = _random_spd(rng, d), _random_spd(rng, d)
    plan = unbalanced_gaussian_plan(torch.zeros(d), torch.as_tensor(A), np.ones(d), B, 0.3, 1.0, 2.0, 0.5)
    assert isinstance(plan, UnbalancedGaussianPlan)
    assert plan.mean.shape == (2 * d,) and plan.cov.shape == (2 * d, 2 * d) and plan.cov.dtype == np.float64
    np.testing.assert_allclose(plan.cov, plan.cov.T)
    assert np.linalg.eigvalsh(plan.cov).min() > 0
    assert plan.dim == d and plan.sigma2 == 0.3 and plan.gamma == 1.0 and plan.mass_x == 2.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.value = 0.0
    mass, mean_x, cov_x = plan.marginal_x()
    assert mass == plan.mass and mean_x.shape == (d,) and cov_x.shape == (d, d)
    # conditional of the (normalised) joint Gaussian
    H = plan.cov
    gain = H[d:, :d] @ np.linalg.inv(H[:d, :d])
    np.testing.assert_allclose(plan.conditional_gain, gain, atol=1e-12)
    np.testing.assert_allclose(plan.conditional_cov, H[d:, d:] - gain @ H[:d, d:], atol=1e-12)
    x = rng.standard_normal((5, d))
    np.testing.assert_allclose(plan.conditional_mean(x), plan.mean[d:] + (x - plan.mean[:d]) @ gain.T, atol=1e-12)
    xt = plan.conditional_mean(torch.as_tensor(x, dtype=torch.float32))
    assert xt.dtype == torch.float32 and xt.shape == (5, d)
    w = plan.source_weight(x)
    assert w.shape == (5,) and np.all(w > 0)


# ----------------------------------------------------------------------------- bad input

BAD_POSITIVE = [0.0, -0.1, float("nan"), float("inf"), "0.1", None, True]


@pytest.mark.parametrize("bad", BAD_POSITIVE)
def test_bad_scalars_name_the_argument(bad):
    z, I = np.zeros(2), np.eye(2)
    with pytest.raises(ValueError, match=r"sigma2 must be a positive finite number \(0 < sigma2 < inf\)"):
        unbalanced_gaussian_plan(z, I, z, I, bad, 1.0)
    with pytest.raises(ValueError, match="gamma must be a positive finite"):
        unbalanced_gaussian_plan(z, I, z, I, 0.1, bad)
    with pytest.raises(ValueError, match="gamma must be a positive finite"):
        unbalanced_ot_limit(z, I, z, I, bad)
    with pytest.raises(ValueError, match="mass_x must be a positive finite"):
        unbalanced_gaussian_plan(z, I, z, I, 0.1, 1.0, mass_x=bad)
    with pytest.raises(ValueError, match="mass_y must be a positive finite"):
        unbalanced_ot_limit(z, I, z, I, 1.0, mass_y=bad)
    with pytest.raises(ValueError, match="tau must be a positive finite"):
        uotm_gaussian_ground_truth(z, I, z, I, tau=bad, alpha=1.0)
    with pytest.raises(ValueError, match="alpha must be a positive finite"):
        uotm_gaussian_ground_truth(z, I, z, I, tau=0.1, alpha=bad)


def test_bad_arrays_name_the_argument():
    z, I = np.zeros(2), np.eye(2)
    for fn in (lambda *m: unbalanced_gaussian_plan(*m, 0.1, 1.0), lambda *m: unbalanced_ot_limit(*m, 1.0)):
        with pytest.raises(ValueError, match="cov_x must be positive definite"):
            fn(z, np.array([[1.0, 0.0], [0.0, 0.0]]), z, I)
        with pytest.raises(ValueError, match="cov_y must be symmetric"):
            fn(z, I, z, np.array([[1.0, 0.5], [0.0, 1.0]]))
        with pytest.raises(ValueError, match="cov_y has non-finite"):
            fn(z, I, z, np.array([[np.nan, 0.0], [0.0, 1.0]]))
        with pytest.raises(ValueError, match="mean_x has non-finite"):
            fn(np.array([np.inf, 0.0]), I, z, I)
        with pytest.raises(ValueError, match=r"mean_y must have shape \(2,\)"):
            fn(z, I, np.zeros(3), np.eye(3))
        with pytest.raises(ValueError, match=r"cov_x must have shape \(2, 2\)"):
            fn(z, np.eye(3), z, I)
        with pytest.raises(ValueError, match=r"mean_x must be a vector"):
            fn(np.zeros((2, 1)), I, z, I)
    lim = unbalanced_ot_limit(z, I, z, I, 1.0)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        lim.map(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="x has non-finite"):
        lim.source_weight(torch.full((4, 2), float("nan")))
    with pytest.raises(ValueError, match=r"y must have shape \(n, 2\)"):
        lim.target_weight(np.zeros(2))
