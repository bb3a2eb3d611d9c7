"""Closed-form entropic OT between Gaussians, and the rotated-Gaussian benchmark pair.

Convention (Skoltech eps, see ``conventions.py``): for P = N(a, A) and Q = N(b, B) in R^D,

    EOT_eps(P, Q) = min_pi E_pi[½‖x − y‖²] + eps · KL(pi ‖ P ⊗ Q).

The optimal plan is Gaussian (Janati et al. 2020, Thm 1, with sigma² = eps; groundtruth.md §2.2):

    D_eps = (4 A^{1/2} B A^{1/2} + eps² I)^{1/2}
    C     = ½ (A^{1/2} D_eps A^{−1/2} − eps I)                 = Cov_pi(X, Y)   (not symmetric)
    pi    = N([a; b], [[A, C], [Cᵀ, B]])
    y | x ~ N(b + Cᵀ A^{−1} (x − a),  B − Cᵀ A^{−1} C)
    EOT_eps = ½ [‖a−b‖² + Tr A + Tr B − Tr D_eps + D eps (1 − log 2eps) + eps log det(D_eps + eps I)]

Everything is computed once in float64 numpy; methods that take a torch tensor return float32
tensors on that tensor's device.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import torch
from scipy.stats import special_ortho_group

from otgen.checks import real_array
from otgen.distributions import Gaussian

__all__ = ["GaussianEOTPlan", "entropic_gaussian_plan", "GaussianEOTPair"]


# ----------------------------------------------------------------------------- validation helpers


def _check_positive(name: str, value) -> float:
    """``value`` as a float if it is a finite real number > 0; a ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number (0 < {name} < inf), got {value!r}")
    return float(value)


def _check_int(name: str, value, low: int) -> int:
    """``value`` as an int if it is an integer >= ``low``; a ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _check_eps(eps) -> float:
    return _check_positive("eps", eps)


def _real_array(name: str, value, dtype=np.float64) -> np.ndarray:
    """``value`` (a Tensor, an array, a list of numbers) as a numpy array of ``dtype``; ValueError naming
    ``name`` for what holds no real numbers (``checks.real_array``)."""
    return real_array(name, value, dtype)


def _as_vector(name: str, value) -> np.ndarray:
    v = _real_array(name, value)
    if v.ndim != 1:
        raise ValueError(f"{name} must be a vector of shape (D,), got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} has non-finite entries")
    return v


def _as_spd(name: str, value, dim: int) -> np.ndarray:
    m = _real_array(name, value)
    if m.shape != (dim, dim):
        raise ValueError(f"{name} must have shape ({dim}, {dim}), got {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{name} has non-finite entries")
    scale = max(1.0, float(np.abs(m).max()))
    if not np.allclose(m, m.T, rtol=0.0, atol=1e-10 * scale):
        raise ValueError(f"{name} must be symmetric")
    m = 0.5 * (m + m.T)
    lam_min = float(np.linalg.eigvalsh(m).min())
    if lam_min <= 0:
        raise ValueError(f"{name} must be positive definite, smallest eigenvalue is {lam_min:.3g}")
    return m


def _two_gaussians(names: tuple[str, str, str, str], mean1, cov1, mean2, cov2, matrix=_as_spd):
    """Validate two Gaussians of one dimension D, named ``names`` (mean1, cov1, mean2, cov2), the
    covariances by ``matrix(name, value, D)`` -> (m1 (D,), S1 (D, D), m2 (D,), S2 (D, D))."""
    m1 = _as_vector(names[0], mean1)
    dim = m1.size
    if dim < 1:
        raise ValueError(f"{names[0]} must have shape (D,) with D >= 1, got {m1.shape}")
    m2 = _as_vector(names[2], mean2)
    if m2.size != dim:
        raise ValueError(f"{names[2]} must have shape ({dim},) like {names[0]}, got {m2.shape}")
    return m1, matrix(names[1], cov1, dim), m2, matrix(names[3], cov2, dim)


def _sqrtm_sym(m: np.ndarray) -> np.ndarray:
    """Principal square root of a symmetric positive (semi)definite matrix, symmetrised."""
    r = np.real(scipy.linalg.sqrtm(m))
    return 0.5 * (r + r.T)


def _to_torch(a: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A copy of a (possibly read-only) numpy array as a torch tensor."""
    return torch.from_numpy(np.array(a, dtype=np.float64)).to(device=device, dtype=dtype)


