"""No solver's ``train_step`` reads a tensor value on the host (each read is a device sync on a GPU):
counted with ``host_reads.HostReads`` over a few steps of every solver and sampler mode on tiny
networks. Also: the metrics are detached 0-d tensors on the solver's device (or floats), and the WAE's
sync-free truncated normal has the law of scipy's ``truncnorm``."""

from __future__ import annotations

import math

import pytest
import torch
from host_reads import TORCH_DIR, HostReads
from scipy import stats

from otgen import shard
from otgen.solvers.egnot import EgNOTSolver
from otgen.solvers.sjko import SJKOSolver
from otgen.solvers.uotm import UOTMSolver
from otgen.solvers.wae import WAESolver, truncated_normal

STEPS = 4
BATCH = 8
NETS16 = {"generator": {"name": "mlp", "hidden": [16, 16]}, "potential": {"name": "mlp", "hidden": [16, 16]}}
SMALL_WAE = {"encoder": {"name": "mlp", "hidden": [16, 16]}, "decoder": {"name": "mlp", "hidden": [16, 16]}}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def egnot(sampler, **kw):
    """EgNOT with a 16-16 MLP and the ``sampler``'s options (a mapping)."""
    return EgNOTSolver(dim=2, eps=0.5, potential={"hidden": [16, 16]}, sampler=sampler, **kw)


SOLVERS = {
    # EgNOT's default: persistent weighted particles (refreshed every 2nd step here), energy_reg, EMA
    "egnot-smc-persistent": lambda: egnot({"chains": {"pool_size": 16, "refresh_every": 2, "refresh_steps": 7}},
                                          energy_reg=0.1, optim={"ema": 0.9}),
    # a fresh tempered SMC per batch, 4 levels: groups reach beta = 1 before the last ones
    "egnot-smc-fresh": lambda: egnot({"steps": 20, "chains": "fresh"}, optim={"grad_clip": 1.0}),
    "egnot-langevin-replay": lambda: egnot({"name": "langevin", "steps": 3,
                                            "chains": {"name": "replay", "size": 16, "reinit_prob": 0.3}}),
    "egnot-mala-replay": lambda: egnot({"name": "langevin", "steps": 3, "metropolis": True, "step_decay": 0.9,
                                        "score_clip": 1.0, "chains": {"name": "replay", "size": 16}}),
    "egnot-langevin-persistent": lambda: egnot({"name": "langevin", "steps": 3,
                                                "chains": {"name": "persistent", "pool_size": 16}}),
    "egnot-langevin-fresh": lambda: egnot({"name": "langevin", "steps": 3, "init": "source", "chains": "fresh"}),
    "uotm-r1-ema": lambda: UOTMSolver(dim=2, **NETS16, critic={"r1": 0.2, "n_critic": 2},
                                      optim_g={"ema": 0.9, "grad_clip": 1.0, "schedule": "cosine"},
                                      optim_v={"grad_clip": 1.0, "schedule": "cosine"}),
    "uotm-chi-softplus": lambda: UOTMSolver(dim=2, generator={**NETS16["generator"], "noise_dim": 0},
                                            potential=NETS16["potential"], phi1={"name": "chi", "alpha": 0.5},
                                            phi2="softplus"),
    # phase 0 ends (and T_0 is kept) after 2 of the counted steps; the next 2 push against T_0
    "sjko": lambda: SJKOSolver(dim=2, n_phases=2, phases={"first_iters": 2, "instance_noise": 0.1},
                               generator={**NETS16["generator"], "noise_dim": 2}, potential=NETS16["potential"],
                               critic={"r1": 0.2}, optim_g={"schedule": "phase_cosine"},
                               optim_v={"schedule": "phase_cosine"}),
    "wae-mmd-gaussian": lambda: WAESolver((6,), latent_dim=2, penalty="mmd", encoder_type="gaussian",
                                          input_noise=0.05, **SMALL_WAE, optim={"schedule": "steps"}),
    "wae-gan": lambda: WAESolver((6,), latent_dim=2, penalty={"name": "gan", "prior_trick": True,
                                                              "adversary": {"name": "mlp", "hidden": [16]}},
                                 input_noise=0.05, **SMALL_WAE),
}


def batches(model, generator):
    """One batch per data side, (BATCH, *shape) each."""
    return [torch.randn(BATCH, *shape, generator=generator) for shape in model.expected_shapes()]


def run_counted(name):
    model = SOLVERS[name]()
    g = torch.Generator().manual_seed(0)
    data = [torch.randn(32, *shape, generator=g) for shape in model.expected_shapes()]  # EgNOT's pool
    model.prepare(*data, n_iters=2 * STEPS)
    steps = [batches(model, g) for _ in range(STEPS)]
    metrics = []
    with HostReads() as reads, shard.using(shard.Shard()):  # as the loop runs a step
        for batch in steps:
            metrics.append(model.train_step(*batch))
    return model, reads, metrics


