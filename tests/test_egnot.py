"""EgNOT against the closed-form Gaussian entropic plan."""

import numpy as np
import pytest
import torch

import otgen
from otgen import metrics
from otgen.groundtruth import GaussianEOTPair


class ExactPotential(torch.nn.Module):
    """The optimal EgNOT potential of a Gaussian pair with ½‖x − y‖² cost.

    pi*(y|x) = N(b + M(x − a), S) with M = S/eps, so (f(y) − ½‖x − y‖²)/eps = log pi*(y|x) + const(x)
    gives f(y) = ½‖y‖² − (eps/2) yᵀS⁻¹y + eps·yᵀS⁻¹(b − M a).
    """

    def __init__(self, pair):
        super().__init__()
        eps = pair.eps
        S = pair.plan.conditional_cov
        Sinv = np.linalg.inv(S)
        M = S / eps
        lin = eps * Sinv @ (pair.target_mean - M @ pair.source_mean)
        self.register_buffer("Q", torch.tensor(np.eye(pair.dim) - eps * Sinv, dtype=torch.float32))
        self.register_buffer("lin", torch.tensor(lin, dtype=torch.float32))

    def forward(self, y):
        return 0.5 * (y @ self.Q * y).sum(1) + y @ self.lin


@pytest.mark.parametrize("sampler", ["langevin", "smc"])
@pytest.mark.parametrize("dim, eps", [(2, 0.1), (2, 1.0), (8, 1.0)])
def test_sampler_with_exact_potential_reproduces_conditional_moments(dim, eps, sampler):
    pair = GaussianEOTPair(dim=dim, eps=eps, seed=0, mean_scale=1.0)
    # the exact potential's conditional equals the closed form's: check the algebra first
    S = pair.plan.conditional_cov
    np.testing.assert_allclose(S / eps, pair.plan.cross_cov.T @ np.linalg.inv(pair.source_cov), atol=1e-8)
    if sampler == "langevin":  # MALA
        model = otgen.EgNOT(dim=dim, eps=eps, potential=ExactPotential(pair), seed=0,
                            sampler={"name": "langevin", "metropolis": True, "step_size": 0.2 * eps,
                                     "sample_steps": 200, "init": "source"})
    else:
        model = otgen.EgNOT(dim=dim, eps=eps, potential=ExactPotential(pair), sampler={"sample_steps": 200}, seed=0)
    x = pair.source(8, generator=torch.Generator().manual_seed(1))
    y = model.sample(x, 3000)
    mean, cov = pair.conditional_moments(x)
    err_mean = (y.mean(1) - mean).norm(dim=1).max()
    cov_hat = torch.stack([torch.cov(c.T) for c in y])
    rel_cov = ((cov_hat - cov).flatten(1).norm(dim=1) / cov.flatten(1).norm(dim=1)).max()
    scale = float(np.sqrt(np.trace(S) / dim))
    assert err_mean < 0.1 * scale
    assert rel_cov < 0.08
    # and the score sits at the finite-sample floor of exact draws (50 conditions x 200 draws)
    cbw = metrics.cbw2_uvp(model, pair, n_conditions=50, n_per_condition=200, seed=0)
    gen = torch.Generator().manual_seed(2)
    floor = metrics.cbw2_uvp(lambda x, k: pair.conditional_sample(x, k, generator=gen), pair,
                             n_conditions=50, n_per_condition=200, seed=0)
    assert cbw < 1.5 * floor + 0.02, (cbw, floor)


def test_log_density_gradient_is_the_gradient_of_its_value():
    """The sampler's drift must be ∇_y of u(y) = (f(y) − c(x, y)) / eps (checked against autograd)."""
    model = otgen.EgNOT(dim=3, eps=0.3, potential={"hidden": [8, 8]}, seed=0)
    with torch.no_grad():
        for p in model.potential.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x, y = torch.randn(5, 3), torch.randn(5, 3)
    value, grad = model.log_density(x)(y, True)
    y_ = y.clone().requires_grad_(True)
    u = (model.potential(y_) - 0.5 * ((x - y_) ** 2).sum(1)) / 0.3
    (expected,) = torch.autograd.grad(u.sum(), y_)
    assert torch.allclose(value, u.detach(), atol=1e-5)
    assert torch.allclose(grad, expected, atol=1e-5)


def test_ula_with_exact_potential_and_small_step_matches_the_plan():
    pair = GaussianEOTPair(dim=2, eps=1.0, seed=0, mean_scale=1.0)
    model = otgen.EgNOT(dim=2, eps=1.0, potential=ExactPotential(pair), seed=0,
                        sampler={"name": "langevin", "step_size": 0.02, "sample_steps": 600})
    x = pair.source(4, generator=torch.Generator().manual_seed(1))
    y = model.sample(x, 4000)
    mean, cov = pair.conditional_moments(x)
    assert (y.mean(1) - mean).norm(dim=1).max() < 0.08
    cov_hat = torch.stack([torch.cov(c.T) for c in y])
    assert ((cov_hat - cov).flatten(1).norm(dim=1) / cov.flatten(1).norm(dim=1)).max() < 0.08


