"""Transport costs c(x, y) with their gradient in y.

One small interface: a ``Cost`` is called as ``cost(x, y) -> Tensor (n,)`` on batches
``x: (n, *source_shape)``, ``y: (n, *target_shape)`` and gives ``cost.grad_y(x, y)`` shaped like ``y``.
Closed-form gradients where they exist, autograd otherwise (never with ``create_graph``: samplers need
the value of the gradient, not its graph).

* ``SquaredEuclidean``   c = scale·reduce((x − y)²): ½‖x − y‖² by default (∇_y c = y − x), the UOT cost
                         tau·Σ(x − y)² (or the mean) of UOTM and the JKO cost ‖x − y‖²/(2h) of S-JKO.
* ``ZeroCost``           c ≡ 0: EgNOT becomes a plain energy-based model of the target.
* ``CallableCost(fn)``   any user function ``fn(x, y) -> (n,)``; ∇_y by autograd.
* ``GeneratorCost(G)``   c(x, z) = base(x, G(z)) through a frozen ``torch.nn.Module`` G: the target
                         variable is a latent z and the cost is measured on G's output (EgNOT's
                         latent-space variant). ∇_z by autograd through G.
"""

from __future__ import annotations

from typing import Callable

import torch

from .registry import Registry


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

    def kernel_std(self, eps: float) -> float | None:
        """sigma if exp(−c(x, y)/eps) ∝ N(y; x, sigma²·I) in y (a sampler can then draw it exactly),
        else None."""
        return None

    def check_shapes(self, source_shape: tuple[int, ...], target_shape: tuple[int, ...]) -> None:
        """Raise ValueError if this cost cannot compare these event shapes (default: no check)."""

    def spec(self) -> str | dict | None:
        """What ``make_cost`` rebuilds this cost from (stored in model files); None: it cannot be
        stored (a user function, a generator) and must be passed again at load."""
        return None

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """A target sample as the user sees it: ``y`` itself, except for costs measured through a
        generator (``GeneratorCost``: G(z))."""
        return y

    def to(self, device: torch.device | str) -> "Cost":
        """Move any modules the cost holds to ``device`` (nothing to move by default); returns self."""
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SquaredEuclidean(Cost):
    """c(x, y) = scale · reduce((x − y)²) over every event dimension, ``reduce`` "sum" or "mean".

    The default ``scale = ½``, ``reduce = "sum"`` is EgNOT's ½‖x − y‖² (the entropic-OT convention of
    design.md); ``scale = tau`` is the UOT cost tau·reduce((x − y)²) of UOTM, and ``scale = 1/(2h)``
    the JKO cost ‖x − y‖²/(2h) of S-JKO: one object serves every solver.
    """

    name = "sqeuclidean"
    REDUCTIONS = ("sum", "mean")

    def __init__(self, scale: float = 0.5, reduce: str = "sum"):
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0 or scale == float("inf"):
            raise ValueError(f"the cost scale must be a number > 0, got {scale!r}")
        if reduce not in self.REDUCTIONS:
            raise ValueError(f"the cost reduction (cost_reduce) must be one of {self.REDUCTIONS}, got {reduce!r}")
        self.scale, self.reduce = float(scale), reduce

    @property
    def curvature(self) -> float | None:
        """2·scale for a sum (c = scale·‖y‖² + ...); unknown for a mean (it depends on the dimension)."""
        return 2.0 * self.scale if self.reduce == "sum" else None

    def kernel_std(self, eps):
        """sqrt(eps/curvature): exp(−scale·‖x − y‖²/eps) is N(y; x, eps/(2·scale)·I) (sum reduction only)."""
        return (eps / self.curvature) ** 0.5 if self.curvature else None

    def __call__(self, x, y):
        sq = (x - y) ** 2
        per_sample = _flat_sum(sq) if self.reduce == "sum" else sq.reshape(sq.shape[0], -1).mean(dim=1)
        return self.scale * per_sample

    def grad_y(self, x, y):
        if self.reduce == "sum" and self.scale == 0.5:
            return y - x  # the common case, without a multiplication
        factor = 2.0 * self.scale / (1 if self.reduce == "sum" else y[0].numel())
        return factor * (y - x)

    def check_shapes(self, source_shape, target_shape):
        if tuple(source_shape) != tuple(target_shape):
            raise ValueError(
                f"cost 'sqeuclidean' compares x and y directly, so source and target shapes must match; "
                f"got source {tuple(source_shape)} and target {tuple(target_shape)}"
            )

    def spec(self):
        if (self.scale, self.reduce) == (0.5, "sum"):
            return self.name
        return {"name": self.name, "scale": self.scale, "reduce": self.reduce}

    def __repr__(self):
        return f"SquaredEuclidean(scale={self.scale:g}, reduce={self.reduce!r})"


