"""Exact JKO steps of KL(· ‖ N(mu, Sigma)) between Gaussians, and the OU flow they discretise.

Ground truth for S-JKO (groundtruth.md §2.4, uotm-sjko.md §2.1). One JKO step with step size h:

    rho⁺ = argmin_rho  KL(rho ‖ N(mu, Sigma)) + W2²(rho, rho_k) / (2h),

with W2² for the *full* cost ‖x − y‖² (S-JKO's cost E‖T_k(x0) − T_{k−1}(x0)‖² / (2h)). Scaling the
functional by alpha (S-JKO's alpha·D_Psi) is the same as the step alpha·h. Starting from a Gaussian
N(m, S), rho⁺ = N(m⁺, S⁺) is Gaussian, with (derivation in :func:`jko_gaussian_step`)

    A   = I + h Sigma⁻¹
    m⁺  = A⁻¹ (m + h Sigma⁻¹ mu)
    S⁺  = A^{−1/2} X A^{−1/2},   X = ½ (C + 2hI + (C² + 4hC)^{1/2}),   C = A^{−1/2} S A^{−1/2}.

As h → 0, k steps approach the Wasserstein gradient flow of KL at t = k·h, i.e. the law of the
Ornstein–Uhlenbeck process dX = −Sigma⁻¹(X − mu) dt + sqrt(2) dW (:func:`ou_flow`).

Inputs may be numpy arrays or torch tensors; everything is float64 numpy inside and out.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .gaussian_eot import _as_vector, _check_positive, _copy64, _sqrtm_sym, _two_gaussians

__all__ = [
    "jko_gaussian_step",
    "jko_gaussian_step_map",
    "jko_gaussian_path",
    "jko_commuting_std",
    "ou_flow",
]


# ----------------------------------------------------------------------------- validation


def _check_gaussians(mean, cov, target_mean, target_cov, names=("mean", "cov")):
    """Validate two Gaussians of one dimension D -> (m (D,), S (D, D), mu (D,), Sigma (D, D))."""
    return _two_gaussians((*names, "target_mean", "target_cov"), mean, cov, target_mean, target_cov)


def _sym_fn(mat: np.ndarray, fn) -> np.ndarray:
    """fn applied to the eigenvalues of a symmetric matrix."""
    w, v = np.linalg.eigh(mat)
    out = (v * fn(w)) @ v.T
    return 0.5 * (out + out.T)


# ----------------------------------------------------------------------------- the step


def _step(m, S, mu, Sigma, h):
    dim = m.size
    A = np.eye(dim) + h * np.linalg.inv(Sigma)
    A = 0.5 * (A + A.T)
    mean_next = np.linalg.solve(A, m + h * np.linalg.solve(Sigma, mu))

    # First-order condition of the covariance part (T = optimal map from S⁺ back to S):
    #   T = A − h S⁺⁻¹  (symmetric PD),   T S⁺ T = S.
    # Expanding gives A S⁺ A + h² S⁺⁻¹ = S + 2hA; with X = A^{1/2} S⁺ A^{1/2} this is
    #   X + h² X⁻¹ = C + 2hI,   C = A^{−1/2} S A^{−1/2},
    # so X is a function of C, eigenvalue-wise x = ½(b + sqrt(b² − 4h²)), b = c + 2h. The "+" root
    # is the one with x > h, i.e. T ≻ 0 (the "−" root has x < h).
    A_inv_half = _sym_fn(A, lambda w: 1.0 / np.sqrt(w))
    C = A_inv_half @ S @ A_inv_half
    X = _sym_fn(0.5 * (C + C.T), lambda c: 0.5 * (c + 2.0 * h + np.sqrt(c * c + 4.0 * h * c)))
    cov_next = A_inv_half @ X @ A_inv_half
    return mean_next, 0.5 * (cov_next + cov_next.T)


def jko_gaussian_step(mean, cov, target_mean, target_cov, h: float) -> tuple[np.ndarray, np.ndarray]:
    """One exact JKO step of F = KL(· ‖ N(target_mean, target_cov)) from N(mean, cov).

    Minimises ``KL(rho ‖ N(mu, Sigma)) + W2²(rho, N(mean, cov)) / (2h)`` (W2² of the full cost
    ‖x − y‖²); the minimiser is the Gaussian N(mean⁺, cov⁺) with, for A = I + h Sigma⁻¹,

        mean⁺ = A⁻¹ (mean + h Sigma⁻¹ mu)
        cov⁺  = A^{−1/2} X A^{−1/2},   X = ½(C + 2hI + (C² + 4hC)^{1/2}),   C = A^{−1/2} cov A^{−1/2}.

    cov⁺ solves the first-order condition cov⁺ = M cov M with M = (A − h cov⁺⁻¹)⁻¹ symmetric PD (M is
    the optimal map, see :func:`jko_gaussian_step_map`) in closed form; when cov and Sigma commute it
    reduces per eigen-direction to :func:`jko_commuting_std`.

    Args:
        mean: (D,) current mean m.
        cov: (D, D) current covariance S, symmetric positive definite.
        target_mean: (D,) mean mu of the target N(mu, Sigma).
        target_cov: (D, D) covariance Sigma of the target, symmetric positive definite.
        h: step size, 0 < h < inf.

    Returns:
        (mean⁺ (D,), cov⁺ (D, D)) as float64 numpy arrays.
    """
    h = _check_positive("h", h)
    m, S, mu, Sigma = _check_gaussians(mean, cov, target_mean, target_cov)
    mean_next, cov_next = _step(m, S, mu, Sigma, h)
    return _copy64(mean_next), _copy64(cov_next)


def jko_gaussian_step_map(mean, cov, target_mean, target_cov, h: float) -> tuple[np.ndarray, np.ndarray]:
    """The affine optimal (Monge) map x ↦ M x + b from N(mean, cov) to the next JKO iterate.

    M is the Bures map from cov to cov⁺ (symmetric PD); by the first-order condition it also equals
    ``(I + h Sigma⁻¹ − h cov⁺⁻¹)⁻¹``. b = mean⁺ − M mean. Arguments as in :func:`jko_gaussian_step`.

    Returns:
        (M (D, D), b (D,)) as float64 numpy arrays.
    """
    h = _check_positive("h", h)
    m, S, mu, Sigma = _check_gaussians(mean, cov, target_mean, target_cov)
    mean_next, cov_next = _step(m, S, mu, Sigma, h)
    S_half = _sqrtm_sym(S)
    S_inv_half = np.linalg.inv(S_half)
    M = S_inv_half @ _sqrtm_sym(S_half @ cov_next @ S_half) @ S_inv_half
    M = 0.5 * (M + M.T)
    return _copy64(M), _copy64(mean_next - M @ m)


def jko_commuting_std(std, target_std, h: float) -> np.ndarray:
    """Per-direction JKO step when the current covariance commutes with Sigma (groundtruth.md §2.4).

    In a common eigenbasis, with current standard deviations s_i and target standard deviations
    sigma_i, and a_i = 1/h + 1/sigma_i²:

        s_i⁺ = [ s_i/h + sqrt(s_i²/h² + 4 a_i) ] / (2 a_i).

    Args:
        std: (D,) current standard deviations s_i > 0.
        target_std: (D,) target standard deviations sigma_i > 0 (same eigenbasis).
        h: step size, 0 < h < inf.

    Returns:
        (D,) float64 array of s_i⁺.
    """
    h = _check_positive("h", h)
    s = _as_vector("std", std)
    sigma = _as_vector("target_std", target_std)
    if sigma.shape != s.shape:
        raise ValueError(f"target_std must have shape {s.shape} like std, got {sigma.shape}")
    for name, v in (("std", s), ("target_std", sigma)):
        if v.size and v.min() <= 0:
            raise ValueError(f"{name} must be > 0 everywhere, smallest entry is {v.min():.3g}")
    a = 1.0 / h + 1.0 / sigma**2
    return (s / h + np.sqrt(s**2 / h**2 + 4.0 * a)) / (2.0 * a)


def jko_gaussian_path(
    mean0, cov0, target_mean, target_cov, h: float, n_steps: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The JKO iterates N(mean_k, cov_k), k = 0 .. n_steps, from N(mean0, cov0) with step h.

    Arguments as in :func:`jko_gaussian_step`; ``n_steps`` is an int >= 1. Iterate k approximates
    :func:`ou_flow` at t = k·h with an O(h) error (implicit Euler).

    Returns:
        list of n_steps + 1 pairs (mean_k (D,), cov_k (D, D)); entry 0 is (a copy of) the start.
    """
    h = _check_positive("h", h)
    if isinstance(n_steps, bool) or not isinstance(n_steps, numbers.Integral) or n_steps < 1:
        raise ValueError(f"n_steps must be an int >= 1, got {n_steps!r}")
    m, S, mu, Sigma = _check_gaussians(mean0, cov0, target_mean, target_cov, names=("mean0", "cov0"))
    path = [(_copy64(m), _copy64(S))]
    for _ in range(int(n_steps)):
        m, S = _step(m, S, mu, Sigma, h)
        path.append((_copy64(m), _copy64(S)))
    return path


