"""WAE / POT: the MMD estimators against closed forms, the linear-Gaussian optimum, and the solver's
API, state and errors (tiny image runs; the digits figures are in benchmarks/wae_digits.py)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

import otgen
from otgen import groundtruth, kernels, metrics
from otgen.distributions import Gaussian
from otgen.distributions.images import digits
from otgen.models import from_config


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- the MMD estimators


def test_imq_u_statistic_is_unbiased_between_equal_laws():
    """Mean over 300 draws of the multi-scale IMQ MMD²_U between two samples of one law is 0 within
    3 standard errors (a V-statistic would be biased upwards by about 2·k(0)/n per kernel)."""
    g = gen(0)
    c = 2.0 * 4
    values = torch.stack([kernels.imq_mmd2(torch.randn(64, 4, generator=g), torch.randn(64, 4, generator=g), c)
                          for _ in range(300)])
    mean, se = values.mean().item(), values.std().item() / math.sqrt(len(values))
    assert abs(mean) < 3 * se, (mean, se)
    assert (values < 0).any()  # unbiased, so single draws go below 0


def test_imq_mmd_detects_a_shift_and_sums_its_scales():
    g = gen(1)
    x, y = torch.randn(256, 3, generator=g), torch.randn(256, 3, generator=g) + 0.5
    single = [kernels.imq_mmd2(x, y, 6.0 * s, scales=(1.0,)).item() for s in kernels.WAE_SCALES]
    assert kernels.imq_mmd2(x, y, 6.0).item() == pytest.approx(sum(single), rel=1e-5)
    assert min(single) > 0.0


def test_rbf_mmd_matches_the_gaussian_closed_form():
    """The RBF MMD²_U between N(m1, S1) and N(m2, S2) samples averages to groundtruth.gaussian_rbf_mmd2
    (groundtruth.md §2.5) within 3 standard errors of the mean over 40 draws."""
    m1, m2 = np.zeros(2), np.array([0.8, -0.3])
    s1, s2 = np.array([[1.0, 0.3], [0.3, 0.5]]), np.array([[0.6, 0.0], [0.0, 1.2]])
    exact = groundtruth.gaussian_rbf_mmd2(m1, s1, m2, s2, bandwidth=1.3)
    p, q = Gaussian(m1, s1), Gaussian(m2, s2)
    g = gen(2)
    values = np.array([kernels.rbf_mmd2(p(400, generator=g).double(), q(400, generator=g).double(), 1.3).item()
                       for _ in range(40)])
    se = values.std() / math.sqrt(len(values))
    assert abs(values.mean() - exact) < 3 * se, (values.mean(), exact, se)
    assert abs(values.mean() - exact) < 0.05 * exact
    x, y = p(400, generator=g), q(400, generator=g)  # metrics.mmd is the same estimator in float64
    assert kernels.rbf_mmd2(x.double(), y.double(), 1.3).item() == pytest.approx(metrics.mmd(x, y, bandwidth=1.3),
                                                                                rel=1e-9)


def test_mmd_estimators_refuse_bad_input():
    with pytest.raises(ValueError, match="at least 2 points"):
        kernels.imq_mmd2(torch.randn(1, 2), torch.randn(5, 2), 1.0)
    with pytest.raises(ValueError, match="one D"):
        kernels.rbf_mmd2(torch.randn(4, 2), torch.randn(5, 3), 1.0)
    with pytest.raises(ValueError, match="C must be > 0"):
        kernels.imq_mmd2(torch.randn(4, 2), torch.randn(5, 2), 0.0)


# ----------------------------------------------------------------------------- linear-Gaussian optimum

EIGENVALUES = np.array([4.0, 2.5, 0.6, 0.4, 0.3, 0.2])


def linear_gaussian_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    cov = basis @ np.diag(EIGENVALUES) @ basis.T
    return Gaussian(np.zeros(6), cov), groundtruth.linear_wae_optimum(cov, latent_dim=2)


def objective(model, data, n=4000, seed=5):
    """rec_scale · E‖X − G(E(X))‖² (exact, from the linear weights) + lam · IMQ-MMD²(Q_Z, P_Z) (U-statistic
    on n fresh draws: its error at n = 4000 is far below the 5 % tolerance)."""
    opt = linear_gaussian_problem()[1]
    enc, dec = model.encoder.linear.weight.detach().double(), model.decoder.linear.weight.detach().double()
    rec = opt.reconstruction_cost(dec.numpy(), enc.numpy())
    g = gen(seed)
    codes = model.encode(data(n, generator=g)).double()
    penalty = kernels.imq_mmd2(codes, torch.randn(n, 2, generator=g, dtype=torch.float64), model.imq_c).item()
    return model.rec_scale * rec + model.lam * penalty, rec, penalty


def test_linear_wae_reaches_the_closed_form_optimum():
    """Linear encoder and decoder on N(0, Sigma) in R^6 with d = 2: the WAE-MMD objective reaches the
    closed form rec_scale · Σ_{i>2} λ_i (penalty 0 at the optimum, groundtruth.md §2.6) within 5 %, the
    decoder spans the top-2 eigenspace and the aggregate posterior matches the prior."""
    data, opt = linear_gaussian_problem()
    model = otgen.WAE(data_shape=(6,), latent_dim=2, penalty="mmd", lam=10.0, rec_scale=1.0,
                      encoder="linear", decoder="linear", optim={"lr": 3e-3, "schedule": "cosine"}, seed=0)
    model.fit(data, n_iters=1500, batch_size=256, progress=False)
    value, rec, penalty = objective(model, data)
    assert value == pytest.approx(opt.value, rel=0.05), (value, rec, penalty, opt.value)
    assert rec == pytest.approx(opt.value, rel=0.05)
    assert max(opt.principal_angles_deg(model.decoder.linear.weight.detach().numpy())) < 5.0
    latent = opt.latent_cov(model.encoder.linear.weight.detach().numpy())
    assert metrics.bw2(np.zeros(2), latent, np.zeros(2), np.eye(2)) < 0.01
    # an untrained pair is far from it: the test can fail
    fresh = otgen.WAE(data_shape=(6,), latent_dim=2, lam=10.0, rec_scale=1.0, encoder="linear", decoder="linear")
    assert objective(fresh, data)[0] > 1.5 * opt.value


# ----------------------------------------------------------------------------- images, API, state


@pytest.fixture(scope="module")
def tiny_digits():
    return digits(size=8, split="train")


CONV8 = {"name": "conv", "width": 8}


def tiny(penalty="mmd", **kw):
    """A WAE on 8×8 grey images (width-8 conv networks); ``penalty="gan"``: a 2 × 32 adversary, and
    ``penalty_options`` go to the penalty's spec."""
    spec = {"name": penalty, **kw.pop("penalty_options", {})}
    if penalty == "gan":
        spec.setdefault("adversary", {"name": "mlp", "hidden": [32, 32]})
    return otgen.WAE(data_shape=(1, 8, 8), latent_dim=4, penalty=spec, encoder=CONV8, decoder=CONV8, **kw)