class ZeroCost(Cost):
    """c ≡ 0 (no coupling to the source: the plan is independent and EgNOT is an EBM for the target)."""

    name = "zero"

    def __call__(self, x, y):
        return torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)

    def grad_y(self, x, y):
        return torch.zeros_like(y)

    def spec(self):
        return self.name


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
    is not trained and not saved with the model. ``origin``: a storable description of where G came
    from (``{"name": "generator", "run": DIR}``, resolved by ``otgen.models``), which then is the
    cost's ``spec()`` so that a saved model loads without passing G again; without it, pass the
    same G when loading.
    """

    name = "generator"

    def __init__(self, generator: torch.nn.Module, base: Cost | None = None, origin: dict | None = None):
        if not isinstance(generator, torch.nn.Module):
            raise ValueError(f"generator must be a torch.nn.Module, got {type(generator).__name__}")
        self.generator = generator.eval()
        for p in self.generator.parameters():
            p.requires_grad_(False)
        self.base = base if base is not None else SquaredEuclidean()
        self.origin = None if origin is None else dict(origin)

    def __call__(self, x, z):
        return self.base(x, self.generator(z))

    def spec(self):
        return None if self.origin is None else dict(self.origin)

    def check_shapes(self, source_shape, target_shape):
        """G must map latents of ``target_shape`` to images of ``source_shape`` (one trial batch of 2)."""
        param = next(self.generator.parameters(), None)
        z = torch.zeros((2, *target_shape), device=param.device if param is not None else "cpu")
        try:
            with torch.no_grad():
                out_shape = tuple(self.generator(z).shape[1:])
        except Exception as err:  # noqa: BLE001 - any failure means the shapes do not fit
            raise ValueError(f"the generator cost's G does not take latents of event_shape {tuple(target_shape)}: "
                             f"{err}") from err
        if out_shape != tuple(source_shape):
            raise ValueError(f"the generator cost's G maps latents of event_shape {tuple(target_shape)} to "
                             f"{out_shape}, but source_shape is {tuple(source_shape)}")

    def decode(self, z: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """G(z): (n, *latent_shape) -> (n, *source_shape), the latents seen in the source space
        (in batches of ``batch_size``, without gradients)."""
        with torch.no_grad():
            return torch.cat([self.generator(c) for c in z.split(batch_size)]) if len(z) else self.generator(z)

    def to(self, device):
        self.generator.to(device)
        return self

    def __repr__(self):
        return f"GeneratorCost({type(self.generator).__name__}, base={self.base!r})"


COSTS: Registry[type[Cost]] = Registry("cost")  # the costs a name (or a stored spec) gives
COSTS.add(SquaredEuclidean.name, SquaredEuclidean)
COSTS.add(ZeroCost.name, ZeroCost)


def make_cost(spec: str | dict | Cost | Callable | None) -> Cost:
    """A ``Cost`` from a name (``"sqeuclidean"`` (default), ``"zero"``), a stored spec
    (``{"name": "sqeuclidean", "scale": 1.0, "reduce": "mean"}``), a Cost, or a callable."""
    if spec is None:
        return SquaredEuclidean()
    if isinstance(spec, Cost):
        return spec
    if isinstance(spec, dict):
        kwargs = dict(spec)
        name = kwargs.pop("name", None)
        if COSTS.get(name, None) is not SquaredEuclidean or set(kwargs) - {"scale", "reduce"}:
            raise ValueError(f"a cost mapping must be {{name: sqeuclidean, scale: ..., reduce: sum | mean}}, got "
                             f"{spec!r}{COSTS.suggest(name)}")
        return SquaredEuclidean(**kwargs)
    if isinstance(spec, str):
        if spec not in COSTS:
            raise ValueError(f"cost must be one of {sorted(COSTS)} (or a Cost / callable), got {spec!r}"
                             f"{COSTS.suggest(spec)}")
        return COSTS[spec]()
    if callable(spec):
        return CallableCost(spec)
    raise ValueError(f"cost must be a name, a Cost or a callable, got {type(spec).__name__}")
