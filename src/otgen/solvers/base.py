"""The solver core: what every solver declares, the one optimisation step they all share, and the
hooks through which the training loop and the faces (CLI, bench) talk to any solver alike.

A solver declares its pieces once, in ``__init__``::

    self.potential = self.add_network("potential", net)               # saved, moved to the device
    self.ema = self.add_ema("ema", self.potential, 0.999)             # or None
    self.optimizer = self.add_optimizer("optimizer", torch.optim.Adam(...), schedule=self.run_cosine,
                                        grad_clip=grad_clip, ema=self.ema)

and in ``train_step`` calls ``self.update("optimizer", loss)``: learning rate from the schedule →
zero_grad → backward → optional gradient clipping → step → EMA. Gradient sync, loss scaling and
clipping for every solver are a change in :meth:`Solver.update` alone (autocast, which wraps the
forward passes, in the loop's one call of ``train_step``). ``state_dict`` /
``load_state_dict`` are built from the declarations (networks, optimisers, EMAs, the random
generators, the step), plus what a solver adds through ``extra_state`` / ``load_extra_state``.

The loop (``otgen.train``) calls, with one positional argument per entry of ``data_sides``:

    solver.check_data(*sample_shapes)        # before training: ValueError on a mismatch
    solver.prepare(*data, n_iters=n)         # once, before the first step (n: the run's total steps)
    metrics = solver.train_step(*batches)    # one update -> dict of 0-d tensors (or floats)

and the faces ask ``run_steps(n_iters)`` (the steps of a run of ``n_iters`` as the user counts them),
``describe_steps(n_iters)``, ``run_arrays(x, rng)`` (what a run writes to ``samples/`` and plots),
``transport(x, *, rng=, batch_size=)`` and ``sample(x, n_per_x, *, rng=, batch_size=)`` — one contract
for every solver: the inputs positional, every option keyword-only; ``rng``: a ``torch.Generator``
(``batch_size``: at most that many inputs per network call, through ``map_batches``). A solver never
parses configs, prints, or writes files other than through ``save``.

Options: a solver's constructor takes the options of its spec ``Options`` (``otgen.spec``: each
option's type, range, default and doc declared once), and keeps the checked spec as ``self.options``;
``config`` (plain data), ``save`` and ``load`` go through it.

``compile()`` compiles the declared networks in place with ``torch.compile`` (``fit(compile=True)``,
``train.compile``), leaving eager those a solver names in ``compile_exclusions()`` with the reason.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .. import gradsync, io, shard
from ..checks import check_number, derived_seed, real_array
from ..nn import EMA
from ..nn.compiled import COMPILE_MODES, compile_in_place, compile_problem
from ..schema import Device, Number, Shape
from ..spec import Spec

#: the format of model files: "otgen-model-2" stores the nested options of the solver's spec; files
#: of "otgen-model-1" (flat constructor arguments) are converted on load (``Options.from_legacy``)
FORMAT = "otgen-model-2"
LEGACY_FORMATS = ("otgen-model-1",)

#: fields every solver shares (its Options list them; ``solvers.shared_options`` re-exports them)
DIM = Number(integer=True, low=1, nullable=True)
EVENT_SHAPE = Shape(nullable=True)
EMA_DECAY = Number(low=0, high=1, low_open=True, high_open=True, nullable=True)
GRAD_CLIP = Number(low=0, low_open=True, nullable=True)
SEED = Number(integer=True, low=0)
DEVICE = Device()

Schedule = Callable[[int], float]  # step (0-based, the update about to be taken) -> learning-rate factor


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device``: "auto" (or None) is CUDA where there is a GPU, else the CPU;
    plain "cuda" is this process's GPU (``cuda:LOCAL_RANK`` in a process started by ``torchrun``).
    ValueError for a name torch does not know, and for CUDA where torch sees none."""
    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}") from e
    if resolved.type == "cuda" and resolved.index is None and torch.cuda.is_available():
        resolved = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    problem = cuda_problem(resolved, remedy="use device='cpu' or 'auto'")
    if problem:
        raise ValueError(f"device {str(device)!r}: {problem}")
    return resolved


