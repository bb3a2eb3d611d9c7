"""EgNOT's composed options (``EgNOTOptions``): every option checked with its full path, misspelt
names refused with a "did you mean", the round trip through plain data, and the conversion of the
flat options of otgen's first format (``from_legacy``) into the same models, bit for bit."""

from pathlib import Path

import pytest
import torch

import otgen
from otgen.distributions import Gaussian
from otgen.solvers.egnot import (SMC, ChainPool, EgNOTOptions, FreshChains, FreshParticles, Langevin, ParticlePool,
                                 ReplayChains)

torch.set_num_threads(1)
DATA = Path(__file__).parent / "data"
SOURCE, TARGET = Gaussian.standard(2), Gaussian([1.0, 0.0], [[0.5, 0.0], [0.0, 0.5]])
SMALL = dict(dim=2, eps=0.5, potential={"hidden": [8]})
g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731


def weights(model):
    return {k: v.clone() for k, v in model.potential.state_dict().items()}


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


# ----------------------------------------------------------------------------- the layout
def test_at_most_14_top_level_options_and_the_documented_defaults():
    names = EgNOTOptions.option_names()
    assert names == ["dim", "eps", "event_shape", "source_shape", "cost", "potential", "optim", "energy_reg",
                     "sampler", "seed", "device"]
    o = EgNOTOptions(2, 0.1)
    assert (o.optim.lr, o.optim.betas, o.optim.schedule, o.optim.grad_clip, o.optim.ema) == (3e-4, [0.5, 0.99],
                                                                                           "cosine", None, None)
    assert o.sampler == SMC(particles=4, steps=5, sample_steps=300, sample_group=20, init="auto", init_scale=1.0,
                            chains=ParticlePool(pool_size=4096, refresh_every=20, refresh_steps=60))
    assert Langevin() == Langevin(steps=30, step_size=None, metropolis=False, score_clip=None, step_decay=1.0,
                                  sample_steps=None, init="auto", init_scale=1.0, chains=ChainPool(pool_size=4096))
    assert ReplayChains() == ReplayChains(size=4096, reinit_prob=0.05)
    # the docstring lists every option (takes) and the samplers' options
    for text in ("sampler (default SMC())", "refresh_every (default 20)", "reinit_prob (default 0.05)",
                 "step_size (default None)"):
        assert text in otgen.EgNOT.__doc__ or text in otgen.solvers.egnot.EgNOTSolver.__doc__


def test_yaml_style_mappings_fill_in_from_the_defaults():
    o = EgNOTOptions.from_config({"dim": 2, "optim": {"lr": 1e-3},
                                  "sampler": {"name": "smc", "particles": 8,
                                              "chains": {"name": "persistent", "refresh_every": 10}}})
    assert o.optim.betas == [0.5, 0.99] and o.optim.schedule == "cosine" and o.optim.lr == 1e-3
    assert o.sampler == SMC(particles=8, chains=ParticlePool(refresh_every=10))
    assert EgNOTOptions(2, sampler={"name": "smc", "chains": "fresh"}).sampler.chains == FreshParticles()
    o = EgNOTOptions(2, sampler={"name": "langevin", "chains": "fresh"}, potential={"hidden": [16]})
    assert o.sampler.chains == FreshChains() and o.potential == {"name": "mlp", "hidden": [16]}
    assert EgNOTOptions(2, sampler={"name": "langevin", "chains": {"name": "replay", "size": 8}}).sampler.chains \
        == ReplayChains(size=8, reinit_prob=0.05)


def test_the_langevin_step_and_sampling_length_are_stored_resolved():
    m = otgen.EgNOT(dim=2, eps=0.4, potential={"hidden": [8]}, sampler={"name": "langevin", "steps": 7})
    assert m.options.sampler.step_size == 0.05 * 0.4 and m.options.sampler.sample_steps == 70
    assert m.config["sampler"]["step_size"] == 0.05 * 0.4 and m.langevin.step_size == 0.05 * 0.4
    assert otgen.EgNOT(**SMALL).options.sampler.sample_steps == 300


