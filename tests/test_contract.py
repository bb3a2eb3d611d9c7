"""The contract every registered solver keeps, parametrised over the registry (``otgen.models.SOLVERS``):
a solver added to the registry is covered here without editing a list.

Each solver is built from its ``small_options`` (a small, fast instance) and trained on Gaussian
data of its ``expected_shapes()``. Checked: the constructor's signature is its option spec, with at
most 14 options; the options round-trip through the stored config; a few steps train to finite
metrics; save/load gives the same config, state and outputs; an interrupted run resumes exactly;
``sample`` / ``transport`` share one signature (inputs positional, options keyword-only, ``rng``);
bad options and inputs are refused before any work. K-process equivalence: tests/test_distributed.py
(its cases include every registered solver)."""

import dataclasses
import inspect

import pytest
import torch
import yaml

import otgen
from otgen.models import SOLVERS

NAMES = sorted(SOLVERS.names())
MAX_OPTIONS = 14
STEPS, BATCH = 4, 8


def gaussian(shape):
    """A sampler ``(n, generator=None) -> (n, *shape)`` of N(0, I)."""
    return lambda n, generator=None: torch.randn(n, *shape, generator=generator)


def build(name, **changes):
    cls = SOLVERS.get(name)
    return cls(**{**cls.small_options, **changes})


def data_of(model):
    return [gaussian(shape) for shape in model.expected_shapes()]


def inputs_of(model, n=5, seed=0):
    """Points ``sample`` / ``transport`` take: the model's own source (a WAE's prior), else N(0, I) of
    the first data side's shape."""
    gen = torch.Generator().manual_seed(seed)
    own = model.own_source()
    return own(n, generator=gen) if own is not None else gaussian(model.expected_shapes()[0])(n, gen)


def rng(seed=3):
    return torch.Generator().manual_seed(seed)


def fitted(name, **kw):
    model = build(name)
    return model.fit(*data_of(model), n_iters=STEPS, batch_size=BATCH, progress=False, **kw)


@pytest.fixture(scope="module")
def trained():
    """One fitted small model per solver, shared by the read-only tests below."""
    return {name: fitted(name, log_every=1) for name in NAMES}


def test_the_registry_holds_the_public_models():
    assert {"EgNOT", "UOTM", "SJKO", "WAE"} <= set(NAMES)
    for name in NAMES:
        cls = SOLVERS.get(name)
        assert getattr(otgen, cls.__name__) is cls  # one public name per model, exported
        assert isinstance(cls.small_options, dict) and cls.Options is not None


@pytest.mark.parametrize("name", NAMES)
def test_the_constructor_takes_the_options_of_its_spec(name):
    cls = SOLVERS.get(name)
    params = inspect.signature(cls.__init__).parameters
    names = [p for p in params if p != "self"]
    assert names == cls.Options.option_names()
    assert len(names) <= MAX_OPTIONS
    for field in dataclasses.fields(cls.Options):  # the signature shows each option's one default
        if field.default is not dataclasses.MISSING:
            assert params[field.name].default == field.default, field.name
        elif field.default_factory is not dataclasses.MISSING:
            assert params[field.name].default == field.default_factory(), field.name
        else:
            assert params[field.name].default is inspect.Parameter.empty, field.name


@pytest.mark.parametrize("name", NAMES)
def test_options_round_trip_through_the_stored_config_as_plain_data(name, trained):
    model = trained[name]
    cls = type(model)
    assert cls.Options.from_config(model.config) == model.options
    assert yaml.safe_load(yaml.safe_dump(model.config)) == model.config  # plain data: YAML-able


@pytest.mark.parametrize("name", NAMES)
def test_a_few_steps_train_to_finite_metrics(name, trained):
    model = trained[name]
    assert model.step >= STEPS
    last = model.history.metrics  # the last logged record: {"step", "time", **the solver's metrics}
    values = [v for k, v in last.items() if k not in ("step", "time")]
    assert last["step"] == model.run_steps(STEPS) and values
    assert all(torch.isfinite(torch.tensor(float(v))) for v in values)


