"""Closed-form unbalanced entropic OT between Gaussian measures, its sigma → 0 limit, and UOTM's ground truth.

Convention (Janati, Muzellec, Peyré, Cuturi 2020, "Entropic OT between unbalanced Gaussian measures has a
closed form", Thm 3; groundtruth.md §2.3). For alpha = m_x N(a, A) and beta = m_y N(b, B) in R^D,

    UOT_{σ,γ}(alpha, beta) = min_{π ≥ 0}  ∫‖x − y‖² dπ + 2σ² KL(π ‖ alpha⊗beta)
                                           + γ KL(π₁ ‖ alpha) + γ KL(π₂ ‖ beta),

with the generalised KL(μ‖ν) = ∫ log(dμ/dν) dμ − m(μ) + m(ν) (= ∫ Ψ(dμ/dν) dν for the normalised
Ψ(t) = t log t − t + 1 of UOTM's ``kl`` penalty, whose conjugate is Ψ*(s) = e^s − 1).

The optimal plan is a scaled Gaussian π* = m_π N(μ, H) on R^{2D}:

    τ = γ/(γ + 2σ²),  λ = σ² + γ/2,  X = A + B + λI
    Ã = (γ/2)(I − λ(A + λI)⁻¹),  B̃ = (γ/2)(I − λ(B + λI)⁻¹)
    C = (Ã B̃ / τ + (σ⁴/4) I)^{1/2} − (σ²/2) I                      (principal root; Ã B̃ is not symmetric)
    μ = [a + A X⁻¹(b − a);  b + B X⁻¹(a − b)]
    H = [[(I + C/λ)(A − A X⁻¹ A),  C + (I + C/λ) A X⁻¹ B], [·ᵀ,  (I + Cᵀ/λ)(B − B X⁻¹ B)]]
    m_π = σ^{Dσ²/(γ+σ²)} [m_x m_y det C sqrt(det(Ã B̃)^τ / det(A B))]^{1/(τ+1)}
          · exp(−(a−b)ᵀ X⁻¹ (a−b) / (2(τ+1))) / sqrt(det(C − (2/γ) Ã B̃))
    UOT_{σ,γ} = γ (m_x + m_y − 2 m_π) + 2σ² (m_x m_y − m_π)

Relation to otgen's Skoltech eps (groundtruth.md §1.1): the problem with the ½‖x − y‖² cost,
``∫½‖x−y‖² dπ + eps KL(π‖alpha⊗beta) + rho KL(π₁‖alpha) + rho KL(π₂‖beta)``, is half of the Janati problem
with σ² = eps and γ = 2 rho: same plan, value ½ UOT_{σ²=eps, γ=2rho}.

σ → 0 (:func:`unbalanced_ot_limit`) is unregularised KL-unbalanced OT. Plugging σ = 0 into the formulas
(τ = 1, C = (Ã B̃)^{1/2}, σ-power factor 1) gives a plan supported on the graph of an affine map: the
Bures (W2) map between the relaxed marginals N(μ_x, H₁₁) and N(μ_y, H₂₂).

Everything is computed once in float64 numpy; evaluation methods taking a torch tensor return float32
tensors on that tensor's device, array-likes give float64 ndarrays.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from .gaussian_eot import _as_spd, _as_vector, _check_positive, _copy64, _real_array, _sqrtm_sym

__all__ = [
    "UnbalancedGaussianPlan",
    "UnbalancedOTLimit",
    "unbalanced_gaussian_plan",
    "unbalanced_ot_limit",
    "uotm_gaussian_ground_truth",
]


# ----------------------------------------------------------------------------- validation


def _check_measures(mean_x, cov_x, mean_y, cov_y, mass_x, mass_y):
    """Validated float64 (a, A, b, B, m_x, m_y)."""
    a = _as_vector("mean_x", mean_x)
    b = _as_vector("mean_y", mean_y)
    if b.size != a.size:
        raise ValueError(f"mean_y must have shape ({a.size},) like mean_x, got {b.shape}")
    A = _as_spd("cov_x", cov_x, a.size)
    B = _as_spd("cov_y", cov_y, a.size)
    return a, A, b, B, _check_positive("mass_x", mass_x), _check_positive("mass_y", mass_y)


def _work_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def _check_points(name: str, x, dim: int):
    """Finite (n, D) points as a float64 ndarray, or as a torch tensor in the working dtype (float64;
    float32 on mps) on its own device."""
    if isinstance(x, torch.Tensor):
        if x.ndim != 2 or x.shape[1] != dim:
            raise ValueError(f"{name} must have shape (n, {dim}), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} has non-finite entries")
        return x.to(_work_dtype(x.device))
    x = _real_array(name, x)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} has non-finite entries")
    return x


def _like(arr: np.ndarray, x):
    """``arr`` as the array type of ``x`` (torch: x's dtype and device)."""
    if isinstance(x, torch.Tensor):
        return torch.from_numpy(np.array(arr, dtype=np.float64)).to(device=x.device, dtype=x.dtype)
    return arr


def _finish(out, x):
    return out.to(torch.float32) if isinstance(x, torch.Tensor) else out


def _gaussian_logpdf(x, mean: np.ndarray, cov: np.ndarray):
    """log N(x | mean, cov) for (n, D) points x (numpy or torch)."""
    dim = mean.size
    prec = np.linalg.inv(cov)
    const = -0.5 * (dim * math.log(2 * math.pi) + np.linalg.slogdet(cov)[1])
    d = x - _like(mean, x)
    return const - 0.5 * ((d @ _like(prec, x)) * d).sum(-1)


# ----------------------------------------------------------------------------- the closed form


def _shrunk(cov: np.ndarray, lam: float, gamma: float):
    """Ã = (γ/2) cov (cov + λI)⁻¹ (SPD), its square root and log det, via the eigenbasis of cov."""
    w, v = np.linalg.eigh(cov)
    s = 0.5 * gamma * w / (w + lam)
    return (v * s) @ v.T, (v * np.sqrt(s)) @ v.T, float(np.log(s).sum())


def _janati_closed_form(a, A, b, B, m_x, m_y, sigma2: float, gamma: float):
    """(m_π, μ (2D,), H (2D, 2D), value) of Janati et al. Thm 3; sigma2 = 0 gives the σ → 0 limit."""
    dim = a.size
    eye = np.eye(dim)
    tau = gamma / (gamma + 2.0 * sigma2)
    lam = sigma2 + 0.5 * gamma
    X = A + B + lam * eye
    _, At_half, logdet_At = _shrunk(A, lam, gamma)
    Bt, _, logdet_Bt = _shrunk(B, lam, gamma)

    # Ã B̃ = P G P⁻¹ with P = Ã^{1/2}, G = P B̃ P SPD, so every root / determinant below is taken on a
    # symmetric matrix and mapped back by the similarity.
    G = At_half @ Bt @ At_half
    G = 0.5 * (G + G.T)
    S = _sqrtm_sym(G / tau + 0.25 * sigma2**2 * eye) - 0.5 * sigma2 * eye  # C = P S P⁻¹
    C = At_half @ S @ np.linalg.inv(At_half)
    logdet_C = np.linalg.slogdet(S)[1]
    sign, logdet_denom = np.linalg.slogdet(S - (2.0 / gamma) * G)  # det(C − (2/γ) Ã B̃)
    if sign <= 0:
        raise ValueError("det(C − (2/γ) Ã B̃) is not positive: the inputs are too ill-conditioned")

    A_Xinv = np.linalg.solve(X, A).T  # A X⁻¹ (X, A symmetric)
    B_Xinv = np.linalg.solve(X, B).T
    diff = a - b
    mean = np.concatenate([a - A_Xinv @ diff, b + B_Xinv @ diff])
    I_C = eye + C / lam
    H11 = I_C @ (A - A_Xinv @ A)
    H22 = I_C.T @ (B - B_Xinv @ B)
    H12 = C + I_C @ A_Xinv @ B
    H = np.block([[H11, H12], [H12.T, H22]])
    H = 0.5 * (H + H.T)

    logdet_AB = np.linalg.slogdet(A)[1] + np.linalg.slogdet(B)[1]
    inner = math.log(m_x * m_y) + logdet_C + 0.5 * (tau * (logdet_At + logdet_Bt) - logdet_AB)
    log_mass = (
        inner / (tau + 1.0)
        - float(diff @ np.linalg.solve(X, diff)) / (2.0 * (tau + 1.0))
        - 0.5 * logdet_denom
    )
    if sigma2 > 0:  # σ^{Dσ²/(γ+σ²)}; → 1 as σ → 0
        log_mass += dim * sigma2 / (gamma + sigma2) * 0.5 * math.log(sigma2)
    mass = math.exp(log_mass)
    value = gamma * (m_x + m_y - 2.0 * mass) + 2.0 * sigma2 * (m_x * m_y - mass)
    return mass, mean, H, value


# ----------------------------------------------------------------------------- result objects


@dataclass(frozen=True)
class _UnbalancedGaussianBase:
    """Fields and methods shared by the σ > 0 plan and the σ → 0 limit. Arrays are float64, read-only."""

    mean_x: np.ndarray
    cov_x: np.ndarray
    mass_x: float
    mean_y: np.ndarray
    cov_y: np.ndarray
    mass_y: float
    gamma: float
    mass: float
    mean: np.ndarray
    cov: np.ndarray
    value: float

    @property
    def dim(self) -> int:
        return int(self.mean_x.size)

    @property
    def cross_cov(self) -> np.ndarray:
        """(D, D) H₁₂ = Cov_π(X, Y) of the normalised plan."""
        d = self.dim
        return self.cov[:d, d:].copy()

    def marginal_x(self) -> tuple[float, np.ndarray, np.ndarray]:
        """Relaxed source marginal π₁ = mass · N(mean, cov): (m_π, (D,) μ_x, (D, D) H₁₁)."""
        d = self.dim
        return self.mass, self.mean[:d].copy(), self.cov[:d, :d].copy()

    def marginal_y(self) -> tuple[float, np.ndarray, np.ndarray]:
        """Relaxed target marginal π₂ = mass · N(mean, cov): (m_π, (D,) μ_y, (D, D) H₂₂)."""
        d = self.dim
        return self.mass, self.mean[d:].copy(), self.cov[d:, d:].copy()

    def transport_cost(self) -> float:
        """∫‖x − y‖² dπ = m_π (‖μ_x − μ_y‖² + Tr H₁₁ + Tr H₂₂ − 2 Tr H₁₂), without any cost scale."""
        d = self.dim
        diff = self.mean[:d] - self.mean[d:]
        tr = np.trace(self.cov[:d, :d]) + np.trace(self.cov[d:, d:]) - 2.0 * np.trace(self.cross_cov)
        return self.mass * float(diff @ diff + tr)

    def source_weight(self, x):
        """dπ₁/d alpha (x) = m_π N(x | μ_x, H₁₁) / (m_x N(x | a, A)).

        ``x``: (n, D) torch tensor -> (n,) float32 tensor on x's device; array-like -> (n,) float64 ndarray.
        """
        x = _check_points("x", x, self.dim)
        _, mu, cov = self.marginal_x()
        return self._density_ratio(x, mu, cov, self.mean_x, self.cov_x, self.mass_x)

    def target_weight(self, y):
        """dπ₂/d beta (y) = m_π N(y | μ_y, H₂₂) / (m_y N(y | b, B)); shapes as :meth:`source_weight`."""
        y = _check_points("y", y, self.dim)
        _, mu, cov = self.marginal_y()
        return self._density_ratio(y, mu, cov, self.mean_y, self.cov_y, self.mass_y)

    def _density_ratio(self, x, mu, cov, mu_ref, cov_ref, mass_ref):
        log_ratio = math.log(self.mass / mass_ref) + _gaussian_logpdf(x, mu, cov) - _gaussian_logpdf(x, mu_ref, cov_ref)
        out = log_ratio.exp() if isinstance(x, torch.Tensor) else np.exp(log_ratio)
        return _finish(out, x)


@dataclass(frozen=True)
class UnbalancedGaussianPlan(_UnbalancedGaussianBase):
    """Optimal plan π* = mass · N(mean, cov) of UOT_{σ,γ} (Janati convention, see the module docstring).

    Build it with :func:`unbalanced_gaussian_plan`.

    Attributes:
        mean_x, cov_x, mass_x: (D,), (D, D), float: the source measure alpha = m_x N(a, A).
        mean_y, cov_y, mass_y: the target measure beta = m_y N(b, B).
        sigma2: σ² > 0 (entropic term 2σ² KL(π‖alpha⊗beta)); Skoltech eps = σ² for the ½‖·‖² cost.
        gamma: γ > 0, weight of each marginal KL.
        mass: m_π, total mass of the plan.
        mean: (2D,) μ = [μ_x; μ_y] of the normalised plan.
        cov: (2D, 2D) H = [[H₁₁, H₁₂], [H₂₁, H₂₂]] of the normalised plan (symmetric PD).
        value: UOT_{σ,γ} (float).
        conditional_gain: (D, D) K = H₂₁ H₁₁⁻¹, so that E_π[Y | X = x] = μ_y + K (x − μ_x).
        conditional_cov: (D, D) Cov_π(Y | X = x) = H₂₂ − H₂₁ H₁₁⁻¹ H₁₂ (the same for every x).
    """

    sigma2: float
    conditional_gain: np.ndarray
    conditional_cov: np.ndarray

    def conditional_mean(self, x):
        """E_π[Y | X = x] = μ_y + K (x − μ_x).

        ``x``: (n, D) torch tensor -> (n, D) float32 tensor on x's device; array-like -> (n, D) float64.
        """
        x = _check_points("x", x, self.dim)
        d = self.dim
        out = _like(self.mean[d:], x) + (x - _like(self.mean[:d], x)) @ _like(self.conditional_gain, x).T
        return _finish(out, x)


@dataclass(frozen=True)
class UnbalancedOTLimit(_UnbalancedGaussianBase):
    """σ → 0 limit of UOT_{σ,γ}: unregularised KL-unbalanced OT between Gaussian measures.

    Build it with :func:`unbalanced_ot_limit` (or :func:`uotm_gaussian_ground_truth`). The plan is
    π = mass · (id, T)#N(μ_x, H₁₁): deterministic, with T the Bures map between the relaxed marginals.

    Attributes (besides those of :class:`UnbalancedGaussianPlan` except sigma2 and the conditionals):
        cov: (2D, 2D) singular (rank D) covariance [[H₁₁, H₁₁K], [K H₁₁, K H₁₁ K]].
        map_matrix: (D, D) K, symmetric PD, with K H₁₁ K = H₂₂.
        map_offset: (D,) t = μ_y − K μ_x, so that T(x) = K x + t.
        cost_scale: s; the objective is s·[∫‖x−y‖² dπ + γ KL(π₁‖alpha) + γ KL(π₂‖beta)] and
            value = s · UOT_{0,γ} (s = 1 unless built by :func:`uotm_gaussian_ground_truth`).
    """

    map_matrix: np.ndarray
    map_offset: np.ndarray
    cost_scale: float = 1.0

    def map(self, x):
        """T(x) = K x + t.

        ``x``: (n, D) torch tensor -> (n, D) float32 tensor on x's device; array-like -> (n, D) float64.
        """
        x = _check_points("x", x, self.dim)
        return _finish(x @ _like(self.map_matrix, x).T + _like(self.map_offset, x), x)

    __call__ = map

    def pushforward(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, cov) of the unweighted push-forward T#N(a, A) = N(T(a), K A K).

        This is what a generator x ↦ T(x) fed with x ~ N(a, A) produces; it is not the relaxed
        target marginal (that one reweights the source by :meth:`source_weight` first).
        """
        K = self.map_matrix
        cov = K @ self.cov_x @ K
        return K @ self.mean_x + self.map_offset, 0.5 * (cov + cov.T)


def _bures_map_matrix(S1: np.ndarray, S2: np.ndarray) -> np.ndarray:
    """K = S1^{-1/2} (S1^{1/2} S2 S1^{1/2})^{1/2} S1^{-1/2}: symmetric PD, K S1 K = S2."""
    r = _sqrtm_sym(S1)
    r_inv = np.linalg.inv(r)
    K = r_inv @ _sqrtm_sym(r @ S2 @ r) @ r_inv
    return 0.5 * (K + K.T)


# ----------------------------------------------------------------------------- constructors


def unbalanced_gaussian_plan(
    mean_x, cov_x, mean_y, cov_y, sigma2: float, gamma: float, mass_x: float = 1.0, mass_y: float = 1.0
) -> UnbalancedGaussianPlan:
    """Closed-form UOT_{σ,γ} plan between m_x N(mean_x, cov_x) and m_y N(mean_y, cov_y) (Janati, Thm 3).

    Args:
        mean_x, mean_y: (D,) means (numpy or torch).
        cov_x, cov_y: (D, D) symmetric positive definite covariances.
        sigma2: σ² > 0; the entropic term is 2σ² KL(π‖alpha⊗beta). For otgen's Skoltech eps
            (½‖·‖² cost, eps KL) use σ² = eps; see the module docstring for the marginal weight.
        gamma: γ > 0, weight of each marginal penalty γ KL(π_i‖·) (γ → ∞ recovers balanced EOT).
        mass_x, mass_y: total masses m_x, m_y > 0.

    Returns:
        An :class:`UnbalancedGaussianPlan` (float64 numpy inside).
    """
    sigma2 = _check_positive("sigma2", sigma2)
    gamma = _check_positive("gamma", gamma)
    a, A, b, B, m_x, m_y = _check_measures(mean_x, cov_x, mean_y, cov_y, mass_x, mass_y)
    mass, mean, H, value = _janati_closed_form(a, A, b, B, m_x, m_y, sigma2, gamma)
    d = a.size
    H11, H12, H22 = H[:d, :d], H[:d, d:], H[d:, d:]
    gain = np.linalg.solve(H11, H12).T  # H₂₁ H₁₁⁻¹
    cond_cov = H22 - gain @ H12
    return UnbalancedGaussianPlan(
        mean_x=_copy64(a), cov_x=_copy64(A), mass_x=m_x,
        mean_y=_copy64(b), cov_y=_copy64(B), mass_y=m_y,
        gamma=gamma, mass=mass, mean=_copy64(mean), cov=_copy64(H), value=float(value),
        sigma2=sigma2, conditional_gain=_copy64(gain), conditional_cov=_copy64(0.5 * (cond_cov + cond_cov.T)),
    )  # fmt: skip


def unbalanced_ot_limit(
    mean_x, cov_x, mean_y, cov_y, gamma: float, mass_x: float = 1.0, mass_y: float = 1.0
) -> UnbalancedOTLimit:
    """σ → 0 limit of :func:`unbalanced_gaussian_plan`: unregularised KL-unbalanced OT,

        UOT_{0,γ} = min_{π ≥ 0} ∫‖x − y‖² dπ + γ KL(π₁ ‖ alpha) + γ KL(π₂ ‖ beta) = γ (m_x + m_y − 2 m_π).

    Args: as :func:`unbalanced_gaussian_plan`, without sigma2.

    Returns:
        An :class:`UnbalancedOTLimit`: relaxed marginals, mass, value and the affine map T between the
        relaxed marginals (their Bures map).
    """
    gamma = _check_positive("gamma", gamma)
    a, A, b, B, m_x, m_y = _check_measures(mean_x, cov_x, mean_y, cov_y, mass_x, mass_y)
    mass, mean, H, value = _janati_closed_form(a, A, b, B, m_x, m_y, 0.0, gamma)
    d = a.size
    K = _bures_map_matrix(H[:d, :d], H[d:, d:])
    offset = mean[d:] - K @ mean[:d]
    # Rebuild the joint covariance from K so that it is exactly the (rank-D) graph covariance.
    H11 = H[:d, :d]
    H = np.block([[H11, H11 @ K], [K @ H11, K @ H11 @ K]])
    return UnbalancedOTLimit(
        mean_x=_copy64(a), cov_x=_copy64(A), mass_x=m_x,
        mean_y=_copy64(b), cov_y=_copy64(B), mass_y=m_y,
        gamma=gamma, mass=mass, mean=_copy64(mean), cov=_copy64(0.5 * (H + H.T)), value=float(value),
        map_matrix=_copy64(K), map_offset=_copy64(offset),
    )  # fmt: skip


def uotm_gaussian_ground_truth(
    mean_x, cov_x, mean_y, cov_y, tau: float, alpha: float, mass_x: float = 1.0, mass_y: float = 1.0
) -> UnbalancedOTLimit:
    """Exact UOTM solution between Gaussians with phi1 = phi2 = "kl" (UOTM's cost convention).

    UOTM (uotm-sjko.md §1) solves

        min_{π ≥ 0} ∫ tau ‖x − y‖² dπ + alpha KL(π₁ ‖ alpha_src) + alpha KL(π₂ ‖ beta),

    with the normalised Ψ(t) = t log t − t + 1 (Ψ*(s) = e^s − 1) scaled by alpha on both sides (the
    conjugate alpha Ψ*(s / alpha)). Dividing by tau: value = tau · UOT_{0, γ = alpha/tau}, same plan.

    Args:
        mean_x, cov_x: source (generator input) Gaussian, (D,) and (D, D).
        mean_y, cov_y: target (data) Gaussian.
        tau: cost scale tau > 0 (cost tau Σ_i (x_i − y_i)², no ½).
        alpha: marginal-penalty scale alpha > 0 (1 in UOTM; S-JKO may schedule it).
        mass_x, mass_y: masses (1 for probability measures).

    Returns:
        :class:`UnbalancedOTLimit` with gamma = alpha/tau, cost_scale = tau and value = the UOTM value
        (= alpha (m_x + m_y − 2 m_π)). Its ``map`` is the optimal generator T; ``source_weight`` is
        dπ₁/d alpha_src; ``pushforward()`` is the law of T(x), x ~ source.
    """
    tau = _check_positive("tau", tau)
    alpha = _check_positive("alpha", alpha)
    limit = unbalanced_ot_limit(mean_x, cov_x, mean_y, cov_y, alpha / tau, mass_x, mass_y)
    return dataclasses.replace(limit, value=tau * limit.value, cost_scale=tau)