def cuda_problem(device: torch.device, remedy: str) -> str | None:
    """Why ``device`` cannot be used here (no CUDA, with ``remedy`` after it, or no GPU of that
    number); None if it can (always for the CPU)."""
    if device.type != "cuda":
        return None
    if not torch.cuda.is_available():
        return (f"CUDA is not available on this machine (torch {torch.__version__} built without CUDA or no GPU "
                f"visible); {remedy}")
    n = torch.cuda.device_count()
    if device.index is not None and device.index >= n:
        return f"this machine has {n} GPU(s) visible (cuda:0 to cuda:{n - 1})"
    return None


def as_count(name: str, value: Any, low: int = 1) -> int:
    """``value`` as an int >= ``low`` (Python and numpy ints; not bools, floats or strings); a ValueError
    naming ``name`` otherwise."""
    if isinstance(value, np.integer) and not isinstance(value, np.bool_):
        value = int(value)
    check_number(name, value, low=low, integer=True)
    return int(value)


def check_batch_size(value: Any) -> int | None:
    """``batch_size`` of ``transport`` / ``sample``: None (every input in one network call) or an int
    >= 1 (numpy ints too); a ValueError naming ``batch_size`` otherwise."""
    return None if value is None else as_count("batch_size", value, low=1)


def map_batches(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int | None) -> torch.Tensor:
    """``fn`` over the rows of ``x`` (n, ...) in consecutive batches of at most ``batch_size`` rows, in
    order: the outputs (each (rows of its batch, *out_shape)) joined into one (n, *out_shape) Tensor.

    ``batch_size`` None, or >= n: one call, ``fn(x)`` itself (bit for bit the unbatched result).
    Otherwise the first batch's output fixes the dtype, device and ``out_shape`` of one output Tensor,
    allocated once; every batch is written into its rows, so no list of batches is joined at the end.
    ``fn`` draws its random numbers batch after batch from the caller's generator: the same numbers as
    one call wherever the draws of consecutive batches concatenate to the one-shot draw (see the
    solvers' docstrings). ``batch_size``: None or an int >= 1 (ValueError naming ``batch_size``)."""
    batch_size = check_batch_size(batch_size)
    n = x.shape[0]
    if batch_size is None or batch_size >= n:
        return fn(x)
    out = None
    for start in range(0, n, batch_size):
        rows = fn(x[start:start + batch_size])
        if rows.shape[0] != min(batch_size, n - start):
            raise RuntimeError(f"a batch of {min(batch_size, n - start)} inputs gave {rows.shape[0]} outputs")
        if out is None:
            out = torch.empty((n, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
        out[start:start + rows.shape[0]] = rows
    return out


def cosine_factor(done: int, length: int) -> float:
    """½(1 + cos(pi·done/length)): 1 at the start, 0 at (and after) the end of ``length`` steps."""
    return 0.5 * (1.0 + math.cos(math.pi * min(done / max(length, 1), 1.0)))


@contextlib.contextmanager
def frozen(module: nn.Module, eval_mode: bool = False):
    """No parameter gradients for ``module`` inside the block (and eval mode with ``eval_mode``);
    the previous flags and mode are restored afterwards."""
    was_training = module.training
    flags = [p.requires_grad for p in module.parameters()]
    if eval_mode:
        module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)
        module.train(was_training)


class _Optimizer:
    """An optimiser with what the shared step does around it."""

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: Schedule | None, grad_clip: float | None,
                 ema: tuple[EMA, nn.Module] | None):  # ema: the average and the module it follows
        self.optimizer, self.schedule, self.grad_clip, self.ema = optimizer, schedule, grad_clip, ema
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.reducer: gradsync.Reducer | None = None  # made on the first update of a K-process run
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])  # schedules scale from here


