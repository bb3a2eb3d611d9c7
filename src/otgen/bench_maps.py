"""Benchmark suites of the map solvers against Gaussian closed forms (``otgen bench``; a face, beside
``bench.py``, which holds the harness and the tables):

* ``uot-gaussian``: UOTM between N(a, A) and N(b, B) (unequal means, rotated covariances), cost
  ‖x − y‖² (tau = 1), alpha = 1. With KL conjugates the exact answer is the affine map between the
  relaxed marginals of the sigma -> 0 unbalanced closed form (``groundtruth.uotm_gaussian_ground_truth``),
  with linear conjugates (balanced OT) the Bures map. Scores on fresh source points: L2-UVP of the
  learned map against its problem's exact map (normalised by the variance of the exact target
  marginal), and BW2-UVP of the pushed points against T*#mu, the exact map's push-forward of the
  source (for KL not the relaxed target marginal, which reweights the source first). Baselines: the other problem's exact map (how far apart the two problems are),
  the identity and the mean shift x ↦ x − E x + E T*(x).
* ``jko-gaussian``: S-JKO's phases for KL towards N(mu, Sigma) from N(m0, S0) (diagonal covariances
  spread in opposite orders, a mean gap of norm 3·sqrt(2)), h = 0.5, 3 phases, against the exact
  Gaussian JKO recursion (``groundtruth.jko_gaussian_path``): BW2-UVP of T_k # mu_0 against mu_{k+1}
  for every phase. Baselines: exact samples of mu_{k+1} (the metric's floor at this sample size),
  mu_0 left in place, and nu itself (jumping straight to the target).

A cell is a (problem, D) pair; the solver is built from the registry (``otgen.models.get_solver``)
with the suite's settings, so the tables say exactly what was run.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import torch

from . import metrics
from .distributions import Gaussian
from .groundtruth import jko_gaussian_path, uotm_gaussian_ground_truth
from .models import get_solver
from .registry import Registry
from .train import TrainingDiverged

# ----------------------------------------------------------------------------- uot-gaussian


def uot_gaussian_problem(dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source N(a, A) and target N(b, B) in R^dim with unequal means and rotated covariances
    (eigenvalues geomspace(0.5, 2)·0.8 and ·0.3), fixed by ``dim``."""
    rng = np.random.default_rng(dim)

    def cov(scale):
        q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        return (q * np.geomspace(0.5, 2.0, dim) * scale) @ q.T

    return -0.5 * np.ones(dim) / np.sqrt(dim), cov(0.8), np.ones(dim) / np.sqrt(dim), cov(0.3)


def bures_map(a, A, b, B):
    """The W2 (Monge) map between N(a, A) and N(b, B), from POT: x -> x K + c (numpy arrays)."""
    import ot

    K, c = ot.gaussian.bures_wasserstein_mapping(a, b, A, B)
    return lambda x: x @ K + c


@dataclass(frozen=True)
class UOTCell:
    """One uot-gaussian problem: dimension and the conjugate of both penalties ("kl" | "linear")."""

    dim: int
    phi: str

    @property
    def label(self) -> str:
        return f"uot D={self.dim} phi={self.phi}"


@dataclass(frozen=True)
class UOTBudget:
    n_iters: int = 4000
    batch_size: int = 256
    n_eval: int = 20_000


def uot_cells(quick: bool) -> list[UOTCell]:
    return [UOTCell(d, phi) for d in ((2,) if quick else (1, 2, 8)) for phi in ("kl", "linear")]


def uot_budget(quick: bool) -> UOTBudget:
    return UOTBudget(n_iters=300, n_eval=2000) if quick else UOTBudget()


#: solver -> constructor arguments for a uot-gaussian cell (tests/test_uotm.py's accuracy settings)
UOT_SOLVERS: Registry[Callable[[Any], dict]] = Registry("uot-gaussian solver")
UOT_SOLVERS.add("uotm", lambda cell: dict(dim=cell.dim, tau=1.0, phi1=cell.phi, phi2=cell.phi,
                                          generator={"name": "mlp", "hidden": [128, 128], "noise_dim": 0},
                                          potential={"name": "mlp", "hidden": [128, 128]},
                                          optim_g={"lr": 1e-3, "schedule": "cosine"},
                                          optim_v={"lr": 1e-3, "schedule": "cosine"}))


#: how ``otgen bench`` tabulates uot-gaussian results (``bench.TableKind`` fields)
UOT_TABLE = dict(
    columns=(("D", "dim"), ("phi", "phi")),
    metrics=(("l2_uvp", "L2-UVP % vs the exact map", "{:.3g}"), ("bw2_uvp", "BW2-UVP % of T # mu", "{:.3g}")),
    baselines=("exact", "other_exact", "identity", "mean_shift"),
    names={"exact": "exact map", "other_exact": "other problem's exact map", "identity": "identity",
           "mean_shift": "mean shift"},
    describe_budget=lambda b: (f"Each cell: {b.get('n_iters')} iterations of batch {b.get('batch_size')}; scores on "
                               f"{b.get('n_eval')} fresh source points (KL: the sigma -> 0 unbalanced map; "
                               f"linear: the Bures map)."),
)


