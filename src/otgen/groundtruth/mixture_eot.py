"""Gaussian-mixture pairs with a known entropic OT plan (Gushchin et al., NeurIPS 2023 D&B).

Construction (groundtruth.md §3): pick a source P and a positive function v(y) = Σ_k w_k N(y | μ_k, Σ_k)
(a Gaussian mixture, the "potential"). The plan

    pi(x, y) = P(x) · N(y | x, eps·I) v(y) / Z(x),        Z(x) = ∫ N(y | x, eps·I) v(y) dy,

has the Schrödinger form a(x) b(y) exp(−‖x − y‖² / (2 eps)), so it is the optimal EOT_eps plan
(Skoltech eps: cost ½‖x − y‖² + eps·KL) between its own marginals P and Q (Q = its y-marginal).
Its conditionals are Gaussian mixtures (§3.2):

    pi(y | x) = Σ_k w_k(x) N(y | m_k(x), S_k)
    S_k       = (Σ_k⁻¹ + I/eps)⁻¹                         (the same for every x)
    m_k(x)    = S_k (Σ_k⁻¹ μ_k + x / eps)                  (affine in x)
    w_k(x)    ∝ w_k N(x | μ_k, Σ_k + eps·I)                (a softmax over k)

Q has no closed-form density: exact samples come from x ~ P, k ~ w(x), y ~ N(m_k(x), S_k), and its
mean and covariance are computed once by Rao–Blackwellised Monte Carlo over x (the conditional moments
are exact, only the outer expectation over P is sampled).

Parameters are float64 numpy; methods taking a torch tensor compute in float64 on its device and
return float32 (mps: float32 throughout).
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import torch

from otgen.checks import as_points
from otgen.distributions import Gaussian, GaussianMixture, Moons, Sampler
from otgen.distributions.base import draw

from .gaussian_eot import _as_spd, _check_draws, _check_eps, _check_int, _check_positive, _copy64, _real_array

__all__ = ["MixtureEOTPair"]

_LOG_2PI = math.log(2.0 * math.pi)


class _MixturePotential(torch.nn.Module):
    """f(y) = eps·log Σ_k w_k N(y | μ_k, Σ_k): (n, D) -> (n,) in float32 (see ``optimal_potential``)."""

    def __init__(self, weights, means, covs, eps: float):
        super().__init__()
        chol = np.linalg.cholesky(covs)
        log_norm = np.log(weights) - np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1)
        self.eps = float(eps)
        self.register_buffer("means", torch.tensor(means, dtype=torch.float32))
        self.register_buffer("chol", torch.tensor(chol, dtype=torch.float32))
        self.register_buffer("log_norm", torch.tensor(log_norm, dtype=torch.float32))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        diff = (y[None] - self.means[:, None]).transpose(1, 2)  # (K, D, n)
        z = torch.linalg.solve_triangular(self.chol, diff, upper=False)
        return self.eps * torch.logsumexp(self.log_norm[:, None] - 0.5 * (z * z).sum(1), dim=0)


class _PlanTarget(Sampler):
    """The exact sampler of Q, the y-marginal of the pair's plan: ``n, generator -> (n, D)``."""

    def __init__(self, pair: "MixtureEOTPair"):
        self._pair = pair
        self.event_shape = (pair.dim,)

    def sample(self, n, generator=None):
        x = draw(self._pair.source, n, generator=generator)
        return self._pair.conditional_sample(x, 1, generator=generator)[:, 0]

    def __repr__(self) -> str:
        return f"MixturePlanTarget({self._pair!r})"


