"""Convex conjugates Psi* of the f-divergence penalties of unbalanced OT (UOTM, S-JKO).

The semi-dual UOT losses call ``Psi*`` on a batch of dual values: ``phi(s) -> Tensor like s``,
elementwise, any shape, any float dtype and device; autograd flows through every branch.

A divergence ``D_Psi(a | b) = ∫ Psi(da/db) db`` penalises a relaxed marginal ``a`` for leaving ``b``;
``Psi`` is convex with ``Psi(1) = 0 = min Psi``. Its conjugate ``Psi*(s) = sup_t [s·t − Psi(t)]`` is
convex and non-decreasing (``Psi = +inf`` for ``t < 0``). Every conjugate here is **normalised**:

    Psi*(0) = 0,    Psi*'(0) = 1        (the minimiser of Psi is t = 1)

so the balanced (hard-marginal) case is ``Psi* = identity`` and every other one agrees with it to first
order at 0.

==========  ==========================================  =================================================
name        Psi*(s)                                     primal Psi(t)
==========  ==========================================  =================================================
linear      s                                           0 if t = 1 else +inf (hard marginal: balanced OT)
kl          e^s − 1                                     t log t − t + 1,  t ≥ 0
chi         ¼y² + y,  y = max(s, −2)                    (t − 1)²,  t ≥ 0  (Pearson chi-square)
softplus    2·log(1 + e^s) − 2·log 2                    t log t + (2 − t) log(2 − t),  0 ≤ t ≤ 2
==========  ==========================================  =================================================

``chi`` is −1 for s ≤ −2 and C¹ there (both one-sided slopes are 0); ``softplus`` is bounded below by
−2·log 2 and has slope at most 2.

**Strength alpha.** Each object carries ``alpha > 0`` and computes ``alpha·Psi*(s/alpha)``, the conjugate
of ``alpha·Psi``: larger alpha penalises the marginal mismatch more strongly. The value and slope at 0
stay 0 and 1 for every alpha, and as alpha → ∞ the smooth conjugates tend to ``s`` (the balanced case):
``|alpha·Psi*(s/alpha) − s| ≈ Psi*''(0)·s²/(2·alpha)``. ``alpha`` is a plain attribute that may be
reassigned at any time (e.g. an S-JKO schedule sets it once per phase); it is validated on assignment.

**Overflow (kl).** In float32 e^s overflows to inf for s > 88.7 (float64: 709.8), and an inf value or a
NaN gradient would end training. ``kl`` is therefore e^s − 1 **exactly** (``torch.expm1``) for
``s ≤ s0 = threshold`` (default 30, the same in every dtype, so the function does not depend on the
dtype) and continues by its tangent at s0 beyond it:

    Psi*(s) = e^s0 − 1 + e^s0·(s − s0)        for s > s0

This keeps the function convex, non-decreasing and C¹ (its slope is e^s0 ≈ 1.07e13 from s0 on, so
gradients stay bounded), and it is itself an exact conjugate: that of ``t log t − t + 1`` restricted to
density ratios ``t ≤ e^s0``, which is what ``KL.psi`` returns. Values stay finite in float32 up to
s ≈ 3e25 (float64: beyond 1e295). With alpha the switch happens at ``s = alpha·s0``. float16 is not
supported (its range ends at 65504 < e^s0): compute the losses in float32 or wider.
"""

from __future__ import annotations

import math

import torch

from .checks import check_number
from .registry import Registry


class Conjugate:
    """Base class: ``phi(s) = alpha·Psi*(s/alpha)`` elementwise, ``phi.psi(t) = alpha·Psi(t)``.

    Subclasses implement the unscaled pair ``_conj(s)`` (Psi*) and ``_primal(t)`` (Psi).

    Args:
        alpha: strength of the penalty, a finite float > 0 (default 1: the plain normalised conjugate).
    """

    name = "conjugate"

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    @property
    def alpha(self) -> float:
        """Strength of the penalty alpha·Psi (> 0); reassign it to change it (validated)."""
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        check_number("alpha", value, low=0.0, low_open=True)
        self._alpha = float(value)

    def __call__(self, s: torch.Tensor) -> torch.Tensor:
        """alpha·Psi*(s/alpha), elementwise. ``s``: Tensor of any shape; returns a Tensor like ``s``."""
        a = self._alpha
        if a == 1.0:
            return self._conj(s)
        return a * self._conj(s / a)

    def psi(self, t: torch.Tensor) -> torch.Tensor:
        """The primal alpha·Psi(t) whose conjugate ``__call__`` computes (+inf outside its domain).

        Elementwise on a Tensor ``t`` of any shape; for documentation and tests (no autograd intended).
        """
        return self._alpha * self._primal(t)

    def _conj(self, s: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _primal(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self._alpha!r})"


