"""Converters between the entropic-OT regularisation conventions in the literature.

otgen uses the "Skoltech" convention throughout (EgNOT, ENOT, LightSB, the Gushchin et al.
entropic OT benchmark):

    EOT_eps(P, Q) = min over couplings pi of  E_pi[½‖x − y‖²] + eps · KL(pi ‖ P ⊗ Q).

The same problem written in other conventions (reference/groundtruth.md §1.1):

=========================================  =====================================  ==================
convention                                 objective                              relation to eps
=========================================  =====================================  ==================
Janati et al. 2020 (sigma)                 ∫‖x−y‖² dpi + 2 sigma² KL(pi‖P⊗Q)     sigma² = eps,
                                                                                  value = 2 · EOT_eps
Mallasto et al. (eps_M)                    ∫‖x−y‖² dpi + eps_M KL(pi‖P⊗Q)         eps_M = 2 eps
POT, ``M = ot.dist(x, y)`` (sq. Eucl.)     ⟨pi, M⟩ + reg · KL(pi‖a bᵀ)            reg = 2 eps
POT, ``M = 0.5 * ot.dist(x, y)``           ⟨pi, M⟩ + reg · KL(pi‖a bᵀ)            reg = eps
=========================================  =====================================  ==================

Each function below does one conversion. Regularisation strengths must be positive and finite;
objective values only need to be finite (they can be negative in the entropy form of the
objective). Bad input raises ``ValueError`` naming the argument, its value and the accepted range.
"""

from __future__ import annotations

import math
import numbers

__all__ = [
    "eps_to_pot_reg",
    "pot_reg_to_eps",
    "eps_to_janati_sigma",
    "janati_sigma_to_eps",
    "eps_to_mallasto_eps",
    "mallasto_eps_to_eps",
    "janati_value_to_eps_value",
    "eps_value_to_janati_value",
]

# POT cost matrix -> factor f such that reg = f * eps.
_POT_COSTS = {"sqeuclidean": 2.0, "half_sqeuclidean": 1.0}


def _as_real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def _positive(name: str, value) -> float:
    value = _as_real(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be positive and finite (0 < {name} < inf), got {value!r}")
    return value


def _pot_factor(cost: str) -> float:
    if cost not in _POT_COSTS:
        raise ValueError(f"cost must be one of {sorted(_POT_COSTS)}, got {cost!r}")
    return _POT_COSTS[cost]


def eps_to_pot_reg(eps: float, cost: str = "sqeuclidean") -> float:
    """POT's ``reg`` for Skoltech ``eps``.

    ``cost="sqeuclidean"``: the cost matrix is ``ot.dist(x, y)`` = ‖x−y‖², so ``reg = 2·eps``.
    ``cost="half_sqeuclidean"``: the cost matrix is ``0.5 * ot.dist(x, y)``, so ``reg = eps``.
    With ``ot.solve(M, a, b, reg=reg, reg_type="KL")``, ``.value`` is then ``2·EOT_eps``
    (respectively ``EOT_eps``).
    """
    return _pot_factor(cost) * _positive("eps", eps)


def pot_reg_to_eps(reg: float, cost: str = "sqeuclidean") -> float:
    """Skoltech ``eps`` for POT's ``reg`` (inverse of :func:`eps_to_pot_reg`)."""
    return _positive("reg", reg) / _pot_factor(cost)


def eps_to_janati_sigma(eps: float) -> float:
    """Janati et al.'s sigma for Skoltech ``eps``: ``sigma = sqrt(eps)`` (sigma² = eps)."""
    return math.sqrt(_positive("eps", eps))


def janati_sigma_to_eps(sigma: float) -> float:
    """Skoltech ``eps`` for Janati et al.'s sigma: ``eps = sigma²``."""
    return _positive("sigma", sigma) ** 2


def eps_to_mallasto_eps(eps: float) -> float:
    """Mallasto et al.'s eps_M (cost ‖x−y‖², eps_M·KL) for Skoltech ``eps``: ``eps_M = 2·eps``."""
    return 2.0 * _positive("eps", eps)


def mallasto_eps_to_eps(eps_m: float) -> float:
    """Skoltech ``eps`` for Mallasto et al.'s eps_M: ``eps = eps_M / 2``."""
    return _positive("eps_m", eps_m) / 2.0


def janati_value_to_eps_value(value: float) -> float:
    """Skoltech ``EOT_eps`` from Janati's ``OT_sigma`` (sigma² = eps): ``EOT_eps = OT_sigma / 2``.

    Janati's objective is exactly twice the Skoltech one (cost ‖x−y‖² instead of ½‖x−y‖², and
    2 sigma² = 2 eps in front of the KL).
    """
    return _as_real("value", value) / 2.0


def eps_value_to_janati_value(value: float) -> float:
    """Janati's ``OT_sigma`` (sigma² = eps) from Skoltech ``EOT_eps``: ``OT_sigma = 2·EOT_eps``."""
    return 2.0 * _as_real("value", value)
