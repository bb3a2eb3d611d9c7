"""Bad or unusual inputs, tried as a new user would, across the public API.

Every case either raises a ValueError / TypeError whose message names the argument at fault (and,
where it helps, what is accepted), or shows the input is accepted and does the right thing (a float64
array gives the float32 result). Training here is 1-3 steps of tiny models (hidden=[8]).
"""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest
import torch

import otgen
from otgen import distributions, groundtruth, image_metrics, metrics
from otgen.distributions import Gaussian

SRC, TGT = Gaussian.standard(2), Gaussian([1.0, 0.0], [[0.5, 0.0], [0.0, 0.5]])
TINY = {
    "EgNOT": dict(dim=2, eps=0.5, potential={"hidden": [8]},
                  sampler={"steps": 2, "sample_steps": 2, "chains": {"pool_size": 16}}),
    "UOTM": dict(dim=2, tau=0.5, generator={"hidden": [8]}, potential={"hidden": [8]}),
    "SJKO": dict(dim=2, h=0.5, n_phases=2, generator={"hidden": [8]}, potential={"hidden": [8]}),
}
QUIET = dict(progress=False)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny(name: str, **kw):
    return getattr(otgen, name)(**{**TINY[name], **kw})


def tiny_wae(**kw):
    mlp8 = {"name": "mlp", "hidden": [8]}
    return otgen.WAE(**{**dict(data_shape=(4,), latent_dim=2, encoder=mlp8, decoder=mlp8), **kw})


@pytest.fixture(scope="module")
def models():
    """One untrained tiny model of each solver (inference only; S-JKO trained one phase-step each so
    that ``phase=`` has something to name)."""
    out = {name: tiny(name) for name in TINY}
    out["SJKO"].fit(SRC, TGT, n_iters=1, batch_size=4, **QUIET)  # 2 steps: both phases trained
    out["WAE"] = tiny_wae()
    return out


# ============================================================================ constructors

