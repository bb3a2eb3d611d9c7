"""Accuracy metrics against ground truth: Bures (BW2) UVPs, exact empirical W2, and RBF-MMD.

Conventions (reference/groundtruth.md §4.1):

* ``bw2`` is the benchmark's Bures quantity, which carries the ½ of the ½‖x−y‖² cost:
  ``BW2² = ½ W2²(N(m1, S1), N(m2, S2))``.
* Sample covariances are unbiased (divide by n − 1), as ``np.cov``.
* UVP ("unexplained variance percentage") normalises by ½ Var Q = ½ Tr Cov(Q), so the constant
  predictor E[y] scores 100%.

Inputs may be torch tensors (any device) or array-likes. Bures quantities are computed in float64
numpy; ``mmd`` runs in torch on the inputs' device. Bad input raises ``ValueError`` naming the
argument.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import ot
import torch

from .kernels import sq_dists

__all__ = ["bw2", "bw2_uvp", "cbw2_uvp", "conditional_scores", "w2", "w2_squared", "mmd"]


# ----------------------------------------------------------------------------- input helpers


def _to_numpy(name: str, value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise ValueError(f"{name} must hold real numbers, got a tensor of dtype {value.dtype}")
        value = value.detach().to("cpu", torch.float64).numpy()
    if value is None or isinstance(value, (str, bytes, dict)):
        raise ValueError(f"{name} must be a numeric array or tensor of real numbers, got {type(value).__name__}")
    if np.iscomplexobj(value):
        raise ValueError(f"{name} must hold real numbers, got complex ones")
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array or tensor, got {type(value).__name__}") from err
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite entries")
    return arr


def _check_shape(name: str, arr: np.ndarray, shape: tuple) -> None:
    """``shape`` may contain None for 'any size'."""
    ok = arr.ndim == len(shape) and all(s is None or s == t for s, t in zip(shape, arr.shape))
    if not ok:
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")


def _check_cov(name: str, cov: np.ndarray) -> np.ndarray:
    """Symmetric positive semidefinite (up to round-off) -> symmetrised copy."""
    scale = max(1.0, float(np.abs(cov).max(initial=0.0)))
    if not np.allclose(cov, np.swapaxes(cov, -1, -2), rtol=0.0, atol=1e-6 * scale):
        raise ValueError(f"{name} must be symmetric")
    cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
    lam_min = float(np.linalg.eigvalsh(cov).min())
    if lam_min < -1e-6 * scale:
        raise ValueError(f"{name} must be positive semidefinite, smallest eigenvalue is {lam_min:.3g}")
    return cov


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- Bures


def _bw2_batch(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """BW2² for stacks: means (N, D), covariances (N, D, D) symmetric PSD -> (N,) float64.

    ½‖m1 − m2‖² + ½ Tr S1 + ½ Tr S2 − Tr((S1^{1/2} S2 S1^{1/2})^{1/2}). The last trace is
    Σ sqrt(λ(Lᵀ S1 L)) with S2 = L Lᵀ (same spectrum as S1^{1/2} S2 S1^{1/2}), which needs only a
    Cholesky factor and symmetric eigenvalues; S1 may be singular. Where S2 is singular the roles
    are swapped, and where both are, an eigendecomposition gives the square root. Computed with
    torch in float64 on the CPU (batched eigenvalue-only LAPACK calls stay fast on a busy machine).
    """
    t1 = torch.from_numpy(np.ascontiguousarray(s1))
    t2 = torch.from_numpy(np.ascontiguousarray(s2))
    chol2, info2 = torch.linalg.cholesky_ex(t2)
    chol1, info1 = torch.linalg.cholesky_ex(t1)
    use2 = info2 == 0
    use1 = (~use2) & (info1 == 0)
    # factor L with L Lᵀ = one of the covariances, and the other covariance
    factor = torch.where(use2[:, None, None], chol2, chol1)
    other = torch.where(use2[:, None, None], t1, t2)
    neither = ~(use1 | use2)
    if bool(neither.any()):
        w, v = torch.linalg.eigh(t2[neither])
        factor[neither] = v * w.clamp_min(0.0).sqrt()[:, None, :]
        other[neither] = t1[neither]
    inner = factor.transpose(-1, -2) @ other @ factor
    inner = 0.5 * (inner + inner.transpose(-1, -2))
    cross = torch.linalg.eigvalsh(inner).clamp_min(0.0).sqrt().sum(-1).numpy()
    diff = m1 - m2
    tr1 = np.trace(s1, axis1=-2, axis2=-1)
    tr2 = np.trace(s2, axis1=-2, axis2=-1)
    return 0.5 * (diff * diff).sum(-1) + 0.5 * tr1 + 0.5 * tr2 - cross


def bw2(mean1, cov1, mean2, cov2) -> float:
    """Bures quantity BW2² = ½ W2²(N(mean1, cov1), N(mean2, cov2)) (groundtruth.md §4.1).

    ``BW2² = ½‖m1 − m2‖² + ½ Tr S1 + ½ Tr S2 − Tr((S1^{1/2} S2 S1^{1/2})^{1/2})``, i.e. the
    W2² of the ½‖x−y‖² cost between the two Gaussians (note the ½: this is *half* the usual W2²).

    Args:
        mean1, mean2: (D,) means.
        cov1, cov2: (D, D) symmetric positive semidefinite covariances (singular allowed).

    Returns:
        float (float64 arithmetic).
    """
    m1 = _to_numpy("mean1", mean1)
    _check_shape("mean1", m1, (None,))
    dim = m1.shape[0]
    if dim < 1:
        raise ValueError(f"mean1 must have shape (D,) with D >= 1, got {m1.shape}")
    m2 = _to_numpy("mean2", mean2)
    _check_shape("mean2", m2, (dim,))
    s1 = _to_numpy("cov1", cov1)
    _check_shape("cov1", s1, (dim, dim))
    s2 = _to_numpy("cov2", cov2)
    _check_shape("cov2", s2, (dim, dim))
    s1, s2 = _check_cov("cov1", s1), _check_cov("cov2", s2)
    return float(_bw2_batch(m1[None], s1[None], m2[None], s2[None])[0])


def _gaussian_fit(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., n, D) -> mean (..., D) and unbiased covariance (..., D, D) over the n axis (float64)."""
    y = torch.from_numpy(np.ascontiguousarray(samples))
    n = y.shape[-2]
    mean = y.mean(-2)
    centred = y - mean[..., None, :]
    cov = centred.transpose(-1, -2) @ centred / (n - 1)
    return mean.numpy(), (0.5 * (cov + cov.transpose(-1, -2))).numpy()


