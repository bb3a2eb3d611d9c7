"""The full-size GPU configs (configs/gpu_*.yaml) and their networks (otgen.nn.unet), on the CPU:
each config builds, each big network does one forward/backward at batch 2 (one train_step of the
solver), and the networks' shape checks, argument errors, residual identity and double backward."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from otgen import config as cfgmod
from otgen.models import get_solver
from otgen.nn import build
from otgen.nn.unet import ResNetCritic, ResUNetGenerator, VanillaEnergyNet

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_config(name: str, **overrides):
    cfg = cfgmod.validate(cfgmod.load_yaml(ROOT / "configs" / f"{name}.yaml"))
    sides = get_solver(cfg["model"]["name"]).data_sides
    source, target, pair = cfgmod.build_data(cfg["data"], sides)
    return cfg, source, target, cfgmod.build_model(cfg["model"], pair, **overrides)


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def assert_updated(module: torch.nn.Module, before: list[torch.Tensor], name: str) -> None:
    after = list(module.parameters())
    assert all(torch.isfinite(p).all() for p in after), name
    changed = sum(not torch.equal(a, b) for a, b in zip(after, before))
    assert changed >= 0.9 * len(after), f"{name}: only {changed} of {len(after)} tensors moved"


# ----------------------------------------------------------------------------- the configs


@pytest.mark.parametrize("name", ["gpu_uotm_32", "gpu_sjko_32"])
def test_semidual_gpu_config_trains_one_step_at_batch_2(name):
    phases = {"first_iters": 1, "instance_noise": 0.03125}  # the config's instance noise, a phase 0 of one step
    overrides = {"n_phases": 2, "phases": phases} if name == "gpu_sjko_32" else {}
    cfg, source, target, model = build_config(name, **overrides)
    assert cfg["model"]["generator"]["name"] == "unet" and cfg["model"]["potential"]["name"] == "resnet"
    gen, critic = model.generator_net, model.potential
    assert isinstance(gen, ResUNetGenerator) and isinstance(critic, ResNetCritic)
    assert 40e6 < n_params(gen) < 50e6  # DDGAN's CIFAR-10 NCSN++ size
    assert 10e6 < n_params(critic) < 15e6
    assert gen.noise_shape == (100,) and model.event_shape == (3, 32, 32)
    assert isinstance(critic.final[0], torch.nn.LeakyReLU)  # as the config names it

    model.prepare(source, target, n_iters=model.run_steps(1))
    g = torch.Generator().manual_seed(0)
    x, y = source(2, generator=g), target(2, generator=g)
    assert x.shape == y.shape == (2, 3, 32, 32)
    before_g, before_v = snapshot(gen), snapshot(critic)
    stats = model.train_step(x, y)  # critic loss with R1 (double backward), then the generator
    assert all(torch.isfinite(torch.as_tensor(v)) for v in stats.values()), stats
    assert_updated(gen, before_g, "generator")
    assert_updated(critic, before_v, "critic")
    out = model.transport(x)
    assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1  # tanh output
    if name == "gpu_sjko_32":
        assert len(model.phase_states) == 1  # phase 0 (one step here) ended and was kept


def test_egnot_pixel_gpu_config_trains_one_step_at_batch_2():
    sampler = {"name": "langevin", "steps": 2, "step_size": 1e-4, "init": "source", "sample_steps": 5000,
               "chains": {"name": "persistent", "pool_size": 4}}
    cfg, source, target, model = build_config("gpu_egnot_pixel_32", sampler=sampler)
    assert cfg["model"]["sampler"] == {**sampler, "steps": 500, "chains": "persistent"}
    assert cfg["model"]["eps"] == 0.01
    f = model.potential
    assert isinstance(f, VanillaEnergyNet) and n_params(f) == 693_569 and f.scale == 200.0
    assert isinstance(f.net[1], torch.nn.LeakyReLU) and f.net[1].negative_slope == 0.05
    model.prepare(source, target, n_iters=1)
    g = torch.Generator().manual_seed(0)
    x, y = source(2, generator=g), target(2, generator=g)
    assert x.shape == y.shape == (2, 3, 32, 32)
    before = snapshot(f)
    stats = model.train_step(x, y)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in stats.values()), stats
    assert not torch.equal(f.net[-1].weight, before[-2])  # the zero-initialised last conv moved
    assert all(torch.isfinite(p).all() for p in f.parameters())


# ----------------------------------------------------------------------------- the networks


def small_unet(**kw) -> ResUNetGenerator:
    args = dict(noise_dim=4, width=8, channel_mult=(1, 2), n_res=1, attn_resolutions=(8,), z_embed_dim=16, n_mlp=2)
    return ResUNetGenerator((3, 16, 16), (3, 16, 16), **{**args, **kw})


def test_unet_shapes_gradients_and_shape_errors():
    torch.manual_seed(0)
    net = small_unet()
    x, z = torch.randn(2, 3, 16, 16), torch.randn(2, 4)
    y = net(x, z)
    assert y.shape == (2, 3, 16, 16) and y.abs().max() <= 1 and net.noise_shape == (4,)
    y.square().sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert net.mapping[0].weight.grad.abs().sum() > 0  # z reaches the output through the style
    assert not torch.allclose(net(x, z), net(x, torch.randn(2, 4)))
    with pytest.raises(ValueError, match=r"z must have shape \(2, 4\)"):
        net(x)
    with pytest.raises(ValueError, match=r"z must have shape \(2, 4\)"):
        net(x, torch.randn(3, 4))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 3, 16, 16\)"):
        net(torch.randn(2, 1, 16, 16), z)
    det = small_unet(noise_dim=0)
    assert det.noise_shape == () and det(x).shape == (2, 3, 16, 16)
    grey = ResUNetGenerator((1, 16, 16), (3, 16, 16), noise_dim=0, width=8, channel_mult=(1,), n_res=1,
                            attn_resolutions=())
    assert grey(torch.randn(2, 1, 16, 16)).shape == (2, 3, 16, 16)


def test_unet_residual_is_the_identity_at_init():
    torch.manual_seed(0)
    net = small_unet(residual=True)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(net(x, torch.randn(2, 4)), x)
    with pytest.raises(ValueError, match="residual=True needs equal source and event shapes"):
        ResUNetGenerator((1, 16, 16), (3, 16, 16), residual=True)


@pytest.mark.parametrize("kwargs, message", [
    ({"channel_mult": ()}, "channel_mult must be a non-empty list of ints >= 1, got ()"),
    ({"channel_mult": (1, 0)}, "channel_mult must be"),
    ({"attn_resolutions": (5,)}, r"attn_resolutions must be a list of level sides H/2\^i out of \[16, 8\], got \(5,\)"),
    ({"width": 0}, "width must be an int >= 1, got 0"),
    ({"n_res": 0}, "n_res must be an int >= 1, got 0"),
    ({"noise_dim": -1}, "noise_dim must be an int >= 0, got -1"),
    ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\), got 1.0"),
    ({"n_mlp": 0}, "n_mlp must be an int >= 1"),
    ({"z_embed_dim": 0}, "z_embed_dim must be an int >= 1"),
    ({"channel_mult": (1, 1, 1, 1, 1, 1)}, r"multiples of 2\^\(len\(channel_mult\) − 1\) = 32"),
])
def test_unet_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_unet(**kwargs)


def test_unet_needs_an_image_source_of_the_same_size():
    with pytest.raises(ValueError, match="source_shape must be .* the H, W of event_shape"):
        ResUNetGenerator((3, 8, 8), (3, 16, 16))
    with pytest.raises(ValueError, match="needs an image source_shape"):
        build("generator", "unet", context={"source_shape": (16,), "event_shape": (3, 16, 16), "noise_dim": 2})


def test_resnet_critic_double_backward_for_r1():
    torch.manual_seed(0)
    v = ResNetCritic((3, 16, 16), width=8, channel_mult=(1, 2, 2))
    y = torch.randn(2, 3, 16, 16, requires_grad=True)
    out = v(y)
    assert out.shape == (2,)
    (grad,) = torch.autograd.grad(out.sum(), y, create_graph=True)
    penalty = grad.flatten(1).square().sum(1).mean()
    penalty.backward()
    # every weight gets a gradient of the penalty (biases need not: ∇_y v does not depend on the
    # last bias, and only piecewise on the others)
    weights = [p for name, p in v.named_parameters() if name.endswith("weight")]
    assert all(w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0 for w in weights)
    assert all(torch.isfinite(p.grad).all() for p in v.parameters() if p.grad is not None)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in v.modules())
    # per-sample: v(y_0) does not depend on the rest of the batch
    assert torch.allclose(v(y[:1]), out[:1], atol=1e-6)
    assert torch.equal(ResNetCritic((3, 16, 16), width=4, zero_init=True)(y), torch.zeros(2))
    with pytest.raises(ValueError, match=r"y must have shape \(n, 3, 16, 16\)"):
        v(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="activation must be one of"):
        ResNetCritic((3, 16, 16), activation="swish")
    with pytest.raises(ValueError, match="event_shape must have H and W multiples of 2"):
        ResNetCritic((3, 12, 12), channel_mult=(1, 2, 2, 2))


def test_vanilla_energy_net():
    torch.manual_seed(0)
    f = VanillaEnergyNet((3, 32, 32), zero_init=False, scale=2.0)
    convs = [m for m in f.net if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [3, 4, 4, 4, 4]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256, 1]
    y = torch.randn(2, 3, 32, 32, requires_grad=True)
    out = f(y)
    assert out.shape == (2,)
    assert torch.allclose(out, 2.0 * f.net(y).reshape(2))
    (grad,) = torch.autograd.grad(out.sum(), y)
    assert grad.shape == y.shape and torch.isfinite(grad).all()
    assert torch.equal(VanillaEnergyNet((3, 32, 32))(y), torch.zeros(2))  # zero_init: f ≡ 0
    assert VanillaEnergyNet((1, 64, 48), width=4)(torch.randn(2, 1, 64, 48)).shape == (2,)
    for kwargs, message in [({"event_shape": (3, 16, 16)}, "H, W multiples of 8 and >= 32"),
                            ({"slope": 1.5}, r"slope must be a number in \[0, 1\), got 1.5"),
                            ({"scale": 0.0}, "scale must be a finite nonzero number, got 0.0"),
                            ({"width": -2}, "width must be an int >= 1, got -2")]:
        with pytest.raises(ValueError, match=message):
            VanillaEnergyNet(**{"event_shape": (3, 32, 32), **kwargs})


def test_registry_keeps_the_published_activation_over_the_solver_default():
    ctx = {"event_shape": (3, 32, 32)}
    solver_defaults = {"activation": "silu", "hidden": (8,), "zero_init": False}
    v = build("potential", {"name": "resnet", "width": 4}, context=ctx, defaults=solver_defaults)
    assert isinstance(v.final[0], torch.nn.LeakyReLU)
    v = build("potential", {"name": "resnet", "width": 4, "activation": "silu"}, context=ctx, defaults=solver_defaults)
    assert isinstance(v.final[0], torch.nn.SiLU)
    f = build("potential", "vanilla", context=ctx, defaults={**solver_defaults, "zero_init": True})
    assert isinstance(f.net[1], torch.nn.LeakyReLU) and f.net[1].negative_slope == 0.05
    with pytest.raises(ValueError, match="unknown key 'activation' for the generator network 'unet'"):
        build("generator", {"name": "unet", "activation": "relu"},
              context={"source_shape": (3, 16, 16), "event_shape": (3, 16, 16), "noise_dim": 2})
