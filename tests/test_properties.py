"""Property-based tests (hypothesis) of the argument checks: random wrong inputs give a ValueError /
TypeError naming the argument (a config's key, a file, a function's parameter), never another
exception; valid ones are accepted and give finite outputs of the right shape.

Derandomized with small example counts, so that the run is reproducible and short (CI: ~30 s on one
thread). Bugs these properties found outside the input checks are pinned as examples at the end
of the file.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import otgen
from otgen import config as cfgmod
from otgen import metrics
from otgen.checks import check_number, check_shape
from otgen.distributions import ImageDataset, ImageSet, load_array, make, npy_images
from otgen.schema import Betas, Choice, Device, Flag, Number, Numbers, Shape, Text

CONFIGS = Path(otgen.__file__).parent / "configs"
FAST = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

# JSON/YAML-like values: what a config file or `--set a.b=value` can hold (ints bounded to 64 bits:
# larger ones overflow check_number, pinned below)
SCALARS = (st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=6))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=4), inner, max_size=2), max_leaves=5)


def names_it(err: Exception, *names: str) -> bool:
    return any(n in str(err) for n in names)


# ============================================================================ (a) schema fields, configs

FIELDS = {
    "count": Number(integer=True, low=1),
    "rate": Number(low=0, low_open=True),
    "fraction": Number(low=0, high=1, low_open=True, high_open=True, nullable=True),
    "flag": Flag(),
    "kind": Choice(("mmd", "gan")),
    "label": Text(),
    "shape": Shape(),
    "widths": Numbers(int),
    "weights": Numbers(float),
    "betas": Betas(),
    "device": Device(),
}


@FAST
@given(field=st.sampled_from(sorted(FIELDS)), value=VALUES)
def test_schema_fields_accept_or_name_the_argument(field, value):
    spec = FIELDS[field]
    try:
        out = spec.check("model." + field, value)
    except (ValueError, TypeError) as e:
        assert names_it(e, "model." + field), str(e)
        return
    # accepted: normalised to what the field promises
    if isinstance(spec, Number):
        if out is not None:
            assert isinstance(out, int if spec.integer else float) and math.isfinite(out)
            assert (spec.low is None or out >= spec.low) and (spec.high is None or out <= spec.high)
    elif isinstance(spec, Flag):
        assert isinstance(out, bool)
    elif isinstance(spec, Choice):
        assert out in spec.options
    elif isinstance(spec, Shape):
        assert out and all(isinstance(s, int) and s >= 1 for s in out)
    elif isinstance(spec, Numbers):
        assert all(isinstance(v, spec.kind) for v in out)
    elif isinstance(spec, Betas):
        assert len(out) == 2 and all(0 <= b < 1 for b in out)


def _shipped():
    return {p.stem: cfgmod.load_yaml(p) for p in sorted(CONFIGS.glob("*.yaml"))}


SHIPPED = _shipped()


@st.composite
def mutated_config(draw):
    """A shipped config with random values for random keys (the model's, the train and eval sections',
    a data side's name, a whole section) and possibly an unknown key: (config, dotted key)."""
    name = draw(st.sampled_from(sorted(SHIPPED)))
    cfg = copy.deepcopy(SHIPPED[name])
    solver = otgen.models.get_solver(cfg["model"].get("name", "EgNOT"))
    section = draw(st.sampled_from(["model", "train", "eval", "data", "section", "unknown"]))
    value = draw(VALUES)
    if section == "model":
        key = draw(st.sampled_from(sorted(set(solver.Options.option_names()) | set(cfg["model"]))))
        cfg["model"][key] = value
        return cfg, f"model.{key}"
    if section in ("train", "eval"):
        key = draw(st.sampled_from(sorted(set(cfgmod.TRAIN if section == "train" else cfgmod.EVAL))))
        cfg.setdefault(section, {})[key] = value
        return cfg, f"{section}.{key}"
    if section == "data":
        side = draw(st.sampled_from(sorted(cfg["data"])))
        cfg["data"][side] = value if draw(st.booleans()) else {**dict(cfg["data"][side]), "name": value}
        return cfg, f"data.{side}" if side != "pair" else "data.pair"
    if section == "section":
        key = draw(st.sampled_from(["model", "data", "train", "eval"]))
        cfg[key] = value
        return cfg, key
    where = draw(st.sampled_from(["model", "train", "eval"]))
    key = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8))
    cfg.setdefault(where, {})[key] = value
    return cfg, f"{where}.{key}"


