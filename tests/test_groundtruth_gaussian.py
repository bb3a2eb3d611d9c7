"""Closed-form entropic OT between Gaussians: against POT Sinkhorn on grids, limits, sampling, pairs."""

import math

import numpy as np
import ot
import pytest
import torch

from grid_measures import grid_gaussian
from otgen.distributions import Gaussian
from otgen.groundtruth import (
    GaussianEOTPair,
    GaussianEOTPlan,
    entropic_gaussian_plan,
    eps_to_janati_sigma,
    eps_to_mallasto_eps,
    eps_to_pot_reg,
    janati_value_to_eps_value,
)


def _grid_moments(points, w):
    m = w @ points
    c = points - m
    return m, (c.T * w) @ c


def _pot_plan(points_x, a, points_y, b, eps):
    """POT log-domain Sinkhorn with M = ‖x−y‖² and reg = 2 eps: .value = 2 EOT_eps (KL form)."""
    M = ot.dist(points_x, points_y)
    return ot.solve(M, a, b, reg=eps_to_pot_reg(eps), reg_type="KL", method="sinkhorn_log", max_iter=20000, tol=1e-7)


# ----------------------------------------------------------------------------- vs POT on grids


@pytest.mark.parametrize("eps", [0.05, 0.5, 2.0])
def test_closed_form_matches_pot_sinkhorn_1d(eps):
    grid = np.linspace(-7, 7, 1000)[:, None]
    a = grid_gaussian(grid, [0.5], [[0.6]])
    b = grid_gaussian(grid, [-0.4], [[1.7]])
    res = _pot_plan(grid, a, grid, b, eps)
    ma, A = _grid_moments(grid, a)
    mb, B = _grid_moments(grid, b)
    plan = entropic_gaussian_plan(ma, A, mb, B, eps)

    eot_pot = 0.5 * float(res.value)  # ⟨pi, ‖x−y‖²⟩ + 2eps KL = 2 EOT_eps
    assert plan.value == pytest.approx(eot_pot, rel=1e-3)
    c_pot = (grid[:, 0] - ma[0]) @ res.plan @ (grid[:, 0] - mb[0])
    assert plan.cross_cov[0, 0] == pytest.approx(c_pot, rel=1e-3)
    assert plan.transport_cost() == pytest.approx(0.5 * float(res.value_linear), rel=1e-3)


def test_closed_form_matches_pot_sinkhorn_2d_non_commuting():
    g = np.linspace(-5, 5, 30)
    grid = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    A0 = np.array([[1.0, 0.4], [0.4, 0.5]])
    B0 = np.array([[0.6, -0.3], [-0.3, 1.2]])
    a = grid_gaussian(grid, [0.3, -0.2], A0)
    b = grid_gaussian(grid, [-0.4, 0.5], B0)
    eps = 0.5
    res = _pot_plan(grid, a, grid, b, eps)
    ma, A = _grid_moments(grid, a)
    mb, B = _grid_moments(grid, b)
    plan = entropic_gaussian_plan(ma, A, mb, B, eps)
    c_pot = (grid - ma).T @ res.plan @ (grid - mb)
    np.testing.assert_allclose(plan.cross_cov, c_pot, atol=1e-3)
    assert abs(plan.cross_cov[0, 1] - plan.cross_cov[1, 0]) > 0.02  # C is genuinely not symmetric here
    assert plan.value == pytest.approx(0.5 * float(res.value), rel=1e-3)


# ----------------------------------------------------------------------------- formulas and limits


def _random_spd(rng, d, lo=0.3, hi=3.0):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * rng.uniform(lo, hi, d)) @ q.T


def _sqrtm(m):
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(w)) @ v.T


@pytest.mark.parametrize("eps", [0.01, 0.3, 4.0])
def test_value_matches_janati_and_mallasto_forms_and_kl_decomposition(eps):
    rng = np.random.default_rng(1)
    d = 4
    a, b = rng.standard_normal(d), rng.standard_normal(d)
    A, B = _random_spd(rng, d), _random_spd(rng, d)
    plan = entropic_gaussian_plan(a, A, b, B, eps)
    I = np.eye(d)
    Ah = _sqrtm(A)
    # Janati et al., Thm 1 (sigma convention), converted with the converters.
    s2 = eps_to_janati_sigma(eps) ** 2
    Ds = _sqrtm(4 * Ah @ B @ Ah + s2**2 * I)
    janati = (
        np.sum((a - b) ** 2) + np.trace(A) + np.trace(B) - np.trace(Ds)
        + d * s2 * (1 - math.log(2 * s2)) + s2 * np.linalg.slogdet(Ds + s2 * I)[1]
    )
    assert plan.value == pytest.approx(janati_value_to_eps_value(janati), rel=1e-10)
    # Mallasto et al. form (eps_M = 2 eps), value of the ‖x−y‖² problem = 2 EOT_eps.
    em = eps_to_mallasto_eps(eps)
    Mm = I + _sqrtm(I + 16 / em**2 * Ah @ B @ Ah)
    mallasto = np.sum((a - b) ** 2) + np.trace(A) + np.trace(B) - em / 2 * (
        np.trace(Mm) - np.linalg.slogdet(Mm)[1] + d * math.log(2) - 2 * d
    )
    assert plan.value == pytest.approx(0.5 * mallasto, rel=1e-8)
    # EOT = E[½‖x−y‖²] + eps KL(pi ‖ P⊗Q) with the Gaussian KL of the joint vs the product.
    kl = 0.5 * (np.linalg.slogdet(A)[1] + np.linalg.slogdet(B)[1] - np.linalg.slogdet(plan.joint_cov)[1])
    assert plan.value == pytest.approx(plan.transport_cost() + eps * kl, rel=1e-8)


