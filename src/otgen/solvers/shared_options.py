"""The option specs every solver shares: the optimiser of a network (:class:`Adam`) and the shared
top-level options (``seed``, ``device``, the shape of the samples). Each solver composes its own
``Options`` from these and its method's specs (``otgen.spec``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..schema import Betas, Choice, Number, Shape
from ..spec import Spec, option
from .base import DEVICE, DIM, EMA_DECAY, EVENT_SHAPE, GRAD_CLIP, SEED

__all__ = ["Adam", "check_dim_or_shape", "SCHEDULES", "DIM", "EVENT_SHAPE", "SOURCE_SHAPE", "SEED", "DEVICE", "POSITIVE", "EMA_DECAY",
           "GRAD_CLIP"]

#: learning-rate schedules: "constant"; "cosine" (from lr to 0 over ``fit``'s run); "phase_cosine"
#: (S-JKO: from lr to 0 within every phase); "steps" (WAE's paper schedule: ×0.5 at 30 % of the run,
#: ×0.1 from 50 %). A solver says which it supports (``Adam.supported``).
SCHEDULES = ("constant", "cosine", "phase_cosine", "steps")

POSITIVE = Number(low=0, low_open=True)
SOURCE_SHAPE = Shape(nullable=True)


def check_dim_or_shape(dim: int | None, event_shape: Any, where: str) -> None:
    """ValueError unless exactly one of ``dim`` and ``event_shape`` is given (both already checked by
    their fields): the one rule between options every solver with a ``dim`` shares (its ``validate``)."""
    if (dim is None) == (event_shape is None):
        raise ValueError(f"give exactly one of {where}dim (an int >= 1) and {where}event_shape (a list of ints), "
                         f"got dim={dim!r}, event_shape={event_shape!r}")


@dataclass(frozen=True)
class Adam(Spec):
    """The optimiser of one network: Adam, its learning-rate schedule, gradient clipping and an
    exponential moving average of the weights. YAML: ``optim: {lr: 2e-4, schedule: cosine}`` (options
    not given keep the solver's defaults)."""

    lr: float = option(1e-4, POSITIVE, "learning rate, > 0")
    betas: Any = option((0.5, 0.9), Betas(), "Adam's (beta1, beta2), each in [0, 1)")
    schedule: str = option("constant", Choice(SCHEDULES),
                           "learning-rate schedule: 'constant', 'cosine' (to 0 over the run), 'phase_cosine' "
                           "(S-JKO: to 0 within every phase) or 'steps' (WAE: ×0.5 at 30 %, ×0.1 from 50 %)")
    grad_clip: float | None = option(None, GRAD_CLIP, "max gradient norm of each update (None: off)")
    ema: float | None = option(None, EMA_DECAY,
                               "decay in (0, 1) of an EMA of the weights, used where the network samples "
                               "(None: off)")

    def supported(self, where: str, schedules: tuple[str, ...], ema: bool = True) -> "Adam":
        """``self`` if its schedule is among ``schedules`` (and it has no EMA where ``ema`` is False);
        ValueError naming ``where`` (e.g. ``optim_v``) otherwise."""
        if self.schedule not in schedules:
            raise ValueError(f"{where}.schedule must be one of {schedules} for this solver, got {self.schedule!r}")
        if not ema and self.ema is not None:
            raise ValueError(f"{where}.ema must be None: this network's weights are not used to sample, so an "
                             f"EMA of them would be unused; got {self.ema!r}")
        return self
