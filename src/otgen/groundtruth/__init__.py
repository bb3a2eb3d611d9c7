"""Exact ground truth for testing OT solvers: closed-form plans, benchmark pairs, eps conventions.

Pure math (numpy/scipy/torch/POT and ``otgen.distributions`` only); never imports solvers.
"""

from .conventions import (
    eps_to_janati_sigma,
    eps_to_mallasto_eps,
    eps_to_pot_reg,
    eps_value_to_janati_value,
    janati_sigma_to_eps,
    janati_value_to_eps_value,
    mallasto_eps_to_eps,
    pot_reg_to_eps,
)
from .gaussian_eot import GaussianEOTPair, GaussianEOTPlan, entropic_gaussian_plan

__all__ = [
    # Gaussian entropic OT (closed form)
    "GaussianEOTPair",
    "GaussianEOTPlan",
    "entropic_gaussian_plan",
    # eps conventions
    "eps_to_pot_reg",
    "pot_reg_to_eps",
    "eps_to_janati_sigma",
    "janati_sigma_to_eps",
    "eps_to_mallasto_eps",
    "mallasto_eps_to_eps",
    "janati_value_to_eps_value",
    "eps_value_to_janati_value",
]