def _check_draws(y, x: torch.Tensor, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """Draws y (n, m, D) given the n conditions x, checked and moved to x's device in ``dtype``."""
    if not isinstance(y, torch.Tensor):
        y = torch.from_numpy(_real_array("y", y))
    if y.ndim != 3 or y.shape[0] != x.shape[0] or y.shape[2] != dim:
        raise ValueError(f"y must have shape (n, m, {dim}) with n = {x.shape[0]}, got {tuple(y.shape)}")
    if not torch.isfinite(y).all():
        raise ValueError("y has non-finite entries")
    return y.to(device=x.device, dtype=dtype)


def _copy64(a) -> np.ndarray:
    """A float64 copy. (Not flagged read-only: torch.as_tensor warns on read-only arrays.)"""
    return np.array(a, dtype=np.float64)


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class GaussianEOTPlan:
    """The optimal entropic plan between N(mean_x, cov_x) and N(mean_y, cov_y) (Skoltech eps).

    Build it with :func:`entropic_gaussian_plan`. All arrays are float64 numpy; treat them as
    read-only (the fields are frozen, the arrays are shared).

    Attributes:
        mean_x, mean_y: (D,) marginal means a, b.
        cov_x, cov_y: (D, D) marginal covariances A, B.
        eps: the regularisation strength.
        value: EOT_eps(P, Q) (float), = ½ · Janati's OT_sigma with sigma² = eps.
        cross_cov: (D, D) C = Cov_pi(X, Y) = E[(X − a)(Y − b)ᵀ].
        conditional_cov: (D, D) Cov(Y | X = x) = B − Cᵀ A⁻¹ C (the same for every x).
        conditional_gain: (D, D) K = Cᵀ A⁻¹, so that E[Y | X = x] = b + K (x − a).
    """

    mean_x: np.ndarray
    cov_x: np.ndarray
    mean_y: np.ndarray
    cov_y: np.ndarray
    eps: float
    value: float
    cross_cov: np.ndarray
    conditional_cov: np.ndarray
    conditional_gain: np.ndarray
    _conditional_chol: np.ndarray = field(repr=False)

    @property
    def dim(self) -> int:
        return int(self.mean_x.size)

    @property
    def joint_mean(self) -> np.ndarray:
        """(2D,) mean [a; b] of the plan."""
        return np.concatenate([self.mean_x, self.mean_y])

    @property
    def joint_cov(self) -> np.ndarray:
        """(2D, 2D) covariance [[A, C], [Cᵀ, B]] of the plan."""
        return np.block([[self.cov_x, self.cross_cov], [self.cross_cov.T, self.cov_y]])

    def transport_cost(self) -> float:
        """E_pi[½‖x − y‖²] = ½(‖a − b‖² + Tr A + Tr B − 2 Tr C), exactly."""
        d = self.mean_x - self.mean_y
        return 0.5 * float(d @ d + np.trace(self.cov_x) + np.trace(self.cov_y) - 2.0 * np.trace(self.cross_cov))

    # -- conditionals --------------------------------------------------------------------------

    def _check_x(self, x):
        if isinstance(x, torch.Tensor):
            if x.ndim != 2 or x.shape[1] != self.dim:
                raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
            if not torch.isfinite(x).all():
                raise ValueError("x has non-finite entries")
        else:
            x = _real_array("x", x)
            if x.ndim != 2 or x.shape[1] != self.dim:
                raise ValueError(f"x must have shape (n, {self.dim}), got {x.shape}")
            if not np.all(np.isfinite(x)):
                raise ValueError("x has non-finite entries")
        return x

    @staticmethod
    def _work_dtype(device: torch.device) -> torch.dtype:
        return torch.float32 if device.type == "mps" else torch.float64

    def conditional_mean(self, x):
        """E[Y | X = x] = b + Cᵀ A⁻¹ (x − a).

        ``x``: (n, D) torch tensor -> (n, D) float32 tensor on x's device;
        (n, D) array-like -> (n, D) float64 ndarray.
        """
        x = self._check_x(x)
        if isinstance(x, torch.Tensor):
            dt = self._work_dtype(x.device)
            a = _to_torch(self.mean_x, dt, x.device)
            b = _to_torch(self.mean_y, dt, x.device)
            k = _to_torch(self.conditional_gain, dt, x.device)
            return (b + (x.to(dt) - a) @ k.T).to(torch.float32)
        return self.mean_y + (x - self.mean_x) @ self.conditional_gain.T

    def conditional_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact moments of pi(y | x): mean (n, D) and covariance (n, D, D), float32 on x's device.

        ``x``: (n, D) tensor (array-likes are converted to a CPU tensor).
        """
        if not isinstance(x, torch.Tensor):
            x = torch.from_numpy(_real_array("x", x, np.float32))
        mean = self.conditional_mean(x)
        cov = _to_torch(self.conditional_cov, torch.float32, x.device)
        return mean, cov.expand(x.shape[0], self.dim, self.dim).clone()

    def conditional_log_prob(self, x, y) -> torch.Tensor:
        """log pi(y | x) = log N(y | b + K(x − a), S): x (n, D), y (n, m, D) -> (n, m) float32 on x's device."""
        if not isinstance(x, torch.Tensor):
            x = torch.from_numpy(_real_array("x", x))
        x = self._check_x(x)
        dt = self._work_dtype(x.device)
        gain = _to_torch(self.conditional_gain, dt, x.device)
        mean = _to_torch(self.mean_y, dt, x.device) + (x.to(dt) - _to_torch(self.mean_x, dt, x.device)) @ gain.T
        y = _check_draws(y, x, self.dim, dt)
        chol = _to_torch(self._conditional_chol, dt, x.device)
        diff = (y - mean[:, None]).reshape(-1, self.dim)
        z = torch.linalg.solve_triangular(chol, diff.T, upper=False)
        logdet = 2.0 * float(np.log(np.diag(self._conditional_chol)).sum())
        logp = -0.5 * ((z * z).sum(0) + self.dim * math.log(2.0 * math.pi) + logdet)
        return logp.reshape(y.shape[0], y.shape[1]).to(torch.float32)

    def conditional_sample(
        self, x: torch.Tensor, n_per_x: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Exact draws y ~ pi(· | x): (n, D) tensor -> (n, n_per_x, D) float32 on x's device.

        The noise is drawn on ``generator``'s device (CPU when no generator is given and x is on
        the CPU; x's device otherwise), so a seeded CPU generator gives the same draws everywhere.
        """
        if isinstance(n_per_x, bool) or not isinstance(n_per_x, numbers.Integral) or n_per_x < 1:
            raise ValueError(f"n_per_x must be a positive int, got {n_per_x!r}")
        if not isinstance(x, torch.Tensor):
            x = torch.from_numpy(_real_array("x", x, np.float32))
        mean = self.conditional_mean(x)
        noise_device = generator.device if generator is not None else x.device
        z = torch.randn(x.shape[0], int(n_per_x), self.dim, generator=generator, device=noise_device)
        chol = _to_torch(self._conditional_chol, torch.float32, x.device)
        return mean[:, None, :] + z.to(x.device) @ chol.T


def entropic_gaussian_plan(mean_x, cov_x, mean_y, cov_y, eps: float) -> GaussianEOTPlan:
    """Closed-form EOT_eps plan between N(mean_x, cov_x) and N(mean_y, cov_y) (Skoltech eps).

    Args:
        mean_x, mean_y: (D,) means (numpy or torch).
        cov_x, cov_y: (D, D) symmetric positive definite covariances.
        eps: regularisation strength, > 0 (``EOT_eps = min E[½‖x−y‖²] + eps·KL(pi‖P⊗Q)``).

    Returns:
        A :class:`GaussianEOTPlan` (float64 numpy inside).
    """
    eps = _check_eps(eps)
    a = _as_vector("mean_x", mean_x)
    b = _as_vector("mean_y", mean_y)
    if b.size != a.size:
        raise ValueError(f"mean_y must have shape ({a.size},) like mean_x, got {b.shape}")
    dim = a.size
    A = _as_spd("cov_x", cov_x, dim)
    B = _as_spd("cov_y", cov_y, dim)
    eye = np.eye(dim)

    A_half = _sqrtm_sym(A)
    A_half_inv = np.linalg.inv(A_half)
    D = _sqrtm_sym(4.0 * A_half @ B @ A_half + eps**2 * eye)
    C = 0.5 * (A_half @ D @ A_half_inv - eps * eye)

    diff = a - b
    _, logdet = np.linalg.slogdet(D + eps * eye)
    janati_value = (
        diff @ diff + np.trace(A) + np.trace(B) - np.trace(D) + dim * eps * (1.0 - math.log(2.0 * eps)) + eps * logdet
    )

    gain = np.linalg.solve(A, C).T  # Cᵀ A⁻¹ (A symmetric)
    cond_cov = B - gain @ C
    cond_cov = 0.5 * (cond_cov + cond_cov.T)
    cond_chol = np.linalg.cholesky(cond_cov)

    return GaussianEOTPlan(
        mean_x=_copy64(a),
        cov_x=_copy64(A),
        mean_y=_copy64(b),
        cov_y=_copy64(B),
        eps=eps,
        value=0.5 * float(janati_value),
        cross_cov=_copy64(C),
        conditional_cov=_copy64(cond_cov),
        conditional_gain=_copy64(gain),
        _conditional_chol=_copy64(cond_chol),
    )


# ----------------------------------------------------------------------------- benchmark pair


def _bures_cross_term(s1: np.ndarray, s2: np.ndarray) -> float:
    """Tr((S1^{1/2} S2 S1^{1/2})^{1/2}) for symmetric PSD S1, S2."""
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    inner = r1 @ s2 @ r1
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (inner + inner.T)), 0.0, None)).sum())


class GaussianEOTPair:
    """Rotated-Gaussian benchmark pair with its exact entropic OT plan (EgNOT/ENOT construction).

    Source P = N(source_mean, source_cov) and target Q = N(target_mean, target_cov) in R^dim. Each
    covariance is R diag(λ) Rᵀ with λ log-spaced from 0.25 to 4 (``np.geomspace``) and R an
    independent uniformly random rotation (``scipy.stats.special_ortho_group``); for dim = 1 the
    variance is log-uniform in [0.25, 4]. Means are zero unless ``mean_scale > 0``, then
    ``mean_scale · N(0, I)`` each. Everything is drawn from ``np.random.default_rng(seed)``.

    Args:
        dim: dimension D ≥ 1.
        eps: Skoltech regularisation strength, > 0.
        seed: seed of the construction (same seed, same pair).
        mean_scale: scale of the random means, ≥ 0.
    """

    def __init__(self, dim: int, eps: float, seed: int = 0, mean_scale: float = 0.0):
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
            raise ValueError(f"dim must be an int >= 1, got {dim!r}")
        eps = _check_eps(eps)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if (
            isinstance(mean_scale, bool)
            or not isinstance(mean_scale, numbers.Real)
            or not math.isfinite(mean_scale)
            or mean_scale < 0
        ):
            raise ValueError(f"mean_scale must be a finite number >= 0, got {mean_scale!r}")
        self.dim = int(dim)
        self.eps = eps
        self.seed = int(seed)
        self.mean_scale = float(mean_scale)

        rng = np.random.default_rng(self.seed)
        self.source_cov = _copy64(self._random_cov(self.dim, rng))
        self.target_cov = _copy64(self._random_cov(self.dim, rng))
        self.source_mean = _copy64(self.mean_scale * rng.standard_normal(self.dim))
        self.target_mean = _copy64(self.mean_scale * rng.standard_normal(self.dim))

        self.source = Gaussian(np.array(self.source_mean), np.array(self.source_cov))
        self.target = Gaussian(np.array(self.target_mean), np.array(self.target_cov))
        self.plan = entropic_gaussian_plan(self.source_mean, self.source_cov, self.target_mean, self.target_cov, eps)

    @staticmethod
    def _random_cov(dim: int, rng: np.random.Generator) -> np.ndarray:
        if dim == 1:
            return np.array([[math.exp(rng.uniform(math.log(0.25), math.log(4.0)))]])
        eigvals = np.geomspace(0.25, 4.0, dim)
        rot = special_ortho_group.rvs(dim, random_state=rng)
        cov = (rot * eigvals) @ rot.T
        return 0.5 * (cov + cov.T)

    def __repr__(self) -> str:
        return f"GaussianEOTPair(dim={self.dim}, eps={self.eps}, seed={self.seed}, mean_scale={self.mean_scale})"

    # -- exact conditionals (delegated to the plan) ---------------------------------------------

    def conditional_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact mean (n, D) and covariance (n, D, D) of pi(y | x), float32 on x's device."""
        return self.plan.conditional_moments(x)

    def conditional_sample(
        self, x: torch.Tensor, n_per_x: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Exact draws from pi(y | x): (n, D) -> (n, n_per_x, D) float32 on x's device."""
        return self.plan.conditional_sample(x, n_per_x, generator=generator)

    def conditional_log_prob(self, x, y) -> torch.Tensor:
        """log pi(y | x): x (n, D), y (n, m, D) -> (n, m) float32 on x's device."""
        return self.plan.conditional_log_prob(x, y)

    def target_variance(self) -> float:
        """Var Q = Tr(target_cov) (the cBW2-UVP normaliser is ½ of it)."""
        return float(np.trace(self.target_cov))

    # -- exact scores of trivial predictors -----------------------------------------------------

    def baselines(self) -> dict[str, float]:
        """Exact population cBW2²-UVP (%) of trivial predictors of pi(y | x).

        With m*(x) = b + K(x − a) and Σ* the exact conditional moments, a predictor that outputs
        N(m(x), S) scores 100 · E_x BW2²(m(x), S; m*(x), Σ*) / (½ Tr B), where
        BW2² = ½‖m − m*‖² + ½ Tr S + ½ Tr Σ* − Tr((S^{1/2} Σ* S^{1/2})^{1/2}) and, for a linear
        mean error M(x − a), E_x ½‖M(x − a)‖² = ½ Tr(M A Mᵀ).

        Returns a dict with keys:
            "independent": y ~ Q ignoring x (m = b, S = B);
            "conditional_mean": deterministic E[y | x] (S = 0);
            "constant": deterministic E[y] (= 100 by the law of total variance);
            "ot_map": deterministic eps = 0 Monge (Bures) map T*(x) = b + T (x − a).
        """
        A, B = self.source_cov, self.target_cov
        K = self.plan.conditional_gain
        S_star = self.plan.conditional_cov
        half_tr_s_star = 0.5 * float(np.trace(S_star))

        def mean_err(M: np.ndarray) -> float:
            return 0.5 * float(np.trace(M @ A @ M.T))

        A_half = _sqrtm_sym(A)
        A_half_inv = np.linalg.inv(A_half)
        T = A_half_inv @ _sqrtm_sym(A_half @ B @ A_half) @ A_half_inv

        cov_term_independent = 0.5 * float(np.trace(B)) + half_tr_s_star - _bures_cross_term(B, S_star)
        raw = {
            "independent": mean_err(K) + cov_term_independent,
            "conditional_mean": half_tr_s_star,
            "constant": mean_err(K) + half_tr_s_star,
            "ot_map": mean_err(T - K) + half_tr_s_star,
        }
        norm = 0.5 * self.target_variance()
        return {k: 100.0 * v / norm for k, v in raw.items()}
