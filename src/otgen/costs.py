"""Transport costs c(x, y) with their gradient in y.

One small interface: a ``Cost`` is called as ``cost(x, y) -> Tensor (n,)`` on batches
``x: (n, *source_shape)``, ``y: (n, *target_shape)`` and gives ``cost.grad_y(x, y)`` shaped like ``y``.
Closed-form gradients where they exist, autograd otherwise (never with ``create_graph``: samplers need
the value of the gradient, not its graph).

* ``SquaredEuclidean``   c = ½‖x − y‖² (summed over all event dimensions), ∇_y c = y − x.
* ``ZeroCost``           c ≡ 0: EgNOT becomes a plain energy-based model of the target.
* ``CallableCost(fn)``   any user function ``fn(x, y) -> (n,)``; ∇_y by autograd.
* ``GeneratorCost(G)``   c(x, z) = base(x, G(z)) through a frozen ``torch.nn.Module`` G: the target
                         variable is a latent z and the cost is measured on G's output (EgNOT's
                         latent-space variant). ∇_z by autograd through G.
"""

from __future__ import annotations

from typing import Callable

import torch


def _flat_sum(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).sum(dim=1)


class Cost:
    """Base class. Subclasses implement ``__call__``; ``grad_y`` defaults to autograd."""

    name = "cost"
    # c(x, y) = curvature·½‖y‖² + (terms at most linear in y), if known: how fast a potential may grow
    # before exp((f − c)/eps) stops being a proper density. None: unknown.
    curvature: float | None = None

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def grad_y(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            y = y.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self(x, y).sum(), y)
        return g

    def check_shapes(self, source_shape: tuple[int, ...], target_shape: tuple[int, ...]) -> None:
        """Raise ValueError if this cost cannot compare these event shapes (default: no check)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SquaredEuclidean(Cost):
    """c(x, y) = ½‖x − y‖², summed over every event dimension."""

    name = "sqeuclidean"
    curvature = 1.0

    def __call__(self, x, y):
        return 0.5 * _flat_sum((x - y) ** 2)

    def grad_y(self, x, y):
        return y - x

    def check_shapes(self, source_shape, target_shape):
        if tuple(source_shape) != tuple(target_shape):
            raise ValueError(
                f"cost 'sqeuclidean' compares x and y directly, so source and target shapes must match; "
                f"got source {tuple(source_shape)} and target {tuple(target_shape)}"
            )


class ZeroCost(Cost):
    """c ≡ 0 (no coupling to the source: the plan is independent and EgNOT is an EBM for the target)."""

    name = "zero"

    def __call__(self, x, y):
        return torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)

    def grad_y(self, x, y):
        return torch.zeros_like(y)


class CallableCost(Cost):
    """Wraps a user function ``fn(x, y) -> Tensor (n,)``; ∇_y by autograd."""

    name = "callable"

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        if not callable(fn):
            raise ValueError(f"cost must be callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, x, y):
        c = self.fn(x, y)
        if not isinstance(c, torch.Tensor) or c.shape != (y.shape[0],):
            shape = tuple(c.shape) if isinstance(c, torch.Tensor) else type(c).__name__
            raise ValueError(f"a cost function must return a Tensor of shape ({y.shape[0]},), got {shape}")
        return c

    def __repr__(self):
        return f"CallableCost({getattr(self.fn, '__name__', self.fn)!r})"


class GeneratorCost(Cost):
    """c(x, z) = base(x, G(z)) for a frozen generator ``G: (n, *latent_shape) -> (n, *source_shape)``.

    The generator's parameters are frozen (``requires_grad=False``) and it is put in eval mode; it
    is not trained and not saved with the model (pass the same G when loading).
    """

    name = "generator"

    def __init__(self, generator: torch.nn.Module, base: Cost | None = None):
        if not isinstance(generator, torch.nn.Module):
            raise ValueError(f"generator must be a torch.nn.Module, got {type(generator).__name__}")
        self.generator = generator.eval()
        for p in self.generator.parameters():
            p.requires_grad_(False)
        self.base = base if base is not None else SquaredEuclidean()

    def __call__(self, x, z):
        return self.base(x, self.generator(z))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): the latent samples seen in the source space."""
        with torch.no_grad():
            return self.generator(z)

    def __repr__(self):
        return f"GeneratorCost({type(self.generator).__name__}, base={self.base!r})"


_NAMED = {"sqeuclidean": SquaredEuclidean, "zero": ZeroCost}


def make_cost(spec: str | Cost | Callable | None) -> Cost:
    """A ``Cost`` from a name (``"sqeuclidean"`` (default), ``"zero"``), a Cost, or a callable."""
    if spec is None:
        return SquaredEuclidean()
    if isinstance(spec, Cost):
        return spec
    if isinstance(spec, str):
        if spec not in _NAMED:
            raise ValueError(f"cost must be one of {sorted(_NAMED)} (or a Cost / callable), got {spec!r}")
        return _NAMED[spec]()
    if callable(spec):
        return CallableCost(spec)
    raise ValueError(f"cost must be a name, a Cost or a callable, got {type(spec).__name__}")
