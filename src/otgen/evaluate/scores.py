"""Scores of generated images in any feature space: Fréchet distance, KID and precision/recall.

Pure math on feature arrays (n, k): the features may come from the InceptionV3 pool-3 layer (standard
FID/KID, k = 2048), from otgen's digit classifier (``image_metrics.digits_evaluator``, k = 64; report
those as "digits-FD", never as FID) or from any module. Inputs are torch Tensors (any device) or
array-likes; the work runs in float64 on the Tensor's device (the CPU for arrays, and for MPS, which
has no float64). Bad input raises ``ValueError`` naming the argument and the accepted range.

* ``FeatureStats`` — running mean and unbiased covariance of features fed batch by batch (Chan et
  al.'s pairwise update, float64), optionally keeping the raw features (a uniform reservoir sample of
  at most ``max_kept``) for KID and precision/recall.
* ``frechet_distance(mu1, sigma1, mu2, sigma2)`` — ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1^½ Σ2 Σ1^½)^½), the
  squared 2-Wasserstein distance between N(μ1, Σ1) and N(μ2, Σ2) (FID in Inception features);
  ``fd_from_features(fx, fy)`` the same between Gaussian fits of two feature sets.
* ``kid(fx, fy)`` — the kernel inception distance of Bińkowski et al. (2018) as torch-fidelity computes
  it: the unbiased MMD² with the cubic polynomial kernel, averaged over random subsets.
* ``precision_recall(real, fake, k=3)`` — the improved precision and recall of Kynkäänniemi et al.
  (2019), from k-nearest-neighbour balls.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .. import checks

__all__ = ["FeatureStats", "frechet_distance", "fd_from_features", "KIDResult", "kid",
           "PrecisionRecall", "precision_recall", "DEFAULT_MAX_KEPT"]

#: default cap on the features a ``FeatureStats(keep_features=True)`` keeps (50 000 × 2048 float32 = 400 MB)
DEFAULT_MAX_KEPT = 50_000

#: eigenvalues of a covariance below −PSD_RTOL · (its largest |eigenvalue|) mean it is not PSD; above that,
#: negative eigenvalues are round-off (a float32 copy of a singular 2048 × 2048 covariance has ~1e-6) and
#: are clipped to 0
PSD_RTOL = 1e-5
#: a covariance whose |Σ − Σᵀ| exceeds SYM_RTOL · max|Σ| is refused as asymmetric
SYM_RTOL = 1e-6
#: distances per block of ``precision_recall`` when ``batch_size`` is None (2^23 float64 = 64 MiB)
_BLOCK_ENTRIES = 2 ** 23


# ----------------------------------------------------------------------------- input helpers


def _device(t: torch.Tensor) -> torch.device:
    """Where float64 work on ``t`` runs: its device, or the CPU for MPS (which has no float64)."""
    return torch.device("cpu") if t.device.type == "mps" else t.device


def _tensor(name: str, value, device: torch.device | None = None) -> torch.Tensor:
    """``value`` (Tensor on any device, array, list) as a finite float64 Tensor; ValueError naming ``name``
    for what holds no real numbers or holds nan/inf. A Tensor stays on its device unless ``device`` given."""
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise ValueError(f"{name} must hold real numbers, got a Tensor of dtype {value.dtype}")
        t = value.detach()
        t = t.to(device if device is not None else _device(t), torch.float64)
    else:
        t = torch.from_numpy(checks.real_array(name, value))
        if device is not None:
            t = t.to(device)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} has non-finite values (nan or inf)")
    return t


def _features(name: str, value, min_rows: int = 1, device: torch.device | None = None) -> torch.Tensor:
    """A feature set as a finite float64 Tensor (n, k) with n >= ``min_rows`` and k >= 1."""
    t = _tensor(name, value, device)
    if t.ndim != 2 or t.shape[0] < min_rows or t.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n, k) with n >= {min_rows} and k >= 1, got {tuple(t.shape)}")
    return t


def _int(name: str, value, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _real(name: str, value, positive: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)
    if not ok or (positive and value <= 0):
        raise ValueError(f"{name} must be a finite number{' > 0' if positive else ''}, got {value!r}")
    return float(value)


def _same_dim(name_x: str, x: torch.Tensor, name_y: str, y: torch.Tensor) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{name_x} and {name_y} must have the same feature dimension k, got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")


# ----------------------------------------------------------------------------- running statistics


class FeatureStats:
    """Running mean and unbiased covariance of features fed batch by batch, in float64.

    Each batch (b, k) is reduced to its own mean and centred scatter matrix Σ (x − x̄)(x − x̄)ᵀ (float64),
    and batches are combined with Chan, Golub and LeVeque's pairwise update
    ``M2 = M2_a + M2_b + δδᵀ · n_a n_b / n`` (δ = x̄_b − x̄_a), so a large common offset (features of mean
    1e4) never cancels, unlike E[xxᵀ] − μμᵀ. Memory is O(k²) whatever the number of features: 50 000
    Inception features (k = 2048) need one 32 MB matrix, not the images or the features. The sums live
    on the device of the first batch (the CPU for arrays); ``mu``, ``sigma`` and ``features`` are numpy.

    Args:
        keep_features: also keep raw features (for ``kid`` and ``precision_recall``).
        max_kept: the cap on kept features (int >= 1; default ``DEFAULT_MAX_KEPT`` = 50 000). Up to the
            cap every feature is kept, in order; past it the kept set is a uniform random sample of all
            features seen (reservoir sampling, Algorithm R, drawn from ``seed``), so ``mu`` and ``sigma``
            still use every feature but KID and precision/recall use ``max_kept`` of them. Kept features
            are stored as float32 on the CPU (50 000 × 2048: 400 MB).
        seed: int >= 0, the reservoir's random draws (unused until more than ``max_kept`` are seen).

    Attributes (read-only properties): ``n`` features seen, ``dim`` k, ``mu`` (k,), ``sigma`` (k, k)
    (as ``np.cov``: divides by n − 1), ``features`` (n_kept, k), ``n_kept``.
    """

    def __init__(self, keep_features: bool = False, max_kept: int = DEFAULT_MAX_KEPT, seed: int = 0):
        if not isinstance(keep_features, (bool, np.bool_)):
            raise ValueError(f"keep_features must be True or False, got {keep_features!r}")
        self.keep_features = bool(keep_features)
        self.max_kept = _int("max_kept", max_kept, 1)
        self.seed = _int("seed", seed, 0)
        self._rng = np.random.default_rng(self.seed)
        self._n = 0
        self._dim: int | None = None
        self._mean: torch.Tensor | None = None  # (k,) float64
        self._m2: torch.Tensor | None = None    # (k, k) float64: Σ (x − mean)(x − mean)ᵀ
        self._chunks: list[np.ndarray] = []     # kept features (float32), concatenated on demand

    @classmethod
    def from_features(cls, features, **kwargs) -> "FeatureStats":
        """The statistics of one feature set (n, k); ``kwargs`` as for the constructor."""
        return cls(**kwargs).update(features)

    # -- feeding

    def update(self, features) -> "FeatureStats":
        """Add a batch ``features`` (b, k), b >= 0 (an empty batch changes nothing); returns self."""
        name = "features"
        device = None if self._mean is None else self._mean.device
        x = _tensor(name, features, device)
        want = "k" if self._dim is None else str(self._dim)
        if x.ndim != 2 or x.shape[1] < 1 or (self._dim is not None and x.shape[1] != self._dim):
            raise ValueError(f"{name} must have shape (b, {want}) with b >= 0, got {tuple(x.shape)}")
        if self._dim is None:
            self._dim = int(x.shape[1])
        if x.shape[0] == 0:
            return self
        mean = x.mean(0)
        centred = x - mean
        seen = self._n
        self._combine(x.shape[0], mean, centred.T @ centred)
        if self.keep_features:
            self._keep(x.to("cpu", torch.float32).numpy(), seen)
        return self

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        """Add everything ``other`` has seen (its moments, and its kept features if both keep them, the
        result again a uniform sample of the union when past the cap); returns self. ``other`` is
        unchanged. Both must keep features or ``self`` must not; their ``max_kept`` must agree."""
        if not isinstance(other, FeatureStats):
            raise ValueError(f"other must be a FeatureStats, got {type(other).__name__}")
        if other is self:
            raise ValueError("other must be another FeatureStats, not this one (merging it into itself)")
        if other._n == 0:
            if self._dim is None:
                self._dim = other._dim
            elif other._dim is not None and other._dim != self._dim:
                raise ValueError(f"other has feature dimension {other._dim}, this one {self._dim}")
            return self
        if self._dim is not None and other._dim != self._dim:
            raise ValueError(f"other has feature dimension {other._dim}, this one {self._dim}")
        if self.keep_features and (not other.keep_features or other.max_kept != self.max_kept):
            raise ValueError("other must keep features with the same max_kept as this FeatureStats "
                             f"(keep_features={other.keep_features}, max_kept={other.max_kept} vs {self.max_kept})")
        n_self = self._n
        device = other._mean.device if self._mean is None else self._mean.device
        self._dim = other._dim
        self._combine(other._n, other._mean.to(device), other._m2.to(device))
        if self.keep_features:
            self._merge_kept(n_self, other)
        return self

    def _combine(self, n_b: int, mean_b: torch.Tensor, m2_b: torch.Tensor) -> None:
        """Chan et al.'s pairwise update of (n, mean, M2) with a part of n_b rows."""
        if self._n == 0:
            self._n, self._mean, self._m2 = n_b, mean_b.clone(), m2_b.clone()
            return
        n_a, n = self._n, self._n + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        self._m2 = self._m2 + m2_b + torch.outer(delta, delta) * (n_a * n_b / n)
        self._n = n

    # -- kept features (reservoir)

    def _kept_array(self) -> np.ndarray:
        """The kept features as one array (n_kept, k) float32 (concatenates the chunks once)."""
        if not self._chunks:
            return np.empty((0, self._dim or 0), np.float32)
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0]

    def _keep(self, x: np.ndarray, seen: int) -> None:
        """Algorithm R on a batch x (b, k) whose first row is the ``seen``-th feature (0-based)."""
        room = max(0, self.max_kept - seen)
        if room:
            self._chunks.append(np.array(x[:room]))
            x, seen = x[room:], seen + min(room, len(x))
        if len(x) == 0:
            return
        kept = self._kept_array()
        # row i of the stream replaces slot j ~ U{0..i} if j < max_kept; draws are independent of the
        # reservoir, so drawing them at once and letting the last writer of a slot win is Algorithm R
        j = self._rng.integers(0, seen + np.arange(len(x)) + 1)
        rows = np.nonzero(j < self.max_kept)[0]
        slots, last = np.unique(j[rows][::-1], return_index=True)
        kept[slots] = x[rows[::-1][last]]

    def _merge_kept(self, n_self: int, other: "FeatureStats") -> None:
        """Kept features of the union: a hypergeometric share from each side's uniform sample (a uniform
        subset of a uniform sample is uniform), so the result is a uniform sample of all n features."""
        mine, theirs = self._kept_array(), other._kept_array()
        total = n_self + other._n
        size = min(self.max_kept, total)
        from_mine = int(self._rng.hypergeometric(n_self, other._n, size)) if size < total else len(mine)
        self._chunks = [np.concatenate([self._subset(mine, from_mine), self._subset(theirs, size - from_mine)])]

    def _subset(self, rows: np.ndarray, count: int) -> np.ndarray:
        """``count`` of ``rows`` drawn uniformly without replacement (in their order); all if count >= len."""
        if count >= len(rows):
            return rows
        return rows[np.sort(self._rng.choice(len(rows), count, replace=False))]

    # -- results

    @property
    def n(self) -> int:
        """How many features have been seen."""
        return self._n

    @property
    def dim(self) -> int | None:
        """The feature dimension k (None before the first batch)."""
        return self._dim

    @property
    def mu(self) -> np.ndarray:
        """(k,) float64 mean of every feature seen (needs n >= 1)."""
        if self._n < 1:
            raise ValueError("mu needs at least 1 feature, none seen yet")
        return self._mean.cpu().numpy().copy()

    @property
    def sigma(self) -> np.ndarray:
        """(k, k) float64 unbiased covariance, M2 / (n − 1) as ``np.cov`` (needs n >= 2), symmetric."""
        if self._n < 2:
            raise ValueError(f"sigma needs at least 2 features, got {self._n}")
        m2 = self._m2.cpu().numpy()
        return 0.5 * (m2 + m2.T) / (self._n - 1)

    @property
    def n_kept(self) -> int:
        """How many raw features are kept (min(n, max_kept) with keep_features, else 0)."""
        return sum(len(c) for c in self._chunks)

    @property
    def features(self) -> np.ndarray:
        """(n_kept, k) float32 kept features (a read-only view): all seen while n <= max_kept, else a
        uniform sample of them."""
        if not self.keep_features:
            raise ValueError("this FeatureStats keeps no features; make it with keep_features=True")
        view = self._kept_array().view()
        view.flags.writeable = False
        return view

    def __repr__(self) -> str:
        return (f"FeatureStats(n={self._n}, dim={self._dim}, keep_features={self.keep_features}, "
                f"n_kept={self.n_kept}, max_kept={self.max_kept})")


