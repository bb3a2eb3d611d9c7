"""Gaussian and Gaussian-mixture samplers (float64 parameters, float32 samples)."""

from __future__ import annotations

import numpy as np
import torch

from ..checks import real_array
from .. import shard
from .base import Sampler


def _as_floats(name: str, value) -> np.ndarray:
    """``value`` (an array, a list of numbers, a Tensor) as a float64 array; ValueError naming ``name``
    for what holds no real numbers."""
    return real_array(name, value)


def _as_matrix(name: str, value, dim: int) -> np.ndarray:
    m = _as_floats(name, value)
    if m.shape != (dim, dim):
        raise ValueError(f"{name} must have shape ({dim}, {dim}), got {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{name} has non-finite entries")
    if not np.allclose(m, m.T, atol=1e-10 * max(1.0, np.abs(m).max())):
        raise ValueError(f"{name} must be symmetric")
    if np.linalg.eigvalsh(m).min() <= 0:
        raise ValueError(f"{name} must be positive definite (smallest eigenvalue {np.linalg.eigvalsh(m).min():.3g})")
    return m


class Gaussian(Sampler):
    """N(mean, cov) in R^D. ``mean``: (D,), ``cov``: (D, D) symmetric positive definite. Row-keyed
    (``Sampler.row_keyed``): ``sample(n, generator, device=)`` draws on ``device``."""

    row_keyed = True

    def __init__(self, mean, cov):
        mean = _as_floats("mean", mean).reshape(-1)
        if mean.size == 0:
            raise ValueError("mean must have at least one entry (the dimension D >= 1), got an empty array")
        if not np.all(np.isfinite(mean)):
            raise ValueError("mean has non-finite entries")
        self.mean = mean
        self.cov = _as_matrix("cov", cov, mean.size)
        self.event_shape = (mean.size,)
        self._mean_t = torch.as_tensor(mean, dtype=torch.float32)
        self._chol_t = torch.as_tensor(np.linalg.cholesky(self.cov), dtype=torch.float32)

    @classmethod
    def standard(cls, dim: int) -> "Gaussian":
        """N(0, I_dim)."""
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim must be an int >= 1, got {dim!r}")
        return cls(np.zeros(dim), np.eye(dim))

    def sample(self, n, generator=None, device=None):
        z = shard.randn((n, self.dim), generator=generator, device=device)
        return self._mean_t.to(z.device) + z @ self._chol_t.to(z.device).T


class StandardNormal(Sampler):
    """N(0, I) with samples of any ``shape`` (e.g. (1, 16, 16): image-shaped noise, the source of UOTM
    and S-JKO image generators): ``(n, *shape)``, drawn as ``torch.randn`` (no matrix product); row-keyed
    (``Sampler.row_keyed``): ``sample(n, generator, device=)`` draws on ``device``."""

    row_keyed = True

    def __init__(self, shape):
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if not shape or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in shape):
            raise ValueError(f"shape must be a non-empty list of ints >= 1, got {list(shape)!r}")
        self.event_shape = tuple(int(s) for s in shape)

    def sample(self, n, generator=None, device=None):
        return shard.randn((n, *self.event_shape), generator=generator, device=device)


