"""Convolutional networks (otgen.nn.conv) and the flat encoders/decoders: shapes, initialisation,
gradients, errors, registry names and one small learning check."""

import pytest
import torch
import torch.nn.functional as F

from otgen.nn import (ConvDecoder, ConvEncoder, ConvGenerator, ConvNoiseGenerator, ConvPotential, LinearDecoder,
                      LinearEncoder, MLPDecoder, MLPEncoder, build, registry)

SHAPES = [(1, 8, 8), (3, 8, 8), (1, 16, 16), (3, 16, 16), (1, 32, 32), (3, 32, 32)]


def images(n, shape, seed=0):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("shape", SHAPES)
def test_every_network_maps_the_shapes_it_documents(shape):
    x = images(3, shape)
    assert ConvEncoder(shape, 5, width=8)(x).shape == (3, 5)
    assert ConvPotential(shape, width=8)(x).shape == (3,)
    out = ConvDecoder(4, shape, width=8)(torch.randn(3, 4))
    assert out.shape == (3, *shape) and out.abs().max() <= 1
    gen = ConvGenerator(shape, shape, noise_dim=2, width=8)
    out = gen(x, torch.randn(3, 2))
    assert out.shape == (3, *shape) and out.abs().max() <= 1 and gen.noise_shape == (2,)
    gen = ConvNoiseGenerator((6,), shape, noise_dim=0, width=8)
    assert gen(torch.randn(3, 6)).shape == (3, *shape) and gen.noise_shape == ()
    assert out.dtype == torch.float32


def test_levels_the_bottom_map_and_channel_changes():
    enc = ConvEncoder((1, 32, 32), 3, width=4)
    assert enc.n_down == 3 and enc.linear.in_features == 16 * 4 * 4  # 4·2^(3−1) channels of 4×4
    dec = ConvDecoder(3, (1, 32, 32), width=4)
    assert dec.n_up == 3 and dec.map_shape == (16, 4, 4)
    assert ConvEncoder((1, 28, 28), 3, n_down=2)(torch.zeros(2, 1, 28, 28)).shape == (2, 3)  # MNIST: 7×7 map
    assert ConvDecoder(3, (1, 28, 28), n_up=2)(torch.zeros(2, 3)).shape == (2, 1, 28, 28)
    grey_to_rgb = ConvGenerator((1, 16, 16), (3, 16, 16), noise_dim=0, width=8)
    assert grey_to_rgb(images(2, (1, 16, 16))).shape == (2, 3, 16, 16)
    assert ConvDecoder(2, (1, 8, 8), output="sigmoid")(torch.randn(4, 2)).min() >= 0


def test_the_generator_output_activation_can_be_none_for_data_outside_minus_one_one():
    x = images(3, (1, 8, 8))
    torch.manual_seed(0)
    tanh = ConvGenerator((1, 8, 8), (1, 8, 8), noise_dim=0, width=8)
    torch.manual_seed(0)
    linear = ConvGenerator((1, 8, 8), (1, 8, 8), noise_dim=0, width=8, output="none")
    with torch.no_grad():
        linear.head.bias.fill_(3.0)
        tanh.head.bias.fill_(3.0)
    assert linear(x).min() > 1.5 and tanh(x).max() <= 1  # "none" reaches the far outliers' ±2
    assert torch.equal(tanh(x), torch.tanh(linear(x)))  # the same weights; the default is tanh
    with pytest.raises(ValueError, match="output must be None or 'none' with residual=True"):
        ConvGenerator((1, 8, 8), (1, 8, 8), residual=True, output="tanh")


def test_parameter_counts_are_modest_for_cpu():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ConvEncoder((1, 16, 16), 8, width=32)) < 1e6
    assert count(ConvDecoder(8, (1, 16, 16), width=32)) < 1e6
    assert count(ConvPotential((1, 16, 16))) < 1e6
    assert count(ConvGenerator((3, 32, 32), (3, 32, 32), 8)) < 2e6


# ----------------------------------------------------------------------------- initialisation, gradients, noise