# ----------------------------------------------------------------------------- continuous time


def ou_flow(mean0, cov0, target_mean, target_cov, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Law at time t of dX = −Sigma⁻¹(X − mu) dt + sqrt(2) dW, X_0 ~ N(mean0, cov0).

    This is the Fokker–Planck (Wasserstein gradient) flow of KL(· ‖ N(mu, Sigma)); with
    E = exp(−t Sigma⁻¹):

        m(t) = mu + E (mean0 − mu),     S(t) = E cov0 E + Sigma (I − E²).

    Args:
        mean0: (D,) initial mean; cov0: (D, D) initial covariance, symmetric positive definite.
        target_mean: (D,) mu; target_cov: (D, D) Sigma, symmetric positive definite.
        t: time, 0 <= t < inf.

    Returns:
        (m(t) (D,), S(t) (D, D)) as float64 numpy arrays.
    """
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not math.isfinite(t) or t < 0:
        raise ValueError(f"t must be a finite number >= 0 (0 <= t < inf), got {t!r}")
    m0, S0, mu, Sigma = _check_gaussians(mean0, cov0, target_mean, target_cov, names=("mean0", "cov0"))
    lam, U = np.linalg.eigh(Sigma)
    decay = np.exp(-float(t) / lam)  # eigenvalues of E, in Sigma's eigenbasis U
    E = (U * decay) @ U.T
    mean_t = mu + E @ (m0 - mu)
    cov_t = E @ S0 @ E + (U * (lam * (1.0 - decay**2))) @ U.T
    return _copy64(mean_t), _copy64(0.5 * (cov_t + cov_t.T))