def test_small_eps_gives_the_monge_map_and_large_eps_independence():
    rng = np.random.default_rng(2)
    d = 3
    a, b = rng.standard_normal(d), rng.standard_normal(d)
    A, B = _random_spd(rng, d), _random_spd(rng, d)
    T, _ = ot.gaussian.bures_wasserstein_mapping(a, b, A, B)
    small = entropic_gaussian_plan(a, A, b, B, 1e-6)
    np.testing.assert_allclose(small.cross_cov, A @ T, atol=1e-5)
    assert np.trace(small.conditional_cov) < 1e-4  # nearly deterministic
    large = entropic_gaussian_plan(a, A, b, B, 1e6)
    assert np.abs(large.cross_cov).max() < 1e-4
    np.testing.assert_allclose(large.conditional_cov, B, atol=1e-4)


def test_plan_object_shapes_and_types():
    rng = np.random.default_rng(3)
    d = 3
    A, B = _random_spd(rng, d), _random_spd(rng, d)
    plan = entropic_gaussian_plan(torch.zeros(d), torch.as_tensor(A), np.ones(d), B, 0.2)
    assert isinstance(plan, GaussianEOTPlan)
    assert plan.joint_mean.shape == (2 * d,) and plan.joint_cov.shape == (2 * d, 2 * d)
    np.testing.assert_allclose(plan.joint_cov, plan.joint_cov.T)
    assert np.linalg.eigvalsh(plan.joint_cov).min() > 0
    assert plan.cross_cov.dtype == np.float64
    with pytest.raises(AttributeError):
        plan.eps = 1.0
    x_np = rng.standard_normal((5, d))
    m_np = plan.conditional_mean(x_np)
    assert isinstance(m_np, np.ndarray) and m_np.dtype == np.float64 and m_np.shape == (5, d)
    m_t = plan.conditional_mean(torch.as_tensor(x_np, dtype=torch.float32))
    assert m_t.dtype == torch.float32 and m_t.shape == (5, d)
    np.testing.assert_allclose(m_t.numpy(), m_np, atol=1e-5)
    mean, cov = plan.conditional_moments(torch.as_tensor(x_np, dtype=torch.float32))
    assert mean.shape == (5, d) and cov.shape == (5, d, d) and cov.dtype == torch.float32
    np.testing.assert_allclose(cov[2].numpy(), plan.conditional_cov, atol=1e-6)
    # E[y] = b: the conditional mean at x = a
    np.testing.assert_allclose(plan.conditional_mean(np.zeros((1, d)))[0], np.ones(d), atol=1e-12)


