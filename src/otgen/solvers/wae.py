"""WAE / POT: Wasserstein auto-encoders, the penalised primal form of OT (Tolstikhin et al., ICLR 2018;
Bousquet et al., "From optimal transport to generative modeling: the VEGAN cookbook", 2017).

With a prior P_Z and a deterministic decoder G, W_c(P_X, G#P_Z) is a minimum over encoders Q(Z|X)
whose aggregate Q_Z equals P_Z; the WAE relaxes that constraint into a penalty (wae.md §1):

    min_{Q, G}  rec_scale · E_{P_X} E_{Q(Z|X)} ‖X − G(Z)‖²  +  lam · D_Z(Q_Z, P_Z),

with ‖·‖² the sum of squared errors of one sample and P_Z = N(0, prior_scale² I_latent_dim).

* ``penalty=MMD()`` (``"mmd"``, Algorithm 2): D_Z = Σ_s MMD²_U with the inverse-multiquadratic kernel
  C·s / (C·s + ‖z − z'‖²), C = 2·latent_dim·prior_scale², s in ``kernels.WAE_SCALES`` (the official
  code's multi-scale sum; ``MMD(kernel=IMQ(scales=[1]))`` is the paper's single kernel), or
  ``MMD(kernel="rbf")``.
* ``penalty=GAN()`` (``"gan"``, Algorithm 1): a latent adversary D(z) (logits) tells prior draws from
  codes; it ascends lam·[log D(z) + log(1 − D(z̃))] with its own Adam (``GAN.optim``), the auto-encoder
  descends rec − lam·log D(z̃) (the non-saturating form). ``prior_trick=True`` adds the analytic
  log p_Z(z) to the adversary's logit, so it learns only the −log q_Z part (AVB's trick).

Options that only exist together live in one spec (the kernel's in ``MMD``, the adversary's in
``GAN``, the scales in ``IMQ``, the bandwidth in ``RBF``), so a combination that does not apply cannot
be written. Configs of otgen's first format (27 flat keys) convert through ``WAEOptions.from_legacy``.

Shapes: data (n, *data_shape); codes z (n, latent_dim). The source side of the transport is the
model's own prior: ``sample_prior(n, rng=)`` draws codes (``own_source()`` is the same sampler for the
faces), ``transport(z)`` is the decoder (the map from the prior to the data) and ``sample(z, n_per_x)``
the decoder's outputs repeated (it is deterministic). The data side is one (``data_sides =
("data",)``): ``fit(images, n_iters=...)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F

from .. import shard
from ..checks import check_shape, derived_seed
from ..distributions.base import draw
from ..distributions.datasets import ImageDataset
from ..distributions.empirical import Empirical
from ..distributions.gaussian import GaussianMixture
from ..kernels import WAE_SCALES, imq_mmd2, rbf_mmd2
from ..nn import build
from ..nn.registry import Network, check_spec
from ..registry import Registry
from ..schema import Choice, Flag, Number, Numbers, Shape
from ..spec import Nested, OneOf, Spec, check_keywords, option, takes
from .base import Solver, check_batch_size, frozen, map_batches
from .shared_options import DEVICE, POSITIVE, SEED, Adam

__all__ = ["WAESolver", "WAEOptions", "MMD", "GAN", "IMQ", "RBF", "Pretrain", "PENALTIES", "KERNELS",
           "truncated_normal", "steps_factor"]

ENCODER_TYPES = ("deterministic", "gaussian")
LR_SCHEDULES = ("constant", "cosine", "steps")
LOGVAR_RANGE = (-16.0, 8.0)  # a Gaussian encoder's log-variance is clipped to this (official code: clipped)
PRETRAIN_STOP = 0.1          # encoder pre-training stops once the moment mismatch is below this (wae.md §6)
NOISE_BOUND = 2.0            # input noise: a standard normal truncated to [−2, 2] (the official code's)
LATENT_COMPONENTS = 20       # the fitted latent sampler's Gaussians (pythae's default is 10; 20 measured better on
                             # digits: docs/wae.md, "The fitted latent sampler")
LATENT_CODES = 10_000        # ... fitted to the codes of at most this many training samples

#: the keyword arguments the default networks get unless their spec sets them (``nn.build``'s
#: ``defaults``): the widths of the conv encoder/decoder and of the MLP ones, and the adversary's
#: 4 × 512 ReLU MLP (the paper's)
AUTOENCODER_DEFAULTS = {"width": 32, "hidden": (256, 256)}
ADVERSARY_DEFAULTS = {"hidden": (512, 512, 512, 512), "activation": "relu", "zero_init": False}


@dataclass(frozen=True)
class _DataShape(Shape):
    """(C, H, W) images or (D,) vectors."""

    def _check(self, name, value):
        shape = super()._check(name, value)
        if len(shape) not in (1, 3):
            raise ValueError(f"{name} must be (C, H, W) images or (D,) vectors, got {tuple(shape)}")
        return shape


@dataclass(frozen=True)
class _Scales(Numbers):
    """A non-empty list of positive floats."""

    def _check(self, name, value):
        scales = super()._check(name, value)
        if not scales or any(not s > 0 for s in scales):
            raise ValueError(f"{name} must be positive numbers (at least one), got {value!r}")
        return scales


# ----------------------------------------------------------------------------- the option specs

KERNELS: Registry = Registry("kernel")
PENALTIES: Registry = Registry("penalty")


@KERNELS.register("imq")
@dataclass(frozen=True)
class IMQ(Spec):
    """The inverse-multiquadratic kernel C·s / (C·s + ‖z − z'‖²), C = 2·latent_dim·prior_scale² (the
    mean squared distance of two prior draws), its MMD² summed over the scales s."""

    name = "imq"
    scales: list = option(list(WAE_SCALES), _Scales(float),
                          "the multipliers s of C whose MMD² are summed (default: the official code's "
                          "0.1 ... 10; [1]: the paper's single kernel)")


@KERNELS.register("rbf")
@dataclass(frozen=True)
class RBF(Spec):
    """The Gaussian kernel exp(−‖z − z'‖² / (2ℓ²))."""

    name = "rbf"
    bandwidth: float | None = option(None, Number(low=0, low_open=True, nullable=True),
                                     "ℓ > 0 (None: sqrt(2·latent_dim)·prior_scale, the root mean squared "
                                     "distance of two prior draws)")


@PENALTIES.register("mmd")
@dataclass(frozen=True)
class MMD(Spec):
    """WAE-MMD (Algorithm 2): D_Z is the MMD²_U between the codes of a batch and as many prior draws."""

    name = "mmd"
    kernel: Spec = option(IMQ(), OneOf(KERNELS), "the kernel: 'imq' (IMQ(scales=...)) or 'rbf' (RBF(bandwidth=...))")


@PENALTIES.register("gan")
@dataclass(frozen=True)
class GAN(Spec):
    """WAE-GAN (Algorithm 1): a latent adversary D(z) with its own optimiser; the encoder's penalty is
    the non-saturating −log D(z̃)."""

    name = "gan"
    adversary: Any = option(None, Network("potential"),
                            "the latent critic, a 'potential' network on (n, latent_dim) giving logits (n,) "
                            "(None: 'mlp', 4 × 512 ReLU layers as in the paper)")
    optim: Adam = option(Adam(lr=5e-4, betas=(0.5, 0.999)), Nested(Adam),
                         "the adversary's Adam (schedule 'constant', 'cosine' or 'steps'; no ema)")
    prior_trick: bool = option(False, Flag(), "add log p_Z(z) to the adversary's logit (AVB's trick)")

    def validate(self, where: str) -> None:
        self.optim.supported(where + "optim", LR_SCHEDULES, ema=False)


@dataclass(frozen=True)
class Pretrain(Spec):
    """Encoder pre-training before the first step (wae.md §6): Adam steps (the auto-encoder's ``optim``
    lr and betas, no schedule) matching the mean and covariance of encoded batches to the prior's."""

    steps: int = option(dataclasses.MISSING, Number(integer=True, low=1),
                        "at most this many steps (fewer once the mismatch is below 0.1)")
    batch: int = option(1000, Number(integer=True, low=2), "data samples per step")


@dataclass(frozen=True)
class WAEOptions(Spec):
    """The options of a WAE (``otgen.WAE``). YAML: ``penalty: {name: gan, optim: {lr: 5e-4}}``,
    ``encoder: {name: conv, width: 64}``, ``optim: {lr: 1e-3, schedule: steps}``."""

    data_shape: list = option(dataclasses.MISSING, _DataShape(),
                              "shape of one data sample: (C, H, W) images or (D,) vectors", positional=True)
    latent_dim: int = option(8, Number(integer=True, low=1),
                             "d, the dimension of the codes and of the prior N(0, prior_scale² I_d)", positional=True)
    penalty: Spec = option(MMD(), OneOf(PENALTIES), "the latent penalty: 'mmd' (MMD(kernel=...)) or 'gan' "
                           "(GAN(adversary=..., optim=..., prior_trick=...))", positional=True)
    lam: float = option(10.0, Number(low=0), "the penalty weight λ >= 0 (relative to rec_scale·‖x − G(z)‖²; the "
                        "paper's MNIST: 10)", positional=True)
    rec_scale: float = option(0.05, POSITIVE, "the factor of the reconstruction cost ‖x − G(z)‖², > 0 (the "
                              "official code's 0.05, so that lam keeps its paper meaning)")
    prior_scale: float = option(1.0, POSITIVE, "σ of the prior N(0, σ² I_d), > 0")
    encoder_type: str = option("deterministic", Choice(ENCODER_TYPES),
                               "'deterministic' (z = E(x)) or 'gaussian' (E(x) gives a mean and a log-variance, z "
                               "drawn by reparametrisation; encode returns the mean)")
    encoder: Any = option(None, Network("encoder"),
                          "the encoder (n, *data_shape) -> (n, k): 'conv' (DCGAN blocks, width 32), 'mlp' (hidden "
                          "(256, 256)), 'linear', a mapping {name: conv, width: 64}, or a module (None: 'conv' for "
                          "images, 'mlp' for vectors)")
    decoder: Any = option(None, Network("decoder"),
                          "the decoder (n, latent_dim) -> (n, *data_shape) (tanh output for 'conv'); as encoder")
    optim: Adam = option(Adam(lr=1e-3, betas=(0.5, 0.999)), Nested(Adam),
                         "the auto-encoder's Adam (β1 = 0.5 as in the paper); schedule 'constant', 'cosine' or "
                         "'steps' (the paper's ×0.5 at 30 %, ×0.1 from 50 % of the run); no ema")
    input_noise: float = option(0.0, Number(low=0), "σ of Gaussian noise truncated to [−2σ, 2σ] added to training "
                                "inputs only (0: off; the paper's option: 0.01)")
    pretrain: Pretrain | None = option(None, Nested(Pretrain, nullable=True),
                                       "encoder pre-training, Pretrain(steps=..., batch=1000) (None: off)")
    seed: int = option(0, SEED, "the seed of the weights and of the random streams")
    device: str | None = option("cpu", DEVICE, "'cpu', 'cuda', 'cuda:N' or 'auto'")

    def validate(self, where: str) -> None:
        self.optim.supported(where + "optim", LR_SCHEDULES, ema=False)

    @classmethod
    def from_legacy(cls, flat: Mapping[str, Any]) -> dict[str, Any]:
        """The options of a WAE config of otgen's first format (27 flat keys; or new keys with flat
        ones mixed in) as a nested mapping for :meth:`from_config`:

        * ``lr``, ``betas``, ``grad_clip``, ``lr_schedule`` -> ``optim.{lr, betas, grad_clip, schedule}``
          (with ``penalty="gan"`` the betas, clipping and schedule also go to ``penalty.optim``: the
          adversary shared them);
        * ``kernel``, ``kernel_scales``, ``rbf_bandwidth`` -> ``penalty.kernel: {name, scales | bandwidth}``;
        * ``adversary`` + ``adversary_hidden``, ``prior_trick``, ``lr_adv`` -> ``penalty.{adversary,
          prior_trick, optim.lr}``;
        * ``width``, ``hidden`` -> the encoder's and the decoder's spec (where the network takes them;
          a network of your own, ``"custom"``, keeps none);
        * ``pretrain_steps``, ``pretrain_batch`` -> ``pretrain: {steps, batch}`` (None for 0 steps).

        A setting the old code refused for its penalty or kernel (``kernel`` with ``penalty: gan``,
        ``prior_trick`` with ``mmd``, ...) is kept where the new spec then refuses it by name; one at
        its default (what old model files store) is dropped. WAE had no changed defaults."""
        if not isinstance(flat, Mapping):
            raise ValueError(f"a WAE config must be a mapping of options, got {flat!r}")
        names = cls.option_names()
        out = {k: v for k, v in flat.items() if k in names}
        old = {k: v for k, v in flat.items() if k not in names}
        shared = {new: old.pop(key) for key, new in (("lr", "lr"), ("betas", "betas"), ("grad_clip", "grad_clip"),
                                                      ("lr_schedule", "schedule")) if key in old}
        if shared:
            out["optim"] = _merged(out.get("optim"), shared)
        out.update(_legacy_penalty(out.get("penalty", "mmd"), old, shared))
        width_hidden = {k: old.pop(k) for k in ("width", "hidden") if k in old}
        for role in ("encoder", "decoder"):
            spec = out.get(role)
            spec = _default_network(out.get("data_shape")) if spec is None else spec
            spec = _with_defaults(role, spec, width_hidden) if width_hidden and spec is not None else None
            if spec is not None:
                out[role] = spec
        if "pretrain_steps" in old or "pretrain_batch" in old:
            steps, batch = old.pop("pretrain_steps", None), old.pop("pretrain_batch", None)
            current = out.get("pretrain")
            if steps == 0:
                out["pretrain"] = None  # off: its batch is unused
            elif steps is not None or current is not None:
                given = {**({"steps": steps} if steps is not None else {}),
                         **({"batch": batch} if batch is not None else {})}
                out["pretrain"] = _merged(current, given)
        out.update(old)  # anything else: refused by from_config with a "did you mean"
        return out


#: the options of otgen's first (flat) layout that moved, and where each went
MOVED = {"kernel": "penalty.kernel (MMD)", "kernel_scales": "penalty.kernel.scales (IMQ)",
         "rbf_bandwidth": "penalty.kernel.bandwidth (RBF)", "adversary": "penalty.adversary (GAN)",
         "adversary_hidden": "penalty.adversary.hidden (GAN)", "prior_trick": "penalty.prior_trick (GAN)",
         "lr_adv": "penalty.optim.lr (GAN)", "width": "encoder.width and decoder.width",
         "hidden": "encoder.hidden and decoder.hidden", "lr": "optim.lr", "betas": "optim.betas",
         "grad_clip": "optim.grad_clip", "lr_schedule": "optim.schedule", "pretrain_steps": "pretrain.steps",
         "pretrain_batch": "pretrain.batch"}

# the old flat keys of one penalty (or kernel) and their old defaults: at the default they are dropped
# from the other penalty's spec, else kept there to be refused by name
_MMD_KEYS = {"kernel": "imq", "kernel_scales": list(WAE_SCALES), "rbf_bandwidth": None}
_GAN_KEYS = {"adversary": None, "adversary_hidden": list(ADVERSARY_DEFAULTS["hidden"]), "prior_trick": False,
             "lr_adv": 5e-4}


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _mapping(value: Any) -> dict[str, Any] | None:
    """A spec value as a mutable mapping of its options (a Spec instance's fields, a mapping as it is,
    a name as ``{"name": ...}``); None for anything else."""
    if isinstance(value, Spec):
        out = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"name": value.name, **out} if value.name else out
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        return {"name": value}
    return None