@FAST
@given(case=mutated_config())
def test_config_validate_accepts_or_names_the_key(case):
    cfg, key = case
    try:
        out = cfgmod.validate(cfg)
    except (ValueError, TypeError) as e:  # ConfigError is a ValueError
        leaf = key.split(".")[-1]
        assert names_it(e, key, repr(leaf), leaf), f"{key}: {e}"
        return
    assert set(out["train"]) >= {"n_iters", "batch_size", "seed"} and out["model"]["name"]


@FEW
@given(name=st.sampled_from(sorted(SHIPPED)), key=st.sampled_from(["model.seed", "train.n_iters", "model.eps",
                                                                   "train.batch_size", "eval.n_samples"]),
       raw=st.sampled_from(["0", "-1", "1.5", "abc", "[1, 2]", "{a: 1}", "null", "true", ".nan", "-.inf", "''",
                            "1e3", "[]", "{}"]))
def test_set_overrides_accept_or_name_the_key(name, key, raw):
    """``--set key=value`` with YAML values of every kind: validated like a file."""
    try:
        cfgmod.validate(cfgmod.apply_overrides(SHIPPED[name], [f"{key}={raw}"]))
    except (ValueError, TypeError) as e:
        assert names_it(e, key), f"{key}={raw}: {e}"


# ============================================================================ (b) the data readers

REAL = [np.bool_, np.int8, np.uint8, np.int32, np.int64, np.uint16, np.float16, np.float32, np.float64]
OTHER = [np.complex64, np.dtype("<U3"), np.dtype([("a", "<f4"), ("b", "<i2")])]


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def arrays_of(dtypes, max_dims=4):
    return st.sampled_from(dtypes).flatmap(
        lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=4)))


def _check_read(path: Path, read):
    """``read(path)`` loads, or raises ValueError naming the file; never another exception."""
    try:
        return read(path)
    except ValueError as e:
        assert names_it(e, repr(os.fspath(path)), os.fspath(path)), str(e)
        return None


@FAST
@given(arr=arrays_of(REAL + OTHER), as_npz=st.booleans())
def test_npy_npz_files_load_exactly_or_name_the_file(folder, arr, as_npz):
    path = folder / ("a.npz" if as_npz else "a.npy")
    np.savez(path, data=arr) if as_npz else np.save(path, arr)
    got = _check_read(path, load_array)
    if arr.dtype in map(np.dtype, REAL):
        assert got is not None and got.dtype == arr.dtype and got.shape == arr.shape
        np.testing.assert_array_equal(got, arr)
    else:
        assert got is None  # complex, strings, records: refused, naming the file
    for name in ("empirical", "npy"):
        sampler = _check_read(path, lambda p: make(name, path=p))
        if sampler is not None:  # loaded: draws of the stored event shape (or images in [-1, 1])
            draws = sampler(3, generator=torch.Generator().manual_seed(0))
            assert draws.shape[0] == 3 and torch.isfinite(draws).all()
            if isinstance(sampler, (ImageSet, ImageDataset)):
                assert draws.abs().max() <= 1.0
            else:
                assert tuple(draws.shape[1:]) == arr.shape[1:]


@FAST
@given(data=st.binary(max_size=96), prefix=st.sampled_from([b"", b"\x93NUMPY", b"\x93NUMPY\x01\x00", b"PK\x03\x04"]),
       ext=st.sampled_from([".npy", ".npz"]))
def test_random_bytes_as_files_raise_a_value_error_naming_the_file(folder, data, prefix, ext):
    path = folder / f"junk{ext}"
    path.write_bytes(prefix + data)
    for read in (load_array, lambda p: make("empirical", path=p), lambda p: make("npy", path=p), npy_images):
        with pytest.raises(ValueError) as info:
            read(path)
        assert os.fspath(path) in str(info.value)


@FAST
@given(arr=arrays_of(REAL, max_dims=3), cut=st.integers(0, 400), flip=st.integers(0, 400),
       ext=st.sampled_from([".npy", ".npz"]))
def test_truncated_or_damaged_files_load_or_name_the_file(folder, arr, cut, flip, ext):
    good = folder / f"good{ext}"
    np.savez(good, data=arr) if ext == ".npz" else np.save(good, arr)
    raw = bytearray(good.read_bytes())
    if flip < len(raw):
        raw[flip] ^= 0xFF
    bad = folder / f"bad{ext}"
    bad.write_bytes(bytes(raw[: max(0, len(raw) - cut)]))
    for read in (load_array, lambda p: make("npy", path=p)):
        _check_read(bad, read)


