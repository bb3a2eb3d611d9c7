"""otgen.spec: options declared once (type, range, default, doc), composed, checked with their full
path, stored as plain data and rebuilt from it."""

import inspect
from dataclasses import dataclass

import pytest
import torch

from otgen.registry import Registry
from otgen.schema import Betas, Number
from otgen.spec import Nested, OneOf, Spec, option, takes


@dataclass(frozen=True)
class Opt(Spec):
    """An optimiser."""
    lr: float = option(1e-4, Number(low=0, low_open=True), "learning rate")
    betas: tuple = option((0.5, 0.9), Betas(), "Adam's betas")


KINDS = Registry("sampler")


@KINDS.register("smc")
@dataclass(frozen=True)
class Smc(Spec):
    name = "smc"
    particles: int = option(4, Number(integer=True, low=1), "particles per point")


@KINDS.register("langevin")
@dataclass(frozen=True)
class Lang(Spec):
    name = "langevin"
    steps: int = option(30, Number(integer=True, low=1), "steps per draw")


@dataclass(frozen=True)
class Model(Spec):
    dim: int | None = option(None, Number(integer=True, low=1, nullable=True), "dimension", positional=True)
    optim: Opt = option(Opt(lr=3e-4, betas=(0.5, 0.99)), Nested(Opt), "the optimiser")
    sampler: Spec = option(Smc(particles=8), OneOf(KINDS), "the sampler")

    def validate(self, where):
        if self.dim == 13:
            raise ValueError(f"{where}dim 13 is unlucky")


def test_defaults_and_a_partial_mapping_keep_the_fields_own_defaults():
    m = Model(2, optim={"lr": 1e-3}, sampler="smc")
    assert m.optim == Opt(lr=1e-3, betas=(0.5, 0.99))  # betas from the field's default, not Opt's
    assert m.sampler == Smc(particles=8)                # the default choice's values
    assert Model(sampler={"name": "langevin"}).sampler == Lang(steps=30)  # another choice: its class defaults
    assert Model(sampler=Lang(steps=3)).sampler.steps == 3


@pytest.mark.parametrize("kwargs, where, message", [
    (dict(optim={"lr": 0}), "model.", r"^model\.optim\.lr must be a number > 0, got 0$"),
    (dict(sampler={"name": "smc", "particles": 0}), "model.", r"^model\.sampler\.particles must be an int >= 1"),
    (dict(sampler="smcc"), "model.", r"^model\.sampler must be one of \['langevin', 'smc'\], got 'smcc' \(did you mean 'smc'\?\)"),
    (dict(sampler={"name": "smc", "particle": 2}), "", r"unknown key sampler\.particle .*did you mean 'particles'"),
    (dict(optim={"lrr": 1}), "", r"unknown key optim\.lrr for Opt \(did you mean 'lr'\?\)"),
    (dict(dimm=3), "model.", r"unknown key model\.dimm for Model \(did you mean 'dim'\?\)"),
    (dict(dim=13), "model.", r"^model\.dim 13 is unlucky$"),
    (dict(sampler=3), "", r"^sampler must be one of \['(smc|langevin)', '(smc|langevin)'\]"),
])
def test_every_bad_option_is_refused_with_its_full_path(kwargs, where, message):
    with pytest.raises(ValueError, match=message):
        Model.from_config(kwargs, where)


def test_check_all_reports_every_problem_once():
    problems = Model.check_all({"optim": {"lr": -1}, "sampler": "lang", "dimm": 3}, "model.")
    assert len(problems) == 3
    assert problems[0].startswith("unknown key model.dimm")
    assert problems[1] == "model.optim.lr must be a number > 0, got -1"
    assert "did you mean 'langevin'" in problems[2]
    assert Model.check_all({"dim": 2}) == []


def test_to_config_round_trips_and_stores_plain_data():
    m = Model(3, optim={"lr": 2e-4}, sampler={"name": "langevin", "steps": 7})
    cfg = m.to_config()
    assert cfg == {"dim": 3, "optim": {"lr": 2e-4, "betas": [0.5, 0.99]}, "sampler": {"name": "langevin", "steps": 7}}
    assert Model.from_config(cfg) == m
    assert Model().changed() == {}
    assert Model(sampler="langevin").changed() == {"sampler": {"name": "langevin", "steps": 30}}


def test_objects_are_stored_as_custom_unless_they_name_themselves():
    @dataclass(frozen=True)
    class WithNet(Spec):
        net: object = option(None, Number(nullable=True), "a network")  # a check that lets None through

    class Named:
        def spec(self):
            return {"name": "named", "scale": 2.0}

    spec = WithNet()
    object.__setattr__(spec, "net", torch.nn.Linear(2, 2))
    assert spec.to_config() == {"net": "custom"}
    object.__setattr__(spec, "net", Named())
    assert spec.to_config() == {"net": {"name": "named", "scale": 2.0}}


def test_takes_shows_the_options_as_the_signature_and_in_the_docstring():
    @takes(Model)
    class Thing:
        """A thing.

        Args:
            {options}
        """

        def __init__(self, *args, **kwargs):
            self.options = Model(*args, **kwargs)

    params = inspect.signature(Thing.__init__).parameters
    assert list(params) == ["self", "dim", "optim", "sampler"]
    assert params["dim"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert params["optim"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "optim (default Opt(lr=0.0003, betas=[0.5, 0.99])): the optimiser" in Thing.__doc__
    assert "sampler (default Smc(particles=8)): the sampler" in Thing.__doc__
    assert Thing(4).options.dim == 4
    with pytest.raises(TypeError):
        Thing(4, Opt())  # options after the first are keyword-only