def test_conditional_sample_matches_conditional_moments():
    pair = GaussianEOTPair(dim=3, eps=0.5, seed=4, mean_scale=1.0)
    x = pair.source(4, generator=torch.Generator().manual_seed(0))
    y = pair.conditional_sample(x, 40000, generator=torch.Generator().manual_seed(1))
    assert y.shape == (4, 40000, 3) and y.dtype == torch.float32
    mean, cov = pair.conditional_moments(x)
    y64 = y.double()
    emp_mean = y64.mean(1)
    c = y64 - emp_mean[:, None]
    emp_cov = c.transpose(1, 2) @ c / (y.shape[1] - 1)
    assert torch.allclose(emp_mean, mean.double(), atol=0.03)
    assert torch.allclose(emp_cov, cov.double(), atol=0.03)
    # the same generator seed gives the same draws
    y2 = pair.conditional_sample(x, 40000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(y, y2)


def test_joint_samples_have_the_plan_covariance():
    pair = GaussianEOTPair(dim=2, eps=0.3, seed=5)
    g = torch.Generator().manual_seed(0)
    x = pair.source(20000, generator=g)
    y = pair.conditional_sample(x, 1, generator=g)[:, 0]
    xy = torch.cat([x, y], 1).double().numpy()
    np.testing.assert_allclose(np.cov(xy.T), pair.plan.joint_cov, atol=0.08)


# ----------------------------------------------------------------------------- benchmark pair


@pytest.mark.parametrize("dim", [2, 16])
def test_pair_spectrum_and_determinism(dim):
    pair = GaussianEOTPair(dim=dim, eps=0.1, seed=0)
    want = np.geomspace(0.25, 4.0, dim)
    np.testing.assert_allclose(np.linalg.eigvalsh(pair.source_cov), want, rtol=1e-10)
    np.testing.assert_allclose(np.linalg.eigvalsh(pair.target_cov), want, rtol=1e-10)
    assert not np.allclose(pair.source_cov, pair.target_cov)  # independent rotations
    assert np.all(pair.source_mean == 0) and np.all(pair.target_mean == 0)
    assert pair.target_variance() == pytest.approx(want.sum())
    again = GaussianEOTPair(dim=dim, eps=0.1, seed=0)
    np.testing.assert_array_equal(pair.source_cov, again.source_cov)
    np.testing.assert_array_equal(pair.target_cov, again.target_cov)
    assert not np.allclose(pair.source_cov, GaussianEOTPair(dim=dim, eps=0.1, seed=1).source_cov)
    assert isinstance(pair.source, Gaussian) and isinstance(pair.target, Gaussian)
    x = pair.source(8, generator=torch.Generator().manual_seed(0))
    assert x.shape == (8, dim) and x.dtype == torch.float32
    assert torch.equal(x, again.source(8, generator=torch.Generator().manual_seed(0)))
    assert pair.plan.eps == 0.1 and pair.dim == dim


def test_pair_dim1_and_means():
    pair = GaussianEOTPair(dim=1, eps=1.0, seed=3)
    assert 0.25 <= pair.source_cov[0, 0] <= 4.0 and 0.25 <= pair.target_cov[0, 0] <= 4.0
    shifted = GaussianEOTPair(dim=4, eps=1.0, seed=3, mean_scale=2.0)
    assert np.abs(shifted.source_mean).max() > 0 and np.abs(shifted.target_mean - shifted.source_mean).max() > 0
    # means do not change the covariances drawn from the same seed
    np.testing.assert_array_equal(shifted.source_cov, GaussianEOTPair(dim=4, eps=1.0, seed=3).source_cov)


@pytest.mark.parametrize("dim, eps", [(2, 0.1), (16, 0.1), (16, 1.0)])
def test_baselines(dim, eps):
    bl = GaussianEOTPair(dim=dim, eps=eps, seed=0).baselines()
    assert set(bl) == {"independent", "conditional_mean", "constant", "ot_map"}
    assert bl["constant"] == pytest.approx(100.0, abs=1e-8)  # law of total variance
    assert bl["conditional_mean"] < bl["ot_map"] < bl["constant"]
    if eps == 0.1:
        assert bl["independent"] > 130.0 and bl["conditional_mean"] < 10.0
    if dim == 16:  # close to groundtruth.md §6.3 (different rotations, same spectra)
        ref = {0.1: (145.6, 7.89, 8.12), 1.0: (59.4, 50.6, 62.0)}[eps]
        got = (bl["independent"], bl["conditional_mean"], bl["ot_map"])
        np.testing.assert_allclose(got, ref, rtol=0.05)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("eps", [0.0, -0.1, float("nan"), float("inf"), "0.1", None])
def test_bad_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        entropic_gaussian_plan(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), eps)
    with pytest.raises(ValueError, match="eps"):
        GaussianEOTPair(dim=2, eps=eps)


@pytest.mark.parametrize("dim", [0, -3, 1.5, True, "2"])
def test_bad_dim(dim):
    with pytest.raises(ValueError, match=r"dim must be an int >= 1"):
        GaussianEOTPair(dim=dim, eps=0.1)


def test_bad_pair_arguments():
    with pytest.raises(ValueError, match="seed"):
        GaussianEOTPair(dim=2, eps=0.1, seed=-1)
    with pytest.raises(ValueError, match="mean_scale"):
        GaussianEOTPair(dim=2, eps=0.1, mean_scale=float("nan"))


def test_bad_plan_inputs_name_the_argument():
    z, I = np.zeros(2), np.eye(2)
    with pytest.raises(ValueError, match="cov_x must be positive definite"):
        entropic_gaussian_plan(z, np.array([[1.0, 0.0], [0.0, -1.0]]), z, I, 0.1)
    with pytest.raises(ValueError, match="cov_y must be symmetric"):
        entropic_gaussian_plan(z, I, z, np.array([[1.0, 0.5], [0.0, 1.0]]), 0.1)
    with pytest.raises(ValueError, match="cov_y has non-finite"):
        entropic_gaussian_plan(z, I, z, np.array([[np.nan, 0.0], [0.0, 1.0]]), 0.1)
    with pytest.raises(ValueError, match="mean_x has non-finite"):
        entropic_gaussian_plan(np.array([np.inf, 0.0]), I, z, I, 0.1)
    with pytest.raises(ValueError, match="mean_y must have shape"):
        entropic_gaussian_plan(z, I, np.zeros(3), np.eye(3), 0.1)
    with pytest.raises(ValueError, match="cov_x must have shape"):
        entropic_gaussian_plan(z, np.eye(3), z, I, 0.1)
    plan = entropic_gaussian_plan(z, I, z, I, 0.1)
    with pytest.raises(ValueError, match="x must have shape"):
        plan.conditional_mean(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="x has non-finite"):
        plan.conditional_moments(torch.full((4, 2), float("nan")))
    with pytest.raises(ValueError, match="n_per_x"):
        plan.conditional_sample(torch.zeros(4, 2), 0)
