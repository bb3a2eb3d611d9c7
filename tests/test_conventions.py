"""The eps converters: groundtruth.md §1.1 table, round trips, and POT's reg pinned on a toy problem."""

import math

import numpy as np
import ot
import pytest

from otgen.groundtruth import conventions as cv


def test_table_values():
    eps = 0.3
    assert cv.eps_to_pot_reg(eps) == pytest.approx(0.6)  # M = ot.dist (‖x−y‖²): reg = 2 eps
    assert cv.eps_to_pot_reg(eps, cost="sqeuclidean") == pytest.approx(0.6)
    assert cv.eps_to_pot_reg(eps, cost="half_sqeuclidean") == pytest.approx(0.3)  # M = ½ ot.dist: reg = eps
    assert cv.eps_to_janati_sigma(eps) == pytest.approx(math.sqrt(0.3))  # sigma² = eps
    assert cv.eps_to_mallasto_eps(eps) == pytest.approx(0.6)  # eps_M = 2 sigma² = 2 eps
    assert cv.janati_value_to_eps_value(5.0) == pytest.approx(2.5)  # value = ½ Janati
    assert cv.eps_value_to_janati_value(2.5) == pytest.approx(5.0)


@pytest.mark.parametrize("eps", [1e-4, 0.1, 1.0, 10.0, 3e3])
def test_round_trips(eps):
    for cost in ("sqeuclidean", "half_sqeuclidean"):
        assert cv.pot_reg_to_eps(cv.eps_to_pot_reg(eps, cost=cost), cost=cost) == pytest.approx(eps, rel=1e-14)
    assert cv.janati_sigma_to_eps(cv.eps_to_janati_sigma(eps)) == pytest.approx(eps, rel=1e-14)
    assert cv.mallasto_eps_to_eps(cv.eps_to_mallasto_eps(eps)) == pytest.approx(eps, rel=1e-14)
    assert cv.janati_value_to_eps_value(cv.eps_value_to_janati_value(eps)) == pytest.approx(eps, rel=1e-14)
    assert cv.janati_value_to_eps_value(cv.eps_value_to_janati_value(-eps)) == pytest.approx(-eps, rel=1e-14)


def test_pot_reg_for_both_cost_matrices_gives_the_same_problem():
    # ⟨pi, ‖x−y‖²⟩ + 2eps KL = 2 (⟨pi, ½‖x−y‖²⟩ + eps KL): same plan, value doubled.
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((7, 2)), rng.standard_normal((9, 2)) + 0.5
    a, b = np.full(7, 1 / 7), np.full(9, 1 / 9)
    eps = 0.4
    full = ot.solve(ot.dist(x, y), a, b, reg=cv.eps_to_pot_reg(eps), reg_type="KL", tol=1e-12, max_iter=10000)
    half = ot.solve(
        0.5 * ot.dist(x, y), a, b, reg=cv.eps_to_pot_reg(eps, cost="half_sqeuclidean"), reg_type="KL",
        tol=1e-12, max_iter=10000,
    )
    np.testing.assert_allclose(full.plan, half.plan, atol=1e-10)
    assert float(full.value) == pytest.approx(2 * float(half.value), rel=1e-9)


@pytest.mark.parametrize(
    "fn, arg",
    [
        (cv.eps_to_pot_reg, "eps"),
        (cv.pot_reg_to_eps, "reg"),
        (cv.eps_to_janati_sigma, "eps"),
        (cv.janati_sigma_to_eps, "sigma"),
        (cv.eps_to_mallasto_eps, "eps"),
        (cv.mallasto_eps_to_eps, "eps_m"),
    ],
)
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), True, "1"])
def test_bad_strengths_raise_naming_the_argument(fn, arg, bad):
    with pytest.raises(ValueError, match=rf"^{arg} must"):
        fn(bad)


@pytest.mark.parametrize("fn", [cv.janati_value_to_eps_value, cv.eps_value_to_janati_value])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None])
def test_bad_values_raise(fn, bad):
    with pytest.raises(ValueError, match="value"):
        fn(bad)


def test_unknown_cost_raises():
    with pytest.raises(ValueError, match="cost must be one of"):
        cv.eps_to_pot_reg(0.1, cost="euclidean")
    with pytest.raises(ValueError, match="cost must be one of"):
        cv.pot_reg_to_eps(0.1, cost="l1")
