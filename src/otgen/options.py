"""The option specs of the solvers, in one public place (``otgen.options``): what a constructor's
composed options take, besides plain mappings and names.

    from otgen.options import SMC, Adam, ParticlePool
    m = otgen.EgNOT(dim=2, eps=0.1, optim=Adam(lr=1e-3, betas=(0.5, 0.99), schedule="cosine"),
                    sampler=SMC(particles=8, chains=ParticlePool(refresh_every=10)))
    # the same as optim={"lr": 1e-3}, sampler={"name": "smc", "particles": 8, "chains": {"refresh_every": 10}}

An instance is complete: the options it is not given take its class's defaults (``Adam()``'s betas
are (0.5, 0.9)). A mapping is a change to the solver's own default (EgNOT's optimiser keeps its
betas (0.5, 0.99) and cosine schedule under ``optim={"lr": 1e-3}``).

Each solver's whole tree is its ``Options`` (``otgen.EgNOT.Options``; ``help(otgen.EgNOT)`` lists it).
"""

from __future__ import annotations

from .solvers.egnot import (SAMPLERS, ChainPool, EgNOTOptions, FreshChains, FreshParticles, Langevin, ParticlePool,
                            ReplayChains, SMC)
from .solvers.semidual import CONJUGATE_SPECS, Critic, JKOCritic, SqEuclidean
from .solvers.sjko import Phases, SJKOOptions
from .solvers.shared_options import Adam
from .solvers.uotm import UOTMOptions
from .solvers.wae import GAN, IMQ, MMD, RBF, Pretrain, WAEOptions

__all__ = ["Adam", "SMC", "Langevin", "ParticlePool", "FreshParticles", "ChainPool", "ReplayChains", "FreshChains",
           "SAMPLERS", "conjugate", "SqEuclidean", "Critic", "JKOCritic", "Phases", "MMD", "GAN", "IMQ", "RBF",
           "Pretrain", "EgNOTOptions", "UOTMOptions", "SJKOOptions", "WAEOptions"]


def conjugate(name: str, alpha: float = 1.0):
    """The spec of conjugate ``name`` ("kl", "chi", "softplus", "linear") with strength ``alpha``: what
    UOTM's ``phi1`` / ``phi2`` and S-JKO's ``phi`` take (as do ``"kl"`` and ``{"name": "kl", "alpha": 2}``)."""
    return CONJUGATE_SPECS.get(name, where="conjugate")(alpha=alpha)