@pytest.mark.parametrize("name", NAMES)
def test_save_and_load_give_the_same_config_state_and_outputs(name, trained, tmp_path):
    model = trained[name]
    model.save(tmp_path / "m.pt")
    loaded = otgen.load(tmp_path / "m.pt")
    assert type(loaded) is type(model) and loaded.config == model.config
    state, again = model.state_dict(), loaded.state_dict()
    assert set(state) == set(again)
    for key, value in state.items():
        if isinstance(value, dict) and all(isinstance(v, torch.Tensor) for v in value.values()):
            assert all(torch.equal(value[k], again[key][k]) for k in value), key
    x = inputs_of(model)
    assert torch.equal(loaded.transport(x, rng=rng()), model.transport(x, rng=rng()))


@pytest.mark.parametrize("name", NAMES)
def test_an_interrupted_run_resumes_exactly(name, tmp_path, ctrl_c_after):
    kw = dict(n_iters=STEPS, batch_size=BATCH, progress=False, checkpoint_every=1, log_every=1)
    straight = build(name)
    straight.fit(*data_of(straight), out=tmp_path / "a", **kw)
    stopped = build(name)
    with pytest.raises(KeyboardInterrupt):
        stopped.fit(*data_of(stopped), out=tmp_path / "b", callbacks=[ctrl_c_after(STEPS // 2)], **kw)
    resumed = build(name)
    resumed.fit(*data_of(resumed), out=tmp_path / "b", resume=True, **kw)
    for net, module in straight.networks().items():
        again = resumed.networks()[net]
        assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), again.state_dict().values())), net


@pytest.mark.parametrize("name", NAMES)
def test_sample_and_transport_share_one_signature(name):
    cls = SOLVERS.get(name)
    for method, positional in (("transport", 1), ("sample", 2)):
        params = list(inspect.signature(getattr(cls, method)).parameters.values())[1:]  # after self
        kinds = [p.kind for p in params]
        assert all(k is inspect.Parameter.POSITIONAL_OR_KEYWORD for k in kinds[:positional]), (method, params)
        rest = [p for p in params[positional:] if p.kind is not inspect.Parameter.VAR_KEYWORD]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest), (method, params)
        assert {"rng", "batch_size"} <= {p.name for p in rest}, (method, params)
    assert [p.name for p in list(inspect.signature(cls.sample).parameters.values())[1:3]][1] == "n_per_x"


@pytest.mark.parametrize("name", NAMES)
def test_sample_gives_n_per_x_draws_per_input_reproducibly_from_rng(name, trained):
    model = trained[name]
    x = inputs_of(model)
    y = model.sample(x, 3, rng=rng())
    event = model.transport(x[:1], rng=rng()).shape[1:]
    assert y.shape == (len(x), 3, *event)
    assert torch.equal(model.sample(x, 3, rng=rng()), y)
    assert model.sample(x, 3, rng=rng(), batch_size=2).shape == y.shape
    with pytest.raises(TypeError, match="rng must be a torch.Generator"):
        model.transport(x, rng=0)


@pytest.mark.parametrize("name", NAMES)
def test_bad_options_are_refused_by_name_before_any_work(name):
    cls = SOLVERS.get(name)
    option = cls.Options.option_names()[-1]  # "device" or the like: misspell it
    with pytest.raises(ValueError, match=rf"did you mean '{option}'"):
        cls.Options.from_config({**cls.small_options, option + "x": 1})
    with pytest.raises(ValueError, match=r"unknown key seedd .*did you mean 'seed'"):
        cls.Options.from_config({**cls.small_options, "seedd": 1})
    with pytest.raises(ValueError, match="seed"):
        build(name, seed=-1)


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_to_transport_are_refused_by_name(name, trained):
    model = trained[name]
    x = inputs_of(model)
    with pytest.raises(ValueError, match="must have shape"):
        model.transport(x[:, :1] if x.ndim == 2 else x[:, :, :1])
    bad = x.clone()
    bad[0].view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.transport(bad)