@pytest.mark.parametrize("kwargs", [
    dict(dim=2, eps=0.1),
    dict(dim=2, eps=0.5, potential={"name": "mlp", "hidden": [8, 8], "quadratic": "diag"}, energy_reg=0.1,
         optim={"lr": 1e-3, "ema": 0.9, "grad_clip": 1.0, "schedule": "constant", "betas": [0.9, 0.999]},
         sampler={"name": "langevin", "metropolis": True, "score_clip": 2.0, "step_decay": 0.99, "init": "noise",
                  "chains": {"name": "replay", "size": 8, "reinit_prob": 0.3}}, seed=3),
    dict(event_shape=[3, 8, 8], eps=0.01, potential={"name": "conv", "width": 8},
         sampler={"name": "langevin", "init": "source", "chains": "persistent"}),
    dict(dim=2, cost="zero", sampler={"name": "smc", "init": "noise", "init_scale": 2.0, "chains": "fresh"}),
])
def test_options_round_trip_through_plain_data(kwargs):
    o = EgNOTOptions(**kwargs)
    assert EgNOTOptions.from_config(o.to_config()) == o
    m = otgen.EgNOT(**kwargs)
    assert EgNOTOptions.from_config(m.config) == m.options
    assert_same_weights(otgen.EgNOT(**m.config), m)


# ----------------------------------------------------------------------------- bad values, misspelt names
BAD = [
    (dict(eps=0), "eps"),
    (dict(dim=0), "dim"),
    (dict(dim=None, event_shape=[3, 0]), "event_shape"),
    (dict(source_shape="ab"), "source_shape"),
    (dict(potential={"hidden": [8], "quadratic": "ful"}), "potential.quadratic"),
    (dict(potential=3), "potential"),
    (dict(potential={"hidden": [2.7, True]}), "potential.hidden"),
    (dict(potential={"name": "mlp", "activation": 3}), "potential.activation"),
    (dict(optim={"lr": 0}), "optim.lr"),
    (dict(optim={"betas": [1.0, 0.5]}), "optim.betas"),
    (dict(optim={"schedule": "steps"}), "optim.schedule"),
    (dict(optim={"grad_clip": 0}), "optim.grad_clip"),
    (dict(optim={"ema": 1.0}), "optim.ema"),
    (dict(energy_reg=-1), "energy_reg"),
    (dict(sampler={"name": "smc", "particles": 0}), "sampler.particles"),
    (dict(sampler={"name": "smc", "steps": 0}), "sampler.steps"),
    (dict(sampler={"name": "smc", "sample_steps": -1}), "sampler.sample_steps"),
    (dict(sampler={"name": "smc", "sample_group": 0}), "sampler.sample_group"),
    (dict(sampler={"name": "smc", "init": "sorce"}), "sampler.init"),
    (dict(sampler={"name": "smc", "init_scale": 0}), "sampler.init_scale"),
    (dict(sampler={"name": "smc", "chains": {"name": "persistent", "pool_size": 0}}),
     "sampler.chains.pool_size"),
    (dict(sampler={"name": "smc", "chains": {"name": "persistent", "refresh_every": -1}}),
     "sampler.chains.refresh_every"),
    (dict(sampler={"name": "smc", "chains": {"name": "persistent", "refresh_steps": 0}}),
     "sampler.chains.refresh_steps"),
    (dict(sampler={"name": "langevin", "steps": 0}), "sampler.steps"),
    (dict(sampler={"name": "langevin", "step_size": 0}), "sampler.step_size"),
    (dict(sampler={"name": "langevin", "metropolis": "yes"}), "sampler.metropolis"),
    (dict(sampler={"name": "langevin", "score_clip": 0}), "sampler.score_clip"),
    (dict(sampler={"name": "langevin", "step_decay": 1.5}), "sampler.step_decay"),
    (dict(sampler={"name": "langevin", "sample_steps": -1}), "sampler.sample_steps"),
    (dict(sampler={"name": "langevin", "init_scale": -1}), "sampler.init_scale"),
    (dict(sampler={"name": "langevin", "chains": {"name": "persistent", "pool_size": 0}}),
     "sampler.chains.pool_size"),
    (dict(sampler={"name": "langevin", "chains": {"name": "replay", "size": 0}}),
     "sampler.chains.size"),
    (dict(sampler={"name": "langevin", "chains": {"name": "replay", "reinit_prob": 2}}),
     "sampler.chains.reinit_prob"),
    (dict(seed=-1), "seed"),
]