E, U, S = otgen.EgNOT, otgen.UOTM, otgen.SJKO
CONSTRUCTORS = [
    # (id, class, kwargs, exception, message pattern)
    ("egnot-no-dim", E, dict(eps=0.1), ValueError, "exactly one of dim"),
    ("egnot-dim-and-shape", E, dict(dim=2, event_shape=[2], eps=0.1), ValueError, "exactly one of dim"),
    ("egnot-dim-str", E, dict(dim="2", eps=0.1), ValueError, "dim must be an int"),
    ("egnot-dim-float", E, dict(dim=2.0, eps=0.1), ValueError, "dim must be an int"),
    ("egnot-dim-zero", E, dict(dim=0, eps=0.1), ValueError, "dim must be an int >= 1"),
    ("egnot-dim-bool", E, dict(dim=True, eps=0.1), ValueError, "dim"),
    ("egnot-event-shape-zero", E, dict(event_shape=[2, 0], eps=0.1), ValueError, "event_shape"),
    ("egnot-eps-zero", E, dict(dim=2, eps=0), ValueError, "eps must be a number > 0"),
    ("egnot-eps-negative", E, dict(dim=2, eps=-1.0), ValueError, "eps must be a number > 0"),
    ("egnot-eps-nan", E, dict(dim=2, eps=float("nan")), ValueError, "eps"),
    ("egnot-eps-inf", E, dict(dim=2, eps=float("inf")), ValueError, "eps"),
    ("egnot-eps-str", E, dict(dim=2, eps="0.1"), ValueError, "eps must be of type float"),
    ("egnot-unknown-key", E, dict(dim=2, eps=0.1, hiden=[8]), ValueError, r"unknown key hiden for EgNOT \(did you mean .hidden.\? it is now potential.hidden\)"),
    ("egnot-hidden-int", E, dict(dim=2, eps=0.1, potential={"hidden": 8}), ValueError,
     r"potential\.hidden must be a list of int"),
    ("egnot-hidden-float", E, dict(dim=2, eps=0.1, potential={"hidden": [8.5]}), ValueError,
     r"potential\.hidden must be a list of int"),
    ("egnot-hidden-zero", E, dict(dim=2, eps=0.1, potential={"hidden": [0]}), ValueError, "hidden widths must be >= 1"),
    ("egnot-hidden-negative", E, dict(dim=2, eps=0.1, potential={"hidden": [-8]}), ValueError,
     "hidden widths must be >= 1"),
    ("egnot-cost-unknown", E, dict(dim=2, eps=0.1, cost="euclid"), ValueError, "cost must be one of"),
    ("egnot-cost-int", E, dict(dim=2, eps=0.1, cost=3), ValueError, "cost must be a name"),
    ("egnot-lr-zero", E, dict(dim=2, eps=0.1, optim={"lr": 0}), ValueError, r"optim\.lr must be a number > 0"),
    ("egnot-lr-str", E, dict(dim=2, eps=0.1, optim={"lr": "1e-3"}), ValueError, r"optim\.lr must be of type float"),
    ("egnot-seed-negative", E, dict(dim=2, eps=0.1, seed=-1), ValueError, "seed must be an int >= 0"),
    ("egnot-seed-float", E, dict(dim=2, eps=0.1, seed=1.5), ValueError, "seed must be an int"),
    ("egnot-device-unknown", E, dict(dim=2, eps=0.1, device="gpu"), ValueError, "device must be"),
    ("egnot-ema-one", E, dict(dim=2, eps=0.1, optim={"ema": 1.0}), ValueError,
     r"optim\.ema must be a number > 0 and < 1"),
    ("egnot-betas-one-value", E, dict(dim=2, eps=0.1, optim={"betas": (0.9,)}), ValueError,
     r"optim\.betas must be two numbers"),
    ("egnot-grad-clip-zero", E, dict(dim=2, eps=0.1, optim={"grad_clip": 0}), ValueError,
     r"optim\.grad_clip must be a number > 0"),
    ("egnot-schedule-unknown", E, dict(dim=2, eps=0.1, optim={"schedule": "linear"}), ValueError,
     r"optim\.schedule must be one of"),
    ("egnot-schedule-unsupported", E, dict(dim=2, eps=0.1, optim={"schedule": "steps"}), ValueError,
     r"optim\.schedule must be one of \('constant', 'cosine'\) for this solver"),
    ("egnot-activation-unknown", E, dict(dim=2, eps=0.1, potential={"activation": "relux"}), ValueError,
     "activation must be one of"),
    ("egnot-sample-steps-negative", E, dict(dim=2, eps=0.1, sampler={"sample_steps": -1}), ValueError,
     r"sampler\.sample_steps must be an int"),
    ("egnot-sampler-unknown", E, dict(dim=2, eps=0.1, sampler="hmc"), ValueError, "sampler must be one of"),
    ("egnot-particles-zero", E, dict(dim=2, eps=0.1, sampler={"particles": 0}), ValueError,
     r"sampler\.particles must be an int"),
    ("egnot-refresh-negative", E, dict(dim=2, eps=0.1, sampler={"chains": {"refresh_every": -1}}), ValueError,
     r"sampler\.chains\.refresh_every must be an int"),
    ("egnot-refresh-steps-zero", E, dict(dim=2, eps=0.1, sampler={"chains": {"refresh_steps": 0}}), ValueError,
     r"sampler\.chains\.refresh_steps must be an int"),
    ("egnot-refresh-fresh-chains", E, dict(dim=2, eps=0.1, sampler={"chains": {"name": "fresh", "refresh_every": 10}}),
     ValueError, r"unknown key sampler\.chains\.refresh_every for FreshParticles"),
    ("egnot-refresh-langevin", E, dict(dim=2, eps=0.1, sampler={"name": "langevin", "chains": {"refresh_every": 10}}),
     ValueError, r"unknown key sampler\.chains\.refresh_every for ChainPool"),
    ("egnot-smc-replay", E, dict(dim=2, eps=0.1, sampler={"chains": "replay"}), ValueError,
     r"sampler\.chains must be one of \['fresh', 'persistent'\], got 'replay'"),
    ("egnot-smc-step-size", E, dict(dim=2, eps=0.1, sampler={"step_size": 0.01}), ValueError,
     r"unknown key sampler\.step_size for SMC"),
    ("egnot-smc-metropolis", E, dict(dim=2, eps=0.1, sampler={"name": "smc", "metropolis": True}), ValueError,
     r"unknown key sampler\.metropolis for SMC"),
    ("egnot-langevin-particles", E, dict(dim=2, eps=0.1, sampler={"name": "langevin", "particles": 8}), ValueError,
     r"unknown key sampler\.particles for Langevin"),
    ("egnot-sample-group-zero", E, dict(dim=2, eps=0.1, sampler={"sample_group": 0}), ValueError,
     r"sampler\.sample_group must be an int"),
    ("egnot-langevin-sample-group", E, dict(dim=2, eps=0.1, sampler={"name": "langevin", "sample_group": 8}),
     ValueError, r"unknown key sampler\.sample_group for Langevin"),
    ("egnot-smc-source-init-custom-cost", E, dict(dim=2, eps=0.1, cost="zero", sampler={"init": "source"}), ValueError,
     r"sampler\.init='source' with sampler 'smc' needs a cost whose kernel"),
    ("egnot-potential-unknown", E, dict(dim=2, eps=0.1, potential="mlpp"), ValueError, r"potential.*did you mean 'mlp'"),
    ("egnot-potential-unknown-key", E, dict(dim=2, eps=0.1, potential={"name": "mlp", "widths": [8]}), ValueError,
     "unknown key 'widths'"),
    ("egnot-potential-int", E, dict(dim=2, eps=0.1, potential=5), ValueError, "potential must be a network name"),
    ("uotm-tau-zero", U, dict(dim=2, tau=0), ValueError, "tau must be a number > 0"),
    ("uotm-phi-int", U, dict(dim=2, phi1=1), ValueError, "phi1 must be one of"),
    ("uotm-n-critic-zero", U, dict(dim=2, critic={"n_critic": 0}), ValueError, "critic.n_critic must be an int >= 1"),
    ("uotm-cost-unknown", U, dict(dim=2, cost="l1"), ValueError, "cost must be one of"),
    ("uotm-r1-negative", U, dict(dim=2, critic={"r1": -1}), ValueError, "critic.r1 must be a number >= 0"),
    ("sjko-h-zero", S, dict(dim=2, h=0), ValueError, "h must be a number > 0"),
    ("sjko-n-phases-zero", S, dict(dim=2, n_phases=0), ValueError, "n_phases must be an int >= 1"),
    ("sjko-n-phases-float", S, dict(dim=2, n_phases=2.0), ValueError, "n_phases must be an int"),
    ("sjko-first-phase-zero", S, dict(dim=2, phases={"first_iters": 0}), ValueError,
     "phases.first_iters must be an int"),
    ("wae-no-shape", otgen.WAE, dict(latent_dim=2), TypeError, "data_shape"),
    ("wae-latent-zero", otgen.WAE, dict(data_shape=(1, 8, 8), latent_dim=0), ValueError, "latent_dim must be an int >= 1"),
    ("wae-penalty-unknown", otgen.WAE, dict(data_shape=(1, 8, 8), latent_dim=2, penalty="kl"), ValueError,
     "penalty must be one of"),
    ("wae-lam-negative", otgen.WAE, dict(data_shape=(1, 8, 8), latent_dim=2, lam=-1), ValueError, "lam must be a number >= 0"),
    ("wae-shape-int", otgen.WAE, dict(data_shape=8, latent_dim=2), ValueError, "data_shape must be a non-empty sequence"),
    ("wae-shape-str", otgen.WAE, dict(data_shape="1,8,8", latent_dim=2), ValueError, "data_shape must be"),
    ("wae-shape-2d", otgen.WAE, dict(data_shape=(8, 8), latent_dim=2), ValueError, r"data_shape must be \(C, H, W\)"),
    ("wae-shape-odd", otgen.WAE, dict(data_shape=(1, 7, 7), latent_dim=2), ValueError, "data_shape .* does not fit"),
    ("wae-kernel-unknown", otgen.WAE, dict(data_shape=(1, 8, 8), latent_dim=2, penalty={"name": "mmd", "kernel": "poly"}),
     ValueError, "penalty.kernel must be one of"),
    ("wae-encoder-unknown", otgen.WAE, dict(data_shape=(1, 8, 8), latent_dim=2, encoder="resnet"), ValueError,
     "encoder.*must be one of"),
    ("wae-width-zero", otgen.WAE, dict(data_shape=(1, 8, 8), latent_dim=2, encoder={"name": "conv", "width": 0}),
     ValueError, "width must be an int >= 1"),
]


