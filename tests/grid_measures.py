"""Gaussians discretised on grids, the common input of the closed-form-vs-POT tests."""

import numpy as np


def grid_gaussian(points: np.ndarray, mean, cov) -> np.ndarray:
    """Normalised weights of N(mean, cov) on a grid of points (n, D)."""
    d = points - np.asarray(mean)
    logp = -0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(np.atleast_2d(cov)), d)
    w = np.exp(logp - logp.max())
    return w / w.sum()