# ----------------------------------------------------------------------------- Fréchet distance


def _mean_vector(name: str, value) -> torch.Tensor:
    t = _tensor(name, value, torch.device("cpu"))
    if t.ndim != 1 or t.shape[0] < 1:
        raise ValueError(f"{name} must have shape (k,) with k >= 1, got {tuple(t.shape)}")
    return t


def _covariance(name: str, value, k: int) -> torch.Tensor:
    """A (k, k) symmetric (to SYM_RTOL) finite matrix, symmetrised, float64 on the CPU."""
    t = _tensor(name, value, torch.device("cpu"))
    if t.shape != (k, k):
        raise ValueError(f"{name} must have shape ({k}, {k}) (k from mu1), got {tuple(t.shape)}")
    scale = float(t.abs().max())
    if float((t - t.T).abs().max()) > SYM_RTOL * scale:
        raise ValueError(f"{name} must be symmetric (|S - S^T| <= {SYM_RTOL:g} max|S|), got an asymmetric matrix")
    return 0.5 * (t + t.T)


def _check_psd(name: str, eigenvalues: torch.Tensor) -> None:
    top = float(eigenvalues.abs().max())
    low = float(eigenvalues.min())
    if low < -PSD_RTOL * top:
        raise ValueError(f"{name} must be positive semidefinite, its smallest eigenvalue is {low:.3g} "
                         f"(largest {top:.3g}; round-off down to -{PSD_RTOL:g} x largest is accepted)")