def bw2_uvp(samples, mean, cov) -> float:
    """BW2²-UVP (%) of a sample against a Gaussian reference N(mean, cov).

    ``100 · BW2²(m̂, Ŝ; mean, cov) / (½ Tr cov)`` with m̂ the sample mean and Ŝ the unbiased
    (1/(n−1)) sample covariance of ``samples``.

    Args:
        samples: (n, D) with n ≥ 2.
        mean: (D,) reference mean (e.g. of the target Q).
        cov: (D, D) reference covariance; its trace must be positive.

    Returns:
        float, in percent.
    """
    y = _to_numpy("samples", samples)
    _check_shape("samples", y, (None, None))
    if y.shape[0] < 2:
        raise ValueError(f"samples must hold at least 2 points to estimate a covariance, got {y.shape[0]}")
    dim = y.shape[1]
    m = _to_numpy("mean", mean)
    _check_shape("mean", m, (dim,))
    s = _to_numpy("cov", cov)
    _check_shape("cov", s, (dim, dim))
    s = _check_cov("cov", s)
    var = float(np.trace(s))
    if var <= 0:
        raise ValueError(f"cov must have a positive trace (the UVP normaliser), got {var}")
    m_hat, s_hat = _gaussian_fit(y)
    return 100.0 * float(_bw2_batch(m_hat[None], s_hat[None], m[None], s[None])[0]) / (0.5 * var)


_PAIR_NEEDS = ("source", "conditional_moments", "target_variance")


def _check_pair(pair, needs: tuple[str, ...] = _PAIR_NEEDS) -> None:
    """ValueError naming ``pair`` unless it has the methods ``needs`` (a ground-truth pair does)."""
    missing = [m for m in needs if not callable(getattr(pair, m, None))]
    if missing:
        raise ValueError(f"pair must be a ground-truth pair (e.g. groundtruth.GaussianEOTPair) with "
                         f"{', '.join(needs)}; got {type(pair).__name__} without {', '.join(missing)}")


