"""WAE's option spec (issue 28): the option tree, its checks with the full path of each option, the
illegal combinations that cannot be written, the conversion of otgen's first (flat) format, and model
files of that format (tests/data/legacy, written by the code of that format) reproduced bitwise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

import otgen
from otgen.kernels import WAE_SCALES
from otgen.solvers.shared_options import Adam
from otgen.solvers.wae import GAN, IMQ, MMD, RBF, Pretrain, WAEOptions

ROOT = Path(__file__).resolve().parents[1]
LEGACY = ROOT / "tests" / "data" / "legacy"


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- the option tree


def test_the_constructor_takes_at_most_14_options_with_the_defaults_of_before():
    o = WAEOptions(data_shape=[6])
    assert WAEOptions.option_names() == ["data_shape", "latent_dim", "penalty", "lam", "rec_scale", "prior_scale",
                                         "encoder_type", "encoder", "decoder", "optim", "input_noise", "pretrain",
                                         "seed", "device"]
    assert o.to_config() == {
        "data_shape": [6], "latent_dim": 8,
        "penalty": {"name": "mmd", "kernel": {"name": "imq", "scales": list(WAE_SCALES)}},
        "lam": 10.0, "rec_scale": 0.05, "prior_scale": 1.0, "encoder_type": "deterministic", "encoder": None,
        "decoder": None, "optim": {"lr": 1e-3, "betas": [0.5, 0.999], "schedule": "constant", "grad_clip": None,
                                   "ema": None},
        "input_noise": 0.0, "pretrain": None, "seed": 0, "device": "cpu"}
    assert GAN().to_config() == {"adversary": None, "optim": {"lr": 5e-4, "betas": [0.5, 0.999], "schedule": "constant",
                                                              "grad_clip": None, "ema": None}, "prior_trick": False}
    assert RBF().bandwidth is None and Pretrain(steps=3).batch == 1000
    # the first four stay positional, as before
    m = otgen.WAE((6,), 2, "gan", 3.0)
    assert (m.latent_dim, m.penalty, m.lam) == (2, "gan", 3.0)


def test_a_model_stores_its_resolved_options_and_they_round_trip():
    m = otgen.WAE((1, 8, 8), 4, GAN(prior_trick=True, optim=Adam(lr=1e-4, betas=(0.5, 0.99))),
                  encoder={"name": "conv", "width": 8}, pretrain={"steps": 2})
    assert m.options.decoder == "conv" and m.options.penalty.adversary == "mlp"  # the defaults, resolved
    assert m.options.pretrain == Pretrain(steps=2, batch=1000)
    assert WAEOptions.from_config(m.config) == m.options
    again = otgen.WAE(**m.config)
    for key, value in m.state_dict().items():
        if key in ("encoder", "decoder", "adversary"):
            assert all(torch.equal(value[k], again.state_dict()[key][k]) for k in value)
    for options in (WAEOptions([3]), WAEOptions([1, 8, 8], penalty=MMD(kernel=RBF(bandwidth=2.0)), input_noise=0.1),
                    WAEOptions([6], penalty={"name": "mmd", "kernel": {"name": "imq", "scales": [1]}})):
        assert WAEOptions.from_config(options.to_config()) == options


def test_a_partial_mapping_keeps_the_defaults_of_its_field():
    o = WAEOptions.from_config({"data_shape": [6], "optim": {"schedule": "steps"},
                                "penalty": {"name": "gan", "optim": {"lr": 1e-4}}})
    assert o.optim == Adam(lr=1e-3, betas=(0.5, 0.999), schedule="steps")
    assert o.penalty.optim == Adam(lr=1e-4, betas=(0.5, 0.999))  # the adversary's default betas, not Adam's
    assert o.penalty.adversary is None and o.penalty.prior_trick is False


BAD = [
    # (config over data_shape [6], the path the message names, a pattern of the rest)
    ({"data_shape": [8, 8]}, "model.data_shape", r"must be \(C, H, W\) images or \(D,\) vectors"),
    ({"data_shape": "6"}, "model.data_shape", "non-empty sequence of positive ints"),
    ({"latent_dim": 0}, "model.latent_dim", "must be an int >= 1"),
    ({"penalty": "mdm"}, "model.penalty", r"'mdm' \(did you mean 'mmd'\?\)"),
    ({"penalty": {"name": "mmd", "kernel": "imk"}}, "model.penalty.kernel", r"did you mean 'imq'"),
    ({"penalty": {"name": "mmd", "kernel": {"name": "imq", "scales": [1, -1]}}}, "model.penalty.kernel.scales",
     "positive numbers"),
    ({"penalty": {"name": "mmd", "kernel": {"name": "rbf", "bandwidth": 0}}}, "model.penalty.kernel.bandwidth",
     "must be a number > 0"),
    ({"penalty": {"name": "gan", "adversary": "mpl"}}, "model.penalty.adversary", r"did you mean 'mlp'"),
    ({"penalty": {"name": "gan", "adversary": {"name": "mlp", "hiden": [8]}}}, "model.penalty.adversary",
     r"unknown key 'hiden'.*did you mean 'hidden'"),
    ({"penalty": {"name": "gan", "optim": {"lr": 0}}}, "model.penalty.optim.lr", "must be a number > 0"),
    ({"penalty": {"name": "gan", "optim": {"schedule": "phase_cosine"}}}, "model.penalty.optim.schedule",
     "must be one of"),
    ({"penalty": {"name": "gan", "optim": {"ema": 0.9}}}, "model.penalty.optim.ema", "must be None"),
    ({"penalty": {"name": "gan", "prior_trick": 1}}, "model.penalty.prior_trick", "must be of type bool"),
    ({"lam": -1}, "model.lam", "must be a number >= 0"),
    ({"rec_scale": 0}, "model.rec_scale", "must be a number > 0"),
    ({"prior_scale": -2.0}, "model.prior_scale", "must be a number > 0"),
    ({"encoder_type": "gauss"}, "model.encoder_type", "must be one of"),
    ({"encoder": "resnet"}, "model.encoder", "must be one of"),
    ({"decoder": {"name": "mlp", "widht": 3}}, "model.decoder", "unknown key 'widht'"),
    ({"optim": {"lr": -1}}, "model.optim.lr", "must be a number > 0"),
    ({"optim": {"betas": [0.5, 1.0]}}, "model.optim.betas", ""),
    ({"optim": {"schedule": "phase_cosine"}}, "model.optim.schedule", "must be one of"),
    ({"optim": {"grad_clip": 0}}, "model.optim.grad_clip", "must be a number > 0"),
    ({"optim": {"ema": 0.99}}, "model.optim.ema", "must be None"),
    ({"optim": {"lrr": 1}}, "model.optim.lrr", r"did you mean 'lr'"),
    ({"input_noise": -0.1}, "model.input_noise", "must be a number >= 0"),
    ({"pretrain": {"steps": 0}}, "model.pretrain.steps", "must be an int >= 1"),
    ({"pretrain": {"batch": 100}}, "model.pretrain.steps", "is required"),
    ({"pretrain": {"steps": 5, "batch": 1}}, "model.pretrain.batch", "must be an int >= 2"),
    ({"seed": -1}, "model.seed", "must be an int >= 0"),
    ({"latnet_dim": 3}, "model.latnet_dim", r"did you mean 'latent_dim'"),
]


@pytest.mark.parametrize("config, path, pattern", BAD, ids=[b[1] + ":" + str(i) for i, b in enumerate(BAD)])
def test_every_bad_option_is_refused_with_its_full_path(config, path, pattern):
    config = {"data_shape": [6], **config}
    with pytest.raises(ValueError) as info:
        WAEOptions.from_config(config, "model.")
    assert path in str(info.value) and re.search(pattern, str(info.value)), str(info.value)
    assert any(path in p for p in WAEOptions.check_all(config, "model."))


@pytest.mark.parametrize("penalty, key", [
    ({"name": "mmd", "prior_trick": True}, "model.penalty.prior_trick for MMD"),
    ({"name": "mmd", "adversary": "mlp"}, "model.penalty.adversary for MMD"),
    ({"name": "gan", "kernel": "rbf"}, "model.penalty.kernel for GAN"),
    ({"name": "mmd", "kernel": {"name": "imq", "bandwidth": 1.0}}, "model.penalty.kernel.bandwidth for IMQ"),
    ({"name": "mmd", "kernel": {"name": "rbf", "scales": [1.0]}}, "model.penalty.kernel.scales for RBF"),
])
def test_options_of_another_penalty_or_kernel_cannot_be_written(penalty, key):
    with pytest.raises(ValueError, match=f"unknown key {key}"):
        WAEOptions.from_config({"data_shape": [6], "penalty": penalty}, "model.")
    with pytest.raises(TypeError):
        MMD(prior_trick=True)  # nor in Python
    with pytest.raises(TypeError):
        IMQ(bandwidth=1.0)


def test_the_solver_refuses_before_building_anything(monkeypatch):
    import otgen.solvers.wae as wae

    def no_build(*args, **kwargs):
        raise AssertionError("built a network before the options were checked")

    monkeypatch.setattr(wae, "build", no_build)
    with pytest.raises(ValueError, match="optim.schedule must be one of"):
        otgen.WAE((6,), optim={"schedule": "phase_cosine"})
    with pytest.raises(ValueError, match="did you mean 'gan'"):
        otgen.WAE((6,), penalty="gna")


# ----------------------------------------------------------------------------- otgen's first format

OLD_KEYS = ["data_shape", "latent_dim", "penalty", "lam", "rec_scale", "prior_scale", "kernel", "kernel_scales",
            "rbf_bandwidth", "encoder_type", "encoder", "decoder", "adversary", "width", "hidden",
            "adversary_hidden", "prior_trick", "lr", "lr_adv", "betas", "grad_clip", "lr_schedule", "input_noise",
            "pretrain_steps", "pretrain_batch", "seed", "device"]
OLD_DEFAULTS = dict(latent_dim=8, penalty="mmd", lam=10.0, rec_scale=0.05, prior_scale=1.0, kernel="imq",
                    kernel_scales=list(WAE_SCALES), rbf_bandwidth=None, encoder_type="deterministic", encoder=None,
                    decoder=None, adversary=None, width=32, hidden=[256, 256], adversary_hidden=[512] * 4,
                    prior_trick=False, lr=1e-3, lr_adv=5e-4, betas=[0.5, 0.999], grad_clip=None,
                    lr_schedule="constant", input_noise=0.0, pretrain_steps=0, pretrain_batch=1000, seed=0,
                    device="cpu")

LEGACY_CASES = [
    # (old flat config, the nested one it becomes)
    ({"data_shape": [6]}, {"data_shape": [6], "penalty": "mmd"}),
    ({"data_shape": [1, 16, 16], "latent_dim": 5, "width": 64, "input_noise": 0.05, "lr": 0.001,
      "lr_schedule": "steps"},
     {"data_shape": [1, 16, 16], "latent_dim": 5, "penalty": "mmd", "input_noise": 0.05,
      "optim": {"lr": 0.001, "schedule": "steps"},
      "encoder": {"name": "conv", "width": 64}, "decoder": {"name": "conv", "width": 64}}),
    ({"data_shape": [4], "hidden": [8], "width": 16, "encoder": "linear", "decoder": {"name": "mlp", "hidden": [3]}},
     {"data_shape": [4], "penalty": "mmd", "encoder": "linear", "decoder": {"name": "mlp", "hidden": [3]}}),
    ({"data_shape": [4], "encoder": "custom", "hidden": [8]},
     {"data_shape": [4], "penalty": "mmd", "encoder": "custom", "decoder": {"name": "mlp", "hidden": [8]}}),
    ({"data_shape": [6], "penalty": "gan", "lr_adv": 1e-4, "adversary_hidden": [16], "prior_trick": True,
      "betas": [0.6, 0.9], "grad_clip": 2.0, "lr_schedule": "cosine", "kernel": "imq", "rbf_bandwidth": None},
     {"data_shape": [6], "optim": {"betas": [0.6, 0.9], "grad_clip": 2.0, "schedule": "cosine"},
      "penalty": {"name": "gan", "prior_trick": True, "adversary": {"name": "mlp", "hidden": [16]},
                  "optim": {"betas": [0.6, 0.9], "grad_clip": 2.0, "schedule": "cosine", "lr": 1e-4}}}),
    ({"data_shape": [6], "penalty": "GAN", "adversary": {"name": "mlp", "hidden": [4]}, "adversary_hidden": [16]},
     {"data_shape": [6], "penalty": {"name": "gan", "adversary": {"name": "mlp", "hidden": [4]}}}),
    ({"data_shape": [6], "kernel": "rbf", "rbf_bandwidth": 1.5, "kernel_scales": list(WAE_SCALES),
      "prior_trick": False},
     {"data_shape": [6], "penalty": {"name": "mmd", "kernel": {"name": "rbf", "bandwidth": 1.5}}}),
    ({"data_shape": [6], "kernel_scales": [1.0], "pretrain_steps": 10, "pretrain_batch": 64},
     {"data_shape": [6], "penalty": {"name": "mmd", "kernel": {"name": "imq", "scales": [1.0]}},
      "pretrain": {"steps": 10, "batch": 64}}),
    ({"data_shape": [6], "pretrain_steps": 0, "pretrain_batch": 64},
     {"data_shape": [6], "penalty": "mmd", "pretrain": None}),
    # flat keys mixed into the nested layout (a --set of an old key): merged into the nested specs
    ({"data_shape": [6], "optim": {"lr": 1e-4, "schedule": "steps"}, "lr": 3e-4,
      "penalty": {"name": "gan", "optim": {"lr": 1e-5}}, "lr_adv": 2e-5, "pretrain": {"steps": 4}, "pretrain_batch": 8},
     {"data_shape": [6], "optim": {"lr": 3e-4, "schedule": "steps"},
      "penalty": {"name": "gan", "optim": {"lr": 2e-5}}, "pretrain": {"steps": 4, "batch": 8}}),
    ({"data_shape": [6], "penalty": {"name": "mmd", "kernel": {"name": "imq", "scales": [2.0]}}, "kernel": "rbf"},
     {"data_shape": [6], "penalty": {"name": "mmd", "kernel": "rbf"}}),
]


@pytest.mark.parametrize("flat, nested", LEGACY_CASES, ids=[str(i) for i in range(len(LEGACY_CASES))])
def test_from_legacy_maps_the_flat_keys(flat, nested):
    assert WAEOptions.from_legacy(flat) == nested


def test_from_legacy_maps_every_old_key_of_a_stored_config():
    """An old model file stores all 27 constructor arguments: each lands in the nested layout (mmd and
    gan alike), and the options equal those written by hand."""
    assert sorted(OLD_DEFAULTS) == sorted(OLD_KEYS[1:])
    for penalty in ("mmd", "gan"):
        old = {"data_shape": [1, 8, 8], **OLD_DEFAULTS, "penalty": penalty}
        mapped = WAEOptions.from_legacy(old)
        assert set(mapped) <= set(WAEOptions.option_names())
        expected = WAEOptions([1, 8, 8], penalty=penalty, encoder={"name": "conv", "width": 32},
                              decoder={"name": "conv", "width": 32})
        if penalty == "gan":
            expected = expected.replace(penalty=GAN(adversary={"name": "mlp", "hidden": [512] * 4}))
        assert WAEOptions.from_config(mapped) == expected


@pytest.mark.parametrize("flat, key", [
    ({"penalty": "gan", "kernel": "rbf"}, "model.penalty.kernel for GAN"),
    ({"penalty": "gan", "kernel_scales": [1.0]}, "model.penalty.kernel_scales for GAN"),
    ({"penalty": "mmd", "prior_trick": True}, "model.penalty.prior_trick for MMD"),
    ({"penalty": "mmd", "lr_adv": 1e-4}, "model.penalty.lr_adv for MMD"),
    ({"penalty": "mmd", "adversary_hidden": [8]}, "model.penalty.adversary_hidden for MMD"),
    ({"kernel": "imq", "rbf_bandwidth": 1.0}, "model.penalty.kernel.bandwidth for IMQ"),
    ({"kernel": "rbf", "kernel_scales": [1.0]}, "model.penalty.kernel.scales for RBF"),
    ({"hiden": [8]}, "model.hiden"),
])
def test_old_settings_the_old_code_refused_stay_refused(flat, key):
    mapped = WAEOptions.from_legacy({"data_shape": [6], **flat})
    with pytest.raises(ValueError, match=f"unknown key {key}"):
        WAEOptions.from_config(mapped, "model.")


@pytest.mark.parametrize("config", ["digits_wae.yaml", "digits_wae_gan.yaml", "digits_wae_colored3.yaml"])
def test_the_configs_in_the_old_flat_layout_build_the_same_model(config):
    """Each shipped config, written as otgen's first format wrote it (flat keys), converts to the
    options of the nested file and builds bitwise the same networks."""
    model = yaml.safe_load((ROOT / "configs" / config).read_text())["model"]
    model.pop("name")
    nested = WAEOptions.from_config(model)
    flat = {k: v for k, v in model.items() if k not in ("penalty", "encoder", "decoder", "optim")}
    flat.update(width=model["encoder"]["width"], lr=model["optim"]["lr"], lr_schedule=model["optim"]["schedule"])
    if model["penalty"] == "mmd":
        flat["penalty"] = "mmd"
    else:
        flat.update(penalty="gan", lr_adv=model["penalty"]["optim"]["lr"])
    assert WAEOptions.from_config(WAEOptions.from_legacy(flat)) == nested
    a, b = otgen.WAE(**WAEOptions.from_legacy(flat)), otgen.WAE(**model)
    for net in ("encoder", "decoder", "adversary"):
        if getattr(a, net) is not None:
            for p, q in zip(getattr(a, net).state_dict().values(), getattr(b, net).state_dict().values()):
                assert torch.equal(p, q)


# ----------------------------------------------------------------------------- old model files


@pytest.fixture(scope="module")
def expected():
    return torch.load(LEGACY / "wae_expected.pt", weights_only=True)


def _from_file(path: Path):
    blob = torch.load(path, weights_only=True)
    assert blob["format"] == "otgen-model-1" and blob["solver"] == "WAE"
    model = otgen.WAE(**WAEOptions.from_legacy(blob["config"]))
    model.load_state_dict(blob["state"])
    return model


@pytest.mark.parametrize("name", ["wae_gan", "wae_rbf", "wae_image"])
def test_old_model_files_give_bitwise_the_same_outputs_and_training(name, expected, one_thread):
    """Model files of otgen's first format (tests/data/legacy/written_by_wae.py, the old code after 4
    steps, at one thread as here: a convolution's rounding depends on the thread count): decode,
    sample (the same z from the same generator), reconstruct and a Gaussian encoder's draws equal what
    the old code gave, and two more steps give the same losses and weights (the optimiser states and
    the random streams carried over)."""
    e = expected[name]
    data = expected["images" if name == "wae_image" else "vectors"]
    for model in (_from_file(LEGACY / f"{name}.pt"), otgen.load(LEGACY / f"{name}.pt")):
        assert torch.equal(model.decode(e["z"]), e["decode"])
        assert torch.equal(model.sample(model.sample_prior(5, rng=gen(3)))[:, 0], e["sample"])
        assert torch.equal(model.reconstruct(e["x"]), e["reconstruct"])
        assert torch.equal(model.encode(e["x"], sample=True, rng=gen(4)), e["encode"])
        losses = [model.train_step(data[16 * i:16 * (i + 1)]) for i in range(2)]
        assert losses == e["losses"]
        state = model.state_dict()
        for net, weights in e["after"].items():
            assert all(torch.equal(state[net][k], v) for k, v in weights.items()), net


# ----------------------------------------------------------------------------- the sample contract


def test_sample_takes_prior_codes_like_every_solver():
    m = otgen.WAE((4,), 2, encoder={"name": "mlp", "hidden": [8]}, decoder={"name": "mlp", "hidden": [8]})
    z = m.sample_prior(3, rng=gen(0))
    y = m.sample(z, 4)
    assert y.shape == (3, 4, 4) and torch.equal(y, m.decode(z)[:, None].expand(3, 4, 4))
    assert torch.equal(m.sample(z)[:, 0], m.transport(z))
    with pytest.raises(ValueError, match=r"z must be prior codes of shape \(n, 2\), got the int 5.*sample_prior"):
        m.sample(5)
    with pytest.raises(ValueError, match=r"z must have shape \(n, 2\)"):
        m.transport(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="n_per_x must be an int >= 1"):
        m.sample(z, 0)
    with pytest.raises(TypeError, match="rng must be a torch.Generator"):
        m.sample(z, rng=3)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        m.sample_prior(0)


def test_an_old_keyword_says_where_it_went():
    with pytest.raises(ValueError, match=r"width is an option of otgen's first \(flat\) layout; it is now "
                                         r"encoder.width and decoder.width"):
        otgen.WAE((1, 8, 8), width=8)
    with pytest.raises(ValueError, match=r"lr_adv .* it is now penalty.optim.lr \(GAN\)"):
        otgen.WAE((6,), penalty="gan", lr_adv=1e-4)
    with pytest.raises(ValueError, match=r"unknown key latnet_dim for WAE \(did you mean .latent_dim.\?\)"):
        otgen.WAE((6,), latnet_dim=3)
