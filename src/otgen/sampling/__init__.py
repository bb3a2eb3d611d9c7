"""Samplers of the learned plans: Langevin dynamics and where its chains start."""

from .chains import FreshStart, PersistentChains, ReplayBuffer, noise_init, source_init
from .langevin import LangevinSampler, LangevinStats

__all__ = ["LangevinSampler", "LangevinStats", "FreshStart", "ReplayBuffer", "PersistentChains",
           "noise_init", "source_init"]