def _merged(current: Any, given: dict[str, Any]) -> Any:
    """``given`` over the options of ``current`` (None, a mapping, a spec); ``current`` as it is if it is
    none of them (then it is refused for itself)."""
    base = {} if current is None else _mapping(current)
    return current if base is None else {**base, **given}


def _canonical(registry: Registry, name: Any) -> Any:
    return registry.canonical(name) if name in registry else name


def _legacy_penalty(penalty: Any, old: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """``{"penalty": ...}`` with the old flat keys of the penalty moved in (popped from ``old``);
    ``shared``: the auto-encoder's optimiser settings that the adversary shared."""
    mmd = {k: old.pop(k) for k in list(_MMD_KEYS) if k in old}
    gan = {k: old.pop(k) for k in list(_GAN_KEYS) if k in old}
    spec = _mapping(penalty)
    if spec is None or spec.get("name") not in PENALTIES:
        return {}  # refused for itself (its keys with it)
    spec["name"] = PENALTIES.canonical(spec["name"])
    unused, defaults = (gan, _GAN_KEYS) if spec["name"] == "mmd" else (mmd, _MMD_KEYS)
    for key, value in unused.items():  # not applicable: dropped at the default, else refused by name
        if _plain(value) != defaults[key]:
            spec[key] = value
    if spec["name"] == "mmd":
        kernel = _mapping(spec["kernel"]) if "kernel" in spec else None
        if "kernel" in spec and kernel is None:
            return {"penalty": spec}  # a bad kernel, refused for itself
        if "kernel" in mmd and (kernel is None or _canonical(KERNELS, kernel.get("name"))
                                != _canonical(KERNELS, mmd["kernel"])):
            kernel = {"name": mmd["kernel"]}
        name = _canonical(KERNELS, (kernel or {}).get("name", "imq"))
        takes_key = {f.name for f in dataclasses.fields(KERNELS.get(name))} if name in KERNELS else set()
        for key, new in (("kernel_scales", "scales"), ("rbf_bandwidth", "bandwidth")):
            if key in mmd and (new in takes_key or _plain(mmd[key]) != _MMD_KEYS[key]):
                kernel = {"name": name, **(kernel or {}), new: mmd[key]}
        if kernel is not None:
            spec["kernel"] = kernel if set(kernel) != {"name"} else kernel["name"]
    else:
        if "prior_trick" in gan:
            spec["prior_trick"] = gan["prior_trick"]
        if "adversary" in gan:
            spec["adversary"] = gan["adversary"]
        if "adversary_hidden" in gan:
            base = spec.get("adversary")
            added = _with_defaults("potential", "mlp" if base is None else base, {"hidden": gan["adversary_hidden"]})
            if added is not None:
                spec["adversary"] = added
        optim = {k: v for k, v in shared.items() if k != "lr"}
        if "lr_adv" in gan:
            optim["lr"] = gan["lr_adv"]
        if optim:
            spec["optim"] = _merged(spec.get("optim"), optim)
    return {"penalty": spec if set(spec) != {"name"} else spec["name"]}


def _default_network(data_shape: Any) -> str | None:
    """The encoder's and decoder's default name for ``data_shape``; None if it is no shape."""
    try:
        return "conv" if _is_image(check_shape("data_shape", data_shape)) else "mlp"
    except ValueError:
        return None


def _with_defaults(role: str, spec: Any, given: dict[str, Any]) -> Any:
    """The network ``spec`` of ``role`` (a name or a mapping) with those of the keyword arguments
    ``given`` (the old ``width`` / ``hidden`` shorthands) that its builder takes and it does not set
    itself; None where nothing is added (a module, ``"custom"``, a bad spec: kept as they are)."""
    out = _mapping(spec)
    if out is None or not isinstance(out.get("name"), str):
        return None
    added = False
    for key, value in given.items():
        if key in out:
            continue
        try:
            check_spec(role, {**out, key: value})
        except ValueError:
            continue  # not an argument of this network (or a bad spec, refused for itself)
        out[key], added = value, True
    return out if added else None


# ----------------------------------------------------------------------------- the solver


def training_rows(data: Any, n: int, rng: torch.Generator, block: int = 1000) -> Iterator[torch.Tensor]:
    """At most n training samples of ``data``, in blocks of at most ``block`` rows (only one block of
    a streaming data set is read into memory at a time): every row of a finite set (a Tensor, an
    ``Empirical`` / ``ImageSet``, a streaming ``ImageDataset``) that holds at most n, else n rows of it
    drawn without replacement from ``rng``; n draws of any other sampler."""
    if isinstance(data, Empirical):
        data = data.samples
    if not isinstance(data, (torch.Tensor, ImageDataset)):
        for start in range(0, n, block):
            yield draw(data, min(block, n - start), rng)
        return
    rows = torch.arange(len(data)) if len(data) <= n else torch.randperm(len(data), generator=rng)[:n].sort().values
    for part in rows.split(block):
        if isinstance(data, torch.Tensor):
            yield data[part.to(data.device)]
        else:  # stored sizes may differ: converted one at a time
            yield torch.cat([data.convert(data[int(i)][None]) for i in part])


def truncated_normal(shape: Sequence[int], bound: float, rng: torch.Generator,
                     device: torch.device) -> torch.Tensor:
    """Draws (shape, float64) of a standard normal conditioned on [−bound, bound], for this process's
    rows of a training step (``shard.rand``).

    By the inverse CDF, e = Φ⁻¹(Φ(−b) + u·(Φ(b) − Φ(−b))) with u uniform on [0, 1): exactly the law of
    the rejection sampler "redraw the draws outside [−b, b]" (the official code's), but with a fixed
    number of draws, whereas the rejection loop's length depends on the draws and would read them on
    the host every round (a device sync each). In float64 (53-bit uniforms, Φ⁻¹ accurate to ~1e-15),
    so the law is exact to far below what float32 inputs resolve."""
    mass = math.erf(bound / math.sqrt(2.0))  # Φ(b) − Φ(−b)
    u = shard.rand(shape, generator=rng, dtype=torch.float64, device=device)
    return torch.special.ndtri(u.mul_(mass).add_(0.5 * (1.0 - mass)))  # Φ(−b) = (1 − mass)/2


def steps_factor(done: int, length: int) -> float:
    """WAE's MNIST schedule, in fractions of the run: ×1 to 30 %, ×0.5 to 50 %, ×0.1 after."""
    frac = done / max(length, 1)
    return 1.0 if frac < 0.3 else 0.5 if frac < 0.5 else 0.1


def _is_image(shape: Sequence[int]) -> bool:
    return len(shape) == 3


def _build_for_data(role: str, spec: Any, shape: tuple[int, ...], **kwargs: Any):
    """``nn.build`` of the encoder or decoder, its shape errors naming ``data_shape``."""
    try:
        return build(role, spec, **kwargs)
    except ValueError as e:
        raise ValueError(f"data_shape {shape} does not fit the {role} network: {e}") from None


@takes(WAEOptions)
class WAESolver(Solver):
    """WAE-MMD and WAE-GAN losses and update steps (``otgen.WAE`` adds ``fit``).

    Options (``WAEOptions``; the penalty's in ``MMD`` / ``GAN``, the kernel's in ``IMQ`` / ``RBF``,
    encoder pre-training's in ``Pretrain``, the optimisers' in ``Adam``, all in ``otgen.solvers.wae``):
        {options}

    Examples: ``WAE((1, 16, 16), 5, encoder={"name": "conv", "width": 64}, decoder={"name": "conv",
    "width": 64}, optim={"schedule": "steps"})``; ``WAE((6,), 2, GAN(prior_trick=True,
    optim={"lr": 1e-4}))`` (a mapping keeps the default betas (0.5, 0.999)); ``WAE((6,), 2, MMD(kernel=RBF(bandwidth=2.0)))``.

    The source of its transport is its own prior: ``z = m.sample_prior(n, rng=g)`` (n, latent_dim),
    ``m.transport(z)`` = ``m.decode(z)`` (n, *data_shape), ``m.sample(z, k)`` (n, k, *data_shape).
    """

    name = "WAE"
    Options = WAEOptions
    small_options = {"data_shape": [6], "latent_dim": 2, "encoder": {"name": "mlp", "hidden": [16]},
                     "decoder": {"name": "mlp", "hidden": [16]}, "encoder_type": "gaussian", "input_noise": 0.1}
    data_sides = ("data",)
    shape_names = ("data_shape",)
    reconstructs = True
    divergence_hint = ("Try a smaller learning rate (optim.lr, and penalty.optim.lr for WAE-GAN), a smaller lam, "
                       "or optim.grad_clip; WAE-GAN is the less stable of the two, WAE-MMD trains like an "
                       "auto-encoder.")

    def __init__(self, *args: Any, **kwargs: Any):
        check_keywords(self.Options, kwargs, MOVED)
        o = self.Options(*args, **kwargs)  # every option checked, before any work
        shape = tuple(o.data_shape)
        default = "conv" if _is_image(shape) else "mlp"
        o = o.replace(encoder=default if o.encoder is None else o.encoder,
                      decoder=default if o.decoder is None else o.decoder)
        gan = isinstance(o.penalty, GAN)
        if gan and o.penalty.adversary is None:
            o = o.replace(penalty=o.penalty.replace(adversary="mlp"))
        super().__init__(seed=o.seed, device=o.device)
        self.options = o
        self.data_shape, self.latent_dim = shape, o.latent_dim
        self.penalty, self.lam, self.rec_scale = o.penalty.name, o.lam, o.rec_scale
        self.prior_scale = o.prior_scale
        self.imq_c = 2.0 * self.latent_dim * self.prior_scale ** 2
        kernel = None if gan else o.penalty.kernel
        self.kernel = None if kernel is None else kernel.name
        self.kernel_scales = tuple(kernel.scales) if isinstance(kernel, IMQ) else ()
        self.rbf_bandwidth = ((math.sqrt(self.imq_c) if kernel.bandwidth is None else kernel.bandwidth)
                              if isinstance(kernel, RBF) else None)
        self.gaussian_encoder = o.encoder_type == "gaussian"
        self.prior_trick = gan and o.penalty.prior_trick
        self.input_noise = o.input_noise
        self.pretrain_steps = 0 if o.pretrain is None else o.pretrain.steps
        self.pretrain_batch = None if o.pretrain is None else o.pretrain.batch
        self.pretrained = False
        self.latent_mixture: GaussianMixture | None = None  # fit_latent_sampler; saved with the model

        code_dim = 2 * self.latent_dim if self.gaussian_encoder else self.latent_dim
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(o.seed)
            enc = _build_for_data("encoder", o.encoder, shape,
                                  context={"event_shape": shape, "out_dim": code_dim}, defaults=AUTOENCODER_DEFAULTS)
            dec = _build_for_data("decoder", o.decoder, shape,
                                  context={"latent_dim": self.latent_dim, "event_shape": shape},
                                  defaults=AUTOENCODER_DEFAULTS)
            adv = (build("potential", o.penalty.adversary, context={"event_shape": (self.latent_dim,)},
                         defaults=ADVERSARY_DEFAULTS) if gan else None)
        self.encoder = self.add_network("encoder", enc)
        self.decoder = self.add_network("decoder", dec)
        schedules = {"constant": None, "cosine": self.run_cosine, "steps": self.run_steps_schedule}
        params = [p for m in (self.encoder, self.decoder) for p in m.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the encoder and decoder have no trainable parameters")
        opt = o.optim
        self.opt_ae = self.add_optimizer("opt_ae", torch.optim.Adam(params, lr=opt.lr, betas=tuple(opt.betas)),
                                         schedule=schedules[opt.schedule], grad_clip=opt.grad_clip)
        self.opt_pretrain = (self.add_optimizer("opt_pretrain",
                                                torch.optim.Adam(self.encoder.parameters(), lr=opt.lr,
                                                                 betas=tuple(opt.betas)),
                                                grad_clip=opt.grad_clip) if self.pretrain_steps else None)
        self.pretrain_result: dict[str, float] = {}
        self.adversary = self.opt_adv = None
        if adv is not None:
            adv_opt = o.penalty.optim
            self.adversary = self.add_network("adversary", adv)
            self.opt_adv = self.add_optimizer("opt_adv", torch.optim.Adam(self.adversary.parameters(), lr=adv_opt.lr,
                                                                          betas=tuple(adv_opt.betas)),
                                              schedule=schedules[adv_opt.schedule], grad_clip=adv_opt.grad_clip)

    def run_steps_schedule(self, step: int) -> float:
        """A schedule: ``steps_factor`` over the run's ``total_steps``."""
        return steps_factor(step, self.total_steps)

    # -- the prior, the encoder, the decoder ----------------------------------------------------------
    def sample_prior(self, n: int, *, rng: torch.Generator | None = None, latent: str = "prior") -> torch.Tensor:
        """n codes: (n, latent_dim) on the model's device, from ``rng`` (a ``torch.Generator`` on any
        device; default: the model's sampling stream); the inputs of ``transport`` and ``sample``.
        ``latent="prior"`` draws from the prior N(0, prior_scale² I_d); ``"fitted"`` from the Gaussian
        mixture fitted to the training codes (``fit_latent_sampler``; fitted at the end of training).
        ``n``: an int >= 1. ValueError otherwise, or for "fitted"
        before a mixture is fitted."""
        n = self._count("n", n, low=1)
        self._check_latent(latent)
        rng = self._sampling_rng(rng)
        if latent == "fitted":
            return self.latent_mixture.sample(n, generator=rng).to(self.device)
        return self.prior_scale * torch.randn(n, self.latent_dim, generator=rng, device=rng.device).to(self.device)

    def latent_choices(self) -> tuple[str, ...]:
        """("prior",), and "fitted" once a latent mixture is fitted."""
        return ("prior",) + (("fitted",) if self.latent_mixture is not None else ())

    def _check_latent(self, latent: str) -> None:
        if latent not in ("prior", "fitted"):
            raise ValueError(f"latent must be 'prior' or 'fitted', got {latent!r}")
        if latent == "fitted" and self.latent_mixture is None:
            raise ValueError("latent='fitted': this WAE holds no fitted latent sampler (it is not trained, or it "
                             "was saved by an otgen before the sampler); fit one with model.fit_latent_sampler(data)")

    def own_source(self, latent: str = "prior") -> Callable[..., torch.Tensor]:
        """The codes' sampler ``(n, generator=None) -> (n, latent_dim)`` (the faces' data sampler
        convention): ``sample_prior`` with ``latent`` ("prior" or "fitted"; checked here)."""
        self._check_latent(latent)
        return lambda n, generator=None: self.sample_prior(n, rng=generator, latent=latent)

    @torch.no_grad()
    def fit_latent_sampler(self, data: Any, components: int = LATENT_COMPONENTS, covariance: str = "full",
                           codes: int = LATENT_CODES) -> GaussianMixture:
        """Fit the latent sampler (as pythae's ``GaussianMixtureSampler``): a Gaussian mixture of
        ``components`` Gaussians with "full" or "diag" ``covariance`` (``GaussianMixture.fit``: EM by
        scikit-learn, from the model's seed) to the codes E(x) (the encoder's mean) of at most
        ``codes`` training samples of ``data`` (``training_rows``). Training fits it after the last
        step with these defaults (at most as many components as codes); call this to refit it. Kept,
        and saved with the model, for ``sample_prior(n, latent="fitted")``; returned."""
        codes = self._count("codes", codes, low=2)
        rows = training_rows(data, codes, torch.Generator().manual_seed(derived_seed(self.seed, 7)))
        z = torch.cat([self.encode(self._as_batch("data", x, self.data_shape).to(self.device)).cpu() for x in rows])
        self.latent_mixture = GaussianMixture.fit(z.double().cpu().numpy(), components, covariance, seed=self.seed)
        return self.latent_mixture

    def expected_shapes(self):
        return (self.data_shape,)

    def _codes(self, x: torch.Tensor, rng: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(z, log-variance or None) of x: the deterministic code, or a reparametrised draw (with an
        ``rng``) / the mean (without) of a Gaussian encoder."""
        out = self.encoder(x)
        if tuple(out.shape) != (x.shape[0], 2 * self.latent_dim if self.gaussian_encoder else self.latent_dim):
            raise RuntimeError(f"the encoder returned shape {tuple(out.shape)} for {x.shape[0]} inputs")
        if not self.gaussian_encoder:
            return out, None
        mean, logvar = out.chunk(2, dim=1)
        logvar = logvar.clamp(*LOGVAR_RANGE)
        if rng is None:
            return mean, logvar
        eps = shard.randn(mean.shape, generator=rng, device=rng.device).to(mean.device)
        return mean + torch.exp(0.5 * logvar) * eps, logvar

    def _eval(self) -> Any:
        """Encoder and decoder in eval mode (BatchNorm's running statistics), gradients off."""
        stack = contextlib.ExitStack()
        for m in (self.encoder, self.decoder):
            stack.enter_context(frozen(m, eval_mode=True))
        return stack

    @torch.no_grad()
    def encode(self, x: torch.Tensor, sample: bool = False, *, rng: torch.Generator | None = None) -> torch.Tensor:
        """Codes of x (n, *data_shape) -> (n, latent_dim): E(x), or for a Gaussian encoder its mean
        (``sample=True``: a draw from Q(z|x), from ``rng`` or the sampling stream). ``x``: a Tensor,
        array or list, cast to float32 on the model's device; an empty, non-finite or non-numeric x
        raises ValueError/TypeError naming x."""
        x = self._as_input("x", x, self.data_shape)
        if not isinstance(sample, bool):
            raise ValueError(f"sample must be True or False, got {sample!r}")
        rng = self._sampling_rng(rng) if sample else None
        with self._eval():
            return self._codes(x, rng)[0]

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): (n, latent_dim) -> (n, *data_shape). ``z``: a Tensor, array or list, cast to float32 on
        the model's device; an empty, non-finite or non-numeric z raises ValueError/TypeError naming z."""
        return self._decode_batches(self._as_input("z", z, (self.latent_dim,)), None)

    @torch.no_grad()
    def _decode_batches(self, z: torch.Tensor, batch_size: int | None) -> torch.Tensor:
        """G(z) for checked codes z (n, latent_dim), at most ``batch_size`` per decoder call (``map_batches``)."""
        with self._eval():
            return map_batches(self.decoder, z, batch_size)

    def _as_codes(self, z: Any) -> torch.Tensor:
        """``z`` checked as ``decode`` checks it; an int (the ``sample(n)`` of otgen's first version)
        is refused with the way to draw n codes."""
        if isinstance(z, numbers.Integral) and not isinstance(z, bool):
            raise ValueError(f"z must be prior codes of shape (n, {self.latent_dim}), got the int {z!r}: draw n "
                             f"codes with z = model.sample_prior(n, rng=...) (sample(n) of otgen's first version "
                             f"is sample(model.sample_prior(n))[:, 0])")
        return self._as_input("z", z, (self.latent_dim,))

    def transport(self, z: torch.Tensor, *, rng: torch.Generator | None = None,
                  batch_size: int | None = None) -> torch.Tensor:
        """The map from the prior to the data: ``decode(z)`` for prior codes z (n, latent_dim) (e.g.
        ``sample_prior(n)``; checked as ``decode`` checks them) -> (n, *data_shape), at most
        ``batch_size`` codes per decoder call (None: all at once; the decoder is deterministic, so
        every batch size gives the same images up to float rounding). ``rng``: accepted for the one
        contract of every solver (a ``torch.Generator`` or None) and unused: nothing is drawn."""
        z = self._as_codes(z)
        self._sampling_rng(rng)
        return self._decode_batches(z, check_batch_size(batch_size))

    @torch.no_grad()
    def sample(self, z: torch.Tensor, n_per_x: int = 1, *, rng: torch.Generator | None = None,
               batch_size: int | None = None) -> torch.Tensor:
        """``n_per_x`` outputs per prior code z (n, latent_dim): (n, n_per_x, *data_shape), the one
        contract of every solver. The decoder is deterministic, so the ``n_per_x`` outputs of a code
        are equal (``transport(z)`` repeated; it is decoded once): draw more codes for more images,
        ``sample(sample_prior(n))``. ``rng`` is unused (nothing is drawn); ``batch_size``: at most
        that many codes per decoder call (None: all at once)."""
        n_per_x = self._count("n_per_x", n_per_x, low=1)
        y = self.transport(z, rng=rng, batch_size=batch_size)
        return y.unsqueeze(1).repeat(1, n_per_x, *([1] * len(self.data_shape)))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(E(x)) (the encoder's mean for a Gaussian encoder): shaped like x (checked as ``encode`` does)."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def interpolate(self, x0: torch.Tensor, x1: torch.Tensor, n_steps: int = 8) -> torch.Tensor:
        """Decoded straight lines between the codes of x0 and x1 (each (n, *data_shape)):
        (n, n_steps, *data_shape), from G(E(x0)) to G(E(x1))."""
        n_steps = self._count("n_steps", n_steps, low=2)
        x0, x1 = self._as_input("x0", x0, self.data_shape), self._as_input("x1", x1, self.data_shape)
        z0, z1 = self.encode(x0), self.encode(x1)
        if z0.shape != z1.shape:
            raise ValueError(f"x0 and x1 must hold the same number of samples, got {len(z0)} and {len(z1)}")
        t = torch.linspace(0, 1, n_steps, device=self.device)[None, :, None]
        z = (1 - t) * z0[:, None] + t * z1[:, None]
        y = self.decode(z.reshape(-1, self.latent_dim))
        return y.reshape(z0.shape[0], n_steps, *self.data_shape)

    def latent_generator(self) -> torch.nn.Module:
        """The decoder G: (n, latent_dim) -> (n, *data_shape), for use as a frozen generator."""
        return self.decoder

    def run_arrays(self, x: torch.Tensor, rng: torch.Generator, y: torch.Tensor | None = None):
        """``y_hat``: decoded prior codes x (n, latent_dim); with data y, also ``y_rec``: their
        reconstructions."""
        out = {"y_hat": self.decode(x)}
        if y is not None:
            out["y_rec"] = self.reconstruct(y)
        return out

    # -- training ---------------------------------------------------------------------------------------
    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; 0, prior_scale² I): (n, d) -> (n,)."""
        var = self.prior_scale ** 2
        return -0.5 * (z.pow(2).sum(1) / var + self.latent_dim * math.log(2 * math.pi * var))

    def adversary_logits(self, z: torch.Tensor) -> torch.Tensor:
        """The adversary's logit of "z is a prior draw": (n, d) -> (n,) (+ log p_Z(z) with the trick)."""
        logits = self.adversary(z)
        if tuple(logits.shape) != (z.shape[0],):
            raise RuntimeError(f"the adversary must return shape ({z.shape[0]},), got {tuple(logits.shape)}")
        return logits + self.log_prior(z) if self.prior_trick else logits

    def mmd_penalty(self, codes: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """The MMD² penalty between codes and prior draws (both (n, d)), with the graph of the codes."""
        if self.kernel == "imq":
            return imq_mmd2(codes, prior, self.imq_c, self.kernel_scales)
        return rbf_mmd2(codes, prior, self.rbf_bandwidth)

    def reconstruction(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """mean_i ‖x_i − x̂_i‖² (the sum of squared errors of one sample), unscaled: (n, ...) -> 0-d."""
        return (x - x_hat).pow(2).reshape(x.shape[0], -1).sum(1).mean()

    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        """x + input_noise·e, e a standard normal truncated to [−2, 2] (``truncated_normal``)."""
        if not self.input_noise:
            return x
        e = truncated_normal(x.shape, NOISE_BOUND, self.rng, self.device)
        return x + self.input_noise * e.to(x.dtype)

    def train_step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One auto-encoder update on a data batch x (n, *data_shape) (WAE-GAN: first one adversary
        update on the same codes). Returns detached 0-d tensors; nothing is read on the host."""
        x = self._as_batch("x", x, self.data_shape)
        n = x.shape[0]
        if shard.current().global_rows(n) < 2:
            raise ValueError("a WAE step needs batches of at least 2 samples (the penalty compares two samples)")
        prior = self.prior_scale * shard.randn((n, self.latent_dim), generator=self.rng, device=self.device)
        codes, logvar = self._codes(self._noisy(x), self.rng)
        out: dict[str, torch.Tensor] = {}
        if self.penalty == "gan":
            real, fake = self.adversary_logits(prior), self.adversary_logits(codes.detach())
            loss_adv = self.lam * (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                                   + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
            self.update("opt_adv", loss_adv)
            out["loss_adv"] = loss_adv.detach()
            with frozen(self.adversary):
                fooled = self.adversary_logits(codes)
                penalty = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
        else:  # the MMD couples the samples: of the whole batch, in every process alike
            penalty = self.mmd_penalty(shard.gather_with_grad(codes), shard.gather(prior))
        rec = self.reconstruction(x, self.decoder(codes))
        loss = self.rec_scale * rec + self.lam * penalty
        self.update("opt_ae", loss)
        out.update(loss=loss.detach(), rec=rec.detach(), penalty=penalty.detach())
        if logvar is not None:
            out["logvar"] = logvar.detach().mean()
        self.step += 1
        return out

    def prepare(self, data: Any, n_iters: int) -> None:
        super().prepare(data, n_iters=n_iters)
        if self.pretrain_steps and self.step == 0 and not self.pretrained:
            self.pretrain_encoder(data)

    def finish(self, data: Any) -> None:
        """After the last step: the latent sampler (``fit_latent_sampler``; a few seconds)."""
        n = len(data) if isinstance(data, (torch.Tensor, Empirical, ImageDataset)) else LATENT_CODES
        self.fit_latent_sampler(data, components=max(1, min(LATENT_COMPONENTS, n)))

    def pretrain_encoder(self, data: Any) -> dict[str, float]:
        """Encoder pre-training (wae.md §6): Adam steps (through the shared ``update``) on
        ‖mean(z̃) − mean(z)‖² + ‖cov(z̃) − cov(z)‖²_F between encoded data batches of ``pretrain.batch``
        and prior draws, until ``pretrain.steps`` or the loss < 0.1. Returns (and keeps in
        ``pretrain_result``, saved with the model) the steps taken and the last loss."""
        draws = torch.Generator().manual_seed(derived_seed(self.seed, 4))  # the data batches (CPU)
        steps, loss = 0, float("nan")
        for steps in range(1, self.pretrain_steps + 1):
            x = self._batch_of(data, self.pretrain_batch, draws)
            codes = self._codes(x, self.rng)[0]
            prior = self.prior_scale * torch.randn(codes.shape, generator=self.rng, device=self.device)
            mismatch = ((codes.mean(0) - prior.mean(0)).pow(2).sum()
                        + (torch.cov(codes.T) - torch.cov(prior.T)).pow(2).sum())
            self.update("opt_pretrain", mismatch)
            loss = mismatch.item()
            if loss < PRETRAIN_STOP:
                break
        self.pretrained = True
        self.pretrain_result = {"pretrain_steps": steps, "pretrain_loss": loss}
        return self.pretrain_result

    def _batch_of(self, data: Any, n: int, rng: torch.Generator) -> torch.Tensor:
        """n samples of the data (a Tensor: rows drawn with replacement; a sampler: called)."""
        if isinstance(data, torch.Tensor):
            batch = data[torch.randint(0, data.shape[0], (n,), generator=rng).to(data.device)]
        else:
            batch = draw(data, n, rng)
        return self._as_batch("data", batch, self.data_shape)

    def extra_state(self) -> dict[str, Any]:
        state = {"pretrained": self.pretrained, "pretrain_result": dict(self.pretrain_result)}
        if self.latent_mixture is not None:
            state["latent_mixture"] = self.latent_mixture.state()
        return state

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.pretrained = bool(state.get("pretrained", False))
        self.pretrain_result = dict(state.get("pretrain_result", {}))
        mixture = state.get("latent_mixture")  # absent in files of otgen before the fitted sampler
        self.latent_mixture = None if mixture is None else GaussianMixture.from_state(mixture)
