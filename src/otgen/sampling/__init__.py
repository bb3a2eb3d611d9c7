"""Samplers of the learned plans: tempered SMC and persistent weighted particles (MALA moves with an
adapted step), Langevin dynamics, and where chains start."""

from .chains import FreshStart, PersistentChains, ReplayBuffer, noise_init, source_init
from .langevin import LangevinSampler, LangevinStats
from .mala import MoveStats, mala_moves
from .particles import ParticleStats, PersistentParticles
from .smc import GaussianBase, SMCStats, TemperedSMC

__all__ = ["LangevinSampler", "LangevinStats", "FreshStart", "ReplayBuffer", "PersistentChains",
           "noise_init", "source_init", "TemperedSMC", "SMCStats", "GaussianBase", "PersistentParticles",
           "ParticleStats", "mala_moves", "MoveStats"]
