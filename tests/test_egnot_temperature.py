"""EgNOT's sampling temperature: draws from pi(y|x)^(1/T), checked against the closed form of a
quadratic potential, whose plan is Gaussian: f(y) = −a‖y‖² and c = ½‖x − y‖² give
pi(y|x) = N(x/(1 + 2a), eps/(1 + 2a)·I), and pi^(1/T) = N(x/(1 + 2a), T·eps/(1 + 2a)·I)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import otgen
from otgen.image_runs import plan_keywords


class Quadratic(nn.Module):
    def __init__(self, a: float):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, y):
        return -self.a * y.pow(2).sum(1)


@pytest.mark.parametrize("sampler", ["langevin", "smc"])
@pytest.mark.parametrize("temperature", [1.0, 0.25])
def test_draws_follow_the_tempered_plan(sampler, temperature):
    eps, a = 0.5, 0.5
    spec = {"name": "langevin", "step_size": 0.01, "sample_steps": 400} if sampler == "langevin" else \
        {"name": "smc", "sample_steps": 100}
    model = otgen.EgNOT(dim=2, eps=eps, potential=Quadratic(a), sampler=spec)
    x = torch.tensor([[1.0, -2.0]])
    y = model.sample(x, 2000, rng=torch.Generator().manual_seed(0), temperature=temperature)[0].double()
    mean, var = x[0].double() / (1 + 2 * a), temperature * eps / (1 + 2 * a)
    # the sampling error of 2000 draws' variance is 3 %, ULA's step bias about eta·precision/4 = 2 %
    assert torch.allclose(y.mean(0), mean, atol=4 * (var / 2000) ** 0.5 + 0.01)
    assert torch.allclose(y.var(0), torch.full((2,), var, dtype=torch.float64), rtol=0.1)


def test_temperature_is_checked():
    model = otgen.EgNOT(dim=2, eps=0.5)
    x = torch.zeros(2, 2)
    for bad in (0, 1.5, -1, "low", True):
        with pytest.raises(ValueError, match="temperature must be a number in \\(0, 1\\]"):
            model.sample(x, 2, temperature=bad)
    mixture = otgen.EgNOT(dim=2, eps=0.5, potential={"name": "gaussian_mixture", "components": 2})
    with pytest.raises(ValueError, match="draws its plan in closed form"):
        mixture.sample(x, 2, temperature=0.5)
    assert torch.equal(mixture.sample(x, 2, rng=torch.Generator().manual_seed(1), temperature=1.0),
                       mixture.sample(x, 2, rng=torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="UOTM's draws take no temperature"):
        plan_keywords(otgen.UOTM(dim=2), 0.5)
    assert plan_keywords(otgen.UOTM(dim=2), 1.0) == {}