@FEW
@given(arr=hnp.arrays(np.uint8, st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6))),
       size=st.one_of(st.none(), st.integers(-1, 6), st.floats(0, 4), st.text(max_size=2)),
       channels=st.one_of(st.none(), st.integers(0, 4)), limit=st.one_of(st.none(), st.integers(-1, 4)))
def test_npy_images_arguments_load_or_name_the_argument(folder, arr, size, channels, limit):
    path = folder / "img.npy"
    np.save(path, arr)
    try:
        images = npy_images(path, size=size, channels=channels, limit=limit)
    except ValueError as e:
        assert names_it(e, "size", "channels", "limit"), str(e)
        return
    x = images.images
    assert x.shape[0] == min(arr.shape[0], limit or arr.shape[0]) and x.shape[1] == (channels or 1)
    assert size is None or tuple(x.shape[2:]) == (size, size)
    assert torch.isfinite(x).all() and x.abs().max() <= 1.0


# ============================================================================ (c) public argument checks

@FAST
@given(value=VALUES | st.integers(-10, 10), low=st.one_of(st.none(), st.integers(-3, 3)),
       high=st.one_of(st.none(), st.integers(-3, 10)), integer=st.booleans(), low_open=st.booleans(),
       high_open=st.booleans())
def test_check_number_accepts_exactly_the_range_or_names_it(value, low, high, integer, low_open, high_open):
    try:
        check_number("arg", value, low=low, high=high, low_open=low_open, integer=integer, high_open=high_open)
    except ValueError as e:
        assert str(e).startswith("arg must be "), str(e)
        return
    assert not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    assert math.isfinite(value)
    assert low is None or (value > low if low_open else value >= low)
    assert high is None or (value < high if high_open else value <= high)


@FAST
@given(value=VALUES | st.lists(st.integers(-2, 5), max_size=4).map(tuple))
def test_check_shape_accepts_positive_ints_or_names_it(value):
    try:
        shape = check_shape("event_shape", value)
    except ValueError as e:
        assert str(e).startswith("event_shape must be"), str(e)
        return
    assert isinstance(shape, tuple) and shape and all(type(s) is int and s >= 1 for s in shape)


BOUNDED = st.floats(-1e6, 1e6, allow_nan=False)
POINTS = hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
                    elements=BOUNDED | st.sampled_from([np.nan, np.inf, -np.inf]))


@FAST
@given(x=POINTS, y=POINTS, as_tensor=st.booleans())
def test_w2_and_mmd_are_finite_or_name_the_argument(x, y, as_tensor):
    if as_tensor:
        x, y = torch.from_numpy(x), torch.from_numpy(y)
    for fn in (metrics.w2, metrics.mmd):
        try:
            out = fn(x, y)
        except ValueError as e:
            assert names_it(e, "x ", "y ", "x and y", "bandwidth"), f"{fn.__name__}: {e}"
            continue
        assert isinstance(out, float) and math.isfinite(out)
        assert fn is metrics.mmd or out >= 0


@FAST
@given(samples=POINTS, mean=POINTS, cov=POINTS)
@example(samples=np.zeros((4, 2)), mean=np.zeros(2), cov=np.eye(2))
def test_bw2_uvp_is_finite_or_names_the_argument(samples, mean, cov):
    try:
        out = metrics.bw2_uvp(samples, mean, cov)
    except ValueError as e:
        assert names_it(e, "samples", "mean", "cov"), str(e)
        return
    assert math.isfinite(out) and out >= 0


@pytest.fixture(scope="module")
def tiny_models():
    return {
        "EgNOT": otgen.EgNOT(dim=2, eps=0.5, potential={"hidden": [8]},
                             sampler={"steps": 1, "sample_steps": 2, "chains": {"pool_size": 8}}),
        "UOTM": otgen.UOTM(dim=2, tau=0.5, generator={"name": "mlp", "hidden": [8]},
                           potential={"name": "mlp", "hidden": [8]}),
        "SJKO": otgen.SJKO(dim=2, h=0.5, n_phases=1, generator={"name": "mlp", "hidden": [8]},
                           potential={"name": "mlp", "hidden": [8]}),
    }


DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_, np.complex64]
ANY_X = st.sampled_from(DTYPES).flatmap(
    lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)))


