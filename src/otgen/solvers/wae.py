"""WAE / POT: Wasserstein auto-encoders, the penalised primal form of OT (Tolstikhin et al., ICLR 2018;
Bousquet et al., "From optimal transport to generative modeling: the VEGAN cookbook", 2017).

With a prior P_Z and a deterministic decoder G, W_c(P_X, G#P_Z) is a minimum over encoders Q(Z|X)
whose aggregate Q_Z equals P_Z; the WAE relaxes that constraint into a penalty (wae.md §1):

    min_{Q, G}  rec_scale · E_{P_X} E_{Q(Z|X)} ‖X − G(Z)‖²  +  lam · D_Z(Q_Z, P_Z),

with ‖·‖² the sum of squared errors of one sample and P_Z = N(0, prior_scale² I_latent_dim).

* ``penalty="mmd"`` (Algorithm 2): D_Z = Σ_s MMD²_U with the inverse-multiquadratic kernel
  C·s / (C·s + ‖z − z'‖²), C = 2·latent_dim·prior_scale², s in ``kernels.WAE_SCALES`` (the official
  code's multi-scale sum; ``kernel_scales=[1]`` is the paper's single kernel), or ``kernel="rbf"``.
* ``penalty="gan"`` (Algorithm 1): a latent adversary D(z) (logits) tells prior draws from codes; it
  ascends lam·[log D(z) + log(1 − D(z̃))] with its own Adam and learning rate, the auto-encoder
  descends rec − lam·log D(z̃) (the non-saturating form). ``prior_trick=True`` adds the analytic
  log p_Z(z) to the adversary's logit, so it learns only the −log q_Z part (AVB's trick).

Shapes: data (n, *data_shape); codes (n, latent_dim). ``transport(z)`` is the decoder (the map from
the prior to data), ``sample(n)`` decodes prior draws. The data side is one (``data_sides =
("data",)``): ``fit(images, n_iters=...)``; the prior is the model's own, drawn from its generator.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from .. import shard
from ..checks import check_shape, derived_seed
from ..distributions.base import draw
from ..kernels import WAE_SCALES, imq_mmd2, rbf_mmd2
from ..nn import build
from ..nn.registry import Network
from ..schema import Betas, Choice, Flag, Number, Numbers, Schema, Shape
from .base import DEVICE, GRAD_CLIP, SEED, Solver, check_batch_size, frozen, map_batches

PENALTIES = ("mmd", "gan")
KERNELS = ("imq", "rbf")
ENCODER_TYPES = ("deterministic", "gaussian")
LR_SCHEDULES = ("constant", "cosine", "steps")
LOGVAR_RANGE = (-16.0, 8.0)  # a Gaussian encoder's log-variance is clipped to this (official code: clipped)
PRETRAIN_STOP = 0.1          # encoder pre-training stops once the moment mismatch is below this (wae.md §6)
NOISE_BOUND = 2.0            # input noise: a standard normal truncated to [−2, 2] (the official code's)

POSITIVE = Number(low=0, low_open=True)
SCHEMA = Schema("WAE", {
    "data_shape": Shape(), "latent_dim": Number(integer=True, low=1), "penalty": Choice(PENALTIES),
    "lam": Number(low=0), "rec_scale": POSITIVE, "prior_scale": POSITIVE,
    "kernel": Choice(KERNELS), "kernel_scales": Numbers(float), "rbf_bandwidth": Number(low=0, low_open=True,
                                                                                         nullable=True),
    "encoder_type": Choice(ENCODER_TYPES), "encoder": Network("encoder"), "decoder": Network("decoder"),
    "adversary": Network("potential"), "width": Number(integer=True, low=1), "hidden": Numbers(int),
    "adversary_hidden": Numbers(int), "prior_trick": Flag(),
    "lr": POSITIVE, "lr_adv": POSITIVE, "betas": Betas(), "grad_clip": GRAD_CLIP,
    "lr_schedule": Choice(LR_SCHEDULES), "input_noise": Number(low=0),
    "pretrain_steps": Number(integer=True, low=0), "pretrain_batch": Number(integer=True, low=2),
    "seed": SEED, "device": DEVICE,
})


def _set_by_user(args: dict[str, Any], keys: Sequence[str]) -> list[str]:
    """The keys among ``keys`` whose value differs from the constructor's default (sequences compared as lists)."""
    params = inspect.signature(WAESolver.__init__).parameters

    def norm(v):
        return list(v) if isinstance(v, (list, tuple)) else v

    return [k for k in keys if norm(args[k]) != norm(params[k].default)]


