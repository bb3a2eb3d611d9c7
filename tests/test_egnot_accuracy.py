"""Accuracy at the benchmark's scale (slow: run by `make bench`, not by the default test run).

EgNOT with its default settings, 3000 iterations of batch 256, against the exact entropic plan of
Gaussian pairs with random covariances; cBW2-UVP on 100 conditions x 500 draws. The thresholds are
the project's goals for this grid, not tuned to our results: see BENCHMARKS.md for measured values.
"""

import pytest

import otgen
from otgen import metrics
from otgen.groundtruth import GaussianEOTPair

GOALS = {(16, 0.1): 1.5, (16, 1.0): 1.0, (64, 0.1): 3.0, (64, 1.0): 3.0}


@pytest.mark.slow
@pytest.mark.parametrize("dim, eps", sorted(GOALS))
def test_egnot_reaches_the_accuracy_goal(dim, eps):
    pair = GaussianEOTPair(dim=dim, eps=eps, seed=0)
    model = otgen.EgNOT(dim=dim, eps=eps, seed=0)
    model.fit(pair.source, pair.target, n_iters=3000, batch_size=256, progress=False)
    score = metrics.cbw2_uvp(model, pair, n_conditions=100, n_per_condition=500, seed=0)
    assert score <= GOALS[(dim, eps)], score