def _drop_below(eigenvalues: torch.Tensor, cut: float) -> torch.Tensor:
    """``eigenvalues`` with those <= ``cut`` (round-off, negative ones included) set to 0."""
    return torch.where(eigenvalues > cut, eigenvalues, torch.zeros_like(eigenvalues))


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1^½ Σ2 Σ1^½)^½) between N(μ1, Σ1) and N(μ2, Σ2).

    This is W2² of the two Gaussians for the cost ‖x − y‖² (twice ``metrics.bw2``, which carries a ½):
    FID when the statistics are of Inception pool-3 features. Computed in float64 on the CPU without a
    general matrix square root (so ``scipy.linalg.sqrtm`` stays an independent check): a symmetric
    eigendecomposition Σ1 = V diag(w) Vᵀ gives Σ1^½ = V diag(√w) Vᵀ, and the cross term
    Tr (Σ1^½ Σ2 Σ1^½)^½ = Σ_i √λ_i over the eigenvalues λ of the symmetric PSD matrix Σ1^½ Σ2 Σ1^½.

    Singular covariances are common (features of dead ReLU units; fewer samples than dimensions), and
    there round-off matters: a zero eigenvalue comes out of ``eigh`` as ±ε‖Σ‖, whose square root
    (~1e-8 √‖Σ‖) would enter the trace. So eigenvalues at or below the round-off level of their
    computation are set to 0: those of Σ1 below k·ε·max(w), and λ below k·ε·max(w)·max(eig Σ2) (ε the
    float64 machine epsilon). An eigenvalue that small is not resolved by any float64 method, so this
    changes the result by less than its inherent uncertainty, and gives exact null spaces exactly: on
    the digit classifier's features (31 of 64 units dead) the result agrees with a 40-digit computation
    to 1e-14 relative, where clipping only negative eigenvalues is off by 2e-7. The result is clipped at
    0 (W2² >= 0).

    Args:
        mu1, mu2: (k,) means, k >= 1.
        sigma1, sigma2: (k, k) covariances, symmetric to 1e-6 relative and positive semidefinite up to
            round-off (eigenvalues >= −1e-5 × the largest); singular allowed.

    Returns:
        float.
    """
    m1 = _mean_vector("mu1", mu1)
    k = m1.shape[0]
    m2 = _mean_vector("mu2", mu2)
    if m2.shape != (k,):
        raise ValueError(f"mu2 must have shape ({k},) like mu1, got {tuple(m2.shape)}")
    s1, s2 = _covariance("sigma1", sigma1, k), _covariance("sigma2", sigma2, k)
    w1, v1 = torch.linalg.eigh(s1)
    w2 = torch.linalg.eigvalsh(s2)
    _check_psd("sigma1", w1)
    _check_psd("sigma2", w2)
    noise = k * torch.finfo(torch.float64).eps
    top1, top2 = float(w1.abs().max()), float(w2.abs().max())
    root1 = (v1 * _drop_below(w1, noise * top1).sqrt()) @ v1.T
    inner = root1 @ s2 @ root1
    lam = torch.linalg.eigvalsh(0.5 * (inner + inner.T))
    cross = float(_drop_below(lam, noise * top1 * top2).sqrt().sum())
    diff = m1 - m2
    value = float(diff @ diff) + float(s1.trace()) + float(s2.trace()) - 2.0 * cross
    return max(value, 0.0)


def fd_from_features(fx, fy) -> float:
    """``frechet_distance`` between the Gaussian fits (mean, unbiased covariance) of feature sets
    ``fx`` (n, k) and ``fy`` (m, k), n, m >= 2."""
    x = _features("fx", fx, min_rows=2)
    y = _features("fy", fy, min_rows=2)
    _same_dim("fx", x, "fy", y)
    a, b = FeatureStats.from_features(x), FeatureStats.from_features(y)
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)


# ----------------------------------------------------------------------------- KID


@dataclass(frozen=True)
class KIDResult:
    """KID over random subsets.

    ``kid``: the mean over subsets of the unbiased MMD²; ``kid_std``: the standard deviation of the
    per-subset values (ddof = 0, the ``kernel_inception_distance_std`` torch-fidelity reports);
    ``kid_stderr`` = kid_std / √subsets, the standard error of ``kid`` as a mean of ``subsets`` draws.
    Both measure the noise of the subset draws from the two given sets (subsets overlap, so this is
    not the variability of KID over fresh sets; with subset_size >= both set sizes it is 0).
    """

    kid: float
    kid_std: float
    kid_stderr: float
    subsets: int
    subset_size: int

    def as_dict(self) -> dict:
        return asdict(self)


def _polynomial_kernel(a: torch.Tensor, b: torch.Tensor, degree: int, gamma: float, coef0: float) -> torch.Tensor:
    """(n, m) matrix of (γ a_i·b_j + c0)^degree."""
    return (gamma * (a @ b.T) + coef0) ** degree


def _mmd2_unbiased(kxx: torch.Tensor, kxy: torch.Tensor, kyy: torch.Tensor) -> float:
    """Unbiased MMD² of two samples of one size s from their kernel matrices (s, s):
    Σ_{i≠j} Kxx/(s(s−1)) + Σ_{i≠j} Kyy/(s(s−1)) − 2 Σ_{i,j} Kxy/s² (torch-fidelity's ``mmd2``)."""
    s = kxx.shape[0]
    same = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (s * (s - 1))
    return float(same - 2.0 * kxy.sum() / (s * s))


def kid(fx, fy, subsets: int = 100, subset_size: int = 1000, degree: int = 3, gamma: float | None = None,
        coef0: float = 1, seed: int = 0) -> KIDResult:
    """Kernel inception distance (Bińkowski et al. 2018) between feature sets, as torch-fidelity defines it.

    For each of ``subsets`` draws, s = min(subset_size, n, m) rows of ``fx`` and s rows of ``fy`` are
    taken without replacement (``np.random.RandomState(seed).choice``, fx's rows first, as
    torch-fidelity draws them), and the unbiased MMD² with the polynomial kernel
    k(a, b) = (γ a·b + coef0)^degree is computed in float64 on the inputs' device; KID is the mean over
    subsets. Unbiased: its expectation is 0 for two samples of one law, and one value may be < 0.

    Args:
        fx: (n, k) features, n >= 2; fy: (m, k), m >= 2.
        subsets: int >= 1 (torch-fidelity's default 100).
        subset_size: int >= 2 (default 1000); clipped to min(n, m).
        degree: int >= 1; gamma: number > 0, None for 1/k; coef0: a finite number.
        seed: int >= 0; same seed, same subsets, same numbers.

    Returns:
        ``KIDResult`` with ``kid``, ``kid_std`` (std over subsets), ``kid_stderr`` (kid_std/√subsets),
        ``subsets`` and the ``subset_size`` s used.

    Cost: 3·subsets products of (s, k) by (k, s); memory 3 s² floats.
    """
    x = _features("fx", fx, min_rows=2)
    y = _features("fy", fy, min_rows=2, device=x.device)
    _same_dim("fx", x, "fy", y)
    subsets = _int("subsets", subsets, 1)
    size = min(_int("subset_size", subset_size, 2), x.shape[0], y.shape[0])
    degree = _int("degree", degree, 1)
    gamma = 1.0 / x.shape[1] if gamma is None else _real("gamma", gamma, positive=True)
    coef0 = _real("coef0", coef0)
    rng = np.random.RandomState(_int("seed", seed, 0))
    values = np.empty(subsets)
    for i in range(subsets):
        a = x[torch.from_numpy(rng.choice(x.shape[0], size, replace=False)).to(x.device)]
        b = y[torch.from_numpy(rng.choice(y.shape[0], size, replace=False)).to(x.device)]
        values[i] = _mmd2_unbiased(_polynomial_kernel(a, a, degree, gamma, coef0),
                                   _polynomial_kernel(a, b, degree, gamma, coef0),
                                   _polynomial_kernel(b, b, degree, gamma, coef0))
    std = float(values.std())
    return KIDResult(kid=float(values.mean()), kid_std=std, kid_stderr=std / math.sqrt(subsets),
                     subsets=subsets, subset_size=size)


# ----------------------------------------------------------------------------- precision / recall


@dataclass(frozen=True)
class PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al. 2019), each in [0, 1], with the k used."""

    precision: float
    recall: float
    k: int

    def as_dict(self) -> dict:
        return asdict(self)


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(p, q) matrix of ‖a_i − b_j‖² (float64), clamped at 0 against round-off (one (p, q) buffer)."""
    d = a @ b.T
    d.mul_(-2.0).add_((a * a).sum(1)[:, None]).add_((b * b).sum(1)[None, :])
    return d.clamp_min_(0.0)