def test_wae_on_tiny_digits_beats_the_mean_image_and_keeps_its_shapes(tiny_digits):
    model = tiny(optim={"lr": 2e-3})
    model.fit(tiny_digits, n_iters=300, batch_size=64, progress=False)
    test = digits(size=8, split="test").images
    err = ((model.reconstruct(test) - test) ** 2).flatten(1).sum(1).mean().item()
    mean_image = ((tiny_digits.images.mean(0, keepdim=True) - test) ** 2).flatten(1).sum(1).mean().item()
    assert err < 0.6 * mean_image, (err, mean_image)
    assert model.sample(model.sample_prior(5)).shape == (5, 1, 1, 8, 8)
    assert model.transport(model.sample_prior(5)).abs().max() <= 1.0  # tanh output, the data's [−1, 1]
    assert model.encode(test[:3]).shape == (3, 4)
    assert model.interpolate(test[:2], test[2:4], n_steps=4).shape == (2, 4, 1, 8, 8)
    path = model.interpolate(test[:1], test[1:2], n_steps=3)[0]
    assert torch.allclose(path[0], model.reconstruct(test[:1])[0], atol=1e-5)
    assert torch.allclose(path[-1], model.reconstruct(test[1:2])[0], atol=1e-5)


def test_sample_is_reproducible_and_transport_is_the_decoder(tiny_digits):
    """The one contract of every solver: x are prior codes (``sample_prior`` / ``own_source``),
    ``transport(z)`` = ``decode(z)``, ``sample(z, k)`` (n, k, *data_shape) its k equal copies."""
    model = tiny()
    z = model.sample_prior(4, rng=gen(3))
    assert z.shape == (4, 4) and torch.equal(z, model.sample_prior(4, rng=gen(3)))
    assert torch.equal(model.own_source()(4, generator=gen(3)), z)
    assert torch.equal(model.transport(z), model.decode(z))
    assert torch.allclose(model.transport(z, batch_size=3, rng=gen(0)), model.decode(z), atol=1e-6)  # rounding
    draws = model.sample(z, 3, batch_size=2)
    assert draws.shape == (4, 3, 1, 8, 8)
    assert all(torch.equal(draws[:, k], model.transport(z, batch_size=2)) for k in range(3))
    own = model.sample_prior(2)  # the model's own sampling stream, never the training one
    training = model.rng.get_state()
    assert not torch.equal(own, model.sample_prior(2)) and torch.equal(model.rng.get_state(), training)