def _conditions(pair, n_conditions, seed, x, device) -> torch.Tensor:
    """The conditioning points: ``x`` as given (checked), else ``n_conditions`` draws of the source."""
    if x is None:
        n_cond = _check_int("n_conditions", n_conditions, 1)
        seed = _check_int("seed", seed, 0)
        x = pair.source(n_cond, generator=torch.Generator().manual_seed(seed))
    elif not isinstance(x, torch.Tensor):
        x = torch.from_numpy(_to_numpy("x", x).astype(np.float32))
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"x must have shape (n_conditions, D) with n_conditions >= 1, got {tuple(x.shape)}")
    dim = getattr(pair, "dim", None)
    if isinstance(dim, int) and x.shape[1] != dim:
        raise ValueError(f"x must have shape (n, {dim}) (the pair's dim), got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x has non-finite entries")
    return x if device is None else x.to(device)


def _conditional_draws(model_or_sampler, x: torch.Tensor, n_per: int) -> np.ndarray:
    """The model's draws given each x_i, checked: (n_conditions, n_per, D) float64 numpy."""
    if hasattr(model_or_sampler, "sample"):
        ys = model_or_sampler.sample(x, n_per)
    elif callable(model_or_sampler):
        ys = model_or_sampler(x, n_per)
    else:
        raise ValueError(
            f"model_or_sampler must have .sample(x, n_per_x) or be callable f(x, n_per_x), "
            f"got {type(model_or_sampler).__name__}"
        )
    if not isinstance(ys, (torch.Tensor, np.ndarray)):
        raise ValueError(f"the model's samples must be a tensor or array, got {type(ys).__name__}")
    n_cond, dim = x.shape[0], int(np.prod(x.shape[1:]))
    if tuple(ys.shape) != (n_cond, n_per, dim):
        raise ValueError(
            f"the model's samples must have shape (n_conditions, n_per_condition, D) = "
            f"({n_cond}, {n_per}, {dim}), got {tuple(ys.shape)}"
        )
    return _to_numpy("the model's samples", ys)


def _cbw2_uvp_of_draws(x: torch.Tensor, ys: np.ndarray, pair) -> float:
    n_cond = x.shape[0]
    mean_true, cov_true = pair.conditional_moments(x)
    mean_true = _to_numpy("pair.conditional_moments(x)[0]", mean_true)
    dim = mean_true.shape[-1]
    _check_shape("pair.conditional_moments(x)[0]", mean_true, (n_cond, dim))
    cov_true = _to_numpy("pair.conditional_moments(x)[1]", cov_true)
    _check_shape("pair.conditional_moments(x)[1]", cov_true, (n_cond, dim, dim))
    m_hat, s_hat = _gaussian_fit(ys)
    per_condition = _bw2_batch(m_hat, s_hat, mean_true, 0.5 * (cov_true + np.swapaxes(cov_true, -1, -2)))
    var_q = float(pair.target_variance())
    if not math.isfinite(var_q) or var_q <= 0:
        raise ValueError(f"pair.target_variance() must be positive and finite, got {var_q}")
    return 100.0 * float(per_condition.mean()) / (0.5 * var_q)