@pytest.mark.parametrize("name", list(SOLVERS))
def test_train_step_reads_nothing_on_the_host(name):
    model, reads, metrics = run_counted(name)
    assert model.step == STEPS
    # otgen's own code: no read at all (item, float(t), if t:, t[mask], nonzero, ...)
    assert reads.count("otgen") == 0, f"{name}: host reads per {STEPS} steps\n{reads.report('otgen')}"
    # inside torch only Adam's step counters are read (a CPU tensor for CUDA parameters too: no sync)
    inside = {path for (_, path, _) in reads.sites if path.startswith(TORCH_DIR)}
    assert all(path.startswith(TORCH_DIR + "optim") for path in inside), sorted(inside)
    for m in metrics:
        for key, v in m.items():
            if isinstance(v, float):
                continue
            assert isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad, (key, v)
            assert v.device == model.device and v.dtype in (torch.float32, torch.float64), (key, v)
            assert math.isfinite(float(v)), (key, v)


def test_metric_keys_and_sampler_statistics():
    """The metrics each solver reports (names as before), and sampler statistics in their ranges."""
    keys = {name: set(run_counted(name)[2][-1]) for name in
            ("egnot-smc-persistent", "egnot-smc-fresh", "egnot-mala-replay", "uotm-r1-ema", "sjko", "wae-gan")}
    assert keys["egnot-smc-persistent"] == keys["egnot-smc-fresh"] == {"loss", "f_pos", "f_neg", "accept", "ess",
                                                                       "mala_step"}
    assert keys["egnot-mala-replay"] == {"loss", "f_pos", "f_neg", "accept", "drift"}
    assert keys["uotm-r1-ema"] == {"loss_v", "v_real", "v_fake", "r1", "loss_g"}  # step 4: n_critic 2
    assert keys["sjko"] == {"loss_v", "loss_g", "cost", "phase"}
    assert keys["wae-gan"] == {"loss_adv", "loss", "rec", "penalty"}
    model, _, metrics = run_counted("sjko")
    assert [m["phase"] for m in metrics] == [0.0, 0.0, 1.0, 1.0] and len(model.phase_states) == 1
    _, _, metrics = run_counted("egnot-smc-fresh")
    for m in metrics:
        assert 0 < float(m["accept"]) <= 1 and 0 < float(m["ess"]) <= 1 and float(m["mala_step"]) > 0


def test_wae_metrics_equal_the_losses_recomputed():
    """The returned tensors are the step's values: rec and loss recomputed from the networks before
    the step (deterministic encoder, no input noise)."""
    model = WAESolver((6,), latent_dim=2, penalty="mmd", **SMALL_WAE)
    x = torch.randn(BATCH, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        rec = (x - model.decoder(model.encoder(x))).pow(2).sum(1).mean()
    out = model.train_step(x)
    assert float(out["rec"]) == pytest.approx(float(rec), rel=1e-6)
    assert float(out["loss"]) == pytest.approx(model.rec_scale * float(rec) + model.lam * float(out["penalty"]),
                                               rel=1e-6)


@pytest.mark.parametrize("keyed", [False, True])
def test_truncated_normal_has_the_law_of_scipy_truncnorm(keyed):
    """Moments (mean, variance, 4th moment) of 2·10⁶ draws within 5 standard errors of
    scipy.stats.truncnorm(−2, 2)'s, the support [−2, 2], and a Kolmogorov–Smirnov test of 2·10⁵ of
    them against its CDF (p > 0.001), from the training stream (keyed draws inside a step) and
    outside it."""
    n, bound = 2_000_000, 2.0
    g = torch.Generator().manual_seed(3)
    if keyed:
        with shard.using(shard.Shard()):
            e = truncated_normal((n,), bound, g, torch.device("cpu"))
    else:
        e = truncated_normal((n,), bound, g, torch.device("cpu"))
    assert e.dtype == torch.float64 and e.shape == (n,)
    assert float(e.min()) >= -bound and float(e.max()) <= bound
    law = stats.truncnorm(-bound, bound)
    m2, m4, m8 = (law.moment(k) for k in (2, 4, 8))
    checks = {"mean": (e.mean(), 0.0, m2), "2nd": (e.pow(2).mean(), m2, m4 - m2**2),
              "4th": (e.pow(4).mean(), m4, m8 - m4**2)}
    for what, (got, want, var) in checks.items():
        assert abs(float(got) - want) < 5 * math.sqrt(var / n), (what, float(got), want)
    assert stats.kstest(e[:200_000].numpy(), law.cdf).pvalue > 1e-3