@pytest.mark.parametrize("bad, path", BAD)
def test_every_bad_value_is_refused_with_its_full_path(bad, path):
    kwargs = {**SMALL, **bad}
    with pytest.raises(ValueError) as error:
        otgen.EgNOT(**kwargs)
    assert str(error.value).startswith((f"{path} ", f"{path}: ")), str(error.value)
    problems = EgNOTOptions.check_all(kwargs, "model.")
    assert len(problems) == 1 and problems[0].startswith((f"model.{path} ", f"model.{path}: ")), problems


@pytest.mark.parametrize("bad, message", [
    (dict(sampler="smcc"), r"^sampler .*'smcc' \(did you mean 'smc'\?\)"),
    (dict(sampler={"name": "langevn"}), r"^sampler .*'langevn' \(did you mean 'langevin'\?\)"),
    (dict(sampler={"name": "smc", "chains": "persistant"}), r"^sampler\.chains .*\(did you mean 'persistent'\?\)"),
    (dict(sampler={"name": "langevin", "chains": "replya"}), r"^sampler\.chains .*\(did you mean 'replay'\?\)"),
    (dict(sampler={"name": "smc", "chains": "replay"}), r"^sampler\.chains must be one of \['fresh', 'persistent'\]"),
    (dict(sampler={"name": "smc", "particle": 8}), r"unknown key sampler\.particle .*did you mean 'particles'"),
    (dict(sampler={"name": "smc", "step_size": 0.1}), r"unknown key sampler\.step_size for SMC"),
    (dict(sampler={"name": "langevin", "particles": 8}), r"unknown key sampler\.particles for Langevin"),
    (dict(sampler={"name": "langevin", "chains": {"name": "persistent", "refresh_every": 3}}),
     r"unknown key sampler\.chains\.refresh_every for ChainPool"),
    (dict(potential="mlpp"), r"^potential.*did you mean 'mlp'"),
    (dict(potential={"name": "mlp", "hiden": [8]}), r"^potential.*unknown key 'hiden' .*did you mean 'hidden'"),
    (dict(optim={"lrr": 1e-3}), r"unknown key optim\.lrr .*did you mean 'lr'"),
])
def test_a_misspelt_or_misplaced_name_is_refused_with_a_did_you_mean(bad, message):
    with pytest.raises(ValueError, match=message):
        otgen.EgNOT(**{**SMALL, **bad})
    problems = EgNOTOptions.check_all({**SMALL, **bad}, "model.")
    assert len(problems) == 1 and "model." in problems[0], problems


def test_a_misspelt_option_of_a_config_gets_a_did_you_mean():
    assert EgNOTOptions.check_all({**SMALL, "potentail": None, "sampler": "lagevin"}, "model.") == [
        "unknown key model.potentail for EgNOT (did you mean 'potential'?); accepted: "
        "['cost', 'device', 'dim', 'energy_reg', 'eps', 'event_shape', 'optim', 'potential', 'sampler', "
        "'seed', 'source_shape']",
        "model.sampler must be one of ['langevin', 'smc'], got 'lagevin' (did you mean 'langevin'?)"]


def test_rules_between_options_name_both():
    with pytest.raises(ValueError, match=r"exactly one of model\.dim .* and model\.event_shape"):
        EgNOTOptions.from_config({"dim": 2, "event_shape": [2]}, "model.")
    with pytest.raises(ValueError, match="exactly one of dim"):
        otgen.EgNOT(eps=1.0)
    with pytest.raises(ValueError, match=r"sampler\.init='source' needs equal source and target shapes, got "
                                         r"source_shape=\[3\]"):
        otgen.EgNOT(dim=2, source_shape=[3], cost=lambda x, y: (y ** 2).sum(1),
                    sampler={"name": "langevin", "init": "source"})
    with pytest.raises(ValueError, match=r"sampler\.init='source' with sampler 'smc' needs a cost whose kernel"):
        otgen.EgNOT(dim=2, cost="zero", sampler={"name": "smc", "init": "source"})
    with pytest.raises(ValueError, match=r"potential\.quadratic='full' needs a cost of known curvature"):
        otgen.EgNOT(dim=2, cost="zero", potential={"quadratic": "full"})