# eps = 1.0 (about 3 minutes on one core; scores 24x below the bound) runs in `make bench`; the eps = 0.1
# case (7x below it) stays fast, and test_bench's quick suite trains EgNOT on this pair at eps = 1.0.
# The quick case scores one draw: three scoring draws of the eps = 0.1 model gave 0.16 / 0.24 / 0.20 %
# against the bound of 1.44 % (2026-12-07), a spread far inside the margin, and its tempered-SMC
# scoring took as long as the training. `make bench` scores the slow case on the median of three.
@pytest.mark.parametrize("eps, scoring_draws", [(0.1, 1), pytest.param(1.0, 3, marks=pytest.mark.slow)])
def test_egnot_trained_on_gaussian_pair_beats_conditional_mean_baseline_3x(eps, scoring_draws):
    """Default settings, 1000 iterations: the learned plan must be at least 3x closer to the exact
    plan than the best deterministic predictor (the exact conditional mean)."""
    pair = GaussianEOTPair(dim=2, eps=eps, seed=0)
    model = otgen.EgNOT(dim=2, eps=eps, seed=0)
    model.fit(pair.source, pair.target, n_iters=1000, batch_size=256, progress=False)
    scores = [metrics.cbw2_uvp(model, pair, n_conditions=50, n_per_condition=200, seed=s)
              for s in range(scoring_draws)]
    baseline = pair.baselines()["conditional_mean"]
    assert np.median(scores) <= baseline / 3, (scores, baseline)


def test_image_shaped_targets_and_a_generator_cost_keep_their_shapes():
    imgs = torch.rand(64, 1, 4, 4)
    model = otgen.EgNOT(event_shape=(1, 4, 4), eps=0.5, potential={"hidden": [16]},
                        sampler={"steps": 2, "sample_steps": 3}, seed=0)
    model.fit(imgs, imgs.flip(0), n_iters=3, batch_size=8, progress=False)
    assert model.sample(imgs[:5], 2).shape == (5, 2, 1, 4, 4)
    assert model.transport(imgs[:5]).shape == (5, 1, 4, 4)

    # energy in the latent space of a frozen generator: source in R^5, target latents in R^3
    G = torch.nn.Linear(3, 5)
    latent = otgen.EgNOT(dim=3, source_shape=(5,), eps=0.5, cost=otgen.costs.GeneratorCost(G),
                         potential={"hidden": [16]}, sampler={"steps": 2, "sample_steps": 3}, seed=0)
    assert latent.potential.quadratic == "none"  # the cost's curvature in z is unknown
    latent.fit(torch.randn(64, 5), torch.randn(64, 3), n_iters=3, batch_size=8, progress=False)
    z = latent.sample(torch.randn(4, 5), 2)
    assert z.shape == (4, 2, 3)
    assert latent.cost.decode(z.reshape(-1, 3)).shape == (8, 5)


@pytest.mark.parametrize("name, shape, spec", [
    ("mlp", (3,), {"hidden": (8, 8), "quadratic": "full"}),
    ("conv", (1, 8, 8), {"width": 4}),
    ("resnet", (1, 8, 8), {"width": 4, "channel_mult": (1, 2)}),
    ("vanilla", (1, 40, 40), {"width": 2, "scale": 3.0}),
])
def test_each_built_in_potential_names_the_parameter_that_adds_a_constant(name, shape, spec):
    net = otgen.nn.build("potential", {"name": name, **spec}, context={"event_shape": shape},
                         defaults={"zero_init": False})
    y = torch.randn(5, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = net(y)
        net.output_bias.add_(0.5)
        shift = net(y) - before
    assert torch.allclose(shift, torch.full_like(shift, 0.5 * spec.get("scale", 1.0)), atol=1e-5), shift


@pytest.mark.parametrize("energy_reg", [0.0, 0.1])
def test_the_constant_of_f_is_trained_only_with_energy_reg(energy_reg):
    """Without energy_reg the loss sees f up to a constant: the output bias gets no gradient and stays
    at 0 (Adam would rescale its rounding-noise gradient into steps of up to lr); with energy_reg
    (which pulls f toward 0 on average) it trains."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 2, generator=g), torch.randn(64, 2, generator=g) + 2.0
    model = otgen.EgNOT(dim=2, eps=0.5, potential={"hidden": [16, 16]}, sampler={"steps": 3}, energy_reg=energy_reg,
                        optim={"lr": 1e-2}, seed=0)
    model.fit(x, y, n_iters=5, batch_size=16, progress=False)
    bias = model.potential.output_bias
    assert (bias in model.optimizer.state) == bool(energy_reg)  # Adam never stepped it
    assert (bias.abs().item() > 1e-3) == bool(energy_reg)
