"""Linear-Gaussian WAE optimum and RBF-MMD between Gaussians: against direct optimisation and Monte Carlo."""

import numpy as np
import pytest
import scipy.optimize
import torch

from otgen.groundtruth.linear_gaussian import (
    LinearWAEOptimum,
    gaussian_rbf_kernel_mean,
    gaussian_rbf_mmd2,
    linear_wae_optimum,
)
from otgen.metrics import bw2, mmd

SPECTRUM = np.array([5.0, 3.0, 1.0, 0.5, 0.3, 0.1])  # n = 6; residual beyond d = 2 is 1.9


def _rotated_cov(eigenvalues, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((eigenvalues.size, eigenvalues.size)))
    return (q * eigenvalues) @ q.T


def _w2sq_to_pushforward(G: np.ndarray, Sigma: np.ndarray) -> float:
    """W2²(N(0, Sigma), N(0, G Gᵀ)) for ‖·‖².

    Bures cross term Tr(Sigma^½ G Gᵀ Sigma^½)^½ = Tr(Gᵀ Sigma G)^½ (same non-zero spectrum).
    """
    inner = G.T @ Sigma @ G
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (inner + inner.T)), 0.0, None)).sum()
    return float(np.trace(Sigma) + np.sum(G * G) - 2.0 * cross)


# ----------------------------------------------------------------------------- linear-Gaussian WAE


@pytest.mark.parametrize("method", ["BFGS", "Nelder-Mead"])
def test_wae_value_matches_direct_optimisation_over_decoders(method):
    Sigma = _rotated_cov(SPECTRUM)
    opt = linear_wae_optimum(Sigma, 2)
    assert opt.value == pytest.approx(1.9, abs=1e-12)

    rng = np.random.default_rng(1)
    if method == "BFGS":
        options = {"gtol": 1e-10}
    else:
        options = {"maxiter": 40_000, "xatol": 1e-10, "fatol": 1e-13, "adaptive": True}
    res = scipy.optimize.minimize(
        lambda g: _w2sq_to_pushforward(g.reshape(6, 2), Sigma),
        rng.standard_normal(12),
        method=method,
        options=options,
    )
    assert res.fun == pytest.approx(opt.value, abs=1e-8)
    assert res.fun >= opt.value - 1e-10  # nothing beats the closed form
    learned = res.x.reshape(6, 2)
    assert opt.principal_angles_deg(learned).max() < 1e-2
    np.testing.assert_allclose(learned @ learned.T, opt.decoder @ opt.decoder.T, atol=1e-5)