def test_sample_and_transport_take_keyword_options():
    m = otgen.EgNOT(**SMALL, sampler={"name": "smc", "sample_steps": 3})
    x = torch.zeros(2, 2)
    y = m.sample(x, 3, steps=2, rng=g(0))
    assert y.shape == (2, 3, 2) and torch.equal(y, m.sample(x, 3, steps=2, rng=g(0)))
    assert torch.equal(m.transport(x, rng=g(1)), m.transport(x, rng=g(1), batch_size=5))
    with pytest.raises(TypeError):
        m.sample(x, 3, 2)  # steps is keyword-only
    with pytest.raises(ValueError, match="steps must be"):
        m.sample(x, 3, steps=-1)
    with pytest.raises(TypeError, match="rng must be a torch.Generator"):
        m.transport(x, rng=0)


# ----------------------------------------------------------------------------- the first format
# flat constructor arguments of the first format (as configs and tests wrote them) and the same model now
FLAT_AND_NESTED = [
    (dict(dim=2, eps=0.5, hidden=(8, 8), langevin_steps=2, sample_steps=3, buffer_size=16),
     dict(dim=2, eps=0.5, potential={"hidden": [8, 8]},
          sampler={"name": "smc", "steps": 2, "sample_steps": 3, "chains": {"name": "persistent", "pool_size": 16}})),
    (dict(dim=2, eps=0.5, hidden=[16], sampler="langevin", chains="replay", buffer_size=32, reinit_prob=0.3,
          metropolis=True, score_clip=1.0, step_size=0.01, langevin_steps=3, chain_init="noise", init_scale=2.0,
          lr=1e-3, lr_schedule="constant", grad_clip=1.0, ema=0.9, betas=[0.9, 0.999], seed=4),
     dict(dim=2, eps=0.5, potential={"name": "mlp", "hidden": [16]}, seed=4,
          optim={"lr": 1e-3, "schedule": "constant", "grad_clip": 1.0, "ema": 0.9, "betas": [0.9, 0.999]},
          sampler={"name": "langevin", "steps": 3, "step_size": 0.01, "metropolis": True, "score_clip": 1.0,
                   "init": "noise", "init_scale": 2.0, "chains": {"name": "replay", "size": 32, "reinit_prob": 0.3}})),
    (dict(dim=2, eps=0.3, hidden=[8], quadratic="diag", activation="relu", chains="fresh", particles=3,
          sample_group=5, refresh_every=0, refresh_steps=9),
     dict(dim=2, eps=0.3, potential={"hidden": [8], "quadratic": "diag", "activation": "relu"},
          sampler={"name": "smc", "particles": 3, "sample_group": 5, "chains": "fresh"})),
    # the first format's configs/digits_egnot_pixel.yaml (a conv potential takes no hidden, no quadratic)
    (dict(event_shape=[3, 16, 16], eps=0.01, potential={"name": "conv", "width": 8}, hidden=[4], quadratic="diag",
          lr=1e-4, betas=[0.5, 0.999], lr_schedule="constant", langevin_steps=30, sampler="langevin",
          step_size=0.001, chains="persistent", chain_init="source", sample_steps=500),
     dict(event_shape=[3, 16, 16], eps=0.01, potential={"name": "conv", "width": 8},
          optim={"lr": 1e-4, "betas": [0.5, 0.999], "schedule": "constant"},
          sampler={"name": "langevin", "steps": 30, "step_size": 0.001, "init": "source", "sample_steps": 500})),
]


@pytest.mark.parametrize("flat, nested", FLAT_AND_NESTED)
def test_flat_options_of_the_first_format_build_the_same_model(flat, nested):
    converted = EgNOTOptions.from_legacy(flat, saved=False)
    a, b = otgen.EgNOT(**converted), otgen.EgNOT(**nested)
    assert a.config == b.config
    assert_same_weights(a, b)