def test_zero_init_potential_is_zero_and_twice_differentiable():
    y = images(4, (1, 16, 16)).requires_grad_(True)
    pot = ConvPotential((1, 16, 16), width=8)
    assert torch.equal(pot(y), torch.zeros(4))
    pot = ConvPotential((3, 16, 16), width=8, zero_init=False, norm="group")
    y = images(4, (3, 16, 16)).requires_grad_(True)
    f = pot(y)
    (grad,) = torch.autograd.grad(f.sum(), y, create_graph=True)
    assert grad.shape == y.shape and grad.abs().sum() > 0
    r1 = grad.pow(2).flatten(1).sum(1).mean()  # an R1 penalty: a gradient of ‖∇_y f‖² w.r.t. the weights
    r1.backward()
    first = pot.convs[0][0].weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0


def test_each_potential_value_depends_on_its_own_sample_only():
    pot = ConvPotential((1, 8, 8), width=8, zero_init=False, norm="group")
    y = images(5, (1, 8, 8))
    assert torch.allclose(pot(y)[:2], pot(y[:2]), atol=1e-6)


def test_residual_generator_starts_as_the_identity_exactly():
    x = images(4, (3, 16, 16))
    gen = ConvGenerator((3, 16, 16), (3, 16, 16), noise_dim=3, width=8, residual=True)
    assert torch.equal(gen(x, torch.randn(4, 3)), x)
    with pytest.raises(ValueError, match="residual=True needs equal source and event shapes"):
        ConvGenerator((1, 16, 16), (3, 16, 16), noise_dim=0, residual=True)


def test_noise_free_generators_are_deterministic_and_noise_changes_the_output():
    x = images(4, (1, 8, 8))
    gen = ConvGenerator((1, 8, 8), (1, 8, 8), noise_dim=0, width=8)
    assert gen.noise_shape == () and torch.equal(gen(x), gen(x))
    gen = ConvGenerator((1, 8, 8), (1, 8, 8), noise_dim=4, width=8)
    z1, z2 = torch.randn(4, 4), torch.randn(4, 4)
    assert torch.equal(gen(x, z1), gen(x, z1)) and (gen(x, z1) - gen(x, z2)).abs().max() > 1e-4
    gen = ConvNoiseGenerator((3,), (1, 8, 8), noise_dim=2, width=8)
    x = torch.randn(4, 3)
    assert gen.noise_shape == (2,) and (gen(x, z1[:, :2]) - gen(x, z2[:, :2])).abs().max() > 1e-4


# ----------------------------------------------------------------------------- errors


def test_wrong_batches_are_refused_naming_the_expected_shape():
    with pytest.raises(ValueError, match=r"y must have shape \(n, 1, 16, 16\), got \(2, 3, 16, 16\)"):
        ConvPotential((1, 16, 16))(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 3, 8, 8\), got \(2, 3, 16, 16\)"):
        ConvEncoder((3, 8, 8), 4)(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"z must have shape \(n, 4\), got \(2, 5\)"):
        ConvDecoder(4, (1, 8, 8))(torch.zeros(2, 5))
    gen = ConvGenerator((1, 8, 8), (1, 8, 8), noise_dim=2, width=8)
    with pytest.raises(ValueError, match=r"z must have shape \(3, 2\), got None"):
        gen(torch.zeros(3, 1, 8, 8))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 1, 8, 8\), got \(3, 64\)"):
        gen(torch.zeros(3, 64), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"z must have shape \(3, 2\), got \(4, 2\)"):
        ConvNoiseGenerator((5,), (1, 8, 8), noise_dim=2)(torch.zeros(3, 5), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 1, 8, 8\)"):
        MLPEncoder((1, 8, 8), 2)(torch.zeros(3, 64))