class MixtureEOTPair:
    """A source P, a Gaussian-mixture potential v, and the exact EOT_eps plan between P and its target Q.

    The default construction (groundtruth.md §3.6) is P = N(0, I_dim) and v with ``n_components``
    equal-weight components whose means are uniformly random directions scaled to ``mean_radius``
    and whose covariances are ``component_variance · I``; everything random comes from
    ``np.random.default_rng(seed)``. Other constructions: :meth:`from_potential` (any mixture v and
    source) and :meth:`from_points` (v = k-means centres of a point cloud, e.g. Gaussian → moons).

    Args:
        dim: dimension D ≥ 1.
        eps: Skoltech regularisation strength, > 0.
        n_components: number K ≥ 1 of components of v.
        seed: seed of the construction (same seed, same pair), ≥ 0.
        source: P; ``None`` for N(0, I_dim), else a :class:`~otgen.distributions.Gaussian` or
            :class:`~otgen.distributions.GaussianMixture` of dimension ``dim``.
        mean_radius: distance of each component mean from the origin, > 0.
        component_variance: isotropic variance of each component, > 0.

    Attributes:
        source: the sampler of P (``n, generator -> (n, D)``).
        target: the exact sampler of Q (``n, generator -> (n, D)``).
        weights (K,), means (K, D), covs (K, D, D): the mixture v (float64 numpy).
        target_mean (D,), target_cov (D, D): moments of Q (Monte Carlo over x; see the module doc).
    """

    def __init__(self, dim: int, eps: float, n_components: int = 4, seed: int = 0, source=None,
                 mean_radius: float = 3.0, component_variance: float = 0.1):
        dim = _check_int("dim", dim, 1)
        n_components = _check_int("n_components", n_components, 1)
        seed = _check_int("seed", seed, 0)
        mean_radius = _check_positive("mean_radius", mean_radius)
        component_variance = _check_positive("component_variance", component_variance)
        rng = np.random.default_rng(seed)
        directions = rng.standard_normal((n_components, dim))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        weights = np.full(n_components, 1.0 / n_components)
        covs = np.broadcast_to(component_variance * np.eye(dim), (n_components, dim, dim))
        self._init(weights, mean_radius * directions, covs, eps, source, seed)
        self._description = (f"MixtureEOTPair(dim={dim}, eps={self.eps}, n_components={n_components}, seed={seed}, "
                             f"mean_radius={mean_radius}, component_variance={component_variance})")

    # -- other constructions --------------------------------------------------------------------

    @classmethod
    def from_potential(cls, weights, means, covs, eps: float, source=None, seed: int = 0) -> "MixtureEOTPair":
        """The pair of a given mixture v = Σ_k weights[k] N(means[k], covs[k]) and source P.

        ``weights``: (K,) positive (normalised here; the plan does not depend on v's total mass);
        ``means``: (K, D); ``covs``: (K, D, D) symmetric positive definite; ``source`` as in the
        constructor; ``seed`` seeds only the Monte Carlo of the target moments.
        """
        pair = cls.__new__(cls)
        pair._init(weights, means, covs, eps, source, _check_int("seed", seed, 0))
        pair._description = f"MixtureEOTPair.from_potential(K={pair.n_components}, dim={pair.dim}, eps={pair.eps})"
        return pair

    @classmethod
    def from_points(cls, points, eps: float, n_components: int = 100, component_variance: float = 0.001,
                    source=None, seed: int = 0) -> "MixtureEOTPair":
        """v = equal-weight mixture of the k-means centres of a point cloud (the "Gaussian → data" pairs).

        ``points``: (n, D) array or tensor with n ≥ ``n_components``; the centres come from
        ``scipy.cluster.vq.kmeans2`` (k-means++ start, seeded); each component is
        N(centre, component_variance · I). The target Q is then close to the point cloud's law
        blurred by the plan (how close depends on eps). Source: N(0, I_D) unless given.
        """
        from scipy.cluster.vq import kmeans2

        pts = as_points("points", points)
        n_components = _check_int("n_components", n_components, 1)
        if n_components > pts.shape[0]:
            raise ValueError(f"n_components must be <= the number of points ({pts.shape[0]}), got {n_components}")
        component_variance = _check_positive("component_variance", component_variance)
        seed = _check_int("seed", seed, 0)
        centres, _ = kmeans2(pts, n_components, minit="++", seed=np.random.default_rng(seed))
        dim = pts.shape[1]
        covs = np.broadcast_to(component_variance * np.eye(dim), (n_components, dim, dim))
        pair = cls.from_potential(np.full(n_components, 1.0 / n_components), centres, covs, eps, source, seed)
        pair._description = (f"MixtureEOTPair.from_points(n={pts.shape[0]}, dim={dim}, eps={pair.eps}, "
                             f"n_components={n_components}, component_variance={component_variance})")
        return pair

    @classmethod
    def gaussian_to_moons(cls, eps: float = 0.05, n_components: int = 100, component_variance: float = 0.001,
                          n_points: int = 10_000, seed: int = 0) -> "MixtureEOTPair":
        """N(0, I_2) → moons: v from the k-means centres of ``n_points`` draws of
        :class:`~otgen.distributions.Moons` (the 2-D construction of the benchmark's authors)."""
        n_points = _check_int("n_points", n_points, 1)
        pts = Moons()(n_points, generator=torch.Generator().manual_seed(_check_int("seed", seed, 0)))
        return cls.from_points(pts, eps, n_components=n_components, component_variance=component_variance, seed=seed)

    # -- shared set-up --------------------------------------------------------------------------

    def _init(self, weights, means, covs, eps, source, seed: int) -> None:
        self.eps = _check_eps(eps)
        self.seed = seed
        means = means.detach().cpu().double().numpy() if isinstance(means, torch.Tensor) else means
        means = _real_array("means", means)
        if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
            raise ValueError(f"means must have shape (K, D) with K, D >= 1, got {means.shape}")
        if not np.all(np.isfinite(means)):
            raise ValueError("means has non-finite entries")
        n_comp, dim = means.shape
        w = weights.detach().cpu().double().numpy() if isinstance(weights, torch.Tensor) else weights
        w = _real_array("weights", w)
        if w.shape != (n_comp,):
            raise ValueError(f"weights must have shape (K,) = ({n_comp},), got {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError(f"weights must be positive and finite, got {w}")
        covs = covs.detach().cpu().double().numpy() if isinstance(covs, torch.Tensor) else covs
        covs = _real_array("covs", covs)
        if covs.shape != (n_comp, dim, dim):
            raise ValueError(f"covs must have shape (K, D, D) = ({n_comp}, {dim}, {dim}), got {covs.shape}")
        covs = np.stack([_as_spd(f"covs[{k}]", c, dim) for k, c in enumerate(covs)])

        if source is None:
            source = Gaussian.standard(dim)
        if not isinstance(source, (Gaussian, GaussianMixture)):
            raise ValueError(f"source must be None, a Gaussian or a GaussianMixture, got {type(source).__name__}")
        if source.dim != dim:
            raise ValueError(f"source must have dimension {dim} (the mixture's), got {source.dim}")

        self.dim, self.n_components = dim, n_comp
        self.weights = _copy64(w / w.sum())
        self.means = _copy64(means)
        self.covs = _copy64(covs)
        self.source = source
        self.target = _PlanTarget(self)

        eye = np.eye(dim)
        cov_inv = np.linalg.inv(covs)
        self._cond_cov = np.linalg.inv(cov_inv + eye / self.eps)  # S_k
        self._cond_cov = 0.5 * (self._cond_cov + np.swapaxes(self._cond_cov, 1, 2))
        self._cond_offset = np.einsum("kij,kjl,kl->ki", self._cond_cov, cov_inv, means)  # S_k Σ_k⁻¹ μ_k
        self._cond_chol = np.linalg.cholesky(self._cond_cov)
        # w_k(x) ∝ w_k N(x | μ_k, Σ_k + eps I): precision Cholesky factors and log-normalisers
        marg = covs + self.eps * eye
        self._marg_chol = np.linalg.cholesky(marg)
        self._marg_logw = (np.log(self.weights) - 0.5 * dim * _LOG_2PI
                           - np.log(np.diagonal(self._marg_chol, axis1=1, axis2=2)).sum(axis=1))
        self._cond_logdet = 2.0 * np.log(np.diagonal(self._cond_chol, axis1=1, axis2=2)).sum(axis=1)
        self._cache: dict = {}

    def __repr__(self) -> str:
        return self._description

    def optimal_potential(self) -> torch.nn.Module:
        """EgNOT's optimal potential f*(y) = eps·log v(y) (up to a constant) as a module (n, D) -> (n,)
        float32: with the cost ½‖x − y‖², (f*(y) − ½‖x − y‖²)/eps = log pi(y | x) + const(x). Used
        to test a sampler alone, given the exact potential."""
        return _MixturePotential(self.weights, self.means, self.covs, self.eps)

    # -- tensors on a device --------------------------------------------------------------------

    @staticmethod
    def _work_dtype(device: torch.device) -> torch.dtype:
        return torch.float32 if device.type == "mps" else torch.float64

    def _t(self, name: str, device: torch.device) -> torch.Tensor:
        key = (name, str(device))
        if key not in self._cache:
            arr = {"means": self.means, "cond_cov": self._cond_cov, "cond_offset": self._cond_offset,
                   "cond_chol": self._cond_chol, "marg_chol": self._marg_chol, "marg_logw": self._marg_logw,
                   "cond_logdet": self._cond_logdet}[name]
            self._cache[key] = torch.from_numpy(np.array(arr)).to(device=device, dtype=self._work_dtype(device))
        return self._cache[key]

    def _check_x(self, x) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            x = torch.from_numpy(_real_array("x", x))
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("x has non-finite entries")
        return x.to(self._work_dtype(x.device))

    # -- exact conditionals ---------------------------------------------------------------------

    def _log_weights(self, x: torch.Tensor) -> torch.Tensor:
        """log w_k(x), (n, K), in x's (work) dtype."""
        diff = (x[None] - self._t("means", x.device)[:, None]).transpose(1, 2)  # (K, D, n)
        z = torch.linalg.solve_triangular(self._t("marg_chol", x.device), diff, upper=False)
        logits = self._t("marg_logw", x.device)[None] - 0.5 * (z * z).sum(1).T
        return torch.log_softmax(logits, dim=1)

    def _component_means(self, x: torch.Tensor) -> torch.Tensor:
        """m_k(x) = S_k Σ_k⁻¹ μ_k + S_k x / eps, (n, K, D)."""
        return self._t("cond_offset", x.device)[None] + torch.einsum("kij,nj->nki", self._t("cond_cov", x.device),
                                                                     x) / self.eps

    def conditional_weights(self, x) -> torch.Tensor:
        """w_k(x), the mixture weights of pi(y | x): (n, D) -> (n, K) float32 on x's device."""
        return self._log_weights(self._check_x(x)).exp().float()

    def conditional_component_means(self, x) -> torch.Tensor:
        """m_k(x): (n, D) -> (n, K, D) float32 on x's device."""
        return self._component_means(self._check_x(x)).float()

    def conditional_mean(self, x) -> torch.Tensor:
        """E[y | x] = Σ_k w_k(x) m_k(x): (n, D) -> (n, D) float32 on x's device."""
        x = self._check_x(x)
        return torch.einsum("nk,nki->ni", self._log_weights(x).exp(), self._component_means(x)).float()

    def conditional_moments(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact mean (n, D) and covariance (n, D, D) of pi(y | x), float32 on x's device.

        Cov = Σ_k w_k(x) S_k + Σ_k w_k(x) (m_k(x) − m̄(x))(m_k(x) − m̄(x))ᵀ.
        """
        x = self._check_x(x)
        w = self._log_weights(x).exp()
        m = self._component_means(x)
        mean = torch.einsum("nk,nki->ni", w, m)
        d = m - mean[:, None]
        cov = torch.einsum("nk,kij->nij", w, self._t("cond_cov", x.device)) + torch.einsum("nk,nki,nkj->nij", w, d, d)
        return mean.float(), (0.5 * (cov + cov.transpose(1, 2))).float()

    def _check_y(self, x: torch.Tensor, y) -> torch.Tensor:
        return _check_draws(y, x, self.dim, x.dtype)

    def _component_log_prob(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """log [w_k(x) N(y | m_k(x), S_k)], (n, m, K), in the work dtype (checked inputs)."""
        n, m, _ = y.shape
        diff = y[:, :, None, :] - self._component_means(x)[:, None]  # (n, m, K, D)
        flat = diff.permute(2, 3, 0, 1).reshape(self.n_components, self.dim, n * m)
        z = torch.linalg.solve_triangular(self._t("cond_chol", x.device), flat, upper=False)
        quad = (z * z).sum(1).reshape(self.n_components, n, m).permute(1, 2, 0)  # (n, m, K)
        log_norm = -0.5 * (self.dim * _LOG_2PI + self._t("cond_logdet", x.device))
        return self._log_weights(x)[:, None, :] + log_norm - 0.5 * quad

    def conditional_component_log_prob(self, x, y) -> torch.Tensor:
        """log [w_k(x) N(y | m_k(x), S_k)] for each component k.

        ``x``: (n, D); ``y``: (n, m, D) (m draws per condition) -> (n, m, K) float32. Their
        logsumexp over k is log pi(y | x); their softmax over k the posterior responsibilities.
        """
        x = self._check_x(x)
        return self._component_log_prob(x, self._check_y(x, y)).float()

    def conditional_responsibilities(self, x, y) -> torch.Tensor:
        """P(component k | x, y) under pi(· | x): x (n, D), y (n, m, D) -> (n, m, K) float32.

        For exact draws y ~ pi(· | x) their mean over draws is an unbiased estimate of w_k(x).
        """
        x = self._check_x(x)
        return torch.softmax(self._component_log_prob(x, self._check_y(x, y)), dim=-1).float()

    def conditional_log_prob(self, x, y) -> torch.Tensor:
        """log pi(y | x): x (n, D), y (n, m, D) -> (n, m) float32."""
        x = self._check_x(x)
        return torch.logsumexp(self._component_log_prob(x, self._check_y(x, y)), dim=-1).float()

    def conditional_sample(self, x, n_per_x: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Exact draws y ~ pi(· | x): (n, D) -> (n, n_per_x, D) float32 on x's device.

        Component k by Gumbel-max on log w_k(x), then y = m_k(x) + chol(S_k) z. Randomness is drawn on
        ``generator``'s device (CPU when none is given and x is on the CPU).
        """
        n_per_x = _check_int("n_per_x", n_per_x, 1)
        x = self._check_x(x)
        n = x.shape[0]
        noise_device = generator.device if generator is not None else x.device
        u = torch.rand(n, n_per_x, self.n_components, generator=generator, device=noise_device, dtype=torch.float64)
        gumbel = -torch.log(-torch.log(u.clamp_min(1e-300)))
        k = (self._log_weights(x)[:, None, :] + gumbel.to(device=x.device, dtype=x.dtype)).argmax(-1)  # (n, m)
        z = torch.randn(n, n_per_x, self.dim, generator=generator, device=noise_device, dtype=torch.float64)
        z = z.to(device=x.device, dtype=x.dtype)
        y = torch.gather(self._component_means(x), 1, k[..., None].expand(n, n_per_x, self.dim))
        chol = self._t("cond_chol", x.device)
        for j in range(self.n_components):  # one matmul per component: memory O(n·m·D), not O(n·m·D²)
            mask = k == j
            if mask.any():
                y[mask] += z[mask] @ chol[j].T
        return y.float()

    # -- target moments ---------------------------------------------------------------------------

    @cached_property
    def _target_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """E[y] and Cov(y) under Q: exact conditional moments averaged over 2^17 draws of x ~ P
        (seeded by the pair's seed; chunks of 4096)."""
        gen = torch.Generator().manual_seed(10_007 + self.seed)
        n_total, chunk = 2**17, 4096
        first = np.zeros(self.dim)
        second = np.zeros((self.dim, self.dim))
        cond_cov = self._t("cond_cov", torch.device("cpu"))
        for _ in range(n_total // chunk):
            x = draw(self.source, chunk, generator=gen).double()
            w = self._log_weights(x).exp()  # (n, K)
            m = self._component_means(x)  # (n, K, D)
            first += torch.einsum("nk,nki->i", w, m).numpy()
            second += (torch.einsum("k,kij->ij", w.sum(0), cond_cov) + torch.einsum("nk,nki,nkj->ij", w, m, m)).numpy()
        mean = first / n_total
        cov = second / n_total - np.outer(mean, mean)
        return mean, 0.5 * (cov + cov.T)

    @property
    def target_mean(self) -> np.ndarray:
        """(D,) E[y] under Q (float64; Monte Carlo over x, exact given x)."""
        return self._target_moments[0].copy()

    @property
    def target_cov(self) -> np.ndarray:
        """(D, D) Cov(y) under Q (float64; Monte Carlo over x, exact given x)."""
        return self._target_moments[1].copy()

    def target_variance(self) -> float:
        """Var Q = Tr Cov(y) (the cBW2-UVP normaliser is ½ of it)."""
        return float(np.trace(self._target_moments[1]))