@pytest.mark.parametrize("cls, kwargs, exc, match", [c[1:] for c in CONSTRUCTORS], ids=[c[0] for c in CONSTRUCTORS])
def test_constructor_refuses(cls, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("cls, key", [(U, "phi1"), (U, "phi2"), (S, "phi")])
def test_constructor_names_the_conjugate_argument(cls, key):
    with pytest.raises(ValueError, match=key):
        cls(dim=2, **{key: "kll"})


def test_constructor_names_the_network_argument():
    with pytest.raises(ValueError, match="generator"):
        U(dim=2, generator={"name": "conv"})


# ============================================================================ fit

X16 = torch.randn(16, 2, generator=gen(1))


def nan_sampler(n):
    return torch.full((n, 2), float("nan"))


FIT_BAD = [
    # (id, data, kwargs, exception, pattern)
    ("one-side", (X16,), {}, ValueError, r"trains on 2 data set\(s\) \(source, target\), got 1"),
    ("three-sides", (X16, X16, X16), {}, ValueError, "got 3"),
    ("shape-mismatch", (torch.randn(16, 3), X16), {}, ValueError, r"source samples have shape \(3,\).*source_shape \(2,\)"),
    ("target-mismatch", (X16, torch.randn(16, 5)), {}, ValueError, r"target samples have shape \(5,\)"),
    ("1d-data", (torch.randn(16), X16), {}, ValueError, r"source samples must have shape \(n, \*event_shape\)"),
    ("nan-source", (torch.full((16, 2), float("nan")), X16), {}, ValueError, r"source contains NaN or Inf values \(16 of 16"),
    ("inf-target", (X16, torch.full((16, 2), float("inf"))), {}, ValueError, "target contains NaN or Inf"),
    ("empty-source", (torch.zeros(0, 2), X16), {}, ValueError, "source samples must have shape .* n >= 1"),
    ("string-data", ("data.npy", X16), {}, ValueError, "source must be a Tensor of samples or a callable"),
    ("list-data", (X16.tolist(), X16), {}, ValueError, "source must be a Tensor of samples or a callable"),
    ("n-iters-zero", (X16, X16), dict(n_iters=0), ValueError, "n_iters must be an int >= 1"),
    ("n-iters-float", (X16, X16), dict(n_iters=1.0), ValueError, "n_iters must be an int"),
    ("n-iters-str", (X16, X16), dict(n_iters="1"), ValueError, "n_iters must be an int"),
    ("batch-zero", (X16, X16), dict(batch_size=0), ValueError, "batch_size must be an int >= 1"),
    ("batch-float", (X16, X16), dict(batch_size=4.0), ValueError, "batch_size must be an int"),
    ("seed-negative", (X16, X16), dict(seed=-1), ValueError, "seed must be an int >= 0"),
    ("seed-str", (X16, X16), dict(seed="0"), ValueError, "seed must be an int"),
    ("log-every-zero", (X16, X16), dict(log_every=0), ValueError, "log_every must be an int >= 1"),
    ("checkpoint-every-zero", (X16, X16), dict(checkpoint_every=0), ValueError, "checkpoint_every must be an int"),
    ("callback-not-callable", (X16, X16), dict(callbacks=[3]), ValueError, "callbacks must be callables"),
    ("resume-without-out", (X16, X16), dict(resume=True), ValueError, "resume=True .* pass out="),
    ("callable-wrong-shape", (lambda n: torch.randn(n, 3), X16), {}, ValueError, r"source samples have shape \(3,\)"),
    ("callable-wrong-n", (lambda n: torch.randn(n + 1, 2), X16), {}, ValueError,
     r"source\(\d+\) must return a Tensor of shape \(\d+, \*event_shape\)"),
    ("callable-nan", (nan_sampler, X16), {}, ValueError, "source contains NaN or Inf values"),
]


@pytest.mark.parametrize("data, kwargs, exc, match", [c[1:] for c in FIT_BAD], ids=[c[0] for c in FIT_BAD])
def test_fit_refuses(data, kwargs, exc, match):
    model = tiny("EgNOT")
    with pytest.raises(exc, match=match):
        model.fit(*data, **{**dict(n_iters=1, batch_size=4), **kwargs}, **QUIET)
    assert model.step == 0  # refused before any work


def test_fit_of_one_sided_wae_refuses_two_sides_and_batches_of_one():
    with pytest.raises(ValueError, match=r"WAE trains on 1 data set\(s\) \(data\), got 2"):
        tiny_wae().fit(torch.randn(8, 4), torch.randn(8, 4), n_iters=1, batch_size=2, **QUIET)
    with pytest.raises(ValueError, match="at least 2 samples"):
        tiny_wae().fit(torch.randn(8, 4), n_iters=1, batch_size=1, **QUIET)


def test_fit_passes_a_users_own_exception_through():
    def broken(n):
        raise ZeroDivisionError("in the user's sampler")

    with pytest.raises(ZeroDivisionError, match="user's sampler"):
        tiny("EgNOT").fit(broken, X16, n_iters=1, batch_size=4, **QUIET)


@pytest.mark.parametrize("name", ["UOTM", "SJKO"])
def test_fit_accepts_float64_and_numpy_data_like_float32(name):
    """numpy's default dtype is float64: the same steps as on the float32 data."""
    x, y = np.random.default_rng(0).normal(size=(2, 16, 2))
    a = tiny(name).fit(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32), n_iters=1,
                       batch_size=4, **QUIET)
    b = tiny(name).fit(x, torch.tensor(y), n_iters=1, batch_size=4, **QUIET)  # numpy float64, Tensor float64
    pts = torch.randn(3, 2, generator=gen(2))
    assert torch.allclose(a.transport(pts, rng=gen()), b.transport(pts, rng=gen()), atol=1e-5)


def test_fit_accepts_int_data():
    tiny("UOTM").fit(torch.randint(-2, 3, (16, 2)), X16, n_iters=1, batch_size=4, **QUIET)


def test_fit_egnot_accepts_float64_tensors():
    tiny("EgNOT").fit(X16.double(), X16.double(), n_iters=1, batch_size=4, **QUIET)


@pytest.mark.parametrize("returns", [None, "text", "ragged"])
def test_fit_names_a_callable_that_returns_no_tensor(returns):
    fn = {None: lambda n: None, "text": lambda n: "abc", "ragged": lambda n: [[0.0], [0.0, 1.0]]}[returns]
    with pytest.raises((ValueError, TypeError), match="source"):
        tiny("EgNOT").fit(fn, X16, n_iters=1, batch_size=4, **QUIET)


def test_fit_accepts_a_callable_that_returns_nested_lists():
    model = tiny("EgNOT").fit(lambda n: [[0.0, 0.0]] * n, X16, n_iters=1, batch_size=4, **QUIET)
    assert model.step == 1


def test_fit_refuses_complex_data():
    with pytest.raises((ValueError, TypeError), match="source"):
        tiny("EgNOT").fit(torch.zeros(16, 2, dtype=torch.complex64), X16, n_iters=1, batch_size=4, **QUIET)


def test_fit_takes_callbacks_given_as_one_function():
    seen = []
    tiny("EgNOT").fit(X16, X16, n_iters=2, batch_size=4, callbacks=lambda s, m, k: seen.append(s), **QUIET)
    assert seen == [1, 2]