@pytest.mark.parametrize("shape", [(1, 10, 10), (1, 12, 12), (16, 16), (1, 4, 4), (0, 8, 8)])
def test_bad_image_shapes_are_refused_at_construction(shape):
    with pytest.raises(ValueError, match=r"event_shape must be \(C, H, W\).*got"):
        ConvEncoder(shape, 4)
    with pytest.raises(ValueError, match=r"event_shape must be \(C, H, W\)"):
        ConvPotential(shape)
    with pytest.raises(ValueError, match=r"event_shape must be \(C, H, W\)"):
        ConvDecoder(4, shape)


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match=r"H, W multiples of 2\^n_down = 8 for n_down=3, got \(1, 28, 28\)"):
        ConvEncoder((1, 28, 28), 4, n_down=3)
    with pytest.raises(ValueError, match="source_shape must be .* the H, W of event_shape"):
        ConvGenerator((1, 8, 8), (1, 16, 16), noise_dim=0)
    with pytest.raises(ValueError, match="no BatchNorm in a potential"):
        ConvPotential((1, 8, 8), norm="batch")
    with pytest.raises(ValueError, match="norm must be one of"):
        ConvEncoder((1, 8, 8), 4, norm="layer")
    with pytest.raises(ValueError, match="output must be one of"):
        ConvDecoder(4, (1, 8, 8), output="relu")
    with pytest.raises(ValueError, match="width must be an int >= 1"):
        ConvPotential((1, 8, 8), width=0)
    with pytest.raises(ValueError, match="noise_dim must be an int >= 0"):
        ConvGenerator((1, 8, 8), (1, 8, 8), noise_dim=-1)
    with pytest.raises(ValueError, match=r"source_shape must be \(d,\)"):
        ConvNoiseGenerator((2, 3), (1, 8, 8))


# ----------------------------------------------------------------------------- registry


def test_conv_networks_by_name():
    assert "conv" in registry.names("potential") and "conv" in registry.names("generator")
    assert registry.names("encoder") == registry.names("decoder") == ["conv", "linear", "mlp"]
    pot = build("potential", "conv", context={"event_shape": (1, 16, 16)})
    assert isinstance(pot, ConvPotential) and torch.equal(pot(torch.zeros(2, 1, 16, 16)), torch.zeros(2))
    # what the UOTM / S-JKO solvers pass: MLP shorthands among the defaults, only the accepted ones used
    context = {"source_shape": (1, 16, 16), "event_shape": (1, 16, 16), "noise_dim": 2}
    gen = build("generator", {"name": "conv", "width": 16}, context=context,
                defaults={"hidden": (64,), "activation": "leaky_relu"})
    assert isinstance(gen, ConvGenerator) and gen.stem[0].out_channels == 16 and gen.noise_shape == (2,)
    gen = build("generator", {"name": "conv", "residual": True}, context=context)
    x = images(3, (1, 16, 16))
    assert torch.equal(gen(x, torch.randn(3, 2)), x)
    gen = build("generator", "conv", context={"source_shape": (8,), "event_shape": (3, 8, 8), "noise_dim": 0})
    assert isinstance(gen, ConvNoiseGenerator) and gen(torch.randn(2, 8)).shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match="residual=True needs an image source_shape"):
        build("generator", {"name": "conv", "residual": True},
              context={"source_shape": (8,), "event_shape": (3, 8, 8), "noise_dim": 0})
    with pytest.raises(ValueError, match=r"unknown key 'widht' for the potential network 'conv' \(did you mean 'wid"):
        build("potential", {"name": "conv", "widht": 8}, context={"event_shape": (1, 8, 8)})
    with pytest.raises(ValueError, match=r"unknown key 'hidden' for the generator network 'conv'"):
        build("generator", {"name": "conv", "hidden": [8]}, context=context)


@pytest.mark.parametrize("name, encoder_cls, decoder_cls", [("conv", ConvEncoder, ConvDecoder),
                                                           ("mlp", MLPEncoder, MLPDecoder),
                                                           ("linear", LinearEncoder, LinearDecoder)])
def test_encoders_and_decoders_by_name(name, encoder_cls, decoder_cls):
    shape = (3, 16, 16)
    enc = build("encoder", name, context={"event_shape": shape, "out_dim": 6})
    dec = build("decoder", name, context={"latent_dim": 6, "event_shape": shape})
    assert isinstance(enc, encoder_cls) and isinstance(dec, decoder_cls)
    x = images(4, shape)
    assert enc(x).shape == (4, 6) and dec(enc(x)).shape == (4, *shape)
    with pytest.raises(ValueError, match=f"unknown key 'outptu' for the decoder network '{name}'"):
        build("decoder", {"name": name, "outptu": "tanh"}, context={"latent_dim": 6, "event_shape": shape})
    with pytest.raises(ValueError, match="'out_dim' of the encoder network .* is set by the solver"):
        build("encoder", {"name": name, "out_dim": 3}, context={"event_shape": shape, "out_dim": 6})


