"""Scores of a learned plan against a ground-truth pair: the one place ``otgen train`` (a run on a
pair), ``otgen bench`` (every cell) and the benchmark scripts compute them.

A *conditional sampler* is ``f(x, n_per_x) -> (n, n_per_x, D)`` (a model's ``sample``, an exact
sampler, a baseline); a *model* has ``sample`` and ``transport``. Scores in % (``metrics``):
cBW2-UVP of the conditional plans against the pair's exact conditional moments, and BW2-UVP of the
target marginal against the pair's target moments.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from .. import metrics

__all__ = ["score_sampler", "evaluate_pair", "exact_sample_floor"]


def score_sampler(sampler: Callable, pair: Any, n_conditions: int, n_per_condition: int, n_marginal: int,
                  seed: int = 0) -> dict[str, float]:
    """``metrics.conditional_scores`` of ``sampler`` (cBW2-UVP, the log-likelihood gap and mode weights
    where the pair has them) and ``bw2_uvp`` of one draw for each of ``n_marginal`` fresh source points."""
    scores = metrics.conditional_scores(sampler, pair, n_conditions=n_conditions, n_per_condition=n_per_condition,
                                        seed=seed)
    x = pair.source(n_marginal, generator=torch.Generator().manual_seed(seed + 17))
    scores["bw2_uvp"] = metrics.bw2_uvp(sampler(x, 1)[:, 0], pair.target_mean, pair.target_cov)
    return scores


def evaluate_pair(model: Any, pair: Any, n_conditions: int = 100, n_per_condition: int = 500,
                  n_samples: int = 10_000, seed: int = 0) -> dict[str, float]:
    """cBW2-UVP of the learned conditional plans and BW2-UVP of the learned target marginal.

    The marginal is scored on ``model.transport(x)`` for ``n_samples`` fresh source points against
    the pair's target moments; the conditional plans on ``n_conditions`` × ``n_per_condition``
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