class GaussianMixture(Sampler):
    """Sum_k w_k N(mean_k, cov_k). ``weights``: (K,), ``means``: (K, D), ``covs``: (K, D, D)."""

    def __init__(self, weights, means, covs):
        w = _as_floats("weights", weights).reshape(-1)
        means = _as_floats("means", means)
        if means.ndim != 2 or means.shape[0] != w.size:
            raise ValueError(f"means must have shape (K={w.size}, D), got {means.shape}")
        if np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        dim = means.shape[1]
        covs = _as_floats("covs", covs)
        if covs.shape != (w.size, dim, dim):
            raise ValueError(f"covs must have shape ({w.size}, {dim}, {dim}), got {covs.shape}")
        self.weights = w / w.sum()
        self.means = means
        self.covs = np.stack([_as_matrix(f"covs[{k}]", c, dim) for k, c in enumerate(covs)])
        self.event_shape = (dim,)
        self._w_t = torch.as_tensor(self.weights, dtype=torch.float64)
        self._means_t = torch.as_tensor(means, dtype=torch.float32)
        self._chols_t = torch.as_tensor(np.linalg.cholesky(self.covs), dtype=torch.float32)

    @property
    def mean(self) -> np.ndarray:
        return self.weights @ self.means

    @property
    def cov(self) -> np.ndarray:
        m = self.mean
        d = self.means - m
        return np.einsum("k,kij->ij", self.weights, self.covs) + np.einsum("k,ki,kj->ij", self.weights, d, d)

    def sample(self, n, generator=None):
        """n draws (n, D) float32, on the device of ``generator`` (default: the CPU)."""
        device = generator.device if generator is not None else torch.device("cpu")
        w, means, chols = (t.to(device) for t in (self._w_t, self._means_t, self._chols_t))
        k = torch.multinomial(w, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, device=device)
        return means[k] + torch.einsum("nij,nj->ni", chols[k], z)

    def log_prob(self, x) -> torch.Tensor:
        """log density of points x (n, D): (n,) float64."""
        x = torch.as_tensor(np.asarray(x, dtype=np.float64))
        chols = torch.as_tensor(np.linalg.cholesky(self.covs))
        diff = (x[:, None, :] - torch.as_tensor(self.means)[None]).unsqueeze(-1)  # (n, K, D, 1)
        white = torch.linalg.solve_triangular(chols[None], diff, upper=False).squeeze(-1)
        log_det = torch.diagonal(chols, dim1=-2, dim2=-1).log().sum(-1)  # ½ log det cov_k
        log_n = -0.5 * white.pow(2).sum(-1) - log_det - 0.5 * self.dim * np.log(2 * np.pi)
        return torch.logsumexp(log_n + torch.as_tensor(self.weights).log(), dim=1)

    @classmethod
    def fit(cls, samples, components: int = 10, covariance: str = "full", seed: int = 0,
            reg_covar: float = 1e-6, max_iter: int = 200) -> "GaussianMixture":
        """The mixture of ``components`` Gaussians fitted to ``samples`` (n, D) by EM (scikit-learn's
        ``GaussianMixture``, started from k-means with ``random_state=seed``; ``reg_covar`` is added
        to every covariance's diagonal). ``covariance``: "full" or "diag" (diagonal covariances, kept
        here as (D, D) matrices). ValueError for fewer samples than components."""
        from sklearn.mixture import GaussianMixture as SkMixture

        x = _as_floats("samples", samples)
        if x.ndim != 2 or not np.all(np.isfinite(x)):
            raise ValueError(f"samples must be a finite (n, D) array, got shape {x.shape}")
        if covariance not in ("full", "diag"):
            raise ValueError(f"covariance must be 'full' or 'diag', got {covariance!r}")
        if not (isinstance(components, int) and 1 <= components <= len(x)):
            raise ValueError(f"components must be an int in [1, {len(x)}] (the number of samples), got {components!r}")
        fitted = SkMixture(components, covariance_type=covariance, reg_covar=reg_covar, max_iter=max_iter,
                           random_state=seed).fit(x)
        covs = fitted.covariances_ if covariance == "full" else np.stack([np.diag(c) for c in fitted.covariances_])
        return cls(fitted.weights_, fitted.means_, 0.5 * (covs + covs.transpose(0, 2, 1)))

    def state(self) -> dict[str, torch.Tensor]:
        """The parameters as float64 tensors (``weights`` (K,), ``means`` (K, D), ``covs`` (K, D, D)),
        for a file read with ``weights_only``; ``from_state`` rebuilds the mixture."""
        return {"weights": torch.as_tensor(self.weights), "means": torch.as_tensor(self.means),
                "covs": torch.as_tensor(self.covs)}

    @classmethod
    def from_state(cls, state) -> "GaussianMixture":
        weights = state["weights"].double().cpu().numpy()
        mixture = cls(weights, state["means"].double().cpu().numpy(), state["covs"].double().cpu().numpy())
        mixture.weights, mixture._w_t = weights, torch.as_tensor(weights)  # as saved: not normalised again
        return mixture
