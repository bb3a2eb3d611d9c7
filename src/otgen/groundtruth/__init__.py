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
from .jko_gaussian import jko_commuting_std, jko_gaussian_path, jko_gaussian_step, jko_gaussian_step_map, ou_flow
from .linear_gaussian import LinearWAEOptimum, gaussian_rbf_kernel_mean, gaussian_rbf_mmd2, linear_wae_optimum
from .mixture_eot import MixtureEOTPair
from .unbalanced_gaussian import (
    UnbalancedGaussianPlan,
    UnbalancedOTLimit,
    unbalanced_gaussian_plan,
    unbalanced_ot_limit,
    uotm_gaussian_ground_truth,
)

__all__ = [
    # Gaussian entropic OT (closed form)
    "GaussianEOTPair",
    "GaussianEOTPlan",
    "entropic_gaussian_plan",
    # Gaussian-mixture entropic OT pairs (known plan)
    "MixtureEOTPair",
    # unbalanced entropic OT between Gaussians and its sigma -> 0 limit (UOTM)
    "UnbalancedGaussianPlan",
    "unbalanced_gaussian_plan",
    "UnbalancedOTLimit",
    "unbalanced_ot_limit",
    "uotm_gaussian_ground_truth",
    # JKO steps for KL to a Gaussian, and the OU flow (S-JKO)
    "jko_gaussian_step",
    "jko_gaussian_step_map",
    "jko_commuting_std",
    "jko_gaussian_path",
    "ou_flow",
    # linear-Gaussian WAE optimum, RBF-MMD between Gaussians (WAE)
    "LinearWAEOptimum",
    "linear_wae_optimum",
    "gaussian_rbf_kernel_mean",
    "gaussian_rbf_mmd2",
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
