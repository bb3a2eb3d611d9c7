"""Linear-Gaussian WAE optimum and the RBF-MMD between Gaussians (groundtruth.md §2.5–2.6).

**Linear-Gaussian WAE.** Data P_X = N(0, Sigma) in R^n, prior P_Z = N(0, I_d), deterministic linear
decoder z ↦ G z (G of shape (n, d)), so G#P_Z = N(0, G Gᵀ). With eigenvalues λ_1 ≥ … ≥ λ_n of Sigma
and eigenvectors U,

    min_G W2²(P_X, G#P_Z) = Σ_{i>d} λ_i                       (cost ‖x − y‖²; halve for ½‖x − y‖²)

attained by G = U_d Λ_d^{1/2} R for any orthogonal (d, d) R (G Gᵀ = U_d Λ_d U_dᵀ). By WAE's encoder
form, the matching encoder is x ↦ Rᵀ Λ_d^{−1/2} U_dᵀ x: it pushes P_X exactly onto P_Z and G∘E is the
orthogonal projection onto the top-d eigenspace, whose reconstruction cost is the value above. Because
no rank-d linear auto-encoder reconstructs better (Eckart–Young) and any latent penalty is ≥ 0, the
same pair also minimises the relaxed WAE loss rec + λ·D_Z(Q_Z, P_Z) over linear maps, for every λ ≥ 0.

**RBF-MMD.** k(x, y) = exp(−‖x − y‖² / (2ℓ²)), the kernel and bandwidth ℓ of ``otgen.metrics.mmd``
(its ``bandwidth`` argument is the same ℓ; no conversion needed).

Inputs may be numpy arrays or torch tensors; everything is float64 numpy inside and out.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from .gaussian_eot import _as_spd, _check_positive, _copy64, _real_array, _two_gaussians

__all__ = ["LinearWAEOptimum", "linear_wae_optimum", "gaussian_rbf_kernel_mean", "gaussian_rbf_mmd2"]

_COST_FACTORS = {"sqeuclidean": 1.0, "half_sqeuclidean": 0.5}


def _as_matrix(name: str, value, shape: tuple[int, int]) -> np.ndarray:
    a = _real_array(name, value)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} has non-finite entries")
    return a


# ----------------------------------------------------------------------------- linear-Gaussian WAE


@dataclass(frozen=True)
class LinearWAEOptimum:
    """Exact optimum of the linear-Gaussian WAE; build it with :func:`linear_wae_optimum`.

    All arrays are float64 numpy; treat them as read-only.

    Attributes:
        data_cov: (n, n) data covariance Sigma.
        latent_dim: d, 1 <= d < n.
        cost: ``"sqeuclidean"`` (‖x − y‖²) or ``"half_sqeuclidean"`` (½‖x − y‖²).
        value: optimal W2² = optimal reconstruction cost, Σ_{i>d} λ_i (× ½ for the half cost).
        eigenvalues: (n,) eigenvalues of Sigma, descending.
        basis: (n, d) orthonormal basis U_d of the top-d eigenspace (columns by decreasing λ).
        decoder: (n, d) optimal decoder G = U_d Λ_d^{1/2}, so G Gᵀ = U_d Λ_d U_dᵀ.
        encoder: (d, n) matching encoder E = Λ_d^{−1/2} U_dᵀ: E Sigma Eᵀ = I_d and G E = U_d U_dᵀ.
            (decoder, encoder) is unique up to (G R, Rᵀ E) with R orthogonal.
    """

    data_cov: np.ndarray
    latent_dim: int
    cost: str
    value: float
    eigenvalues: np.ndarray
    basis: np.ndarray
    decoder: np.ndarray
    encoder: np.ndarray

    @property
    def data_dim(self) -> int:
        return int(self.data_cov.shape[0])

    def principal_angles_deg(self, decoder) -> np.ndarray:
        """Principal angles (degrees, descending) between a decoder's column space and ``basis``.

        Args:
            decoder: (n, d) matrix, e.g. a learned linear decoder's weight (``nn.Linear(d, n).weight``)
                or the Jacobian of a non-linear decoder at a point.

        Returns:
            (d,) float64 array in [0, 90]; all ≈ 0 when the columns span the top-d eigenspace. A
            rank-deficient decoder gives 90° for the missing directions.
        """
        n, d = self.data_dim, self.latent_dim
        G = _as_matrix("decoder", decoder, (n, d))
        angles = np.degrees(scipy.linalg.subspace_angles(G, self.basis))
        return np.concatenate([np.full(d - angles.size, 90.0), angles])

    def reconstruction_cost(self, decoder, encoder) -> float:
        """Exact population cost E c(X, G E X), X ~ N(0, Sigma), of a linear auto-encoder.

        ``c`` is this optimum's ``cost``; E‖X − G E X‖² = Tr((I − GE) Sigma (I − GE)ᵀ).

        Args:
            decoder: (n, d) G; encoder: (d, n) E.
        """
        n, d = self.data_dim, self.latent_dim
        G = _as_matrix("decoder", decoder, (n, d))
        E = _as_matrix("encoder", encoder, (d, n))
        residual = np.eye(n) - G @ E
        return _COST_FACTORS[self.cost] * float(np.trace(residual @ self.data_cov @ residual.T))

    def latent_cov(self, encoder) -> np.ndarray:
        """(d, d) covariance E Sigma Eᵀ of the aggregate posterior Q_Z of a linear encoder (n -> d).

        Compare it with the prior's I_d, e.g. by ``otgen.metrics.bw2(0, latent_cov, 0, I)`` or
        :func:`gaussian_rbf_mmd2`.
        """
        E = _as_matrix("encoder", encoder, (self.latent_dim, self.data_dim))
        cov = E @ self.data_cov @ E.T
        return 0.5 * (cov + cov.T)


def linear_wae_optimum(data_cov, latent_dim: int, cost: str = "sqeuclidean") -> LinearWAEOptimum:
    """Closed-form linear-Gaussian WAE optimum for data N(0, data_cov) and prior N(0, I_latent_dim).

    Args:
        data_cov: (n, n) symmetric positive definite data covariance Sigma, n >= 2.
        latent_dim: d, an int with 1 <= d < n. The top-d eigenspace must be unique
            (λ_d > λ_{d+1}).
        cost: ``"sqeuclidean"`` for c = ‖x − y‖² or ``"half_sqeuclidean"`` for ½‖x − y‖². (A
            reconstruction scale such as WAE's 0.05 multiplies ``value`` further.)

    Returns:
        A :class:`LinearWAEOptimum`; ``value = factor · Σ_{i>d} λ_i(Sigma)``.
    """
    if cost not in _COST_FACTORS:
        raise ValueError(f"cost must be one of {sorted(_COST_FACTORS)}, got {cost!r}")
    if isinstance(data_cov, torch.Tensor):
        data_cov = data_cov.detach().cpu().double().numpy()
    shape = np.shape(data_cov)
    if len(shape) != 2 or shape[0] != shape[1] or shape[0] < 2:
        raise ValueError(f"data_cov must be a square (n, n) matrix with n >= 2, got shape {shape}")
    n = shape[0]
    Sigma = _as_spd("data_cov", data_cov, n)
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, numbers.Integral) or not 1 <= latent_dim < n:
        raise ValueError(f"latent_dim must be an int with 1 <= latent_dim < n = {n}, got {latent_dim!r}")
    d = int(latent_dim)

    lam, U = np.linalg.eigh(Sigma)
    lam, U = lam[::-1], U[:, ::-1]
    if lam[d - 1] - lam[d] <= 1e-10 * lam[0]:
        raise ValueError(
            f"the top-{d} eigenspace of data_cov is not unique: eigenvalues {d} and {d + 1} are equal "
            f"({lam[d - 1]:.6g}, {lam[d]:.6g}); need λ_d > λ_(d+1)"
        )
    basis = U[:, :d]
    root = np.sqrt(lam[:d])
    return LinearWAEOptimum(
        data_cov=_copy64(Sigma),
        latent_dim=d,
        cost=cost,
        value=_COST_FACTORS[cost] * float(lam[d:].sum()),
        eigenvalues=_copy64(lam),
        basis=_copy64(basis),
        decoder=_copy64(basis * root),
        encoder=_copy64(basis.T / root[:, None]),
    )


# ----------------------------------------------------------------------------- RBF-MMD


def _as_psd(name: str, value, dim: int) -> np.ndarray:
    """Symmetric positive semidefinite (D, D) (a zero covariance, i.e. a point mass, is allowed)."""
    m = _as_matrix(name, value, (dim, dim))
    scale = max(1.0, float(np.abs(m).max()))
    if not np.allclose(m, m.T, rtol=0.0, atol=1e-10 * scale):
        raise ValueError(f"{name} must be symmetric")
    m = 0.5 * (m + m.T)
    lam_min = float(np.linalg.eigvalsh(m).min())
    if lam_min < -1e-10 * scale:
        raise ValueError(f"{name} must be positive semidefinite, smallest eigenvalue is {lam_min:.3g}")
    return m


def _check_pair(mean1, cov1, mean2, cov2):
    return _two_gaussians(("mean1", "cov1", "mean2", "cov2"), mean1, cov1, mean2, cov2, matrix=_as_psd)


def _kernel_mean(m1, S1, m2, S2, ell2: float) -> float:
    """E k(X, Y): X − Y ~ N(m1 − m2, S1 + S2), and E exp(−‖V‖²/(2ℓ²)) is a Gaussian integral."""
    S = S1 + S2
    dim = m1.size
    _, logdet = np.linalg.slogdet(np.eye(dim) + S / ell2)
    diff = m1 - m2
    quad = float(diff @ np.linalg.solve(ell2 * np.eye(dim) + S, diff))
    return math.exp(-0.5 * logdet - 0.5 * quad)


def gaussian_rbf_kernel_mean(mean1, cov1, mean2, cov2, bandwidth: float) -> float:
    """E k(X, Y) for independent X ~ N(mean1, cov1), Y ~ N(mean2, cov2), k(x, y) = exp(−‖x−y‖²/(2ℓ²)).

        E k(X, Y) = det(I + (S1 + S2)/ℓ²)^{−1/2} · exp(−½ (m1 − m2)ᵀ (ℓ²I + S1 + S2)⁻¹ (m1 − m2))

    Args:
        mean1, mean2: (D,) means; cov1, cov2: (D, D) symmetric positive semidefinite covariances.
        bandwidth: ℓ > 0, the same ℓ as ``otgen.metrics.mmd(..., bandwidth=ℓ)``.

    Returns:
        float in (0, 1].
    """
    ell = _check_positive("bandwidth", bandwidth)
    m1, S1, m2, S2 = _check_pair(mean1, cov1, mean2, cov2)
    return _kernel_mean(m1, S1, m2, S2, ell * ell)


def gaussian_rbf_mmd2(mean1, cov1, mean2, cov2, bandwidth: float) -> float:
    """Population MMD² between N(mean1, cov1) and N(mean2, cov2) with the RBF kernel of bandwidth ℓ.

        MMD² = E k(X, X') + E k(Y, Y') − 2 E k(X, Y),   k(x, y) = exp(−‖x − y‖² / (2ℓ²)),

    each term by :func:`gaussian_rbf_kernel_mean`. This is the quantity that the unbiased estimator
    ``otgen.metrics.mmd(x, y, bandwidth=ℓ)`` estimates (same kernel, same ℓ).

    Args:
        mean1, mean2: (D,) means; cov1, cov2: (D, D) symmetric positive semidefinite covariances.
        bandwidth: ℓ > 0.

    Returns:
        float >= 0 (MMD², not MMD); exactly 0 for identical Gaussians.
    """
    ell = _check_positive("bandwidth", bandwidth)
    m1, S1, m2, S2 = _check_pair(mean1, cov1, mean2, cov2)
    ell2 = ell * ell
    kxx = _kernel_mean(m1, S1, m1, S1, ell2)
    kyy = _kernel_mean(m2, S2, m2, S2, ell2)
    kxy = _kernel_mean(m1, S1, m2, S2, ell2)
    return max(0.0, kxx + kyy - 2.0 * kxy)