def cbw2_uvp(
    model_or_sampler,
    pair,
    n_conditions: int = 100,
    n_per_condition: int = 500,
    seed: int = 0,
    x=None,
    device=None,
) -> float:
    """Conditional BW2²-UVP (%) of a stochastic map against a ground-truth pair (groundtruth.md §4.1).

    ``100 · mean_i BW2²(m̂(x_i), Ŝ(x_i); m*(x_i), S*(x_i)) / (½ Var Q)``, where m̂, Ŝ are the sample
    mean and unbiased covariance of the model's draws given x_i, and m*, S* the exact moments of
    pi*(y | x_i). A deterministic predictor has Ŝ = 0 (it is scored as a point mass).

    The score is moment-only: a model with the wrong conditional shape (e.g. one Gaussian where
    pi*(y | x) has several modes) can score well. :func:`conditional_scores` adds shape-sensitive
    scores computed on the same draws.

    Args:
        model_or_sampler: an object with ``.sample(x, n_per_x) -> (n, n_per_x, D)`` (e.g. a fitted
            otgen model), or a callable ``f(x, n_per_x) -> (n, n_per_x, D)``. It is called once,
            without ``torch.no_grad`` (Langevin samplers need gradients).
        pair: ground truth with ``.source`` (a sampler ``n, generator -> (n, D)``),
            ``.conditional_moments(x) -> (mean (n, D), cov (n, D, D))`` and ``.target_variance()``.
        n_conditions: number N of conditioning points x_i ~ P (ignored when ``x`` is given).
        n_per_condition: draws per condition, ≥ 2.
        seed: seeds the torch.Generator that draws the x_i, so every model sees the same x_i.
        x: optional (N, D) conditioning points to use instead of drawing them.
        device: optional device to move x to before calling the model.

    Returns:
        float, in percent.
    """
    n_per = _check_int("n_per_condition", n_per_condition, 2)
    _check_pair(pair)
    x = _conditions(pair, n_conditions, seed, x, device)
    return _cbw2_uvp_of_draws(x, _conditional_draws(model_or_sampler, x, n_per), pair)


