"""The sampler alone, against Gaussian targets with known moments."""

import math

import pytest
import torch

from otgen.sampling import LangevinSampler


def _gaussian_log_density(mean, cov):
    prec = torch.linalg.inv(cov)

    def fn(y, need_value):
        d = y - mean
        grad = -d @ prec
        value = -0.5 * (d @ prec * d).sum(1) if need_value else None
        return value, grad

    return fn


MEAN = torch.tensor([1.0, -2.0])
COV = torch.tensor([[0.5, 0.2], [0.2, 0.3]])


def _moments(y):
    return y.mean(0), torch.cov(y.T)


def test_ula_small_step_matches_gaussian_moments():
    g = torch.Generator().manual_seed(0)
    sampler = LangevinSampler(step_size=0.01, n_steps=600)
    y, stats = sampler.run(_gaussian_log_density(MEAN, COV), torch.zeros(20000, 2), g)
    m, c = _moments(y)
    assert torch.allclose(m, MEAN, atol=0.02)
    # ULA's variance bias is about eta / (4 sigma^2) relative: < 2% here
    assert torch.allclose(c, COV, atol=0.02)
    assert stats.acceptance_rate == 1.0 and stats.n_steps == 600


def test_mala_is_exact_with_a_large_step_where_ula_is_biased():
    g = torch.Generator().manual_seed(1)
    target = _gaussian_log_density(MEAN, COV)
    y0 = MEAN + torch.randn(20000, 2, generator=g) * 0.5
    y_ula, _ = LangevinSampler(0.15, 300).run(target, y0, g)
    y_mala, stats = LangevinSampler(0.15, 300, metropolis=True).run(target, y0, g)
    _, c_ula = _moments(y_ula)
    m_mala, c_mala = _moments(y_mala)
    assert 0.3 < stats.acceptance_rate < 1.0
    assert torch.allclose(m_mala, MEAN, atol=0.02)
    assert torch.allclose(c_mala, COV, atol=0.02)
    assert (c_ula - COV).abs().max() > 0.03  # the bias MALA removes


def test_clip_and_decay():
    g = torch.Generator().manual_seed(2)
    sampler = LangevinSampler(0.01, 10, clip=1e-3, decay=0.5)
    y0 = torch.full((100, 2), 50.0)
    y, stats = sampler.run(_gaussian_log_density(MEAN, COV), y0, g)
    assert math.isclose(stats.final_step_size, 0.01 * 0.5**9)  # the step size of the last (10th) step
    # every drift is at most 1e-3 long; the noise sum is about sqrt(sum eta_k) ~ 0.13
    assert (y - y0).norm(dim=1).max() < 10 * 1e-3 + 1.0
    assert torch.equal(y0, torch.full((100, 2), 50.0))  # the input is not modified


@pytest.mark.parametrize("kwargs, match", [
    ({"step_size": 0.0, "n_steps": 1}, "step_size"),
    ({"step_size": float("nan"), "n_steps": 1}, "step_size"),
    ({"step_size": 0.1, "n_steps": -1}, "n_steps"),
    ({"step_size": 0.1, "n_steps": 1, "decay": 1.5}, "decay"),
    ({"step_size": 0.1, "n_steps": 1, "clip": 0}, "clip"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LangevinSampler(**kwargs)