def _inf_where(mask: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return torch.where(mask, torch.full_like(value, math.inf), value)


class Linear(Conjugate):
    """Psi*(s) = s: the hard marginal constraint Psi = indicator of {t = 1} (balanced OT, OTM).

    alpha has no effect (alpha·(s/alpha) = s; alpha times an indicator is the same indicator); it is
    kept so that every conjugate has the same interface.
    """

    name = "linear"

    def __call__(self, s):
        return s.clone()

    def _conj(self, s):
        return s.clone()

    def _primal(self, t):
        return _inf_where(t != 1, torch.zeros_like(t))


class KL(Conjugate):
    """Psi*(s) = e^s − 1, the conjugate of Psi(t) = t log t − t + 1 (Kullback–Leibler).

    Exact for s ≤ ``threshold`` (s0, default 30); beyond it the tangent line at s0,
    e^s0 − 1 + e^s0·(s − s0), so value and gradient stay finite (see the module docstring). Convex,
    non-decreasing, C¹ everywhere; Psi*(0) = 0, Psi*'(0) = 1, Psi*(−∞) = −1.

    Args:
        alpha: strength, finite > 0 (the switch to the tangent is then at s = alpha·s0).
        threshold: s0, a finite number > 0 (so that the normalisation at 0 is exact). Must be below
            ~88 for float32 inputs to stay finite.
    """

    name = "kl"

    def __init__(self, alpha: float = 1.0, threshold: float = 30.0):
        super().__init__(alpha)
        check_number("threshold", threshold, low=0.0, low_open=True)
        self.threshold = float(threshold)

    def _conj(self, s):
        s0 = self.threshold
        exact = torch.expm1(s.clamp(max=s0))  # never overflows; its gradient is 0 where s > s0
        tangent = math.expm1(s0) + math.exp(s0) * (s - s0)
        return torch.where(s <= s0, exact, tangent)

    def _primal(self, t):
        value = torch.xlogy(t, t) - t + 1
        return _inf_where((t < 0) | (t > math.exp(self.threshold)), value)

    def __repr__(self):
        return f"KL(alpha={self._alpha!r}, threshold={self.threshold!r})"


class ChiSquare(Conjugate):
    """Psi*(s) = ¼y² + y with y = max(s, −2), the conjugate of Psi(t) = (t − 1)² on t ≥ 0 (Pearson χ²).

    Equal to −1 for s ≤ −2 (the sup is then at t = 0) and to s + s²/4 above; C¹ at −2 (slope 0 from
    both sides), convex and non-decreasing; Psi*(0) = 0, Psi*'(0) = 1. Grows quadratically, so it cannot
    overflow for any argument a loss would produce (float32: finite up to |s| ≈ 3.7e19).
    """

    name = "chi"

    def _conj(self, s):
        y = s.clamp(min=-2.0)
        return y * (0.25 * y + 1.0)

    def _primal(self, t):
        return _inf_where(t < 0, (t - 1) ** 2)


class Softplus(Conjugate):
    """Psi*(s) = 2·log(1 + e^s) − 2·log 2, the conjugate of Psi(t) = t log t + (2 − t) log(2 − t) on [0, 2].

    Convex and increasing with slope 2·sigmoid(s) ∈ (0, 2); Psi*(0) = 0, Psi*'(0) = 1, bounded below by
    −2·log 2. (The unnormalised log(1 + e^s) of the UOTM code has its primal minimum at t = ½, not at 1.)
    Evaluated as 2·log1p(expm1(s)/2) for s ≤ 0 and 2·(s + log1p(expm1(−s)/2)) for s > 0: no overflow,
    and accurate near 0 (no cancellation against 2·log 2).
    """

    name = "softplus"

    def _conj(self, s):
        left = torch.log1p(0.5 * torch.expm1(s.clamp(max=0.0)))
        pos = s.clamp(min=0.0)
        right = pos + torch.log1p(0.5 * torch.expm1(-pos))
        return 2.0 * torch.where(s <= 0, left, right)

    def _primal(self, t):
        value = torch.xlogy(t, t) + torch.xlogy(2 - t, 2 - t)
        return _inf_where((t < 0) | (t > 2), value)


REGISTRY: Registry[type[Conjugate]] = Registry("conjugate")  # names looked up by otgen.registry's rule ("KL" finds kl)
for _cls in (Linear, KL, ChiSquare, Softplus):
    REGISTRY.add(_cls.name, _cls)
CONJUGATES: tuple[str, ...] = tuple(REGISTRY.names())  # the built-in names, in this order


def make_conjugate(name: str, alpha: float = 1.0, argument: str = "conjugate name") -> Conjugate:
    """The normalised conjugate ``name`` scaled as alpha·Psi*(s/alpha).

    Args:
        name: one of ``"linear"``, ``"kl"``, ``"chi"``, ``"softplus"`` (see the module docstring), or
            another name of ``REGISTRY``; case and '-'/'_' do not matter.
        alpha: strength of the penalty alpha·Psi, a finite float > 0 (ignored by ``"linear"``).
        argument: what the messages call ``name`` (a solver's ``phi1``, ``phi``).

    Raises:
        ValueError: unknown ``name`` (the message names ``argument``, the closest name and the
            accepted ones), or ``alpha`` not a finite number > 0.
    """
    return REGISTRY.get(name, where=argument)(alpha)