def _rows_per_block(batch_size: int | None, columns: int) -> int:
    if batch_size is None:
        return max(1, _BLOCK_ENTRIES // max(columns, 1))
    return _int("batch_size", batch_size, 1)


def _knn_radii_sq(x: torch.Tensor, k: int, batch_size: int | None) -> torch.Tensor:
    """(n,) squared distance from each x_i to its k-th nearest *other* point of x (itself excluded by
    index, so a duplicate counts as a neighbour at distance 0); blocks of rows bound the memory."""
    n = x.shape[0]
    rows = _rows_per_block(batch_size, n)
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    for start in range(0, n, rows):
        block = _sq_dists(x[start:start + rows], x)
        idx = torch.arange(block.shape[0], device=x.device)
        block[idx, start + idx] = math.inf
        out[start:start + rows] = block.topk(k, dim=1, largest=False).values[:, -1]  # k-th smallest
    return out


def _share_inside(points: torch.Tensor, centres: torch.Tensor, radii_sq: torch.Tensor,
                  batch_size: int | None) -> float:
    """Share of ``points`` within (<=) the radius of at least one of ``centres``."""
    rows = _rows_per_block(batch_size, centres.shape[0])
    inside = 0
    for start in range(0, points.shape[0], rows):
        d = _sq_dists(points[start:start + rows], centres)
        inside += int((d <= radii_sq[None, :]).any(1).sum())
    return inside / points.shape[0]


def precision_recall(real, fake, k: int = 3, batch_size: int | None = None) -> PrecisionRecall:
    """Improved precision and recall of Kynkäänniemi et al. (2019) from k-NN manifolds of features.

    Each real feature r_i gets the radius ρ_i = distance to its k-th nearest other real feature; the
    real manifold is the union of the balls B(r_i, ρ_i). **Precision** = share of fake features inside
    at least one real ball (‖f − r_i‖ <= ρ_i: fidelity); **recall** = share of real features inside at
    least one fake ball, radii from the fake set alike (coverage). Euclidean distances in float64 on
    the inputs' device, after subtracting the real mean (which changes no distance, and keeps the
    ‖a‖² + ‖b‖² − 2a·b expansion accurate for features far from the origin). No randomness.

    k = 3 is the paper's choice (with n = 50 000 Inception or VGG features). Both scores depend on k and
    on the set sizes (more points, smaller balls): compare only scores computed with the same k and n.

    Args:
        real: (n, k_dim) features, n > k; fake: (m, k_dim), m > k.
        k: int >= 1, the neighbour that sets each radius.
        batch_size: rows of distances per block (memory: batch_size × max(n, m) float64s, about twice
            that at the peak); None picks blocks of at most 2^23 distances (64 MiB), so n = 50 000 never
            builds an n × n matrix (it takes 4·n²·k_dim flops: seconds on a GPU, long on one CPU core).

    Returns:
        ``PrecisionRecall`` with ``precision``, ``recall``, ``k``.
    """
    k = _int("k", k, 1)
    x = _features("real", real)
    y = _features("fake", fake, device=x.device)
    _same_dim("real", x, "fake", y)
    for name, t in (("real", x), ("fake", y)):
        if t.shape[0] <= k:
            raise ValueError(f"{name} must hold more than k = {k} features (the k-th nearest other one sets "
                             f"each radius), got {t.shape[0]}")
    if batch_size is not None:
        _int("batch_size", batch_size, 1)
    centre = x.mean(0)
    x, y = x - centre, y - centre
    precision = _share_inside(y, x, _knn_radii_sq(x, k, batch_size), batch_size)
    recall = _share_inside(x, y, _knn_radii_sq(y, k, batch_size), batch_size)
    return PrecisionRecall(precision=precision, recall=recall, k=k)