def test_from_legacy_applies_the_earlier_defaults_to_files_only():
    # files stored no sampler before "smc" became the default, and no refresh_every before the refresh
    assert EgNOTOptions.from_legacy({"dim": 2}, saved=True)["sampler"] == "langevin"
    assert EgNOTOptions.from_legacy({"dim": 2, "sampler": "smc"}, saved=True)["sampler"]["chains"] == {
        "name": "persistent", "refresh_every": 0}
    assert EgNOTOptions.from_legacy({"dim": 2}, saved=False) == {"dim": 2}
    # by default: a file's config holds dim, event_shape, source_shape and seed, a config section not
    stored = {"dim": 2, "event_shape": None, "source_shape": None, "seed": 0}
    assert EgNOTOptions.from_legacy(stored)["sampler"] == "langevin"
    assert EgNOTOptions.from_legacy({"dim": 2, "eps": 0.1, "lr": 1e-3, "seed": 0}) == {
        "dim": 2, "eps": 0.1, "optim": {"lr": 1e-3}, "seed": 0}
    # a flat key given beside the nested layout (--set model.lr=...) moves into it and wins
    mixed = {"dim": 2, "optim": {"lr": 1e-3, "ema": 0.9}, "lr": 2e-3, "sampler": {"name": "smc", "particles": 8},
             "refresh_every": 5, "hidden": [16]}
    assert EgNOTOptions.from_legacy(mixed, saved=False) == {
        "dim": 2, "optim": {"lr": 2e-3, "ema": 0.9}, "potential": {"name": "mlp", "hidden": [16]},
        "sampler": {"name": "smc", "particles": 8, "chains": {"name": "persistent", "refresh_every": 5}}}
    # what the first format's constructor refused stays refused, by name
    with pytest.raises(ValueError, match=r"unknown key sampler\.step_size for SMC"):
        otgen.EgNOT(**EgNOTOptions.from_legacy({"dim": 2, "step_size": 0.1}, saved=False))
    with pytest.raises(ValueError, match=r"sampler\.chains must be one of \['fresh', 'persistent'\], got 'replay'"):
        otgen.EgNOT(**EgNOTOptions.from_legacy({"dim": 2, "sampler": "smc", "chains": "replay"}))
    with pytest.raises(ValueError, match=r"unknown key seeed .*did you mean 'seed'"):
        EgNOTOptions.from_config(EgNOTOptions.from_legacy({"dim": 2, "seeed": 1}))


def _from_file(path):
    blob = torch.load(path, weights_only=True)
    assert blob["format"] == "otgen-model-1" and "hidden" in blob["config"]
    model = otgen.EgNOT(**EgNOTOptions.from_legacy(blob["config"]))
    model.load_state_dict(blob["state"])
    return model


@pytest.mark.parametrize("name", ["smc", "langevin"])
def test_model_files_of_the_first_format_rebuild_the_same_models(name):
    """tests/data/legacy/egnot_*.pt: written by the first format's code (written_by_egnot.py) with its
    outputs for fixed inputs and generators, and one more training step's loss and weights."""
    expected = torch.load(DATA / "legacy" / "egnot_expected.pt", weights_only=True)
    model = _from_file(DATA / "legacy" / f"egnot_{name}.pt")
    assert model.options.sampler.name == name and model.step == 4
    assert torch.equal(model.sample(expected["x"], 4, rng=g(3)), expected[f"{name}_sample"])
    assert torch.equal(model.transport(expected["x"], rng=g(4)), expected[f"{name}_transport"])
    model.prepare(SOURCE, TARGET, n_iters=6)  # continues the saved chains (particles or replay buffer)
    assert torch.equal(model.train_step(expected["xb"], expected["yb"])["loss"], expected[f"{name}_loss"])
    assert all(torch.equal(v, expected[f"{name}_potential"][k]) for k, v in model.potential.state_dict().items())


def test_a_file_written_before_the_smc_sampler_rebuilds_a_langevin_model():
    expected = torch.load(DATA / "legacy_v1" / "expected.pt", weights_only=True)
    model = _from_file(DATA / "legacy_v1" / "egnot.pt")
    assert isinstance(model.options.sampler, Langevin) and model.options.sampler.chains == ChainPool(pool_size=16)
    assert torch.equal(model.transport(expected["x"], rng=g(3)), expected["egnot"])


@pytest.mark.parametrize("name", ["smc", "langevin"])
def test_otgen_load_reads_model_files_of_the_first_format(name):
    expected = torch.load(DATA / "legacy" / "egnot_expected.pt", weights_only=True)
    model = otgen.load(DATA / "legacy" / f"egnot_{name}.pt")
    assert torch.equal(model.sample(expected["x"], 4, rng=g(3)), expected[f"{name}_sample"])