def _by_condition_chunks(fn, x: torch.Tensor, ys: np.ndarray, name: str) -> np.ndarray:
    """``fn(x_chunk, y_chunk)`` over chunks of conditions (about 2^21 draw-coordinates each, so that
    per-component intermediates stay small at large D), concatenated as float64 numpy."""
    n, m, d = ys.shape
    step = max(1, (1 << 21) // max(1, m * d))
    dtype = torch.float32 if x.device.type == "mps" else torch.float64  # mps has no float64
    parts = [_to_numpy(name, fn(x[i:i + step], torch.from_numpy(ys[i:i + step]).to(device=x.device, dtype=dtype)))
             for i in range(0, n, step)]
    return np.concatenate(parts, axis=0)


def _mean_log_prob(x: torch.Tensor, ys: np.ndarray, pair) -> float:
    """Mean over conditions and draws of log pi*(y | x), in nats."""
    return float(_by_condition_chunks(pair.conditional_log_prob, x, ys, "pair.conditional_log_prob(x, y)").mean())


def _weight_tv(x: torch.Tensor, ys: np.ndarray, pair) -> float:
    """mean_i ½ Σ_k |mean_j r_k(y_ij | x_i) − w_k(x_i)| (responsibilities r under pi*(· | x_i))."""
    resp = _by_condition_chunks(pair.conditional_responsibilities, x, ys, "pair.conditional_responsibilities(x, y)")
    w = _to_numpy("pair.conditional_weights(x)", pair.conditional_weights(x))
    return float(0.5 * np.abs(resp.mean(axis=1) - w).sum(axis=1).mean())


def conditional_scores(
    model_or_sampler,
    pair,
    n_conditions: int = 100,
    n_per_condition: int = 500,
    seed: int = 0,
    x=None,
    device=None,
) -> dict[str, float]:
    """cBW2²-UVP and two shape-sensitive scores, all on one set of the model's conditional draws.

    With x_i as in :func:`cbw2_uvp` and y_ij the model's draws given x_i:

    * ``"cbw2_uvp"``: as :func:`cbw2_uvp` (%; moment-only).
    * ``"loglik"``: mean_ij log pi*(y_ij | x_i) / D, the exact conditional log-density of the model's
      draws, in nats per dimension.
    * ``"loglik_exact"``: the same for exact draws y ~ pi*(· | x_i) (``pair.conditional_sample`` with
      a generator seeded from ``seed``), i.e. −h(pi*(· | x))/D estimated on the same x_i.
    * ``"loglik_gap"``: ``loglik_exact − loglik`` (nats per dimension). 0 for a perfect sampler, up to
      Monte Carlo noise. Positive: the draws fall where pi* has little mass (missed modes' mass put
      elsewhere, blur, bias). Negative: the draws are too concentrated on high-density points
      (mode-seeking, e.g. a deterministic map to the conditional mode); read it beside cBW2-UVP,
      which penalises the missing spread.
    * ``"weight_tv"`` (only for pairs with ``conditional_weights``, i.e. mixture pairs): mean over
      x_i of the total variation ½ Σ_k |ŵ_k(x_i) − w_k(x_i)| between the true mixture weights of
      pi*(· | x_i) and the model's, ŵ_k = mean_j of the posterior responsibility of component k
      for y_ij. ŵ is unbiased for exact draws, so the floor is Monte Carlo noise only, shrinking like
      sqrt(K / n_per_condition). Soft responsibilities split a draw that lies between modes, so a
      sampler that puts its mass between the modes in the right proportions can score well here:
      ``loglik_gap`` catches that (such draws have low density under pi*).

    ``pair`` needs, besides what :func:`cbw2_uvp` uses, ``conditional_log_prob(x, y) -> (n, m)``
    and ``conditional_sample(x, m, generator)``; for ``weight_tv`` also
    ``conditional_weights(x) -> (n, K)`` and ``conditional_responsibilities(x, y) -> (n, m, K)``.

    Returns:
        dict of floats with the keys above.
    """
    n_per = _check_int("n_per_condition", n_per_condition, 2)
    seed = _check_int("seed", seed, 0)
    _check_pair(pair, _PAIR_NEEDS + ("conditional_log_prob", "conditional_sample"))
    x = _conditions(pair, n_conditions, seed, x, device)
    ys = _conditional_draws(model_or_sampler, x, n_per)
    dim = ys.shape[-1]
    exact = pair.conditional_sample(x, n_per, generator=torch.Generator().manual_seed(seed + 1_000_003))
    loglik = _mean_log_prob(x, ys, pair) / dim
    loglik_exact = _mean_log_prob(x, _to_numpy("exact draws", exact), pair) / dim
    scores = {"cbw2_uvp": _cbw2_uvp_of_draws(x, ys, pair), "loglik": loglik, "loglik_exact": loglik_exact,
              "loglik_gap": loglik_exact - loglik}
    if hasattr(pair, "conditional_weights"):
        scores["weight_tv"] = _weight_tv(x, ys, pair)
    return scores


# ----------------------------------------------------------------------------- exact W2


def _weights(name: str, w, n: int) -> np.ndarray:
    if w is None:
        return np.full(n, 1.0 / n)
    w = _to_numpy(name, w)
    _check_shape(name, w, (n,))
    if np.any(w < 0) or abs(w.sum() - 1.0) > 1e-6:
        raise ValueError(f"{name} must be non-negative and sum to 1, got sum {w.sum():.6g}")
    return w / w.sum()


def w2_squared(x, y, a=None, b=None) -> float:
    """Exact squared 2-Wasserstein distance W2² between two discrete measures (full cost ‖x−y‖²).

    ``W2² = min_pi Σ pi_ij ‖x_i − y_j‖²`` over couplings of ``a`` and ``b``, solved exactly by
    ``ot.emd2`` (network simplex; O(n³) worst case, use a few thousand points at most). This is
    the *full* squared distance, twice the ½‖·‖² cost used by BW2² and EOT_eps.

    Args:
        x: (n, D) support of the first measure; y: (m, D) support of the second.
        a: optional (n,) weights (non-negative, sum 1); uniform by default. b: likewise (m,).

    Returns:
        float (float64 arithmetic).
    """
    xs = _to_numpy("x", x)
    _check_shape("x", xs, (None, None))
    ys = _to_numpy("y", y)
    _check_shape("y", ys, (None, xs.shape[1]))
    if xs.shape[0] < 1 or ys.shape[0] < 1:
        raise ValueError(f"x and y must hold at least one point, got {xs.shape[0]} and {ys.shape[0]}")
    wa = _weights("a", a, xs.shape[0])
    wb = _weights("b", b, ys.shape[0])
    cost = ot.dist(xs, ys, metric="sqeuclidean")
    return max(0.0, float(ot.emd2(wa, wb, cost, numItermax=10_000_000)))


def w2(x, y, a=None, b=None) -> float:
    """Exact 2-Wasserstein distance W2 (NOT squared) between two discrete measures.

    ``W2 = sqrt(w2_squared(x, y, a, b))``; see :func:`w2_squared` for shapes and weights. For
    Gaussians it is comparable to ``sqrt(2 · bw2(...))``.
    """
    return math.sqrt(w2_squared(x, y, a, b))


# ----------------------------------------------------------------------------- MMD

_MEDIAN_SUBSET = 2000  # pooled points used by the median heuristic
_CHUNK = 4096  # rows per block of the kernel matrix


def _to_tensor(name: str, value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        value = torch.from_numpy(_to_numpy(name, value))
    elif value.is_complex():
        raise ValueError(f"{name} must hold real numbers, got a tensor of dtype {value.dtype}")
    elif not torch.isfinite(value).all():
        raise ValueError(f"{name} has non-finite entries")
    if value.ndim != 2:
        raise ValueError(f"{name} must have shape (n, D), got {tuple(value.shape)}")
    if value.shape[0] < 2:
        raise ValueError(f"{name} must hold at least 2 points for the unbiased MMD, got {value.shape[0]}")
    return value


def _median_bandwidth(x: torch.Tensor, y: torch.Tensor) -> float:
    pooled = torch.cat([x, y])
    if pooled.shape[0] > _MEDIAN_SUBSET:
        idx = torch.linspace(0, pooled.shape[0] - 1, _MEDIAN_SUBSET, device=pooled.device).round().long()
        pooled = pooled[idx]
    n = pooled.shape[0]
    iu = torch.triu_indices(n, n, offset=1, device=pooled.device)
    dist = sq_dists(pooled, pooled)[iu[0], iu[1]].sqrt()
    return float(dist.median())


def _rbf_sum(x: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    """Σ_ij exp(−gamma ‖x_i − y_j‖²), in row blocks to bound memory."""
    total = torch.zeros((), dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[0], _CHUNK):
        total = total + torch.exp(-gamma * sq_dists(x[start : start + _CHUNK], y)).sum()
    return total


def mmd(x, y, kernel: str = "rbf", bandwidth: float | None = None) -> float:
    """Unbiased estimate of MMD² between the laws of ``x`` and ``y`` with a Gaussian RBF kernel.

    ``k(u, v) = exp(−‖u − v‖² / (2 ℓ²))`` and
    ``MMD²_u = Σ_{i≠j} k(x_i, x_j)/(n(n−1)) + Σ_{i≠j} k(y_i, y_j)/(m(m−1)) − 2 Σ_ij k(x_i, y_j)/(nm)``.
    Being unbiased, it can be slightly negative when the laws are equal. It returns MMD², not MMD.

    Args:
        x: (n, D), y: (m, D), n, m ≥ 2, tensors on one device (array-likes go to the CPU).
        kernel: only ``"rbf"``.
        bandwidth: ℓ > 0; ``None`` uses the median heuristic: ℓ = median Euclidean distance between
            distinct points of the pooled sample (of at most 2000 evenly spaced pooled points).

    Returns:
        float. Computed in torch on the inputs' device (float64, float32 on MPS), O(n·m) time,
        memory bounded by row blocks.
    """
    if kernel != "rbf":
        raise ValueError(f"kernel must be 'rbf', got {kernel!r}")
    xt = _to_tensor("x", x)
    yt = _to_tensor("y", y)
    if yt.shape[1] != xt.shape[1]:
        raise ValueError(f"y must have shape (m, {xt.shape[1]}) like x, got {tuple(yt.shape)}")
    if yt.device != xt.device:
        raise ValueError(f"x and y must be on the same device, got {xt.device} and {yt.device}")
    dtype = torch.float32 if xt.device.type == "mps" else torch.float64
    xt, yt = xt.detach().to(dtype), yt.detach().to(dtype)

    if bandwidth is None:
        bandwidth = _median_bandwidth(xt, yt)
        if bandwidth <= 0:
            raise ValueError("the median heuristic gave bandwidth 0 (most points coincide); pass bandwidth=")
    elif (
        isinstance(bandwidth, bool)
        or not isinstance(bandwidth, numbers.Real)
        or not math.isfinite(bandwidth)
        or bandwidth <= 0
    ):
        raise ValueError(f"bandwidth must be a positive finite number or None, got {bandwidth!r}")
    gamma = 1.0 / (2.0 * float(bandwidth) ** 2)

    n, m = xt.shape[0], yt.shape[0]
    kxx = (_rbf_sum(xt, xt, gamma) - n) / (n * (n - 1))  # the diagonal contributes exactly n·k(0) = n
    kyy = (_rbf_sum(yt, yt, gamma) - m) / (m * (m - 1))
    kxy = _rbf_sum(xt, yt, gamma) / (n * m)
    return float(kxx + kyy - 2.0 * kxy)
