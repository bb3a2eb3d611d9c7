import math

import pytest
import torch

from otgen.conjugates import CONJUGATES, KL, ChiSquare, Conjugate, Linear, Softplus, make_conjugate

SMOOTH = ("kl", "chi", "softplus")
S0 = 30.0  # KL's default threshold


def _value_and_grad(phi, s):
    s = s.detach().clone().requires_grad_(True)
    v = phi(s)
    (g,) = torch.autograd.grad(v.sum(), s)
    return v.detach(), g


def _legendre(psi, s, t_max, h=5e-4):
    """sup_{0 <= t <= t_max} [s·t − psi(t)] on a grid of step h (1 is a node), refined by a parabola
    through the best node and its neighbours (float64)."""
    t = torch.arange(0, round(t_max / h) + 1, dtype=torch.float64) * h
    obj = s[:, None] * t[None, :] - psi(t)[None, :]  # psi = +inf off its domain -> -inf
    i = obj.argmax(dim=1).clamp(1, t.numel() - 2)
    rows = torch.arange(len(s))
    y0, y1, y2 = obj[rows, i - 1], obj[rows, i], obj[rows, i + 1]
    best = obj.max(dim=1).values
    c = 0.5 * (y0 + y2 - 2 * y1)
    b = 0.5 * (y2 - y0)
    ok = torch.isfinite(y0) & torch.isfinite(y2) & (c < 0) & (y1 == best)
    refined = torch.where(ok, y1 - b * b / (4 * torch.where(ok, c, -1.0)), best)
    return refined


# base grid of s per conjugate (scaled by alpha) and a t range containing every maximiser
_S_RANGE = {"linear": (-5.0, 5.0, 5.0), "kl": (-4.0, 3.0, 21.0), "chi": (-5.0, 5.0, 4.0),
            "softplus": (-4.0, 4.0, 2.0)}


@pytest.mark.parametrize("name", CONJUGATES)
@pytest.mark.parametrize("alpha", [1.0, 0.25, 2.5])
def test_equals_numerical_legendre_transform_of_alpha_psi(name, alpha):
    phi = make_conjugate(name, alpha)
    lo, hi, t_max = _S_RANGE[name]
    s = alpha * torch.linspace(lo, hi, 29, dtype=torch.float64)  # maximiser t of alpha·Psi depends on s/alpha
    numeric = _legendre(phi.psi, s, t_max)
    err = (phi(s) - numeric).abs().max().item()
    assert err < 1e-6 * max(1.0, alpha), (name, alpha, err)