@pytest.mark.parametrize("penalty,extra", [("mmd", {"encoder_type": "gaussian"}),
                                           ("gan", {"penalty_options": {"prior_trick": True}}),
                                           ("mmd", {"penalty_options": {"kernel": "rbf"}, "input_noise": 0.01})])
def test_save_load_gives_the_same_model(tmp_path, tiny_digits, penalty, extra):
    model = tiny(penalty, **extra)
    model.fit(tiny_digits, n_iters=5, batch_size=16, progress=False)
    model.save(tmp_path / "wae.pt")
    back = otgen.load(tmp_path / "wae.pt")
    x = tiny_digits.images[:6]
    assert torch.equal(back.reconstruct(x), model.reconstruct(x))
    z = model.sample_prior(3, rng=gen(1))
    assert torch.equal(back.sample(z), model.sample(z))
    assert back.config == model.saveable_config()


def assert_same_state(a, b, where="state"):
    """Two state dicts equal entry by entry (tensors exactly)."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            assert_same_state(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            assert_same_state(u, v, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), where  # NaN == NaN here


def test_resumed_run_equals_an_uninterrupted_one(tmp_path, tiny_digits):
    """Every piece of state (encoder with its BatchNorm buffers, decoder, adversary, both optimisers,
    the random streams, the pre-training record) of a run stopped at step 6 and resumed to 12 equals
    that of a run of 12 steps."""
    kw = {"input_noise": 0.05, "encoder_type": "gaussian", "pretrain": {"steps": 3, "batch": 32}}
    straight = tiny("gan", **kw).fit(tiny_digits, n_iters=12, batch_size=16, progress=False, checkpoint_every=6)
    first = tiny("gan", **kw).fit(tiny_digits, n_iters=6, batch_size=16, progress=False, out=tmp_path / "run")
    resumed = otgen.load(tmp_path / "run" / "model.pt")
    resumed.fit(tiny_digits, n_iters=12, batch_size=16, progress=False, out=tmp_path / "run", resume=True)
    assert first.step == 6 and resumed.step == 12
    assert_same_state(straight.state_dict(), resumed.state_dict())
    assert resumed.pretrain_result["pretrain_steps"] == 3  # pre-trained once, before step 1


def test_gan_losses_against_an_independent_computation(tiny_digits):
    """loss_adv = lam·[BCE(D(z), 1) + BCE(D(E(x)), 0)] with the adversary before its step and
    penalty = BCE(D(E(x)), 1) (non-saturating) with the adversary after it and the encoder before the
    auto-encoder step; the prior trick adds log N(z; 0, I) to the logit."""
    model = tiny("gan", penalty_options={"prior_trick": True})
    x = tiny_digits.images[:16]
    z = torch.randn(5, 4)
    assert torch.allclose(model.adversary_logits(z),
                          model.adversary(z) - 0.5 * (z ** 2).sum(1) - 2.0 * math.log(2 * math.pi), atol=1e-5)
    prior_stream = torch.Generator().set_state(model.rng.get_state())
    encoder, adversary = copy.deepcopy(model.encoder), copy.deepcopy(model.adversary)
    stats = model.train_step(x)
    prior = torch.randn(16, 4, generator=prior_stream)  # the step's first draw
    log_p = -0.5 * (prior ** 2).sum(1) - 2.0 * math.log(2 * math.pi)
    with torch.no_grad():
        codes = encoder(x)
        log_p_codes = -0.5 * (codes ** 2).sum(1) - 2.0 * math.log(2 * math.pi)
        softplus = torch.nn.functional.softplus  # BCE(l, 1) = softplus(−l), BCE(l, 0) = softplus(l)
        loss_adv = model.lam * (softplus(-(adversary(prior) + log_p)).mean()
                                + softplus(adversary(codes) + log_p_codes).mean())
        penalty = softplus(-model.adversary_logits(codes)).mean()
    assert stats["loss_adv"] == pytest.approx(loss_adv.item(), rel=1e-5)
    assert stats["penalty"] == pytest.approx(penalty.item(), rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(adversary.parameters(), model.adversary.parameters()))


def test_codes_are_batch_independent_and_noise_free_outside_training(tiny_digits):
    """encode / reconstruct use BatchNorm's running statistics (a sample's code does not depend on the
    rest of its batch), restore train mode, and a Gaussian encoder's mean carries no noise."""
    model = tiny(encoder_type="gaussian", input_noise=0.05)
    model.fit(tiny_digits, n_iters=5, batch_size=16, progress=False)
    x = tiny_digits.images[:8]
    assert torch.allclose(model.encode(x)[:1], model.encode(x[:1]), atol=1e-6)
    assert torch.equal(model.reconstruct(x), model.reconstruct(x))
    assert model.encoder.training and model.decoder.training
    drawn = model.encode(x, sample=True, rng=gen(0))
    assert not torch.allclose(drawn, model.encode(x)) and torch.equal(drawn, model.encode(x, sample=True, rng=gen(0)))