def _l2_uvp(y: np.ndarray, y_star: np.ndarray, var: float) -> float:
    return 100.0 * float(((y - y_star) ** 2).sum(1).mean()) / var


def run_uot_cell(cell: UOTCell, solver: str | None, budget: UOTBudget, seed: int = 0) -> dict:
    """Train ``solver`` (None: baselines only) on the cell and score it beside the baselines."""
    a, A, b, B = uot_gaussian_problem(cell.dim)
    unbalanced, bures = uotm_gaussian_ground_truth(a, A, b, B, tau=1.0, alpha=1.0), bures_map(a, A, b, B)
    exact, other = (unbalanced.map, bures) if cell.phi == "kl" else (bures, unbalanced.map)
    # T*#N(a, A), what a map fed with source samples must produce (for KL not the relaxed target
    # marginal, which reweights the source first); the L2-UVP normaliser is the variance of the exact
    # target marginal (tests/test_uotm.py's)
    mean_y, cov_y = unbalanced.pushforward() if cell.phi == "kl" else (b, B)
    var = float(np.trace(unbalanced.marginal_y()[2] if cell.phi == "kl" else B))
    x = Gaussian(a, A)(budget.n_eval, generator=torch.Generator().manual_seed(1))
    xn = x.double().numpy()
    y_star = exact(xn)

    maps: dict[str, Any] = {}
    errors: dict[str, str] = {}
    train_s: dict[str, float] = {}
    if solver is not None:
        t0 = time.perf_counter()
        try:
            model = get_solver(solver)(**UOT_SOLVERS[solver](cell), seed=seed)
            model.fit(Gaussian(a, A), Gaussian(b, B), n_iters=budget.n_iters, batch_size=budget.batch_size,
                      progress=False)
            maps[solver] = model.transport(x).double().numpy()
        except (TrainingDiverged, ValueError, RuntimeError) as e:
            maps[solver], errors[solver] = None, f"training failed: {e}"
        train_s[solver] = time.perf_counter() - t0
    maps["exact"] = y_star
    maps["other_exact"] = other(xn)
    maps["identity"] = xn
    maps["mean_shift"] = xn - xn.mean(0) + y_star.mean(0)

    result: dict[str, Any] = {"kind": "uot", **asdict(cell), "seed": seed, "budget": asdict(budget), "methods": {}}
    for name, y in maps.items():
        scores: dict[str, Any] = {}
        if y is not None:
            if np.isfinite(y).all():
                scores = {"l2_uvp": _l2_uvp(y, y_star, var), "bw2_uvp": metrics.bw2_uvp(y, mean_y, cov_y)}
            else:
                errors[name] = "scoring failed: non-finite outputs"
        if name in errors:
            scores["error"] = errors[name]
        scores["train_seconds"] = round(train_s.get(name, 0.0), 2)
        result["methods"][name] = scores
    return result


# ----------------------------------------------------------------------------- jko-gaussian

JKO_GAP = 3.0 * math.sqrt(2.0)
JKO_H, JKO_PHASES = 0.5, 3


def jko_gaussian_problem(dim: int, gap: float = JKO_GAP) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """mu_0 = N(m0, S0) and nu = N(mu, Sigma), diagonal: variances spread over [0.3, 2] and [0.2, 1.5]
    in opposite orders (some coordinates contract, some expand), and a mean gap of norm ``gap``
    shared equally by the coordinates (so mu_0 and nu overlap alike in every dimension)."""
    mu = np.ones(dim)
    m0 = mu - gap / math.sqrt(dim)
    return m0, np.diag(np.geomspace(0.3, 2.0, dim)), mu, np.diag(np.geomspace(1.5, 0.2, dim))


@dataclass(frozen=True)
class JKOCell:
    """One jko-gaussian problem: the dimension (h = 0.5, 3 phases, KL, the mean gap of ``JKO_GAP``)."""

    dim: int

    @property
    def label(self) -> str:
        return f"jko D={self.dim}"


@dataclass(frozen=True)
class JKOBudget:
    first_phase_iters: int = 2000
    n_iters: int = 1000  # per phase after the first
    batch_size: int = 1024
    n_eval: int = 20_000


def jko_cells(quick: bool) -> list[JKOCell]:
    return [JKOCell(d) for d in ((2,) if quick else (2, 8))]


def jko_budget(quick: bool) -> JKOBudget:
    return JKOBudget(first_phase_iters=300, n_iters=150, batch_size=256, n_eval=2000) if quick else JKOBudget()