def test_flat_encoders_and_decoders():
    dec = build("decoder", {"name": "linear", "bias": False}, context={"latent_dim": 2, "event_shape": (5,)})
    z = torch.randn(7, 2)
    assert dec.weight.shape == (5, 2) and torch.allclose(dec(z), z @ dec.weight.T)  # x = G z
    enc = build("encoder", {"name": "mlp", "hidden": [16]}, context={"event_shape": (2, 3), "out_dim": 4})
    assert enc.mlp.net[0].in_features == 6 and enc(torch.randn(5, 2, 3)).shape == (5, 4)
    dec = build("decoder", {"name": "mlp", "output": "tanh"}, context={"latent_dim": 3, "event_shape": (1, 4, 4)})
    out = dec(100 * torch.randn(5, 3))
    assert out.shape == (5, 1, 4, 4) and out.abs().max() <= 1
    plain = build("decoder", "mlp", context={"latent_dim": 3, "event_shape": (4,)})  # output="none"
    assert plain(100 * torch.randn(9, 3)).abs().max() > 1


# ----------------------------------------------------------------------------- learning


def test_a_conv_autoencoder_learns_to_reconstruct_smooth_images():
    """64 smooth 16×16 images (bicubic upsampling of 4×4 noise: 16 degrees of freedom), a 16-dim code:
    100 Adam steps reduce the reconstruction MSE (eval mode, BatchNorm running statistics) ≥ 20×."""
    g = torch.Generator().manual_seed(0)
    x = (F.interpolate(torch.randn(64, 1, 4, 4, generator=g), size=(16, 16), mode="bicubic",
                       align_corners=False).clamp(-1, 1) * 0.9)
    torch.manual_seed(0)
    enc, dec = ConvEncoder((1, 16, 16), 16, width=16), ConvDecoder(16, (1, 16, 16), width=16)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=3e-3)
    with torch.no_grad():
        before = F.mse_loss(dec(enc(x)), x).item()
    for _ in range(100):
        loss = F.mse_loss(dec(enc(x)), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    enc.eval(), dec.eval()
    with torch.no_grad():
        after = F.mse_loss(dec(enc(x)), x).item()
    assert before / after >= 20, (before, after)


# ----------------------------------------------------------------------------- the solvers take them


def test_every_transport_solver_trains_conv_networks_named_in_a_config(tmp_path):
    import otgen

    """EgNOT (conv potential, Langevin through it), UOTM and S-JKO (conv generator and critic) on
    8×8 digits, built from config-style dicts as ``otgen train`` builds them: a few steps run, the
    outputs keep the image shape and are finite, and a saved model loads with the same outputs."""
    from otgen.distributions import digits
    from otgen.models import from_config

    shape = [1, 8, 8]
    grey = digits(size=8, classes=[0, 1])
    other = digits(size=8, classes=[7])
    configs = {
        "EgNOT": {"event_shape": shape, "eps": 1.0, "potential": {"name": "conv", "width": 8},
                  "sampler": {"steps": 3}},
        "UOTM": {"event_shape": shape, "generator": {"name": "conv", "width": 8, "noise_dim": 2},
                 "potential": {"name": "conv", "width": 8, "activation": "leaky_relu"}},
        "SJKO": {"event_shape": shape, "n_phases": 2, "generator": {"name": "conv", "width": 8, "residual": True},
                 "potential": {"name": "conv", "width": 8}},
    }
    for name, cfg in configs.items():
        model = from_config(name, cfg)
        model.fit(grey, other, n_iters=3, batch_size=8, progress=False)
        x = grey.images[:4]
        y = model.transport(x, rng=torch.Generator().manual_seed(0))
        assert y.shape == (4, 1, 8, 8) and torch.isfinite(y).all(), name
        if name != "EgNOT":  # EgNOT's transport is a Langevin run from its own chains
            model.save(tmp_path / f"{name}.pt")
            back = otgen.load(tmp_path / f"{name}.pt")
            assert torch.equal(back.transport(x, rng=torch.Generator().manual_seed(0)), y), name