def test_wae_closed_form_decoder_and_encoder():
    Sigma = _rotated_cov(SPECTRUM, seed=2)
    opt = linear_wae_optimum(Sigma, 2)
    G, E, U = opt.decoder, opt.encoder, opt.basis
    assert G.shape == (6, 2) and E.shape == (2, 6) and U.shape == (6, 2)
    np.testing.assert_allclose(opt.eigenvalues, SPECTRUM, atol=1e-12)
    np.testing.assert_allclose(U.T @ U, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(Sigma @ U, U * SPECTRUM[:2], atol=1e-12)
    np.testing.assert_allclose(G @ G.T, U @ np.diag(SPECTRUM[:2]) @ U.T, atol=1e-12)
    assert _w2sq_to_pushforward(G, Sigma) == pytest.approx(1.9, abs=1e-12)
    # the encoder matches the prior exactly and G∘E is the top-2 projection
    np.testing.assert_allclose(opt.latent_cov(E), np.eye(2), atol=1e-12)
    np.testing.assert_allclose(G @ E, U @ U.T, atol=1e-12)
    assert opt.reconstruction_cost(G, E) == pytest.approx(opt.value, abs=1e-12)
    assert bw2(np.zeros(2), opt.latent_cov(E), np.zeros(2), np.eye(2)) == pytest.approx(0.0, abs=1e-10)
    assert opt.principal_angles_deg(G).max() < 1e-6
    assert opt.principal_angles_deg(torch.tensor(G @ [[0.0, 1.0], [-1.0, 0.0]])).max() < 1e-6  # rotation


def test_wae_reconstruction_optimum_needs_no_latent_constraint():
    """Unconstrained min over (G, E) of E‖x − G E x‖² (Eckart–Young) reaches the same value."""
    Sigma = _rotated_cov(SPECTRUM, seed=3)
    opt = linear_wae_optimum(Sigma, 2)
    res = scipy.optimize.minimize(
        lambda p: opt.reconstruction_cost(p[:12].reshape(6, 2), p[12:].reshape(2, 6)),
        np.random.default_rng(0).standard_normal(24),
        method="BFGS",
        options={"gtol": 1e-10},
    )
    assert res.fun == pytest.approx(opt.value, abs=1e-8)


def test_wae_half_cost_and_angles_of_wrong_subspace():
    Sigma = np.diag(SPECTRUM)
    opt = linear_wae_optimum(Sigma, 2, cost="half_sqeuclidean")
    assert isinstance(opt, LinearWAEOptimum)
    assert opt.value == pytest.approx(0.95, abs=1e-12)
    assert opt.reconstruction_cost(opt.decoder, opt.encoder) == pytest.approx(0.95, abs=1e-12)
    wrong = np.zeros((6, 2))
    wrong[0, 0], wrong[2, 1] = 1.0, 1.0  # e1 (right), e3 (orthogonal to e2)
    np.testing.assert_allclose(opt.principal_angles_deg(wrong), [90.0, 0.0], atol=1e-9)
    half_way = np.zeros((6, 2))
    half_way[0, 0], half_way[1, 1], half_way[2, 1] = 1.0, 1.0, 1.0
    np.testing.assert_allclose(opt.principal_angles_deg(half_way), [45.0, 0.0], atol=1e-9)
    rank_one = np.zeros((6, 2))
    rank_one[0] = 1.0
    np.testing.assert_allclose(opt.principal_angles_deg(rank_one), [90.0, 0.0], atol=1e-9)


def test_wae_bad_input():
    Sigma = np.diag(SPECTRUM)
    for d in (0, 6, 7, -1, 2.0, True):
        with pytest.raises(ValueError, match=r"latent_dim must be an int with 1 <= latent_dim < n = 6"):
            linear_wae_optimum(Sigma, d)
    with pytest.raises(ValueError, match="data_cov must be positive definite, smallest eigenvalue"):
        linear_wae_optimum(np.diag([2.0, 1.0, 0.0]), 1)
    with pytest.raises(ValueError, match="data_cov must be symmetric"):
        linear_wae_optimum(np.triu(np.ones((3, 3))) + np.eye(3), 1)
    with pytest.raises(ValueError, match=r"data_cov must be a square \(n, n\) matrix"):
        linear_wae_optimum(np.ones((3, 2)), 1)
    with pytest.raises(ValueError, match="top-2 eigenspace of data_cov is not unique"):
        linear_wae_optimum(np.diag([3.0, 1.0, 1.0]), 2)
    with pytest.raises(ValueError, match="cost must be one of"):
        linear_wae_optimum(Sigma, 2, cost="l2")
    opt = linear_wae_optimum(Sigma, 2)
    with pytest.raises(ValueError, match=r"decoder must have shape \(6, 2\)"):
        opt.principal_angles_deg(np.ones((2, 6)))
    with pytest.raises(ValueError, match=r"encoder must have shape \(2, 6\)"):
        opt.reconstruction_cost(opt.decoder, opt.decoder)


# ----------------------------------------------------------------------------- RBF-MMD between Gaussians

M1, S1 = np.array([0.0, 0.0]), np.array([[1.0, 0.3], [0.3, 0.6]])
M2, S2 = np.array([0.8, -0.3]), np.array([[0.5, -0.2], [-0.2, 1.4]])


def _draw(rng, mean, cov, n):
    return mean + rng.standard_normal((n, mean.size)) @ np.linalg.cholesky(cov).T


@pytest.mark.parametrize("ell", [0.5, 1.0, 2.5])
def test_kernel_means_match_monte_carlo(ell):
    """4·10⁵ independent pairs per expectation; tolerance 4.5 Monte-Carlo standard errors (≤ 0.002)."""
    rng = np.random.default_rng(0)
    n = 400_000

    def kernel_pairs(a, b):
        return np.exp(-np.sum((a - b) ** 2, axis=1) / (2.0 * ell**2))

    terms = {}
    for key, (ma, Sa, mb, Sb) in {"xx": (M1, S1, M1, S1), "yy": (M2, S2, M2, S2), "xy": (M1, S1, M2, S2)}.items():
        k = kernel_pairs(_draw(rng, ma, Sa, n), _draw(rng, mb, Sb, n))
        exact = gaussian_rbf_kernel_mean(ma, Sa, mb, Sb, ell)
        assert abs(k.mean() - exact) < 4.5 * k.std() / np.sqrt(n)
        terms[key] = k
    estimate = terms["xx"] + terms["yy"] - 2.0 * terms["xy"]  # independent pairs: an unbiased MMD² sample
    exact = gaussian_rbf_mmd2(M1, S1, M2, S2, ell)
    assert exact > 0.02
    assert abs(estimate.mean() - exact) < 4.5 * estimate.std() / np.sqrt(n)


def test_mmd2_matches_metrics_mmd():
    """``otgen.metrics.mmd`` (unbiased U-statistic) with 4000 + 4000 samples and the same ℓ.

    Its spread over seeds is ≈ 0.0046 at these settings; tolerance 0.02 (≈ 4 standard deviations)
    against an exact value of 0.1357.
    """
    ell = 1.0
    rng = np.random.default_rng(1)
    x = torch.from_numpy(_draw(rng, M1, S1, 4000))
    y = torch.from_numpy(_draw(rng, M2, S2, 4000))
    exact = gaussian_rbf_mmd2(M1, S1, M2, S2, ell)
    assert exact == pytest.approx(0.13567, abs=1e-5)
    assert mmd(x, y, bandwidth=ell) == pytest.approx(exact, abs=0.02)


def test_mmd2_special_cases():
    assert gaussian_rbf_mmd2(M1, S1, M1, S1, 0.7) == 0.0
    assert gaussian_rbf_mmd2(torch.tensor(M2), torch.tensor(S2), M2, S2, 3.0) == 0.0
    # 1-D point masses at a and b: MMD² = 2 − 2 exp(−(a − b)²/(2ℓ²))
    zero = np.zeros((1, 1))
    assert gaussian_rbf_mmd2([0.0], zero, [1.5], zero, 2.0) == pytest.approx(2.0 - 2.0 * np.exp(-(1.5**2) / 8.0))
    # symmetric, and → 0 as the bandwidth grows (the kernel flattens)
    assert gaussian_rbf_mmd2(M1, S1, M2, S2, 1.3) == pytest.approx(gaussian_rbf_mmd2(M2, S2, M1, S1, 1.3), abs=1e-15)
    assert gaussian_rbf_mmd2(M1, S1, M2, S2, 1e4) < 1e-8


def test_mmd2_bad_input():
    for ell in (0.0, -1.0, float("nan"), float("inf"), None, True):
        with pytest.raises(ValueError, match=r"bandwidth must be a positive finite number \(0 < bandwidth < inf\)"):
            gaussian_rbf_mmd2(M1, S1, M2, S2, ell)
    with pytest.raises(ValueError, match="cov2 must be positive semidefinite, smallest eigenvalue"):
        gaussian_rbf_mmd2(M1, S1, M2, np.diag([1.0, -0.5]), 1.0)
    with pytest.raises(ValueError, match="cov1 must be symmetric"):
        gaussian_rbf_kernel_mean(M1, np.array([[1.0, 0.5], [0.0, 1.0]]), M2, S2, 1.0)
    with pytest.raises(ValueError, match=r"mean2 must have shape \(2,\)"):
        gaussian_rbf_mmd2(M1, S1, np.zeros(3), S2, 1.0)
    with pytest.raises(ValueError, match=r"cov1 must have shape \(2, 2\)"):
        gaussian_rbf_mmd2(M1, np.eye(3), M2, S2, 1.0)