@pytest.mark.parametrize("name", CONJUGATES)
@pytest.mark.parametrize("alpha", [1.0, 0.1, 7.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normalised_value_zero_and_slope_one_at_zero(name, alpha, dtype):
    phi = make_conjugate(name, alpha)
    v, g = _value_and_grad(phi, torch.zeros(3, dtype=dtype))
    assert v.dtype == dtype and torch.equal(v, torch.zeros(3, dtype=dtype))
    assert torch.allclose(g, torch.ones(3, dtype=dtype), atol=1e-6, rtol=0)
    assert phi.psi(torch.tensor([1.0], dtype=torch.float64)).item() == 0.0  # Psi(1) = 0


def test_closed_forms():
    s = torch.linspace(-6, 6, 49, dtype=torch.float64)
    assert torch.equal(make_conjugate("linear")(s), s)
    assert torch.allclose(make_conjugate("kl")(s), torch.exp(s) - 1, rtol=1e-14, atol=1e-15)
    y = s.clamp(min=-2)
    assert torch.allclose(make_conjugate("chi")(s), 0.25 * y ** 2 + y, rtol=1e-14, atol=1e-15)
    sp = 2 * torch.nn.functional.softplus(s) - 2 * math.log(2)
    assert torch.allclose(make_conjugate("softplus")(s), sp, rtol=1e-12, atol=1e-12)
    assert torch.all(make_conjugate("chi")(torch.tensor([-2.0, -3.0, -1e6])) == -1.0)
    # alpha scaling, written out
    assert torch.allclose(make_conjugate("kl", 2.0)(s), 2.0 * (torch.exp(s / 2.0) - 1), rtol=1e-14)
    assert torch.equal(make_conjugate("linear", 3.0)(s), s)


@pytest.mark.parametrize("name", CONJUGATES)
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_convex_and_non_decreasing(name, alpha):
    phi = make_conjugate(name, alpha)
    s = torch.linspace(-40, 40, 8001, dtype=torch.float64)  # crosses KL's switch at alpha·30
    v, g = _value_and_grad(phi, s)
    scale = 1e-12 * (v.abs() + 1)
    d1 = v[1:] - v[:-1]
    d2 = v[2:] - 2 * v[1:-1] + v[:-2]
    assert torch.all(d1 >= -scale[1:]), name
    assert torch.all(d2 >= -1e3 * scale[1:-1]), name
    assert torch.all(g >= 0)
    assert torch.all(g[1:] >= g[:-1] * (1 - 1e-12))  # slope non-decreasing


def test_kl_exact_below_threshold_and_c1_tangent_above():
    phi = make_conjugate("kl")
    assert isinstance(phi, KL) and phi.threshold == S0
    s = torch.linspace(-50, S0, 1001, dtype=torch.float64)
    assert torch.equal(phi(s), torch.expm1(s))  # bit-exact below the threshold
    above = torch.tensor([S0 + 1e-9, 31.0, 100.0, 1e4], dtype=torch.float64)
    tangent = math.expm1(S0) + math.exp(S0) * (above - S0)
    assert torch.allclose(phi(above), tangent, rtol=1e-15)
    # continuous and C¹ at s0: one-sided values and slopes agree
    eps = 1e-7
    (vl, vr), (gl, gr) = _value_and_grad(phi, torch.tensor([S0 - eps, S0 + eps], dtype=torch.float64))
    assert abs(vr - vl) / math.exp(S0) < 3 * eps
    assert abs(gr - gl) / math.exp(S0) < 3 * eps
    assert gr == math.exp(S0)
    # with alpha the switch moves to alpha·s0
    phi2 = make_conjugate("kl", 2.0)
    s = torch.tensor([59.0, 60.0, 61.0], dtype=torch.float64)
    v, g = _value_and_grad(phi2, s)
    assert v[0] == 2.0 * math.expm1(29.5) and v[1] == 2.0 * math.expm1(30.0)
    assert torch.allclose(g, torch.full((3,), math.exp(30.0), dtype=torch.float64).minimum(torch.exp(s / 2)),
                          rtol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kl_finite_value_and_gradient_at_huge_arguments(dtype):
    phi = make_conjugate("kl")
    s = torch.tensor([1e3, 1e6, -1e6], dtype=dtype)
    v, g = _value_and_grad(phi, s)
    assert torch.all(torch.isfinite(v)) and torch.all(torch.isfinite(g))
    e30 = torch.exp(torch.tensor(S0, dtype=dtype))
    assert torch.allclose(g, torch.stack([e30, e30, torch.zeros((), dtype=dtype)]), rtol=1e-6)
    assert 0 < v[0] < v[1] and v[2] == -1.0
    # the plain formula does overflow here in float32: the guard is what keeps this finite
    if dtype == torch.float32:
        assert torch.isinf(torch.exp(torch.tensor(1e3, dtype=dtype)))


def test_chi_kink_gradient_finite_and_continuous():
    phi = make_conjugate("chi")
    s = torch.tensor([-2.0 - 1e-6, -2.0, -2.0 + 1e-6, -5.0, 0.0], dtype=torch.float64)
    v, g = _value_and_grad(phi, s)
    assert torch.all(torch.isfinite(g))
    assert g[1] == 0.0 and g[3] == 0.0 and g[4] == 1.0  # slope ½y + 1 vanishes at −2
    assert abs(g[0]) < 1e-6 and abs(g[2]) < 1e-6
    assert torch.allclose(v[:3], torch.full((3,), -1.0, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("name", CONJUGATES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_nan_anywhere_on_a_wide_grid(name, dtype):
    s = torch.cat([torch.linspace(-1e4, 1e4, 2001), torch.linspace(-50, 50, 1001),
                   torch.tensor([-1e6, 1e6, -2.0, 0.0, S0, 88.0, 89.0, 710.0])]).to(dtype)
    for alpha in (0.01, 1.0, 100.0):
        v, g = _value_and_grad(make_conjugate(name, alpha), s)
        assert torch.all(torch.isfinite(v)), (name, alpha)
        assert torch.all(torch.isfinite(g)), (name, alpha)


@pytest.mark.parametrize("name", SMOOTH)
def test_large_alpha_approaches_linear(name):
    s = torch.linspace(-3, 3, 61, dtype=torch.float64)
    errs = []
    for alpha in (10.0, 100.0, 1000.0):
        err = (make_conjugate(name, alpha)(s) - s).abs().max().item()
        assert err <= 9.0 / alpha  # ≈ Psi*''(0)·s²/(2·alpha), Psi*''(0) ≤ 1
        errs.append(err)
    assert errs[1] < errs[0] / 5 and errs[2] < errs[1] / 5
    assert (make_conjugate(name, 1e6)(s) - s).abs().max() < 1e-5


def test_alpha_can_be_reassigned_and_is_validated():
    phi = make_conjugate("kl", 1.0)
    s = torch.linspace(-3, 3, 13, dtype=torch.float64)
    phi.alpha = 4
    assert phi.alpha == 4.0 and isinstance(phi.alpha, float)
    assert torch.equal(phi(s), make_conjugate("kl", 4.0)(s))
    for bad in (0.0, -1.0, float("nan"), float("inf"), "2", True, None):
        with pytest.raises(ValueError, match="alpha"):
            phi.alpha = bad
    assert phi.alpha == 4.0


def test_make_conjugate_names_types_and_repr():
    assert CONJUGATES == ("linear", "kl", "chi", "softplus")
    kinds = {"linear": Linear, "kl": KL, "chi": ChiSquare, "softplus": Softplus}
    for name, cls in kinds.items():
        phi = make_conjugate(name, 0.5)
        assert type(phi) is cls and isinstance(phi, Conjugate)
        assert phi.name == name and phi.alpha == 0.5 and "alpha=0.5" in repr(phi)
    x = torch.randn(2, 3, 4, dtype=torch.float32)
    for name in CONJUGATES:
        out = make_conjugate(name, 2.0)(x)
        assert out.shape == x.shape and out.dtype == x.dtype
    assert make_conjugate("linear")(x) is not x  # a new tensor, never the input itself


@pytest.mark.parametrize("bad", ["k_l", "identity", "", "chi2", None, 1])  # "KL" is kl (tests/test_registry.py)
def test_unknown_name_lists_accepted_names(bad):
    with pytest.raises(ValueError) as info:
        make_conjugate(bad)
    msg = str(info.value)
    assert repr(bad) in msg and all(n in msg for n in CONJUGATES)


@pytest.mark.parametrize("alpha", [0, 0.0, -0.5, float("nan"), float("inf"), -float("inf")])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match=r"alpha must be a number > 0"):
        make_conjugate("softplus", alpha)


def test_kl_threshold_validated():
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            KL(threshold=bad)
    phi = KL(threshold=5.0)
    s = torch.tensor([4.0, 6.0], dtype=torch.float64)
    assert torch.allclose(phi(s), torch.tensor([math.expm1(4.0), math.expm1(5.0) + math.exp(5.0)],
                                                dtype=torch.float64), rtol=1e-15)
    # the guarded KL is exactly the conjugate of KL with density ratios capped at e^threshold
    assert math.isinf(phi.psi(torch.tensor([math.exp(5.0) * 1.01], dtype=torch.float64)).item())