class Solver:
    """Base class of the solvers. Subclasses set ``name`` and ``Options`` (their spec), keep the checked
    options as ``self.options``, declare their pieces and implement ``train_step`` and ``transport``
    (and ``sample`` if it is not ``transport`` repeated)."""

    name = "solver"
    Options: type[Spec]
    options: Spec

    #: the data a run draws batches from, one positional argument of fit / prepare / train_step each
    data_sides: tuple[str, ...] = ("source", "target")

    #: the argument that sets each side's event shape (for messages; "event_shape" for every side if
    #: it does not name one per side)
    shape_names: tuple[str, ...] = ("source_shape", "event_shape")

    #: whether the solver encodes and decodes its data, with ``reconstruct(y)`` (a WAE): the faces then
    #: score and draw reconstructions
    reconstructs = False

    #: the advice printed when training diverges (NaN/Inf); each solver names its own remedies
    divergence_hint = "Try a smaller learning rate."

    #: the options of a small instance that trains in milliseconds per step (tiny networks, few sampler
    #: steps): what the cross-solver contract tests (tests/test_contract.py) and distributed tests build
    small_options: dict[str, Any] = {}

    def __init__(self, seed: int = 0, device: str | torch.device | None = "cpu"):
        check_number("seed", seed, low=0, integer=True)
        self.device = resolve_device(device)
        self.seed = seed
        self.rng = torch.Generator(device=self.device)  # training draws
        self.rng.manual_seed(derived_seed(seed, 1))
        self.sample_rng = torch.Generator(device=self.device)  # draws of sample()/transport()
        self.sample_rng.manual_seed(derived_seed(seed, 2))
        self.step = 0
        self.total_steps = 0  # the run's length, set by prepare(): the horizon of run-long schedules
        self._networks: dict[str, nn.Module] = {}
        self._optimizers: dict[str, _Optimizer] = {}
        self._emas: dict[str, EMA] = {}
        self._ema_sources: dict[int, nn.Module] = {}

    # -- declarations -----------------------------------------------------------------------------
    def _check_new(self, name: str) -> None:
        taken = set(self._networks) | set(self._optimizers) | set(self._emas)
        if name in taken or name in ("generator", "sample_generator", "rng", "sample_rng", "step", "total_steps"):
            raise ValueError(f"the state name {name!r} is declared twice")

    def add_network(self, name: str, module: nn.Module) -> nn.Module:
        """Declare a trained network: moved to the solver's device and saved under ``name``."""
        if not isinstance(module, nn.Module):
            raise ValueError(f"{name} must be a torch.nn.Module, got {type(module).__name__}")
        self._check_new(name)
        self._networks[name] = module.to(self.device)
        return self._networks[name]

    def add_ema(self, name: str, module: nn.Module, decay: float | None) -> EMA | None:
        """Declare an EMA of ``module``'s weights, saved under ``name`` (None: no EMA); pass it to
        ``add_optimizer`` so that it follows that optimiser's steps."""
        if decay is None:
            return None
        self._check_new(name)
        self._emas[name] = EMA(module, decay)
        self._ema_sources[id(self._emas[name])] = module
        return self._emas[name]

    def add_optimizer(self, name: str, optimizer: torch.optim.Optimizer | None, *, schedule: Schedule | None = None,
                      grad_clip: float | None = None, ema: EMA | None = None) -> torch.optim.Optimizer | None:
        """Declare an optimiser stepped by ``update(name, loss)``: its learning rates are
        ``base_lr · schedule(step)`` (None: left as they are), its gradients clipped to norm
        ``grad_clip`` (None: off), and ``ema`` (from ``add_ema``) updated after each step.
        None (nothing to train) declares nothing."""
        if optimizer is None:
            return None
        self._check_new(name)
        follow = (ema, self._ema_sources[id(ema)]) if ema is not None else None
        opt = self._optimizers[name] = _Optimizer(optimizer, schedule, grad_clip, follow)
        # clip in the order of the networks' own parameters (the gradient norm is a float sum: its order
        # shows in the last bits)
        mine = {id(p) for p in opt.params}
        ordered = [p for m in self._networks.values() for p in m.parameters() if id(p) in mine]
        if len(ordered) == len(opt.params):
            opt.params = ordered
        return optimizer

    def networks(self) -> dict[str, nn.Module]:
        """The declared networks by name (the trained ones, whose weights are saved)."""
        return dict(self._networks)

    # -- compilation (torch.compile) ------------------------------------------------------------------
    #: what ``compile`` did, by network name: None where compiled, else why the network stays eager
    #: (None until ``compile`` is called)
    compile_report: dict[str, str | None] | None = None

    def compile_exclusions(self) -> dict[str, str]:
        """The declared networks that ``compile`` leaves eager, by name, each with the reason in words
        (default: none): a solver names here a network that torch.compile cannot run the way the
        solver uses it, e.g. one differentiated twice (an R1 penalty)."""
        return {}

    def compile(self, mode: str = "default") -> dict[str, str | None]:
        """Compile the forward passes of the declared networks with ``torch.compile`` (inductor), in
        place (``otgen.nn.compiled``): the modules, their parameters and the state_dict keys stay as
        they are, so optimisers, EMAs, checkpoints, resume and model files see no difference (a model
        trained compiled saves and loads into an eager one). Copies (an EMA's shadow, S-JKO's frozen
        maps) run eager; the networks of ``compile_exclusions`` stay eager.

        Returns, and keeps as ``compile_report``, each network's outcome: None where compiled, the
        reason where left eager (the faces print it; a solver never does). Compiling happens at the
        first calls of each kind of input (seconds per graph); results equal eager ones up to float
        rounding (fused kernels). A second call compiles nothing more and returns the same report.
        ``mode``: one of ``COMPILE_MODES`` ("default", ...), the same as any earlier call's (ValueError
        naming ``mode`` otherwise); ValueError naming ``compile`` where torch.compile cannot run here
        (no C++ compiler for the CPU, no Triton for CUDA, an unsupported Python)."""
        if mode not in COMPILE_MODES:
            raise ValueError(f"mode must be one of {COMPILE_MODES}, got {mode!r}")
        if self.compile_report is not None:
            if mode != self._compile_mode:
                raise ValueError(f"mode={mode!r}: this {self.name} is compiled with mode {self._compile_mode!r} "
                                 "already (a network is compiled once)")
            return dict(self.compile_report)
        problem = compile_problem(self.device)
        if problem:
            raise ValueError(f"compile: {problem} (the networks run eager without it)")
        excluded = self.compile_exclusions()
        report: dict[str, str | None] = {}
        for name, module in self._networks.items():
            if name in excluded:
                report[name] = excluded[name]
                continue
            compile_in_place(module, mode)
            report[name] = None
        self.compile_report, self._compile_mode = report, mode
        return dict(report)

    # -- the one optimisation step ------------------------------------------------------------------
    def update(self, name: str, loss: torch.Tensor) -> None:
        """One step of optimiser ``name`` on ``loss`` at ``self.step``: schedule → zero_grad → backward →
        clipping → step → EMA. Every solver's every update goes through here."""
        opt = self._optimizers[name]
        if opt.schedule is not None:
            factor = opt.schedule(self.step)
            for group in opt.optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor
        opt.optimizer.zero_grad(set_to_none=True)
        s = shard.current()
        if s.distributed and gradsync.OVERLAP:  # the mean over processes, bucketed all-reduces during backward
            if opt.reducer is None:  # its hooks, once (a one-process run never has them)
                opt.reducer = gradsync.Reducer(opt.params)
            opt.reducer.backward(loss, s)
        else:
            loss.backward()
            shard.average_gradients(opt.params)  # one process: nothing; else one flat all-reduce
        if opt.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(opt.params, opt.grad_clip)
        opt.optimizer.step()
        if opt.ema is not None:
            ema, module = opt.ema
            ema.update(module)

    def run_cosine(self, step: int) -> float:
        """A schedule: the cosine from 1 to 0 over the run's ``total_steps``."""
        return cosine_factor(step, self.total_steps)

    # -- the loop's interface -----------------------------------------------------------------------
    def check_data(self, *shapes: tuple[int, ...]) -> None:
        """Raise ValueError if the samples of the data sides (one event shape each) do not fit."""
        expected_shapes = self.expected_shapes()
        if not len(shapes) == len(expected_shapes) == len(self.data_sides):
            raise ValueError(f"{type(self).__name__} trains on {len(self.data_sides)} data set(s) "
                             f"({', '.join(self.data_sides)}), got {len(shapes)}")
        labels = self.shape_names if len(self.shape_names) == len(self.data_sides) else ("event_shape",) * len(shapes)
        for side, label, shape, expected in zip(self.data_sides, labels, shapes, expected_shapes):
            if tuple(shape) != tuple(expected):
                raise ValueError(f"{side} samples have shape {tuple(shape)} but the model expects {label} "
                                 f"{tuple(expected)}")

    def expected_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The event shape of each data side."""
        raise NotImplementedError

    def prepare(self, *data: Any, n_iters: int) -> None:
        """Called once by the loop before the first step with the data (Tensors or samplers, one per
        side) and the run's total step count ``n_iters``."""
        self.total_steps = n_iters

    def finish(self, *data: Any) -> None:
        """Called once by the loop after the last step, in every process alike, before the final
        checkpoint and ``model.pt`` are written, with the data as ``prepare`` gets them: what a solver
        fits on the trained networks (a WAE's latent sampler). Default: nothing."""

    def attach_run_dir(self, run: os.PathLike | None, writes: bool | None) -> None:
        """The run directory ``run`` (None: none). A solver whose state grows with the run (S-JKO's
        phases) keeps that part in files of ``run`` instead of in every checkpoint. The loop calls this
        in every process after a restore and before ``prepare``, with ``writes`` True in the process
        that writes the run's files (rank 0) and False in the others (they read what rank 0 wrote);
        ``otgen.load`` calls it with ``writes`` None before it loads a file of ``run``: files are
        looked for there, and nothing is written. Default: nothing."""

    def checkpoint_saved(self) -> None:
        """Called in the process that writes, once a checkpoint of the current state is on disk:
        files of the run that no checkpoint needs any more may go (S-JKO's phases beyond
        ``keep_phases``). Default: nothing."""

    def train_step(self, *batches: torch.Tensor) -> dict[str, torch.Tensor | float]:
        """One update on one batch per data side; returns the step's metrics by name: detached 0-d
        tensors on the solver's device (float32 or float64), or Python floats for what the host
        knows anyway (S-JKO's phase). A step reads no tensor value on the host (no ``item()``,
        ``float(t)``, ``if t:``, no loop whose length depends on a value): on a GPU each read would
        wait for the queue to drain. The loop accumulates the metrics on the device and reads them
        at log steps."""
        raise NotImplementedError

    def run_steps(self, n_iters: int) -> int:
        """The loop's total steps for a run of ``n_iters`` as ``fit`` counts them (S-JKO: per phase)."""
        check_number("n_iters", n_iters, low=1, integer=True)
        return n_iters

    def describe_steps(self, n_iters: int) -> str:
        """``n_iters`` in words, as ``fit`` counts it."""
        return f"{n_iters} iterations"

    # -- using the model ----------------------------------------------------------------------------
    def transport(self, x: torch.Tensor, *, rng: torch.Generator | None = None,
                  batch_size: int | None = None) -> torch.Tensor:
        """One output per input: (n, *source_shape) -> (n, *event_shape); random draws from ``rng``
        (default: the model's own sampling stream, never the training one). ``batch_size``: at most
        that many inputs per network call (``map_batches``), None (default) for all at once."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, x: torch.Tensor, n_per_x: int = 1, *, rng: torch.Generator | None = None,
               batch_size: int | None = None, **options: Any) -> torch.Tensor:
        """``n_per_x`` draws per x: (n, *source_shape) -> (n, n_per_x, *event_shape); by default
        ``transport`` of x repeated (fresh noise for each draw). ``options`` go to ``transport``.
        ``x``: as ``transport`` takes it (a Tensor, an array or a list; cast to float32; at least one
        sample, finite); ``n_per_x``: an int >= 1 (ValueError otherwise).
        ``batch_size``: at most that many x (so ``batch_size·n_per_x`` network inputs) per network
        call, None (default) for all at once; the draws are those of ``transport`` with that batch
        size on the repeated x (the same numbers as unbatched where ``transport``'s docstring says so)."""
        n_per_x = self._count("n_per_x", n_per_x, low=1)
        batch_size = check_batch_size(batch_size)
        x = self._as_input("x", x, self.expected_shapes()[0])
        y = self.transport(x.repeat_interleave(n_per_x, dim=0), rng=rng,
                           batch_size=None if batch_size is None else batch_size * n_per_x, **options)
        return y.reshape(x.shape[0], n_per_x, *y.shape[1:])

    def run_arrays(self, x: torch.Tensor, rng: torch.Generator,
                   y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """What a run writes to ``samples/samples.npz`` (and plots) for source points ``x``, beside ``x``
        and data samples ``y``: ``y_hat``, the transported points (and whatever a solver adds: S-JKO its
        phases, a WAE the reconstructions ``y_rec`` of ``y``)."""
        return {"y_hat": self.transport(x, rng=rng)}

    def present(self, y: torch.Tensor) -> torch.Tensor:
        """Outputs of ``transport`` / ``sample`` ((n, *event_shape) or (n, k, *event_shape)) as the user
        sees them: the identity, except where the solver's samples live in a latent space (EgNOT with
        a generator cost: G(z)). ``otgen sample`` writes these as ``y`` and a run's plots draw them."""
        return y

    def latent_generator(self) -> nn.Module | None:
        """A deterministic generator G: (n, *latent_shape) -> (n, *data_shape) that other models may
        use frozen (EgNOT's latent-space cost); None (the default) if the solver has none."""
        return None

    def own_source(self, latent: str = "prior") -> Callable[..., torch.Tensor] | None:
        """A sampler ``(n, generator=None) -> (n, *source_shape)`` of the source side when the solver
        owns it (a WAE's prior) rather than training on it as data; None (the default) otherwise.
        ``otgen sample`` and a run's plots draw their x from it (and pass them to ``sample`` /
        ``transport`` like any source points). ``latent``: one of ``latent_choices()`` ("prior", or
        "fitted" for a sampler fitted to the training codes); ValueError for another."""
        if latent != "prior":
            raise ValueError(f"latent={latent!r}: {self.name} draws no latent codes of its own")
        return None

    def latent_choices(self) -> tuple[str, ...]:
        """The ``latent`` values ``own_source`` takes: ("prior",) (the default; None from
        ``own_source`` where the solver owns no source), plus "fitted" where a latent sampler was
        fitted to the training codes (a WAE's ``fit_latent_sampler``)."""
        return ("prior",)

    def _as_batch(self, name: str, t: Any, shape: Sequence[int]) -> torch.Tensor:
        """``t`` (a Tensor, a numpy array, a list of numbers, ...) as a Tensor of shape (n, *shape) in the
        model's dtype (float32) on its device: float64, float16 and integer inputs are cast. TypeError
        naming ``name`` for what holds no real numbers (a string, a dict, None, an object or complex
        array, booleans), ValueError for the wrong shape. The one conversion every solver applies to
        what it is given (training batches too: a float32 Tensor on the device is returned as it is)."""
        dtype = self._dtype()
        if isinstance(t, torch.Tensor):
            if t.is_complex() or t.dtype == torch.bool:
                raise TypeError(f"{name} must hold real numbers, got a Tensor of dtype {t.dtype}")
        else:
            t = torch.from_numpy(real_array(name, t, np.float64 if dtype == torch.float64 else np.float32, TypeError))
        if t.ndim < 1 or tuple(t.shape[1:]) != tuple(shape):
            raise ValueError(f"{name} must have shape (n, {', '.join(map(str, shape))}), got {tuple(t.shape)}")
        return t.to(device=self.device, dtype=dtype)

    def _as_input(self, name: str, t: Any, shape: Sequence[int]) -> torch.Tensor:
        """``_as_batch`` for what a user passes to ``transport`` / ``sample`` / ``encode`` / ...: besides,
        a ValueError naming ``name`` for an empty batch (0 samples) or NaN/Inf entries (as ``fit`` does)."""
        t = self._as_batch(name, t, shape)
        if t.shape[0] == 0:
            raise ValueError(f"{name} must hold at least one sample, got shape {tuple(t.shape)}")
        finite = torch.isfinite(t).reshape(t.shape[0], -1).all(dim=1)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise ValueError(f"{name} contains NaN or Inf values ({bad} of {t.shape[0]} samples)")
        return t

    @staticmethod
    def _count(name: str, value: Any, low: int = 1) -> int:
        """``as_count``: ``value`` as an int >= ``low`` (numpy ints too); ValueError naming ``name``."""
        return as_count(name, value, low)

    def _dtype(self) -> torch.dtype:
        """The floating dtype of the model's networks (float32 unless a user converted them)."""
        for module in self._networks.values():
            for p in module.parameters():
                if p.is_floating_point():
                    return p.dtype
        return torch.float32

    def _sampling_rng(self, rng: Any) -> torch.Generator:
        """``rng`` (a ``torch.Generator``), or the model's own sampling stream for None; TypeError
        naming ``rng`` otherwise (e.g. a seed: pass ``torch.Generator().manual_seed(seed)``)."""
        if rng is None:
            return self.sample_rng
        if not isinstance(rng, torch.Generator):
            raise TypeError(f"rng must be a torch.Generator or None, got {type(rng).__name__} "
                            f"{rng!r} (for a seed s, pass rng=torch.Generator().manual_seed(s))")
        return rng

    # -- state ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: the declared networks, optimisers and EMAs by name, the
        random generators, the step and the run length, and the solver's ``extra_state``."""
        state: dict[str, Any] = {name: m.state_dict() for name, m in self._networks.items()}
        state.update({name: o.optimizer.state_dict() for name, o in self._optimizers.items()})
        state.update({name: e.state_dict() for name, e in self._emas.items()})
        # the streams keep their state names of model-1 files ("generator", "sample_generator")
        state.update(generator=self.rng.get_state(), sample_generator=self.sample_rng.get_state(),
                     step=self.step, total_steps=self.total_steps)
        state.update(self.extra_state())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, module in self._networks.items():
            module.load_state_dict(state[name])
        for name, opt in self._optimizers.items():
            opt.optimizer.load_state_dict(state[name])
        for name, ema in self._emas.items():
            ema.load_state_dict(state[name])
        self._load_generators(state)
        self.step = int(state["step"])
        self.total_steps = int(state.get("total_steps", 0))  # S-JKO files of otgen 0.1 had none
        self.load_extra_state(state)

    def extra_state(self) -> dict[str, Any]:
        """State beyond the declared pieces (chains, kept phase maps), saved beside them."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``extra_state`` saved (``state`` is the whole state dict)."""

    def _load_generators(self, state: dict[str, Any]) -> None:
        """Restore the random streams; a state saved on another kind of device cannot be, and the
        streams then restart from the seed (the weights are what matter when moving a model)."""
        for gen, key, stream in ((self.rng, "generator", 1), (self.sample_rng, "sample_generator", 2)):
            try:
                gen.set_state(state[key].cpu() if self.device.type == "cpu" else state[key])
            except (RuntimeError, KeyError):
                gen.manual_seed(derived_seed(self.seed, stream))

    # -- persistence ----------------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """The options as plain data (``saveable_config``): what ``otgen train`` writes and files store."""
        return self.saveable_config()

    def saveable_config(self) -> dict[str, Any]:
        """The options as stored in a file (``Spec.to_config``): a value that cannot be stored (a module,
        a cost, a callable) becomes ``"custom"`` (and must be passed again to ``otgen.load``), except a
        cost that can name itself (``Cost.spec``)."""
        return self.options.to_config()

    def to_checkpoint(self) -> dict[str, Any]:
        return {"format": FORMAT, "solver": self.name, "config": self.saveable_config(),
                "state": self.state_dict()}

    def save(self, path: str | os.PathLike) -> None:
        """Write the model (config, weights, optimiser, buffers, RNG) to ``path`` atomically."""
        io.save_torch(self.to_checkpoint(), path)
