"""Peer methods of the EOT suites: what a user of entropic OT would pick instead of otgen's EgNOT, run
with its published settings and scored by the same code (a face, beside ``bench.py``).

* ``lightsb``: the light Schrödinger bridge (Korotin, Gushchin, Burnaev, ICLR 2024) as published for
  the Gushchin et al. mixture benchmark. It is otgen's own ``gaussian_mixture`` potential under
  EgNOT's exact loss (the same family and the same loss, shared/reference/mixture-potential.md)
  with the official code's settings: K = 50 diagonal components, means on 50 target samples, S_k = I,
  uniform weights whose logits learn at lr/eps (the official code stores eps·log a_k), Adam with
  betas (0.9, 0.999) at a constant lr of 1e-3 / 3e-3 / 6e-2 for eps 0.1 / 1 / 10 (log-interpolated
  between, clamped outside), 10 000 steps of batch 128 (``EvalBudget.peer_iters``, ``peer_batch``).
* ``sbcfm``: torchcfm's ``SchrodingerBridgeConditionalFlowMatcher`` (exact minibatch OT plan of
  POT, then bridge matching; Tong et al. 2024) with a drift and a score network, sampled by the
  Euler–Maruyama scheme of the learned SDE. Only where ``torchcfm`` imports: an optional benchmark
  dependency, installed by ``make bench`` as ``pip install --no-deps torchcfm==1.0.7`` (its flow
  matchers need only torch, numpy, scipy and POT; its declared dependencies would bring torchvision,
  which cannot be imported beside the CPU torch).

A peer is ``fit(pair, cell, budget, seed) -> sampler(x, n_per_x) -> (n, n_per_x, D)``.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any, Callable

import torch

from .models import get_solver
from .registry import Registry

__all__ = ["PEERS", "lightsb_lr", "lightsb_settings", "available_peers"]

#: the official LightSB learning rates on the Gushchin mixtures, by eps
LIGHTSB_LR = {0.1: 1e-3, 1.0: 3e-3, 10.0: 6e-2}
LIGHTSB_COMPONENTS = 50


def lightsb_lr(eps: float) -> float:
    """The published lr for ``eps``, log-linearly interpolated between 0.1, 1 and 10 (clamped outside)."""
    keys = sorted(LIGHTSB_LR)
    le = min(max(math.log10(eps), math.log10(keys[0])), math.log10(keys[-1]))
    for lo, hi in zip(keys[:-1], keys[1:]):
        if math.log10(lo) <= le <= math.log10(hi):
            t = (le - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
            return 10 ** ((1 - t) * math.log10(LIGHTSB_LR[lo]) + t * math.log10(LIGHTSB_LR[hi]))
    return LIGHTSB_LR[keys[-1]]


def lightsb_settings(dim: int, eps: float) -> dict[str, Any]:
    """EgNOT's options that are LightSB as published (module doc)."""
    return {"dim": dim, "eps": eps,
            "potential": {"name": "gaussian_mixture", "components": LIGHTSB_COMPONENTS, "covariance": "diagonal",
                          "init": "samples", "init_var": 1.0, "weight_lr_scale": 1.0 / eps},
            "optim": {"lr": lightsb_lr(eps), "betas": [0.9, 0.999], "schedule": "constant"}}


def fit_lightsb(pair, cell, budget, seed: int) -> Callable:
    model = get_solver("egnot")(**lightsb_settings(cell.dim, cell.eps), seed=seed)
    model.fit(pair.source, pair.target, n_iters=budget.peer_iters, batch_size=budget.peer_batch, progress=False)
    return model.sample


# ----------------------------------------------------------------------------- torchcfm's SB-CFM

SBCFM_HIDDEN = 256
SBCFM_STEPS = 100  # Euler–Maruyama steps of the sampler


def fit_sbcfm(pair, cell, budget, seed: int) -> Callable:
    """torchcfm's Schrödinger-bridge flow matcher with sigma = sqrt(eps) (the bridge of the Brownian
    motion whose static problem is EOT_eps with cost ½‖x − y‖²): drift v(t, x) and score s(t, x)
    MLPs (3 × 256, SELU as in torchcfm's examples), Adam 1e-3, ``peer_iters`` steps of batch
    ``peer_batch``; draws by Euler–Maruyama of dx = (v + (sigma²/2)·s) dt + sigma dW."""
    from torchcfm.conditional_flow_matching import SchrodingerBridgeConditionalFlowMatcher

    torch.manual_seed(seed)
    dim, sigma = cell.dim, math.sqrt(cell.eps)

    def mlp():
        return torch.nn.Sequential(torch.nn.Linear(dim + 1, SBCFM_HIDDEN), torch.nn.SELU(),
                                   torch.nn.Linear(SBCFM_HIDDEN, SBCFM_HIDDEN), torch.nn.SELU(),
                                   torch.nn.Linear(SBCFM_HIDDEN, SBCFM_HIDDEN), torch.nn.SELU(),
                                   torch.nn.Linear(SBCFM_HIDDEN, dim))

    drift, score = mlp(), mlp()
    fm = SchrodingerBridgeConditionalFlowMatcher(sigma=sigma, ot_method="exact")
    opt = torch.optim.Adam(list(drift.parameters()) + list(score.parameters()), lr=1e-3)
    gen = torch.Generator().manual_seed(seed + 101)
    for _ in range(budget.peer_iters):
        x0 = pair.source(budget.peer_batch, generator=gen)
        x1 = pair.target(budget.peer_batch, generator=gen)
        t, xt, ut, eps_noise = fm.sample_location_and_conditional_flow(x0, x1, return_noise=True)
        lam = fm.compute_lambda(t)
        inp = torch.cat([xt, t[:, None]], 1)
        loss = ((drift(inp) - ut) ** 2).mean() + ((lam[:, None] * score(inp) + eps_noise) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    drift.eval()
    score.eval()
    sample_gen = torch.Generator().manual_seed(seed + 103)

    @torch.no_grad()
    def sample(x: torch.Tensor, n_per_x: int) -> torch.Tensor:
        y = x.float().repeat_interleave(n_per_x, 0)
        dt = 1.0 / SBCFM_STEPS
        for i in range(SBCFM_STEPS):
            inp = torch.cat([y, torch.full((len(y), 1), i * dt)], 1)
            y = y + (drift(inp) + 0.5 * sigma ** 2 * score(inp)) * dt \
                + sigma * math.sqrt(dt) * torch.randn(y.shape, generator=sample_gen)
        return y.reshape(len(x), n_per_x, dim)

    return sample


PEERS: Registry[Callable] = Registry("EOT peer")
PEERS.add("lightsb", fit_lightsb)
PEERS.add("sbcfm", fit_sbcfm)
#: peers that need an optional package, and its import name
NEEDS = {"sbcfm": "torchcfm"}


def available_peers() -> list[str]:
    """The peers whose packages import here, in PEERS' order."""
    return [name for name in PEERS.names()
            if name not in NEEDS or importlib.util.find_spec(NEEDS[name]) is not None]