def test_fit_out_that_is_a_file_names_it(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("not a folder")
    with pytest.raises((ValueError, OSError), match="a_file"):
        tiny("EgNOT").fit(X16, X16, n_iters=1, batch_size=4, out=f, **QUIET)


# ============================================================================ transport / sample inputs

BAD_X = [
    # (id, x, exception, pattern)
    ("string", "abc", TypeError, "x must be a Tensor, an array or a list of numbers, got str"),
    ("dict", {"x": 1}, TypeError, "x must be a Tensor, .* got dict"),
    ("none", None, TypeError, "x must be a Tensor, .* got NoneType"),
    ("object-array", np.array([[None, 1]], dtype=object), TypeError, "x must hold real numbers .* dtype object"),
    ("complex-array", np.zeros((3, 2)) + 1j, TypeError, "x must hold real numbers .* complex128"),
    ("complex-tensor", torch.zeros(2, 2, dtype=torch.complex64), TypeError, "x must hold real numbers.*complex64"),
    ("bool-tensor", torch.zeros(3, 2, dtype=torch.bool), TypeError, "x must hold real numbers.*bool"),
    ("ragged-list", [[0.0, 1.0], [2.0]], TypeError, "x must be a Tensor, an array or a list of numbers"),
    ("string-list", [["a", "b"]], TypeError, "x must hold real numbers"),
    ("nan", torch.tensor([[float("nan"), 0.0], [0.0, 0.0]]), ValueError, r"x contains NaN or Inf values \(1 of 2 samples\)"),
    ("inf-numpy", np.array([[np.inf, 0.0]]), ValueError, r"x contains NaN or Inf values \(1 of 1 samples\)"),
    ("empty", torch.zeros(0, 2), ValueError, r"x must hold at least one sample, got shape \(0, 2\)"),
    ("wrong-width", torch.zeros(3, 3), ValueError, r"x must have shape \(n, 2\), got \(3, 3\)"),
    ("one-point-1d", torch.zeros(2), ValueError, r"x must have shape \(n, 2\), got \(2,\)"),
    ("scalar", 1.0, ValueError, r"x must have shape \(n, 2\), got \(\)"),
]


@pytest.mark.parametrize("solver", ["EgNOT", "UOTM", "SJKO"])
@pytest.mark.parametrize("x, exc, match", [c[1:] for c in BAD_X], ids=[c[0] for c in BAD_X])
def test_transport_and_sample_refuse_bad_x(models, solver, x, exc, match):
    model = models[solver]
    with pytest.raises(exc, match=match):
        model.transport(x)
    with pytest.raises(exc, match=match):
        model.sample(x, n_per_x=2)


GOOD_X = [
    ("float64-tensor", lambda x: x.double()),
    ("float64-numpy", lambda x: x.double().numpy()),
    ("float16-tensor", lambda x: x.half().float().half()),  # exact in half precision (rounded first)
    ("list", lambda x: x.tolist()),
    ("tuple-of-tuples", lambda x: tuple(tuple(r) for r in x.tolist())),
    ("big-endian", lambda x: x.double().numpy().astype(">f8")),
    ("reversed-view", lambda x: np.ascontiguousarray(x.numpy()[::-1])[::-1]),
]


@pytest.mark.parametrize("solver", ["EgNOT", "UOTM", "SJKO"])
@pytest.mark.parametrize("convert", [c[1] for c in GOOD_X], ids=[c[0] for c in GOOD_X])
def test_transport_and_sample_accept_other_dtypes_with_the_float32_result(models, solver, convert):
    """float64 (numpy's default), float16, lists, big-endian and strided arrays are cast to float32 on
    the model's device: the same numbers as the float32 input, never a dtype error from inside torch."""
    model = models[solver]
    x = torch.randn(4, 2, generator=gen(5)).half().float()  # exactly representable in every dtype above
    want = model.transport(x, rng=gen())
    got = model.transport(convert(x), rng=gen())
    assert got.dtype == torch.float32 and got.shape == (4, 2)
    assert torch.equal(got, want)
    draws = model.sample(convert(x), n_per_x=3, rng=gen())
    assert draws.shape == (4, 3, 2) and torch.equal(draws, model.sample(x, n_per_x=3, rng=gen()))


@pytest.mark.parametrize("solver", ["EgNOT", "UOTM", "SJKO"])
def test_transport_accepts_int_arrays(models, solver):
    x = np.array([[0, 1], [2, -1]])
    out = models[solver].transport(x, rng=gen())
    assert out.shape == (2, 2) and torch.equal(out, models[solver].transport(torch.tensor(x).float(), rng=gen()))


BAD_N = [0, -1, 1.5, 2.0, True, None, "2", float("nan")]


@pytest.mark.parametrize("solver", ["EgNOT", "UOTM", "SJKO"])
@pytest.mark.parametrize("n_per_x", BAD_N, ids=[repr(v) for v in BAD_N])
def test_sample_refuses_bad_n_per_x(models, solver, n_per_x):
    with pytest.raises(ValueError, match="n_per_x must be an int >= 1"):
        models[solver].sample(torch.zeros(2, 2), n_per_x=n_per_x)


@pytest.mark.parametrize("solver", ["EgNOT", "UOTM", "SJKO"])
def test_sample_accepts_numpy_ints(models, solver):
    assert models[solver].sample(torch.zeros(2, 2), n_per_x=np.int64(3)).shape == (2, 3, 2)


@pytest.mark.parametrize("solver", ["EgNOT", "UOTM", "SJKO"])
@pytest.mark.parametrize("rng", [0, "seed", np.random.default_rng(0)], ids=["int", "str", "numpy-rng"])
def test_transport_names_an_rng_that_is_not_one(models, solver, rng):
    with pytest.raises(TypeError, match="rng must be a torch.Generator or None"):
        models[solver].transport(torch.zeros(2, 2), rng=rng)


@pytest.mark.parametrize("steps, ok", [(0, True), (np.int64(1), True), (-1, False), (1.5, False), ("3", False)])
def test_egnot_sample_checks_steps(models, steps, ok):
    if ok:
        assert models["EgNOT"].sample(torch.zeros(2, 2), 2, steps=steps).shape == (2, 2, 2)
    else:
        with pytest.raises(ValueError, match="steps must be an int >= 0"):
            models["EgNOT"].sample(torch.zeros(2, 2), 2, steps=steps)


@pytest.mark.parametrize("phase, match", [(-1, "phase must be an int >= 0"), (1.0, "phase must be an int"),
                                          (float("nan"), "phase must be an int"), (True, "phase must be an int"),
                                          ("0", "phase must be an int"), (2, r"phase must be < 2")])
def test_sjko_refuses_bad_phase(models, phase, match):
    with pytest.raises(ValueError, match=match):
        models["SJKO"].transport(torch.zeros(2, 2), phase=phase)


def test_sjko_phase_accepts_numpy_ints_and_names_an_untrained_model(models):
    assert models["SJKO"].transport(torch.zeros(2, 2), phase=np.int64(1)).shape == (2, 2)
    with pytest.raises(ValueError, match="phase=0: no phase is trained yet"):
        tiny("SJKO").transport(torch.zeros(2, 2), phase=0)


# -- the WAE's encode / decode / reconstruct / sample / sample_prior

WAE_BAD = [
    # (id, method, input, exception, pattern)
    ("encode-nan", "encode", np.full((2, 4), np.nan), ValueError, r"x contains NaN or Inf values \(2 of 2"),
    ("encode-empty", "encode", np.zeros((0, 4)), ValueError, "x must hold at least one sample"),
    ("encode-string", "encode", "x", TypeError, "x must be a Tensor"),
    ("encode-shape", "encode", np.zeros((2, 3)), ValueError, r"x must have shape \(n, 4\)"),
    ("reconstruct-inf", "reconstruct", np.full((2, 4), np.inf), ValueError, "x contains NaN or Inf"),
    ("reconstruct-complex", "reconstruct", np.zeros((2, 4)) + 1j, TypeError, "x must hold real numbers"),
    ("decode-nan", "decode", torch.full((2, 2), float("nan")), ValueError, "z contains NaN or Inf"),
    ("decode-empty", "decode", torch.zeros(0, 2), ValueError, "z must hold at least one sample"),
    ("decode-none", "decode", None, TypeError, "z must be a Tensor"),
    ("decode-shape", "decode", torch.zeros(2, 3), ValueError, r"z must have shape \(n, 2\)"),
    ("transport-names-z", "transport", torch.zeros(2, 3), ValueError, r"z must have shape \(n, 2\)"),
    ("sample-shape", "sample", torch.zeros(2, 4), ValueError, r"z must have shape \(n, 2\)"),
    ("sample-an-int", "sample", 3, ValueError, r"z must be prior codes .*sample_prior\(n"),
    ("sample-prior-zero", "sample_prior", 0, ValueError, "n must be an int >= 1"),
    ("sample-prior-float", "sample_prior", 2.5, ValueError, "n must be an int >= 1"),
    ("sample-prior-tensor", "sample_prior", torch.zeros(3, 2), ValueError, "n must be an int >= 1"),
]


@pytest.mark.parametrize("method, value, exc, match", [c[1:] for c in WAE_BAD], ids=[c[0] for c in WAE_BAD])
def test_wae_inference_refuses(models, method, value, exc, match):
    with pytest.raises(exc, match=match):
        getattr(models["WAE"], method)(value)


def test_wae_inference_accepts_float64_lists_and_numpy_ints(models):
    wae = models["WAE"]
    x = torch.randn(3, 4, generator=gen(3)).half().float()
    assert torch.equal(wae.encode(x.double().numpy()), wae.encode(x))
    assert torch.equal(wae.reconstruct(x.tolist()), wae.reconstruct(x))
    z = wae.encode(x)
    assert torch.equal(wae.decode(z.double()), wae.decode(z))
    assert wae.sample(wae.sample_prior(np.int64(2)), np.int64(3)).shape == (2, 3, 4)
    assert wae.interpolate(x, x, n_steps=np.int64(3)).shape == (3, 3, 4)
    with pytest.raises(ValueError, match="sample must be True or False"):
        wae.encode(x, sample="yes")
    with pytest.raises(ValueError, match="x1 contains NaN"):
        wae.interpolate(x, torch.full((3, 4), float("nan")))


# ============================================================================ otgen.load

@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("load") / "m.pt"
    tiny("EgNOT").save(path)
    return path


LOAD_BAD = [
    ("unknown-override", dict(epss=0.2), ValueError, r"unknown key epss for EgNOT \(did you mean 'eps'\?\)"),
    ("bad-override-value", dict(eps=-1), ValueError, "eps must be a number > 0"),
    ("bad-override-type", dict(eps="big"), ValueError, "eps must be of type float"),
    ("bad-device", dict(device="tpu"), ValueError, "device must be"),
]


@pytest.mark.parametrize("overrides, exc, match", [c[1:] for c in LOAD_BAD], ids=[c[0] for c in LOAD_BAD])
def test_load_refuses_bad_overrides(saved, overrides, exc, match):
    with pytest.raises(exc, match=match):
        otgen.load(saved, **overrides)


def test_load_refuses_what_is_not_a_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        otgen.load(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(64))
    with pytest.raises(ValueError, match="junk.pt"):
        otgen.load(junk)
    with pytest.raises(ValueError, match="is a directory"):
        otgen.load(tmp_path)
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an otgen model file"):
        otgen.load(tmp_path / "other.pt")


@pytest.mark.parametrize("overrides", [dict(dim=3), dict(hidden=[16])], ids=["dim", "hidden"])
def test_load_names_an_override_that_does_not_fit_the_weights(saved, overrides):
    with pytest.raises(ValueError, match=next(iter(overrides))):
        otgen.load(saved, **overrides)


def test_load_names_a_path_that_is_not_one():
    with pytest.raises((TypeError, ValueError), match="path"):
        otgen.load(None)


# ============================================================================ distributions

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("files")
    np.save(d / "pts.npy", np.random.default_rng(0).normal(size=(10, 2)))
    np.save(d / "obj.npy", np.array([1, None], dtype=object), allow_pickle=True)
    np.save(d / "complex.npy", np.zeros((4, 2)) + 1j)
    np.save(d / "strings.npy", np.array(["a", "b"]))
    np.save(d / "empty.npy", np.zeros((0, 2)))
    np.save(d / "nan.npy", np.full((3, 2), np.nan))
    np.save(d / "scalar.npy", np.float64(3.0))
    np.savez(d / "two.npz", a=np.zeros((3, 2)), b=np.zeros(3))
    np.savez(d / "none.npz")
    np.savez(d / "renamed.npy", a=np.zeros((3, 2)))
    os.replace(d / "renamed.npy.npz", d / "renamed.npy")
    np.save(d / "single.npz.npy", np.zeros((3, 2)))
    os.replace(d / "single.npz.npy", d / "single.npz")
    (d / "junk.npy").write_bytes(os.urandom(64))
    (d / "text.npy").write_text("hello")
    (d / "empty_file.npy").write_bytes(b"")
    (d / "truncated.npy").write_bytes((d / "pts.npy").read_bytes()[:100])
    (d / "pts.csv").write_text("1,2\n")
    (d / "folder.npy").mkdir()
    with zipfile.ZipFile(d / "badzip.npz", "w") as z:
        z.writestr("a.npy", b"garbage")
    return d


FILE_BAD = [
    # (id, file, kwargs, exception, pattern)
    ("missing", "missing.npy", {}, FileNotFoundError, "missing.npy"),
    ("csv", "pts.csv", {}, ValueError, r"path must end in .npy or .npz.*pts.csv"),
    ("object-array", "obj.npy", {}, ValueError, "obj.npy.*Object arrays"),
    ("complex", "complex.npy", {}, ValueError, "complex.npy.*complex128.*real numbers"),
    ("strings", "strings.npy", {}, ValueError, "strings.npy.*dtype <U1"),
    ("empty-array", "empty.npy", {}, ValueError, r"empty.npy.*non-empty.*\(0, 2\)"),
    ("nan", "nan.npy", {}, ValueError, "nan.npy.*non-finite"),
    ("0-d", "scalar.npy", {}, ValueError, r"scalar.npy.*shape \(\)"),
    ("random-bytes", "junk.npy", {}, ValueError, "junk.npy' is not a .npy file"),
    ("text", "text.npy", {}, ValueError, "text.npy' is not a .npy file"),
    ("empty-file", "empty_file.npy", {}, ValueError, "empty_file.npy' is not a .npy file.*0 bytes"),
    ("truncated", "truncated.npy", {}, ValueError, "cannot read .*truncated.npy"),
    ("folder", "folder.npy", {}, ValueError, "folder.npy' is a folder"),
    ("npz-named-npy", "renamed.npy", {}, ValueError, "renamed.npy' is a .npz archive"),
    ("npy-named-npz", "single.npz", {}, ValueError, "single.npz' holds a single .npy array"),
    ("zip-without-npy", "badzip.npz", {}, ValueError, "'a' of .*badzip.npz' is not a .npy array"),
    ("no-arrays", "none.npz", {}, ValueError, "none.npz' holds no arrays"),
    ("missing-key", "two.npz", dict(key="c"), ValueError, r"key='c' not in .*two.npz.*\['a', 'b'\]"),
    ("int-key", "two.npz", dict(key=0), ValueError, "key must be the name"),
    ("key-on-npy", "pts.npy", dict(key="a"), ValueError, "key applies only to .npz files"),
]


@pytest.mark.parametrize("name", ["empirical", "npy"])
@pytest.mark.parametrize("file, kwargs, exc, match", [c[1:] for c in FILE_BAD], ids=[c[0] for c in FILE_BAD])
def test_file_readers_name_the_file(files, name, file, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        distributions.make(name, path=files / file, **kwargs)


@pytest.mark.parametrize("path", [None, 3, ["a.npy"]], ids=["none", "int", "list"])
def test_load_array_names_a_path_that_is_not_one(path):
    with pytest.raises(TypeError, match="path must be a file path"):
        distributions.load_array(path)


MAKE_BAD = [
    ("unknown-name", "swissroll", {}, r"unknown distribution 'swissroll' \(did you mean 'swiss_roll'\?\)"),
    ("int-name", 3, {}, "name must be a str"),
    ("unknown-argument", "swiss_roll", dict(nois=0.1), "unknown argument 'nois'; accepted arguments: noise, scale"),
    ("negative-noise", "swiss_roll", dict(noise=-1), r"noise must be a finite number in \[0, inf\)"),
    ("string-noise", "moons", dict(noise="a"), "noise must be a finite number"),
    ("gaussian-nothing", "gaussian", {}, "gaussian needs dim= or mean="),
    ("gaussian-dim-zero", "gaussian", dict(dim=0), "dim must be an int >= 1"),
    ("gaussian-dim-float", "gaussian", dict(dim=2.0), "dim must be an int >= 1"),
    ("gaussian-cov-not-psd", "gaussian", dict(mean=[0, 0], cov=[[1, 2], [2, 1]]), "cov must be positive definite"),
    ("gaussian-cov-shape", "gaussian", dict(mean=[0, 0], cov=[[1, 0, 0]]), r"cov must have shape \(2, 2\)"),
    ("gaussian-mean-str", "gaussian", dict(mean="ab"), "mean must be a Tensor, an array or a list of numbers"),
    ("gaussian-mean-nan", "gaussian", dict(mean=[np.nan]), "mean has non-finite entries"),
    ("gaussian-mean-empty", "gaussian", dict(mean=[]), "mean must have at least one entry"),
    ("gaussian-mean-complex", "gaussian", dict(mean=[1j, 0]), "mean must hold real numbers"),
    ("normal-shape-zero", "normal", dict(shape=[1, 0]), "shape must be a non-empty list of ints >= 1"),
    ("normal-both", "normal", dict(dim=2, shape=[2]), "exactly one of dim="),
    ("mixture-negative-weight", "gaussian_mixture", dict(weights=[-1, 2], means=[[0], [1]], covs=[[[1]], [[1]]]),
     "weights must be finite, non-negative"),
    ("mixture-string-weights", "gaussian_mixture", dict(weights="ab", means=[[0], [1]], covs=[[[1]], [[1]]]),
     "weights must be a Tensor, an array or a list of numbers"),
    ("mixture-means-mismatch", "gaussian_mixture", dict(weights=[1, 1], means=[[0]], covs=[[[1]]]),
     r"means must have shape \(K=2, D\)"),
    ("circles-factor-one", "circles", dict(factor=1.0), r"factor must be a finite number in \(0, 1\)"),
    ("checkerboard-cells-float", "checkerboard", dict(cells=4.0), "cells must be an int >= 2"),
    ("spiral-arms-zero", "spiral", dict(n_arms=0), "n_arms must be an int >= 1"),
    ("empirical-nothing", "empirical", {}, "empirical needs exactly one of path="),
    ("empirical-samples-str", "empirical", dict(samples="abc"), "samples must be a Tensor, an array or a list"),
    ("empirical-samples-ragged", "empirical", dict(samples=[[1, 2], [3]]), "samples must be .*numpy cannot read as an array"),
    ("empirical-samples-dict", "empirical", dict(samples={"a": 1}), "samples must be a Tensor, an array or a list"),
    ("npy-bad-layout", "npy", dict(samples=np.zeros((2, 5, 5, 5)), layout="xyz"), "layout must be None"),
    ("npy-size-on-points", "npy", dict(samples=np.zeros((4, 2)), size=8), "size applies only to image arrays"),
    ("npy-images-out-of-range", "npy", dict(samples=np.full((2, 8, 8), 3.0)), "outside value_range"),
    ("npy-images-nan", "npy", dict(samples=np.full((2, 8, 8), np.nan)), "non-finite"),
    ("digits-size", "digits", dict(size=0), "size must be one of"),
    ("digits-classes", "digits", dict(classes=[11]), "classes must be ints 0..9"),
    ("digits-split", "digits", dict(split="val"), "split must be one of"),
    ("digits-colored", "digits", dict(colored="yes"), "colored must be True or False"),
]


@pytest.mark.parametrize("name, kwargs, match", [c[1:] for c in MAKE_BAD], ids=[c[0] for c in MAKE_BAD])
def test_make_refuses(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        distributions.make(name, **kwargs)


def test_image_readers_name_what_is_wrong(files, tmp_path):
    with pytest.raises(FileNotFoundError, match="nofolder"):
        distributions.image_folder(tmp_path / "nofolder")
    with pytest.raises(ValueError, match="must be a folder of images"):
        distributions.image_folder(files / "pts.npy")
    with pytest.raises(ValueError, match="holds no image files"):
        distributions.image_folder(files / "folder.npy")
    with pytest.raises(ValueError, match="junk.npy' has magic number"):
        distributions.mnist_idx(files / "junk.npy")
    with pytest.raises(ValueError, match="empty_file.npy' is truncated"):
        distributions.mnist_idx(files / "empty_file.npy")
    with pytest.raises(ValueError, match="split must be one of"):
        distributions.mnist_idx(files, split="val")
    with pytest.raises(ValueError, match="cannot read CIFAR-10 batch .*junk.npy"):
        distributions.cifar10(files / "junk.npy")
    with pytest.raises(ValueError, match=r"pts.npy' has shape \(10, 2\): image arrays must be"):
        distributions.npy_images(files / "pts.npy")
    np.save(tmp_path / "img.npy", np.zeros((3, 8, 8), np.uint8))
    for kw, match in [(dict(size=0), "size must be None"), (dict(channels=2), "channels must be None"),
                      (dict(limit=0), "limit must be None"), (dict(layout="nchw"), "layout='nchw' needs a 4-D")]:
        with pytest.raises(ValueError, match=match):
            distributions.npy_images(tmp_path / "img.npy", **kw)


@pytest.mark.parametrize("n", [0, -2, 2.0, True, "3", None])
def test_samplers_refuse_bad_n(n):
    with pytest.raises(ValueError, match="n must be a positive int"):
        distributions.SwissRoll()(n)


def test_samplers_take_numpy_ints_and_name_a_generator_that_is_not_one(files):
    assert distributions.SwissRoll()(np.int64(3)).shape == (3, 2)
    assert distributions.make("empirical", path=files / "pts.npy")(np.int32(4)).shape == (4, 2)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        distributions.Moons()(3, generator=0)


# ============================================================================ ground-truth pairs

GT_BAD = [
    ("gauss-dim-zero", lambda: groundtruth.GaussianEOTPair(dim=0, eps=0.1), "dim must be an int >= 1"),
    ("gauss-dim-float", lambda: groundtruth.GaussianEOTPair(dim=2.0, eps=0.1), "dim must be an int >= 1"),
    ("gauss-dim-str", lambda: groundtruth.GaussianEOTPair(dim="2", eps=0.1), "dim must be an int"),
    ("gauss-eps-zero", lambda: groundtruth.GaussianEOTPair(dim=2, eps=0), "eps must be a positive finite number"),
    ("gauss-eps-inf", lambda: groundtruth.GaussianEOTPair(dim=2, eps=float("inf")), "eps must be a positive finite"),
    ("gauss-eps-str", lambda: groundtruth.GaussianEOTPair(dim=2, eps="0.1"), "eps must be a positive finite"),
    ("gauss-seed-negative", lambda: groundtruth.GaussianEOTPair(dim=2, eps=0.1, seed=-1), "seed must be a non-negative"),
    ("gauss-mean-scale", lambda: groundtruth.GaussianEOTPair(dim=2, eps=0.1, mean_scale=-1), "mean_scale must be"),
    ("mix-components-zero", lambda: groundtruth.MixtureEOTPair(dim=2, eps=0.1, n_components=0),
     "n_components must be an int >= 1"),
    ("mix-components-float", lambda: groundtruth.MixtureEOTPair(dim=2, eps=0.1, n_components=2.5),
     "n_components must be an int"),
    ("mix-components-bool", lambda: groundtruth.MixtureEOTPair(dim=2, eps=0.1, n_components=True), "n_components"),
    ("mix-eps-negative", lambda: groundtruth.MixtureEOTPair(dim=2, eps=-0.1), "eps must be a positive finite"),
    ("mix-radius-zero", lambda: groundtruth.MixtureEOTPair(dim=2, eps=0.1, mean_radius=0), "mean_radius must be"),
    ("mix-source-str", lambda: groundtruth.MixtureEOTPair(dim=2, eps=0.1, source="moons"), "source must be None"),
    ("plan-cov-not-spd", lambda: groundtruth.entropic_gaussian_plan(np.zeros(2), -np.eye(2), np.zeros(2), np.eye(2), 0.1),
     "cov_x must be positive definite"),
    ("plan-dims", lambda: groundtruth.entropic_gaussian_plan(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3), 0.1),
     r"mean_y must have shape \(2,\)"),
    ("plan-mean-str", lambda: groundtruth.entropic_gaussian_plan("ab", np.eye(2), np.zeros(2), np.eye(2), 0.1),
     "mean_x must be a Tensor, an array or a list of numbers"),
    ("jko-h-zero", lambda: groundtruth.jko_gaussian_step(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), 0), "h must be"),
    ("linear-wae-latent", lambda: groundtruth.linear_wae_optimum(np.eye(3), 3), "latent_dim must be an int with 1 <="),
]


@pytest.mark.parametrize("build, match", [c[1:] for c in GT_BAD], ids=[c[0] for c in GT_BAD])
def test_groundtruth_refuses(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("pair", [groundtruth.GaussianEOTPair(dim=2, eps=0.1),
                                  groundtruth.MixtureEOTPair(dim=2, eps=0.1, n_components=2)],
                         ids=["gaussian", "mixture"])
def test_pair_conditionals_check_x(pair):
    for x, match in [(np.zeros((3, 3)), r"x must have shape \(n, 2\)"), (np.full((3, 2), np.nan), "x has non-finite"),
                     ("x", "x must be a Tensor, an array or a list of numbers"),
                     (np.zeros((3, 2)) + 1j, "x must hold real numbers")]:
        with pytest.raises(ValueError, match=match):
            pair.conditional_moments(x)
    with pytest.raises(ValueError, match="n_per_x must be"):
        pair.conditional_sample(torch.zeros(3, 2), 0)
    mean64, _ = pair.conditional_moments(np.zeros((3, 2)))  # float64 arrays: accepted
    assert mean64.shape == (3, 2) and torch.isfinite(mean64).all()


# ============================================================================ metrics

P20 = np.random.default_rng(0).normal(size=(20, 2))
PAIR = groundtruth.GaussianEOTPair(dim=2, eps=0.1)


def zero_sampler(x, k):
    return torch.zeros(len(x), k, 2)


METRIC_BAD = [
    ("w2-dims", lambda: metrics.w2(P20, np.zeros((5, 3))), r"y must have shape \(\*, 2\)"),
    ("w2-empty", lambda: metrics.w2(np.zeros((0, 2)), P20), "x and y must hold at least one point"),
    ("w2-nan", lambda: metrics.w2(np.full((3, 2), np.nan), P20), "x has non-finite entries"),
    ("w2-1d", lambda: metrics.w2(np.zeros(3), P20), r"x must have shape"),
    ("w2-string", lambda: metrics.w2("abc", P20), "x must be a numeric array"),
    ("w2-none", lambda: metrics.w2(None, P20), "x must be a numeric array .* NoneType"),
    ("w2-complex", lambda: metrics.w2(P20 + 1j, P20), "x must hold real numbers"),
    ("w2-weights-sum", lambda: metrics.w2(P20, P20, a=np.ones(20)), "a must be non-negative and sum to 1"),
    ("w2-weights-shape", lambda: metrics.w2(P20, P20, b=np.ones(3) / 3), r"b must have shape \(20\)"),
    ("mmd-dims", lambda: metrics.mmd(P20, np.zeros((5, 3))), r"y must have shape \(m, 2\) like x"),
    ("mmd-one-point", lambda: metrics.mmd(P20[:1], P20), "x must hold at least 2 points"),
    ("mmd-nan-tensor", lambda: metrics.mmd(torch.full((3, 2), float("nan")), P20), "x has non-finite entries"),
    ("mmd-bandwidth-zero", lambda: metrics.mmd(P20, P20, bandwidth=0), "bandwidth must be a positive finite number"),
    ("mmd-bandwidth-str", lambda: metrics.mmd(P20, P20, bandwidth="1"), "bandwidth must be a positive"),
    ("mmd-kernel", lambda: metrics.mmd(P20, P20, kernel="imq"), "kernel must be 'rbf'"),
    ("mmd-complex-tensor", lambda: metrics.mmd(torch.tensor(P20 + 1j), P20), "x must hold real numbers"),
    ("mmd-3d", lambda: metrics.mmd(np.zeros((3, 2, 2)), P20), r"x must have shape \(n, D\)"),
    ("bw2-uvp-dims", lambda: metrics.bw2_uvp(P20, np.zeros(3), np.eye(3)), r"mean must have shape \(2\)"),
    ("bw2-uvp-one", lambda: metrics.bw2_uvp(P20[:1], np.zeros(2), np.eye(2)), "samples must hold at least 2 points"),
    ("bw2-uvp-cov", lambda: metrics.bw2_uvp(P20, np.zeros(2), -np.eye(2)), "cov must be positive semidefinite"),
    ("bw2-uvp-zero-cov", lambda: metrics.bw2_uvp(P20, np.zeros(2), np.zeros((2, 2))), "cov must have a positive trace"),
    ("bw2-dims", lambda: metrics.bw2(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3)), r"mean2 must have shape \(2\)"),
    ("bw2-empty", lambda: metrics.bw2(np.zeros(0), np.eye(0), np.zeros(0), np.eye(0)), "mean1 must have shape .* D >= 1"),
    ("cbw2-conditions", lambda: metrics.cbw2_uvp(zero_sampler, PAIR, n_conditions=0), "n_conditions must be an int >= 1"),
    ("cbw2-per-condition", lambda: metrics.cbw2_uvp(zero_sampler, PAIR, n_per_condition=1),
     "n_per_condition must be an int >= 2"),
    ("cbw2-wrong-shape", lambda: metrics.cbw2_uvp(lambda x, k: torch.zeros(len(x), 2), PAIR, n_conditions=3,
                                                  n_per_condition=2), "the model's samples must have shape"),
    ("cbw2-not-a-model", lambda: metrics.cbw2_uvp(3, PAIR, n_conditions=3, n_per_condition=2),
     "model_or_sampler must have .sample"),
    ("cbw2-nan-draws", lambda: metrics.cbw2_uvp(lambda x, k: torch.full((len(x), k, 2), float("nan")), PAIR,
                                                n_conditions=3, n_per_condition=2), "the model's samples has non-finite"),
    ("cbw2-not-a-pair", lambda: metrics.cbw2_uvp(zero_sampler, "pair", n_conditions=3, n_per_condition=2),
     "pair must be a ground-truth pair"),
    ("cbw2-x-dims", lambda: metrics.cbw2_uvp(zero_sampler, PAIR, x=np.zeros((3, 3)), n_per_condition=2),
     r"x must have shape \(n, 2\)"),
    ("scores-not-a-pair", lambda: metrics.conditional_scores(zero_sampler, object(), n_conditions=3, n_per_condition=2),
     "pair must be a ground-truth pair"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in METRIC_BAD], ids=[c[0] for c in METRIC_BAD])
def test_metrics_refuse(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_metrics_accept_float32_tensors_lists_and_ints_alike():
    ref = metrics.w2(P20, P20[::-1])
    assert metrics.w2(torch.tensor(P20, dtype=torch.float64), P20[::-1].tolist()) == pytest.approx(ref)
    assert metrics.mmd(torch.tensor(P20), torch.tensor(P20[::-1].copy())) == pytest.approx(
        metrics.mmd(P20, P20[::-1]), abs=1e-12)
    assert np.isfinite(metrics.mmd(np.arange(10).reshape(5, 2), P20))


IMAGE_BAD = [
    ("fd-dims", lambda ev: image_metrics.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4))), ValueError,
     r"features must be \(n, k\) and \(m, k\)"),
    ("fd-nan", lambda ev: image_metrics.frechet_distance(np.full((5, 3), np.nan), np.zeros((5, 3))), ValueError,
     "features_x has non-finite values"),
    ("fd-string", lambda ev: image_metrics.frechet_distance("a", np.zeros((5, 3))), TypeError, "features_x must be"),
    ("hue-count", lambda ev: image_metrics.hue_error(torch.zeros(2, 3, 8, 8), torch.zeros(3, 3, 8, 8)), ValueError,
     "x and y must hold the same number of images"),
    ("hue-grey", lambda ev: image_metrics.hue_error(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8)), ValueError,
     r"must be RGB images \(n, 3, H, W\)"),
    ("hue-nan", lambda ev: image_metrics.stroke_hue(torch.full((2, 3, 8, 8), float("nan"))), ValueError,
     "images have non-finite values"),
    ("outliers-shapes", lambda ev: image_metrics.outlier_share(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 4, 4),
                                                              torch.zeros(2, 1, 8, 8)), ValueError, "same image shape"),
    ("outliers-empty", lambda ev: image_metrics.outlier_share(torch.zeros(2, 1, 8, 8), torch.zeros(0, 1, 8, 8),
                                                             torch.zeros(2, 1, 8, 8)), ValueError, "at least one image"),
    ("outliers-batch", lambda ev: image_metrics.outlier_share(torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 4),
                                                             batch_size=0), ValueError, "batch_size must be an int >= 1"),
    ("classifier-2d", lambda ev: image_metrics.to_classifier_input(torch.zeros(2, 8)), ValueError,
     r"images must have shape \(n, C, H, W\)"),
    ("classifier-nan", lambda ev: image_metrics.to_classifier_input(torch.full((2, 1, 8, 8), float("nan"))), ValueError,
     "images have non-finite values"),
    ("evaluator-batch", lambda ev: image_metrics.digits_evaluator(batch_size=0), ValueError, "batch_size must be an int"),
    ("evaluator-weights", lambda ev: image_metrics.digits_evaluator(path="/nonexistent/w.pt"), FileNotFoundError,
     "weights not found at /nonexistent/w.pt"),
    ("ev-fd-2d", lambda ev: ev.frechet_distance(torch.zeros(5, 8), torch.zeros(5, 8)), ValueError,
     r"images must have shape \(n, C, H, W\)"),
    ("ev-fd-empty", lambda ev: ev.frechet_distance(torch.zeros(0, 1, 16, 16), torch.zeros(5, 1, 16, 16)), ValueError,
     "n >= 1"),
    ("ev-predict-string", lambda ev: ev.predict("abc"), TypeError, "images must be a tensor or an array"),
    ("ev-labels-shape", lambda ev: ev.accuracy(torch.zeros(5, 1, 16, 16), torch.zeros(4)), ValueError,
     r"labels must have shape \(5,\)"),
    ("ev-labels-string", lambda ev: ev.accuracy(torch.zeros(5, 1, 16, 16), "abc"), TypeError, "labels must be"),
    ("ev-threshold", lambda ev: ev.coverage(torch.zeros(5, 1, 16, 16), threshold=-1), ValueError,
     r"threshold must be a fraction in \[0, 1\]"),
    ("ev-threshold-str", lambda ev: ev.coverage(torch.zeros(5, 1, 16, 16), threshold="a"), ValueError, "threshold"),
    ("ev-target-range", lambda ev: ev.translation_scores(torch.zeros(5, 1, 16, 16), torch.zeros(5, 1, 16, 16), target=11),
     ValueError, r"target must name classes of the classifier \(0..9\)"),
    ("ev-target-str", lambda ev: ev.translation_scores(torch.zeros(5, 1, 16, 16), torch.zeros(5, 1, 16, 16), target="3"),
     ValueError, "target must be a class"),
]


@pytest.fixture(scope="module")
def evaluator():
    return image_metrics.digits_evaluator()


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in IMAGE_BAD], ids=[c[0] for c in IMAGE_BAD])
def test_image_metrics_refuse(evaluator, call, exc, match):
    with pytest.raises(exc, match=match):
        call(evaluator)


def test_image_metrics_accept_float64_and_numpy_images(evaluator):
    x = torch.rand(6, 1, 16, 16, generator=gen(4)) * 2 - 1
    ref = evaluator.frechet_distance(x, x.flip(0))
    assert evaluator.frechet_distance(x.double().numpy(), x.flip(0).double()) == pytest.approx(ref, rel=1e-5)
    assert evaluator.translation_scores(x, x, target=np.int64(3))["content"] == 0.0