def test_encoder_pretraining_matches_the_prior_moments(tiny_digits):
    model = tiny(pretrain={"steps": 200, "batch": 256}, optim={"lr": 3e-3})
    model.fit(tiny_digits, n_iters=1, batch_size=16, progress=False)
    result = model.pretrain_result
    assert model.pretrained and (result["pretrain_steps"] < 200) == (result["pretrain_loss"] < 0.1)  # the stop rule
    codes = model.encode(tiny_digits.images)
    fresh = tiny().encode(tiny_digits.images)

    def mismatch(c):
        return (c.mean(0).pow(2).sum() + (torch.cov(c.T) - torch.eye(4)).pow(2).sum()).item()

    assert mismatch(codes) < 0.3 * mismatch(fresh)


def test_config_and_bad_input_are_refused_before_work(tiny_digits):
    model = from_config("WAE", {"data_shape": [1, 8, 8], "latent_dim": 4, "encoder": CONV8, "decoder": CONV8,
                                "penalty": "gan"})
    assert model.adversary is not None
    with pytest.raises(ValueError, match="data samples have shape \\(1, 16, 16\\) but the model expects data_shape"):
        tiny().fit(digits(size=16), n_iters=2, batch_size=4, progress=False)
    with pytest.raises(ValueError, match="penalty must be one of \\['gan', 'mmd'\\], got 'kl'"):
        otgen.WAE(data_shape=(1, 8, 8), penalty="kl")
    with pytest.raises(ValueError, match="lam"):
        otgen.WAE(data_shape=(1, 8, 8), lam=-1.0)
    with pytest.raises(ValueError, match="unknown key penalty.prior_trick for MMD"):
        otgen.WAE(data_shape=(1, 8, 8), penalty={"name": "mmd", "prior_trick": True})
    with pytest.raises(ValueError, match="unknown key penalty.kernel.bandwidth for IMQ"):
        otgen.WAE(data_shape=(1, 8, 8), penalty={"name": "mmd", "kernel": {"name": "imq", "bandwidth": 1.0}})
    with pytest.raises(ValueError, match="penalty.kernel.scales must be positive numbers"):
        otgen.WAE(data_shape=(1, 8, 8), penalty={"name": "mmd", "kernel": {"name": "imq", "scales": []}})
    with pytest.raises(ValueError, match="data_shape \\(1, 10, 10\\) does not fit the encoder network"):
        otgen.WAE(data_shape=(1, 10, 10))  # a conv network the shape does not fit
    with pytest.raises(ValueError, match="x must have shape \\(n, 1, 8, 8\\)"):
        tiny().encode(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="z must have shape \\(n, 4\\)"):
        tiny().decode(torch.zeros(2, 5))


# ----------------------------------------------------------------------------- the digits configs (slow)


@pytest.mark.slow
@pytest.mark.parametrize("config", ["digits_wae.yaml", "digits_wae_gan.yaml"])
def test_digits_config_covers_every_class_and_beats_the_pixel_gaussian(tmp_path, config):
    """The shipped configs as ``otgen train`` runs them (about 6–7 min each on 2 cores): 1000 samples
    put >= 4 % in each of the 10 classes, and their digits-FD against the held-out digits is below
    half that of a Gaussian fitted to the training pixels (728: BENCHMARKS.md)."""
    import json
    from pathlib import Path

    from otgen.cli import main
    from otgen.image_metrics import digits_evaluator

    path = Path(__file__).resolve().parents[1] / "configs" / config
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 0
    scores = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert scores["samples_coverage"] == 10 and min(scores["samples_histogram"]) >= 0.04
    train, test = digits(size=16).images, digits(size=16, split="test").images
    flat = train.flatten(1).double()
    gauss = torch.distributions.MultivariateNormal(flat.mean(0), torch.cov(flat.T) + 1e-4 * torch.eye(256))
    torch.manual_seed(0)
    pixels = gauss.sample((1000,)).float().clamp(-1, 1).reshape(1000, 1, 16, 16)
    assert scores["samples_fd"] < 0.5 * digits_evaluator().frechet_distance(pixels, test)
