"""Scoring solvers on ground-truth pairs (the harness; ground truth itself never imports solvers)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from . import metrics


def evaluate_pair(model: Any, pair: Any, n_conditions: int = 100, n_per_condition: int = 500,
                  n_samples: int = 10_000, seed: int = 0) -> dict[str, float]:
    """cBW2-UVP of the learned conditional plans and BW2-UVP of the learned target marginal.

    The marginal is scored on ``model.transport(x)`` for ``n_samples`` fresh source points against
    the pair's exact target moments; the conditional plans on ``n_conditions`` × ``n_per_condition``
    draws against the exact conditional moments. Both in %, with the seconds spent sampling.
    """
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    cbw = metrics.cbw2_uvp(model, pair, n_conditions=n_conditions, n_per_condition=n_per_condition, seed=seed)
    x = pair.source(n_samples, generator=gen)
    y = model.transport(x)
    bw = metrics.bw2_uvp(y, pair.target_mean, pair.target_cov)
    return {"cbw2_uvp": float(cbw), "bw2_uvp": float(bw), "eval_seconds": time.perf_counter() - t0}


def exact_sample_floor(pair: Any, n_conditions: int = 100, n_per_condition: int = 500, n_samples: int = 10_000,
                       seed: int = 0) -> dict[str, float]:
    """The same scores for exact samples of the pair: the finite-sample floor of each metric."""
    gen = torch.Generator().manual_seed(seed + 1)
    cbw = metrics.cbw2_uvp(lambda x, k: pair.conditional_sample(x, k, generator=gen), pair,
                           n_conditions=n_conditions, n_per_condition=n_per_condition, seed=seed)
    y = pair.target(n_samples, generator=gen)
    bw = metrics.bw2_uvp(y, pair.target_mean, pair.target_cov)
    return {"cbw2_uvp": float(cbw), "bw2_uvp": float(bw)}


def pot_entropic_cost(x: torch.Tensor, y: torch.Tensor, eps: float) -> float:
    """E_pi[½‖x − y‖²] of POT's entropic plan between the empirical measures of ``x`` and ``y``
    (uniform weights, M = ½‖x_i − y_j‖², POT reg = eps, log-domain Sinkhorn)."""
    import ot

    xa, ya = x.double().numpy(), y.double().numpy()
    M = 0.5 * ot.dist(xa, ya)
    a = np.full(len(xa), 1.0 / len(xa))
    b = np.full(len(ya), 1.0 / len(ya))
    plan = ot.sinkhorn(a, b, M, reg=eps, method="sinkhorn_log", numItermax=20_000, stopThr=1e-9)
    return float((plan * M).sum())