def _valid_x(x) -> bool:
    arr = np.asarray(x)
    real = arr.dtype != np.bool_ and (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating))
    return real and arr.ndim == 2 and arr.shape[0] >= 1 and arr.shape[1] == 2 and bool(
        np.isfinite(arr.astype(np.float64)).all()) and bool(np.isfinite(arr.astype(np.float32)).all())


@FAST
@given(solver=st.sampled_from(["EgNOT", "UOTM", "SJKO"]), x=ANY_X, kind=st.sampled_from(["numpy", "tensor", "list"]))
def test_transport_of_any_array_is_right_or_names_x(tiny_models, solver, x, kind):
    """Any array (every dtype, shape, NaN/Inf) as a numpy array, a Tensor or a list: either a float32
    result (n, 2), or a ValueError / TypeError naming x. Never an error from inside torch."""
    valid = _valid_x(x)
    arg = torch.from_numpy(x) if kind == "tensor" else (x.tolist() if kind == "list" else x)
    model = tiny_models[solver]
    try:
        y = model.transport(arg, rng=torch.Generator().manual_seed(0))
    except (ValueError, TypeError) as e:
        assert not valid, f"refused a valid x {x!r}: {e}"
        assert str(e).startswith("x "), str(e)
        return
    assert valid, f"accepted {x!r}"
    assert y.dtype == torch.float32 and y.shape == (x.shape[0], 2)


@FAST
@given(solver=st.sampled_from(["EgNOT", "UOTM", "SJKO"]),
       x=hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64]), st.tuples(st.integers(1, 4), st.just(2)),
                    elements=st.integers(-100, 100)),
       n_per_x=st.one_of(st.integers(-2, 4), st.floats(-2, 4), st.booleans(), st.none(), st.text(max_size=2)))
def test_sample_of_valid_x_is_finite_or_names_n_per_x(tiny_models, solver, x, n_per_x):
    model = tiny_models[solver]
    try:
        y = model.sample(x, n_per_x=n_per_x, rng=torch.Generator().manual_seed(0))
    except ValueError as e:
        assert str(e).startswith("n_per_x must be an int >= 1"), str(e)
        assert isinstance(n_per_x, bool) or not isinstance(n_per_x, int) or n_per_x < 1
        return
    assert isinstance(n_per_x, int) and n_per_x >= 1
    assert y.shape == (x.shape[0], n_per_x, 2) and torch.isfinite(y).all()
    ref = model.sample(torch.tensor(x, dtype=torch.float32), n_per_x=n_per_x, rng=torch.Generator().manual_seed(0))
    assert torch.equal(y, ref)  # the dtype of x does not change the draws


@FEW
@given(z=ANY_X)
def test_wae_decode_of_any_array_is_right_or_names_z(z):
    wae = _WAE
    valid = _valid_x(z)
    try:
        out = wae.decode(z)
    except (ValueError, TypeError) as e:
        assert not valid and str(e).startswith("z "), str(e)
        return
    assert valid and out.shape == (z.shape[0], 4) and torch.isfinite(out).all()


_WAE = otgen.WAE(data_shape=(4,), latent_dim=2, encoder={"name": "mlp", "hidden": [8]},
                 decoder={"name": "mlp", "hidden": [8]})


# ============================================================================ found by these properties

def test_huge_ints_are_ints_and_huge_betas_are_refused_naming_the_argument():
    """(Found by these properties: both raised OverflowError.) An int beyond float range is still an
    int >= 1; as an Adam beta it is out of range."""
    assert Number(integer=True, low=1).check("model.x", 10**400) == 10**400
    with pytest.raises(ValueError, match="model.x must be two numbers"):
        Betas().check("model.x", [10**400, 0.9])


def test_a_config_key_that_is_not_a_string_is_named():
    cfg = copy.deepcopy(SHIPPED["gauss_egnot"])
    cfg["train"][1] = 2
    with pytest.raises(ValueError, match="train.1"):
        cfgmod.validate(cfg)


@pytest.mark.parametrize("raw", ["[1, 2", "{a: ", "a: b: c", "'"])
def test_set_with_unparsable_yaml_names_the_key(raw):
    """(Found by the --set property: yaml's own ScannerError used to escape apply_overrides.)"""
    with pytest.raises(ValueError, match="train.n_iters"):
        cfgmod.apply_overrides(SHIPPED["gauss_egnot"], [f"train.n_iters={raw}"])
