"""A Gaussian-mixture potential whose entropic plan has a closed form (the light Schrödinger bridge family).

With the quadratic cost c(x, y) = (κ/2)‖x − y‖² and entropy eps, write τ = eps/κ (the variance of the
cost's kernel exp(−c/eps) ∝ N(y; x, τ·I)). The potential

    f(y) = eps·log v(y) + (κ/2)‖y‖²,        v(y) = Σ_k a_k N(y | r_k, τ·S_k),

(a_k > 0, S_k symmetric positive definite) gives (f(y) − c(x, y))/eps = log v(y) + ⟨x, y⟩/τ − ‖x‖²/(2τ),
so EgNOT's plan pi(y | x) ∝ exp(⟨x, y⟩/τ) v(y). Completing the square in each component
(shared/reference/mixture-potential.md, Korotin et al., ICLR 2024):

    C(x)       = ∫ exp(⟨x, y⟩/τ) v(y) dy = Σ_k a_k exp(r_kᵀx/τ + xᵀS_k x/(2τ))        (log_partition)
    pi(y | x)  = Σ_k w_k(x) N(y | r_k + S_k x, τ·S_k),   w_k(x) ∝ a_k exp(r_kᵀx/τ + xᵀS_k x/(2τ))

so the plan is sampled exactly (a component, then a Gaussian draw) and EgNOT's dual objective
E_Q f − E_P[eps·log ∫ exp((f − c)/eps)] equals eps·(E_Q log v − E_P log C) + (κ/2)(E_Q‖y‖² + E_P‖x‖²):
maximising it is minimising E_P log C(x) − E_Q log v(y), LightSB's loss, with no sampler at all.

Without a Gaussian kernel (``kernel_variance=None``: another cost) the module is the energy
f(y) = eps·log v(y) with components N(r_k, eps·S_k), sampled by EgNOT's SMC like any potential.

Shapes: y and x are (n, *event_shape), flattened to (n, D) inside; values are (n,). Parameters:
``logits`` (K,) = log a_k up to a constant, ``means`` (K, D) = r_k, ``log_var`` (K, D) = log of the
diagonal of S_k ("diagonal") or of the squared diagonal of its Cholesky factor L_k ("full", S_k =
L_k L_kᵀ with the strictly lower part ``tril`` (K, D, D)).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["GaussianMixturePotential", "COVARIANCES", "INITS"]

COVARIANCES = ("diagonal", "full")
INITS = ("kmeans", "samples")
KMEANS_DRAWS = 4096  # target samples that the k-means start clusters
_LOG_2PI = math.log(2.0 * math.pi)


class GaussianMixturePotential(nn.Module):
    """f(y) = eps·log Σ_k a_k N(y | r_k, τ·S_k) + (eps/(2τ))‖y‖² (module doc), with its exact plan.

    Args:
        event_shape: shape of one sample (flattened to D = its product).
        components: K >= 1.
        covariance: "diagonal" (S_k diagonal, K·D numbers) or "full" (S_k = L_k L_kᵀ, K·D(D+1)/2).
        eps: the entropic regularisation (> 0).
        kernel_variance: τ = eps/κ for the quadratic cost (κ/2)‖x − y‖² (then the plan has the closed
            forms below), or None for another cost (then τ = eps inside v, no quadratic term, no
            closed form).
        init_var: every S_k starts as init_var·I (> 0).
        weight_lr_scale: the learning rate of ``logits`` relative to the others (``parameter_groups``).
        init: where the means start (:meth:`init_from`, which EgNOT calls before its first step):
            "kmeans", the k-means centres of ``KMEANS_DRAWS`` target samples; "samples", K target
            samples themselves (LightSB's start).

    Until then the means are draws of N(0, I); the buffer ``initialised`` records the start, so a
    resumed run does not move them again."""

    def __init__(self, event_shape: Sequence[int], components: int = 50, covariance: str = "diagonal",
                 eps: float = 1.0, kernel_variance: float | None = None, init_var: float = 1.0,
                 weight_lr_scale: float = 1.0, init: str = "kmeans"):
        super().__init__()
        self.event_shape = tuple(int(s) for s in event_shape)
        dim = math.prod(self.event_shape)
        if isinstance(components, bool) or not isinstance(components, int) or components < 1:
            raise ValueError(f"components must be an int >= 1, got {components!r}")
        if covariance not in COVARIANCES:
            raise ValueError(f"covariance must be one of {COVARIANCES}, got {covariance!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.init = init
        for name, value in (("eps", eps), ("init_var", init_var), ("weight_lr_scale", weight_lr_scale)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        if kernel_variance is not None and not 0 < kernel_variance < math.inf:
            raise ValueError(f"kernel_variance must be a number > 0 or None, got {kernel_variance!r}")
        self.dim, self.components, self.covariance = dim, components, covariance
        self.eps = float(eps)
        self.kernel_variance = None if kernel_variance is None else float(kernel_variance)
        self.tau = self.kernel_variance if self.kernel_variance is not None else self.eps
        self.weight_lr_scale = float(weight_lr_scale)
        self.logits = nn.Parameter(torch.zeros(components))
        self.means = nn.Parameter(torch.randn(components, dim))
        self.log_var = nn.Parameter(torch.full((components, dim), math.log(init_var)))
        self.tril = nn.Parameter(torch.zeros(components, dim, dim)) if covariance == "full" else None
        self.register_buffer("initialised", torch.tensor(False))

    # -- the parameters as matrices -----------------------------------------------------------------
    def cholesky(self) -> torch.Tensor:
        """L_k (K, D, D), lower triangular with diagonal exp(log_var/2) ("full" only)."""
        return torch.tril(self.tril, -1) + torch.diag_embed(torch.exp(0.5 * self.log_var))

    def covariances(self) -> torch.Tensor:
        """S_k (K, D, D) (the plan's component covariances are τ·S_k)."""
        if self.tril is None:
            return torch.diag_embed(self.log_var.exp())
        chol = self.cholesky()
        return chol @ chol.transpose(1, 2)

    def _flat(self, t: torch.Tensor) -> torch.Tensor:
        return t.reshape(t.shape[0], self.dim)

    def _quad_s(self, x: torch.Tensor) -> torch.Tensor:
        """xᵀ S_k x, (n, K)."""
        if self.tril is None:
            return (x * x) @ self.log_var.exp().T
        lt_x = torch.einsum("kij,ni->nkj", self.cholesky(), x)  # L_kᵀ x
        return (lt_x * lt_x).sum(-1)

    def _s_times(self, x: torch.Tensor) -> torch.Tensor:
        """S_k x, (n, K, D)."""
        if self.tril is None:
            return x[:, None, :] * self.log_var.exp()[None]
        return torch.einsum("kij,nj->nki", self.covariances(), x)

    # -- the potential ------------------------------------------------------------------------------
    def log_v(self, y: torch.Tensor) -> torch.Tensor:
        """log v(y) = logsumexp_k [log a_k + log N(y | r_k, τ·S_k)], (n,) (a normalised: Σ a_k = 1)."""
        y = self._flat(y)
        tau, log_a = self.tau, torch.log_softmax(self.logits, 0)
        log_det = self.dim * math.log(tau) + self.log_var.sum(1)  # log det(τ S_k), (K,)
        if self.tril is None:
            inv = torch.exp(-self.log_var)  # 1 / S_k, (K, D)
            # Σ_d (y − r)²/S = y² @ (1/S) − 2 y @ (r/S) + Σ r²/S: two matmuls, no (n, K, D) tensor
            quad = (y * y) @ inv.T - 2.0 * y @ (self.means * inv).T + (self.means ** 2 * inv).sum(1)
        else:
            diff = (y[None] - self.means[:, None]).transpose(1, 2)  # (K, D, n)
            z = torch.linalg.solve_triangular(self.cholesky(), diff, upper=False)
            quad = (z * z).sum(1).T  # (n, K)
        log_n = -0.5 * (self.dim * _LOG_2PI + log_det + quad / tau)
        return torch.logsumexp(log_a + log_n, dim=1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """f(y) = eps·log v(y) + (eps/(2τ))‖y‖² (no quadratic term without a kernel), (n,)."""
        f = self.eps * self.log_v(y)
        if self.kernel_variance is not None:
            f = f + (0.5 * self.eps / self.tau) * self._flat(y).pow(2).sum(1)
        return f

    # -- the closed-form plan (quadratic cost only) -------------------------------------------------
    def _need_kernel(self, what: str) -> None:
        if self.kernel_variance is None:
            raise ValueError(f"{what} needs the quadratic cost (a Gaussian kernel): this potential was built "
                             f"without kernel_variance")

    def conditional_logits(self, x: torch.Tensor) -> torch.Tensor:
        """log a_k + r_kᵀx/τ + xᵀS_k x/(2τ), (n, K): their logsumexp is log C(x) (up to log Σ a), their
        softmax the component weights w_k(x) of pi(· | x)."""
        self._need_kernel("the conditional plan")
        x = self._flat(x)
        return torch.log_softmax(self.logits, 0) + (x @ self.means.T + 0.5 * self._quad_s(x)) / self.tau

    def log_partition(self, x: torch.Tensor) -> torch.Tensor:
        """log C(x) = log ∫ exp(⟨x, y⟩/τ) v(y) dy, (n,)."""
        return torch.logsumexp(self.conditional_logits(x), dim=1)

    def conditional_weights(self, x: torch.Tensor) -> torch.Tensor:
        """w_k(x), (n, K), rows summing to 1."""
        return torch.softmax(self.conditional_logits(x), dim=1)

    def conditional_component_means(self, x: torch.Tensor) -> torch.Tensor:
        """r_k + S_k x, (n, K, D)."""
        self._need_kernel("the conditional plan")
        return self.means[None] + self._s_times(self._flat(x))

    def conditional_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (n, D) and covariance (n, D, D) of pi(· | x):
        Σ_k w_k m_k and Σ_k w_k (τ S_k + m_k m_kᵀ) − m mᵀ."""
        w, m = self.conditional_weights(x), self.conditional_component_means(x)
        mean = torch.einsum("nk,nki->ni", w, m)
        d = m - mean[:, None]
        cov = self.tau * torch.einsum("nk,kij->nij", w, self.covariances()) + torch.einsum("nk,nki,nkj->nij", w, d, d)
        return mean, cov

    def conditional_sample(self, x: torch.Tensor, n_per_x: int, generator: torch.Generator | None = None
                           ) -> torch.Tensor:
        """Exact draws from pi(· | x): (n, n_per_x, *event_shape). A component by its weight w_k(x),
        then r_k + S_k x + sqrt(τ)·L_k ξ. Random numbers come from ``generator`` on its device."""
        n = x.shape[0]
        dev = generator.device if generator is not None else x.device
        logits = self.conditional_logits(x)  # (n, K)
        k = torch.multinomial(torch.softmax(logits, 1).to(dev), n_per_x, replacement=True,
                              generator=generator).to(x.device)  # (n, m)
        noise = torch.randn(n, n_per_x, self.dim, generator=generator, device=dev, dtype=x.dtype).to(x.device)
        x = self._flat(x)
        scale = math.sqrt(self.tau)
        # only the drawn components' means r_k + S_k x: memory O(n·m·D), not O(n·K·D) (nor O(n·m·D²))
        if self.tril is None:
            var = self.log_var.exp()
            y = self.means[k] + var[k] * x[:, None, :] + scale * noise * torch.exp(0.5 * self.log_var)[k]
        else:
            chol, cov = self.cholesky(), self.covariances()
            y = torch.empty(n, n_per_x, self.dim, dtype=x.dtype, device=x.device)
            rows = torch.arange(n, device=x.device)[:, None].expand(n, n_per_x)
            for j in range(self.components):  # one matmul per component
                mask = k == j
                if mask.any():
                    y[mask] = self.means[j] + x[rows[mask]] @ cov[j].T + scale * noise[mask] @ chol[j].T
        return y.reshape(n, n_per_x, *self.event_shape)

    # -- training -----------------------------------------------------------------------------------
    @property
    def init_draws(self) -> int:
        """How many target samples :meth:`init_from` wants."""
        return max(self.components, KMEANS_DRAWS) if self.init == "kmeans" else self.components

    @torch.no_grad()
    def init_from(self, samples: torch.Tensor, seed: int = 0) -> None:
        """Place the means on target ``samples`` (n, *event_shape): the k-means centres ("kmeans",
        scipy's kmeans2 with a k-means++ start seeded by ``seed``; the centres average out each
        sample's spread, which at small eps and large D otherwise leaves components far from the
        plan's, measured in docs/egnot.md), or the first K samples ("samples"; fewer than K
        samples: the same as "samples" drawn with repetition)."""
        samples = self._flat(samples).detach().to("cpu", torch.float64)
        n, k = samples.shape[0], self.components
        if n < 1:
            raise ValueError("init_from needs at least one sample")
        if self.init == "kmeans" and n > k:
            from scipy.cluster.vq import kmeans2

            centres, _ = kmeans2(samples.numpy(), k, minit="++", seed=np.random.default_rng(seed))
            centres = torch.from_numpy(centres)
        else:
            centres = samples[torch.arange(k) % n]
        self.init_means(centres)

    @torch.no_grad()
    def init_means(self, means: torch.Tensor) -> None:
        """r_k = means[k] ((K, *event_shape)), and mark the module initialised."""
        means = self._flat(means)
        if means.shape[0] != self.components:
            raise ValueError(f"init_means needs {self.components} means (one per component), got {means.shape[0]}")
        self.means.copy_(means.to(self.means))
        self.initialised.fill_(True)

    def parameter_groups(self, lr: float) -> list[dict]:
        """Adam groups: the weights' logits at ``weight_lr_scale``·lr, everything else at lr."""
        rest = [p for p in (self.means, self.log_var, self.tril) if p is not None]
        return [{"params": rest, "lr": lr}, {"params": [self.logits], "lr": lr * self.weight_lr_scale}]

    def extra_repr(self) -> str:
        kernel = "none" if self.kernel_variance is None else f"{self.kernel_variance:g}"
        return (f"components={self.components}, dim={self.dim}, covariance={self.covariance!r}, eps={self.eps:g}, "
                f"kernel_variance={kernel}")