#: solver -> constructor arguments for a jko-gaussian cell (tests/test_sjko.py's accuracy settings)
JKO_SOLVERS: Registry[Callable[[Any, Any], dict]] = Registry("jko-gaussian solver")
JKO_SOLVERS.add("sjko", lambda cell, budget: dict(dim=cell.dim, h=JKO_H, n_phases=JKO_PHASES, phi="kl",
                                                  generator={"name": "mlp", "hidden": [128, 128]},
                                                  potential={"name": "mlp", "hidden": [128, 128]},
                                                  optim_g={"lr": 5e-4, "schedule": "phase_cosine"},
                                                  optim_v={"lr": 5e-4, "schedule": "phase_cosine"},
                                                  phases={"first_iters": budget.first_phase_iters}))


#: how ``otgen bench`` tabulates jko-gaussian results (``bench.TableKind`` fields)
JKO_TABLE = dict(
    columns=(("D", "dim"),),
    metrics=(("bw2_uvp_phases", "BW2-UVP % per phase", "{:.3g}"), ("bw2_uvp_max", "worst phase, BW2-UVP %", "{:.3g}")),
    baselines=("exact", "stay", "target"),
    names={"exact": "floor (exact samples)", "stay": "mu_0 (no move)", "target": "nu (jump to the target)"},
    describe_budget=lambda b: (f"Each cell: h {JKO_H:g}, {JKO_PHASES} phases; phase 0 of {b.get('first_phase_iters')} "
                               f"iterations, the others of {b.get('n_iters')}, batch {b.get('batch_size')}; BW2-UVP of "
                               f"{b.get('n_eval')} pushed points against the exact JKO iterate."),
)


def jko_phase_errors(model: Any, dim: int, n_eval: int = 20_000, gap: float = JKO_GAP) -> list[float]:
    """BW2-UVP (%) of T_k # mu_0 against the exact JKO iterate mu_{k+1}, for every trained phase k
    (``n_eval`` source points drawn with seed 1)."""
    m0, S0, mu, Sigma = jko_gaussian_problem(dim, gap)
    path = jko_gaussian_path(m0, S0, mu, Sigma, model.h, model.n_phases)
    x = Gaussian(m0, S0)(n_eval, generator=torch.Generator().manual_seed(1))
    return [metrics.bw2_uvp(model.transport(x, phase=k), *path[k + 1]) for k in range(len(model.phase_states))]


def run_jko_cell(cell: JKOCell, solver: str | None, budget: JKOBudget, seed: int = 0) -> dict:
    """Train ``solver`` (None: baselines only) on the cell; BW2-UVP per phase beside the baselines."""
    m0, S0, mu, Sigma = jko_gaussian_problem(cell.dim)
    path = jko_gaussian_path(m0, S0, mu, Sigma, JKO_H, JKO_PHASES)
    gen = torch.Generator().manual_seed(seed + 43)
    per_phase: dict[str, list[float] | None] = {}
    errors: dict[str, str] = {}
    train_s: dict[str, float] = {}
    if solver is not None:
        t0 = time.perf_counter()
        try:
            model = get_solver(solver)(**JKO_SOLVERS[solver](cell, budget), seed=seed)
            model.fit(Gaussian(m0, S0), Gaussian(mu, Sigma), n_iters=budget.n_iters, batch_size=budget.batch_size,
                      progress=False)
            train_s[solver] = time.perf_counter() - t0
            per_phase[solver] = jko_phase_errors(model, cell.dim, budget.n_eval)
        except (TrainingDiverged, ValueError, RuntimeError) as e:
            train_s[solver] = time.perf_counter() - t0
            per_phase[solver], errors[solver] = None, f"training failed: {e}"
    per_phase["exact"] = [metrics.bw2_uvp(Gaussian(*path[k + 1])(budget.n_eval, generator=gen), *path[k + 1])
                          for k in range(JKO_PHASES)]
    start, target = Gaussian(m0, S0)(budget.n_eval, generator=gen), Gaussian(mu, Sigma)(budget.n_eval, generator=gen)
    per_phase["stay"] = [metrics.bw2_uvp(start, *path[k + 1]) for k in range(JKO_PHASES)]
    per_phase["target"] = [metrics.bw2_uvp(target, *path[k + 1]) for k in range(JKO_PHASES)]

    result: dict[str, Any] = {"kind": "jko", **asdict(cell), "h": JKO_H, "n_phases": JKO_PHASES, "seed": seed,
                              "budget": asdict(budget), "methods": {}}
    for name, errs in per_phase.items():
        scores: dict[str, Any] = {}
        if errs is not None:
            scores = {"bw2_uvp_phases": [float(e) for e in errs], "bw2_uvp_max": float(max(errs))}
        if name in errors:
            scores["error"] = errors[name]
        scores["train_seconds"] = round(train_s.get(name, 0.0), 2)
        result["methods"][name] = scores
    return result