def truncated_normal(shape: Sequence[int], bound: float, generator: torch.Generator,
                     device: torch.device) -> torch.Tensor:
    """Draws (shape, float64) of a standard normal conditioned on [−bound, bound], for this process's
    rows of a training step (``shard.rand``).

    By the inverse CDF, e = Φ⁻¹(Φ(−b) + u·(Φ(b) − Φ(−b))) with u uniform on [0, 1): exactly the law of
    the rejection sampler "redraw the draws outside [−b, b]" (the official code's), but with a fixed
    number of draws, whereas the rejection loop's length depends on the draws and would read them on
    the host every round (a device sync each). In float64 (53-bit uniforms, Φ⁻¹ accurate to ~1e-15),
    so the law is exact to far below what float32 inputs resolve."""
    mass = math.erf(bound / math.sqrt(2.0))  # Φ(b) − Φ(−b)
    u = shard.rand(shape, generator=generator, dtype=torch.float64, device=device)
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


class WAESolver(Solver):
    """WAE-MMD and WAE-GAN losses and update steps (``otgen.WAE`` adds ``fit``).

    Args:
        data_shape: shape of one data sample, e.g. (1, 16, 16) for grey 16×16 images or (6,) for vectors.
        latent_dim: d, the dimension of the codes and of the prior N(0, prior_scale² I_d).
        penalty: "mmd" (WAE-MMD) or "gan" (WAE-GAN, a latent adversary).
        lam: the penalty weight lambda >= 0 (relative to rec_scale·‖x − G(z)‖²; the paper's MNIST: 10).
        rec_scale: the factor of the reconstruction cost, > 0 (0.05 in the official code, so that lam
            keeps its paper meaning).
        prior_scale: sigma of the prior.
        kernel: "imq" (default) or "rbf" for the MMD penalty; kernel_scales: the multipliers s of the IMQ
            constant C = 2·d·sigma² whose MMD² are summed (default ``kernels.WAE_SCALES``);
            rbf_bandwidth: ℓ of the RBF kernel (default sqrt(2·d)·sigma, the root mean squared distance
            of two prior draws).
        encoder_type: "deterministic" (default: z = E(x)) or "gaussian" (E(x) gives mean and log-variance,
            z drawn by reparametrisation; ``encode`` returns the mean).
        encoder, decoder: networks of ``otgen.nn.registry`` roles "encoder" ((n, *data_shape) ->
            (n, k)) and "decoder" ((n, d) -> (n, *data_shape)): "conv" (default for (C, H, W) images:
            DCGAN blocks, tanh output), "mlp" (default for vectors), "linear", a mapping with keyword
            arguments, or a module of your own.
        adversary: the WAE-GAN latent critic, a "potential" network on (n, d) giving logits (n,)
            (default "mlp" with ``adversary_hidden`` widths, ReLU: the paper's 4 × 512).
        width: the base channel count of the "conv" encoder and decoder; hidden: widths of "mlp" ones.
        prior_trick: add log p_Z(z) to the adversary's logit (Gaussian prior; WAE-GAN only).
        lr, lr_adv: Adam learning rates of the auto-encoder and the adversary; betas: Adam's (0.5, 0.999)
            as in the paper. grad_clip: max gradient norm of each update (None: off).
        lr_schedule: "constant", "cosine" (to 0 over the run) or "steps" (the paper's: ×0.5 at 30 % of
            the run, ×0.1 from 50 %).
        input_noise: sigma of Gaussian noise truncated to [−2σ, 2σ] (``truncated_normal``) added to
            training inputs only (0: off; the paper's option: 0.01).
        pretrain_steps: Adam steps of encoder pre-training before the first step, matching the mean
            and covariance of encoded batches of ``pretrain_batch`` to the prior's; stops early below
            0.1 (0: off).
        seed, device: as every solver.
    """

    name = "WAE"
    schema = SCHEMA
    data_sides = ("data",)
    shape_names = ("data_shape",)
    reconstructs = True
    divergence_hint = ("Try a smaller learning rate (lr, and lr_adv for WAE-GAN), a smaller lam, or grad_clip; "
                       "WAE-GAN is the less stable of the two, WAE-MMD trains like an auto-encoder.")

    def __init__(self, data_shape: Sequence[int], latent_dim: int = 8, penalty: str = "mmd", lam: float = 10.0, *,
                 rec_scale: float = 0.05, prior_scale: float = 1.0, kernel: str = "imq",
                 kernel_scales: Sequence[float] = WAE_SCALES, rbf_bandwidth: float | None = None,
                 encoder_type: str = "deterministic", encoder: Any = None, decoder: Any = None,
                 adversary: Any = None, width: int = 32, hidden: Sequence[int] = (256, 256),
                 adversary_hidden: Sequence[int] = (512, 512, 512, 512), prior_trick: bool = False,
                 lr: float = 1e-3, lr_adv: float = 5e-4, betas: Sequence[float] = (0.5, 0.999),
                 grad_clip: float | None = None, lr_schedule: str = "constant", input_noise: float = 0.0,
                 pretrain_steps: int = 0, pretrain_batch: int = 1000, seed: int = 0, device: str | None = "cpu"):
        args = SCHEMA.arguments(locals())
        shape = check_shape("data_shape", data_shape)
        if not _is_image(shape) and len(shape) != 1:
            raise ValueError(f"data_shape must be (C, H, W) images or (D,) vectors, got {shape}")
        if not kernel_scales or any(not s > 0 for s in kernel_scales):
            raise ValueError(f"kernel_scales must be positive numbers (at least one), got {kernel_scales!r}")
        gan_only = ("adversary", "adversary_hidden", "lr_adv", "prior_trick")
        mmd_only = ("kernel", "kernel_scales", "rbf_bandwidth")
        kernel_only = {"imq": ("rbf_bandwidth",), "rbf": ("kernel_scales",)}[kernel]
        unused = _set_by_user(args, gan_only if penalty == "mmd" else mmd_only) + \
            (_set_by_user(args, kernel_only) if penalty == "mmd" else [])
        if unused:
            raise ValueError(f"{', '.join(unused)}: not used with penalty={penalty!r}" +
                             (f", kernel={kernel!r}" if penalty == "mmd" else "") + " (refused rather than ignored)")
        super().__init__(seed=seed, device=device)
        self.data_shape, self.latent_dim = shape, int(latent_dim)
        self.penalty, self.lam, self.rec_scale = penalty, float(lam), float(rec_scale)
        self.prior_scale = float(prior_scale)
        self.kernel, self.kernel_scales = kernel, tuple(float(s) for s in kernel_scales)
        self.imq_c = 2.0 * self.latent_dim * self.prior_scale ** 2
        self.rbf_bandwidth = math.sqrt(self.imq_c) if rbf_bandwidth is None else float(rbf_bandwidth)
        self.gaussian_encoder = encoder_type == "gaussian"
        self.prior_trick, self.input_noise = bool(prior_trick), float(input_noise)
        self.pretrain_steps, self.pretrain_batch = int(pretrain_steps), int(pretrain_batch)
        self.pretrained = False

        default = "conv" if _is_image(shape) else "mlp"
        shared = {"width": width, "hidden": hidden}
        code_dim = 2 * self.latent_dim if self.gaussian_encoder else self.latent_dim
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            enc = _build_for_data("encoder", default if encoder is None else encoder, shape,
                                  context={"event_shape": shape, "out_dim": code_dim}, defaults=shared)
            dec = _build_for_data("decoder", default if decoder is None else decoder, shape,
                                  context={"latent_dim": self.latent_dim, "event_shape": shape}, defaults=shared)
            adv = (build("potential", adversary, context={"event_shape": (self.latent_dim,)},
                         defaults={"hidden": adversary_hidden, "activation": "relu", "zero_init": False})
                   if penalty == "gan" else None)
        self.encoder = self.add_network("encoder", enc)
        self.decoder = self.add_network("decoder", dec)
        schedule = {"constant": None, "cosine": self.run_cosine, "steps": self.run_steps_schedule}[lr_schedule]
        params = [p for m in (self.encoder, self.decoder) for p in m.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the encoder and decoder have no trainable parameters")
        self.opt_ae = self.add_optimizer("opt_ae", torch.optim.Adam(params, lr=lr, betas=tuple(betas)),
                                         schedule=schedule, grad_clip=args["grad_clip"])
        self.opt_pretrain = (self.add_optimizer("opt_pretrain", torch.optim.Adam(self.encoder.parameters(), lr=lr,
                                                                                betas=tuple(betas)),
                                                grad_clip=args["grad_clip"]) if pretrain_steps else None)
        self.pretrain_result: dict[str, float] = {}
        self.adversary = self.opt_adv = None
        if adv is not None:
            self.adversary = self.add_network("adversary", adv)
            self.opt_adv = self.add_optimizer("opt_adv", torch.optim.Adam(self.adversary.parameters(), lr=lr_adv,
                                                                          betas=tuple(betas)),
                                              schedule=schedule, grad_clip=args["grad_clip"])
        self.config = args

    def run_steps_schedule(self, step: int) -> float:
        """A schedule: ``steps_factor`` over the run's ``total_steps``."""
        return steps_factor(step, self.total_steps)

    # -- the prior, the encoder, the decoder ----------------------------------------------------------
    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws of the prior N(0, prior_scale² I_d): (n, latent_dim), from ``generator`` (default: the
        model's sampling stream). ``n``: an int >= 1 (ValueError otherwise)."""
        n = self._count("n", n, low=1)
        gen = self._sampling_generator(generator)
        return self.prior_scale * torch.randn(n, self.latent_dim, generator=gen, device=gen.device).to(self.device)

    def own_source(self) -> Callable[..., torch.Tensor]:
        return self.prior_sample

    def expected_shapes(self):
        return (self.data_shape,)

    def _codes(self, x: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(z, log-variance or None) of x: the deterministic code, or a reparametrised draw (with a
        generator) / the mean (without) of a Gaussian encoder."""
        out = self.encoder(x)
        if tuple(out.shape) != (x.shape[0], 2 * self.latent_dim if self.gaussian_encoder else self.latent_dim):
            raise RuntimeError(f"the encoder returned shape {tuple(out.shape)} for {x.shape[0]} inputs")
        if not self.gaussian_encoder:
            return out, None
        mean, logvar = out.chunk(2, dim=1)
        logvar = logvar.clamp(*LOGVAR_RANGE)
        if generator is None:
            return mean, logvar
        eps = shard.randn(mean.shape, generator=generator, device=generator.device).to(mean.device)
        return mean + torch.exp(0.5 * logvar) * eps, logvar

    def _eval(self) -> Any:
        """Encoder and decoder in eval mode (BatchNorm's running statistics), gradients off."""
        stack = contextlib.ExitStack()
        for m in (self.encoder, self.decoder):
            stack.enter_context(frozen(m, eval_mode=True))
        return stack

    @torch.no_grad()
    def encode(self, x: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Codes of x (n, *data_shape) -> (n, latent_dim): E(x), or for a Gaussian encoder its mean
        (``sample=True``: a draw from Q(z|x), from ``generator`` or the sampling stream). ``x``: a Tensor,
        array or list, cast to float32 on the model's device; an empty, non-finite or non-numeric x
        raises ValueError/TypeError naming x."""
        x = self._as_input("x", x, self.data_shape)
        if not isinstance(sample, bool):
            raise ValueError(f"sample must be True or False, got {sample!r}")
        gen = self._sampling_generator(generator) if sample else None
        with self._eval():
            return self._codes(x, gen)[0]

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

    def transport(self, x: torch.Tensor, generator: torch.Generator | None = None,
                  batch_size: int | None = None) -> torch.Tensor:
        """The map from the prior to the data: ``decode(x)`` for prior points x (n, latent_dim) (checked
        as ``decode`` checks z, the errors naming x), at most ``batch_size`` x per decoder call (None:
        all at once; deterministic, so every batch size gives the same images up to float rounding)."""
        x = self._as_input("x", x, (self.latent_dim,))
        return self._decode_batches(x, check_batch_size(batch_size))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, batch_size: int | None = None) -> torch.Tensor:
        """n generated samples G(z), z ~ P_Z: (n, *data_shape), at most ``batch_size`` per decoder call
        (None: all at once; ValueError naming ``batch_size`` unless None or an int >= 1). The z are
        drawn in one call (n·latent_dim numbers, few beside the images), so every batch size decodes
        the same z."""
        batch_size = check_batch_size(batch_size)
        return self._decode_batches(self.prior_sample(n, generator), batch_size)

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

    def run_arrays(self, x: torch.Tensor, generator: torch.Generator, y: torch.Tensor | None = None):
        """``y_hat``: decoded prior points x; with data y, also ``y_rec``: their reconstructions."""
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
        e = truncated_normal(x.shape, NOISE_BOUND, self.generator, self.device)
        return x + self.input_noise * e.to(x.dtype)

    def train_step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One auto-encoder update on a data batch x (n, *data_shape) (WAE-GAN: first one adversary
        update on the same codes). Returns detached 0-d tensors; nothing is read on the host."""
        x = self._as_batch("x", x, self.data_shape)
        n = x.shape[0]
        if shard.current().global_rows(n) < 2:
            raise ValueError("a WAE step needs batches of at least 2 samples (the penalty compares two samples)")
        prior = self.prior_scale * shard.randn((n, self.latent_dim), generator=self.generator, device=self.device)
        codes, logvar = self._codes(self._noisy(x), self.generator)
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

    def pretrain_encoder(self, data: Any) -> dict[str, float]:
        """Encoder pre-training (wae.md §6): Adam steps (through the shared ``update``) on
        ‖mean(z̃) − mean(z)‖² + ‖cov(z̃) − cov(z)‖²_F between encoded data batches of ``pretrain_batch``
        and prior draws, until ``pretrain_steps`` or the loss < 0.1. Returns (and keeps in
        ``pretrain_result``, saved with the model) the steps taken and the last loss."""
        draws = torch.Generator().manual_seed(derived_seed(self.seed, 4))  # the data batches (CPU)
        steps, loss = 0, float("nan")
        for steps in range(1, self.pretrain_steps + 1):
            x = self._batch_of(data, self.pretrain_batch, draws)
            codes = self._codes(x, self.generator)[0]
            prior = self.prior_scale * torch.randn(codes.shape, generator=self.generator, device=self.device)
            mismatch = ((codes.mean(0) - prior.mean(0)).pow(2).sum()
                        + (torch.cov(codes.T) - torch.cov(prior.T)).pow(2).sum())
            self.update("opt_pretrain", mismatch)
            loss = mismatch.item()
            if loss < PRETRAIN_STOP:
                break
        self.pretrained = True
        self.pretrain_result = {"pretrain_steps": steps, "pretrain_loss": loss}
        return self.pretrain_result

    def _batch_of(self, data: Any, n: int, generator: torch.Generator) -> torch.Tensor:
        """n samples of the data (a Tensor: rows drawn with replacement; a sampler: called)."""
        if isinstance(data, torch.Tensor):
            batch = data[torch.randint(0, data.shape[0], (n,), generator=generator).to(data.device)]
        else:
            batch = draw(data, n, generator)
        return self._as_batch("data", batch, self.data_shape)

    def extra_state(self) -> dict[str, Any]:
        return {"pretrained": self.pretrained, "pretrain_result": dict(self.pretrain_result)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.pretrained = bool(state.get("pretrained", False))
        self.pretrain_result = dict(state.get("pretrain_result", {}))
