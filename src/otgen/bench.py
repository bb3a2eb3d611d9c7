"""The benchmark harness: solvers and baselines on ground-truth pairs, scored by one piece of code.

Ground truth never imports solvers (design.md); this face is where the two meet. A *suite* is a grid
of cells (pair family × D × eps); in each cell the harness trains the chosen solver, then scores it,
the exact sampler of the pair (the finite-sample floor of every metric) and the baselines a user
would pick instead (:mod:`otgen.baselines`) with the same draws budget and the same code:

* ``cbw2_uvp``, ``loglik_gap``, ``weight_tv``: :func:`otgen.metrics.conditional_scores` on
  ``n_conditions`` source points × ``n_per_condition`` draws each;
* ``bw2_uvp``: the target marginal of one draw per point for ``n_marginal`` fresh source points,
  against the pair's target mean and covariance.

The map solvers' suites ``uot-gaussian`` (UOTM) and ``jko-gaussian`` (S-JKO) live in
:mod:`otgen.bench_maps`; every suite is a :class:`Suite` of ``SUITES``: its cells, the solvers it can
train (registry names with the suite's settings) and its scoring, so this harness and ``otgen bench``
hold no solver-specific branch.

``otgen bench SUITE`` runs a suite from the command line; :func:`run_suite` from Python.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import platform
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import torch

from . import bench_maps, bench_peers, metrics
from .baselines import DiscreteEntropicPlan, trivial_samplers
from .checks import check_number
from .evaluate.pairs import evaluate_pair, exact_sample_floor, score_sampler
from .groundtruth import GaussianEOTPair, MixtureEOTPair
from .models import get_solver
from .registry import Registry, normalise
from .train import TrainingDiverged

__all__ = ["Cell", "EvalBudget", "Suite", "SUITES", "EOT_SOLVERS", "suite_cells", "run_cell", "run_suite",
           "format_table", "markdown_section", "evaluate_pair", "exact_sample_floor", "pot_entropic_cost"]

# ----------------------------------------------------------------------------- suites

FAMILIES: dict[str, Callable[..., Any]] = {
    "gaussian": lambda dim, eps, seed: GaussianEOTPair(dim=dim, eps=eps, seed=seed),
    "mixture": lambda dim, eps, seed: MixtureEOTPair(dim=dim, eps=eps, n_components=4, seed=seed),
}
FULL_DIMS, FULL_EPS = (2, 16, 64, 128), (0.1, 1.0, 10.0)
QUICK_DIMS, QUICK_EPS = (2,), (0.1, 1.0)

# EOT suite name -> pair families it covers
EOT_SUITES: dict[str, tuple[str, ...]] = {
    "eot": ("mixture", "gaussian"),
    "eot-mixture": ("mixture",),
    "eot-gaussian": ("gaussian",),
}


@dataclass(frozen=True)
class Cell:
    """One benchmark problem: ``family`` ("gaussian" | "mixture"), dimension and eps."""

    family: str
    dim: int
    eps: float

    def pair(self, seed: int = 0):
        return FAMILIES[self.family](self.dim, self.eps, seed)

    @property
    def label(self) -> str:
        return f"{self.family} D={self.dim} eps={self.eps:g}"


@dataclass(frozen=True)
class EvalBudget:
    """How much is drawn to score one method in one cell (and the training length)."""

    n_iters: int = 3000
    batch_size: int = 256
    n_conditions: int = 100
    n_per_condition: int = 500
    n_marginal: int = 10_000
    n_sinkhorn: int = 2000
    peer_iters: int = 10_000  # training steps of the peers (bench_peers: LightSB's published 10 000 of batch 128)
    peer_batch: int = 128  # also the batch of egnot_mixture
    # training steps of egnot_mixture: 200 fewer than the LightSB peer's, which pay for its k-means start
    # (the draws and kmeans2 of 4096 target samples cost the time of 70–80 steps at D = 128), so that
    # its run is no longer than the peer's (BENCHMARKS.md, "EgNOT with the Gaussian-mixture potential")
    mixture_iters: int = 9_800


FULL_BUDGET = EvalBudget()
QUICK_BUDGET = EvalBudget(n_iters=200, batch_size=256, n_conditions=20, n_per_condition=100, n_marginal=1000,
                          n_sinkhorn=500, peer_iters=200, mixture_iters=200)


def _eot_cells(families: tuple[str, ...]) -> Callable[[bool], list[Cell]]:
    """Families × D ∈ {2, 16, 64, 128} × eps ∈ {0.1, 1, 10} (``quick``: D = 2, eps ∈ {0.1, 1})."""

    def cells(quick: bool) -> list[Cell]:
        dims, epss = (QUICK_DIMS, QUICK_EPS) if quick else (FULL_DIMS, FULL_EPS)
        return [Cell(f, d, e) for f in families for d in dims for e in epss]

    return cells


# ----------------------------------------------------------------------------- solvers


def mixture_settings(cell: Cell) -> dict:
    """EgNOT with the Gaussian-mixture potential (closed-form plan, no sampler; docs/egnot.md has the
    measurements that chose these): 50 diagonal components on the mixture pairs, one full-covariance
    component on the Gaussian pairs; the means on k-means centres of target samples; Adam (0.9,
    0.999) at LightSB's lr for eps, decayed by the cosine schedule."""
    potential = ({"name": "gaussian_mixture", "components": 1, "covariance": "full"} if cell.family == "gaussian"
                 else {"name": "gaussian_mixture", "components": 50, "covariance": "diagonal"})
    return dict(dim=cell.dim, eps=cell.eps, potential={**potential, "init": "kmeans", "weight_lr_scale": 1.0 / cell.eps},
                optim={"lr": bench_peers.lightsb_lr(cell.eps), "betas": [0.9, 0.999], "schedule": "cosine"})


def fit_mixture(pair, cell: Cell, budget: EvalBudget, seed: int):
    """EgNOT with ``mixture_settings``, ``budget.mixture_iters`` steps of batch ``peer_batch``."""
    model = get_solver("egnot")(**mixture_settings(cell), seed=seed)
    model.fit(pair.source, pair.target, n_iters=budget.mixture_iters, batch_size=budget.peer_batch, progress=False)
    return model


def fit_registered(name: str, settings: Callable[[Cell], dict]) -> Callable[..., Any]:
    """fit(pair, cell, budget, seed) for the registry's solver ``name`` built with ``settings(cell)``."""

    def fit(pair, cell: Cell, budget: EvalBudget, seed: int):
        model = get_solver(name)(**settings(cell), seed=seed)
        model.fit(pair.source, pair.target, n_iters=budget.n_iters, batch_size=budget.batch_size, progress=False)
        return model

    return fit


# EOT solver name -> fit(pair, cell, budget, seed) returning an object with .sample(x, n_per_x)
EOT_SOLVERS: Registry[Callable[..., Any]] = Registry("EOT suite solver")
EOT_SOLVERS.add("egnot", fit_registered("egnot", lambda cell: dict(dim=cell.dim, eps=cell.eps)))
EOT_SOLVERS.add("egnot_mixture", fit_mixture)
BASELINES = ("exact", "conditional_mean", "independent", "constant", "sinkhorn")
SINKHORN_TOL = 1e-3  # L1 marginal error above which the Sinkhorn baseline is reported as not converged


# ----------------------------------------------------------------------------- one cell


def run_cell(cell: Cell, solver: str | None = "egnot", budget: EvalBudget = FULL_BUDGET, seed: int = 0,
             peers: Sequence[str] = ()) -> dict:
    """Train ``solver`` (None: baselines only) and the ``peers`` (names of ``bench_peers.PEERS``) on the
    cell's pair and score them beside the baselines.

    Returns a JSON-ready dict: the cell, and per method (the solver, the peers, "exact",
    "conditional_mean", "independent", "constant", "sinkhorn") its scores and ``train_seconds`` (a
    fit, the Sinkhorn solve; 0 for the others) and ``eval_seconds``.
    """
    if solver is not None and solver not in EOT_SOLVERS:
        raise ValueError(f"solver must be one of {sorted(EOT_SOLVERS)} or None, got {solver!r}"
                         f"{EOT_SOLVERS.suggest(solver)}")
    solver = None if solver is None else EOT_SOLVERS.canonical(solver)
    peers = check_peers(peers)
    torch.manual_seed(seed)
    pair = cell.pair(seed)
    methods: dict[str, tuple[Callable | None, float]] = {}
    errors: dict[str, str] = {}
    trained = ([(solver, lambda *a: EOT_SOLVERS[solver](*a).sample)] if solver is not None else []) \
        + [(name, bench_peers.PEERS[name]) for name in peers]
    for name, fit in trained:
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        try:
            methods[name] = (fit(pair, cell, budget, seed), time.perf_counter() - t0)
        except (TrainingDiverged, ValueError, RuntimeError) as e:  # a failed cell is a result, not a crash
            methods[name] = (None, time.perf_counter() - t0)
            errors[name] = f"training failed: {e}"

    exact_gen = torch.Generator().manual_seed(seed + 29)
    methods["exact"] = (lambda x, k: pair.conditional_sample(x, k, generator=exact_gen), 0.0)
    for name, fn in trivial_samplers(pair, seed=seed + 31).items():
        methods[name] = (fn, 0.0)
    gen = torch.Generator().manual_seed(seed + 37)
    xs, ys = pair.source(budget.n_sinkhorn, generator=gen), pair.target(budget.n_sinkhorn, generator=gen)
    t0 = time.perf_counter()
    plan = DiscreteEntropicPlan(xs, ys, cell.eps)
    sink_gen = torch.Generator().manual_seed(seed + 41)
    methods["sinkhorn"] = (lambda x, k: plan.sample(x, k, rng=sink_gen), time.perf_counter() - t0)
    if plan.marginal_error > SINKHORN_TOL:
        errors["sinkhorn"] = f"Sinkhorn did not converge (marginal error {plan.marginal_error:.2g})"

    result: dict[str, Any] = {**asdict(cell), "seed": seed, "budget": asdict(budget), "methods": {}}
    for name, (sampler, train_s) in methods.items():
        t0 = time.perf_counter()
        scores: dict[str, Any] = {}
        if sampler is not None:
            try:
                scores = score_sampler(sampler, pair, budget.n_conditions, budget.n_per_condition,
                                       budget.n_marginal, seed)
            except (ValueError, RuntimeError) as e:  # non-finite draws from a sampler that blew up, memory
                errors[name] = f"scoring failed: {e}"
        if name == "sinkhorn":
            scores["marginal_error"] = plan.marginal_error
        if name in errors:
            scores["error"] = errors[name]
        scores.update(train_seconds=round(train_s, 2), eval_seconds=round(time.perf_counter() - t0, 2))
        result["methods"][name] = scores
    return result


def check_peers(peers: Sequence[str] | None) -> list[str]:
    """The peers as registered; ValueError naming the known ones for an unknown name, and for one
    whose optional package does not import here."""
    out = []
    for name in peers or ():
        canonical = bench_peers.PEERS.canonical(name, where="peer")
        if canonical not in bench_peers.available_peers():
            raise ValueError(f"peer {canonical!r} needs the package {bench_peers.NEEDS[canonical]!r} "
                             f"(pip install --no-deps torchcfm==1.0.7); available here: {bench_peers.available_peers()}")
        out.append(canonical)
    return out


def matmul_gflops(size: int = 1024, repeats: int = 20) -> float:
    """Single-thread float32 matmul speed of this machine in GFLOP/s (machines here differ up to 2×)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        for _ in range(3):
            a @ b
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        return 2 * size**3 * repeats / (time.perf_counter() - t0) / 1e9
    finally:
        torch.set_num_threads(threads)


def machine_meta(threads: int | None = None) -> dict:
    return {"date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "gflops": round(matmul_gflops()), "torch": torch.__version__,
            "threads": threads if threads is not None else torch.get_num_threads()}


def _eot_run_cell(cell: Cell, solver: str | None, budget: EvalBudget, seed: int, peers: Sequence[str] = ()) -> dict:
    return {"kind": "eot", **run_cell(cell, solver, budget, seed, peers)}


@dataclass(frozen=True)
class Suite:
    """A benchmark suite: its cells (``cells(quick)``), budget (``budget(quick)``), the solvers it can
    train (a Registry: name -> settings) with the one it trains by default, and ``run_cell(cell, solver,
    budget, seed[, peers]) -> dict`` (a JSON-ready result with ``kind``, the cell's fields and per-method
    scores). ``peers``: whether its cells also train ``bench_peers.PEERS`` (the EOT suites)."""

    cells: Callable[[bool], list]
    budget: Callable[[bool], Any]
    solvers: Registry[Any]
    default_solver: str
    run_cell: Callable[..., dict]
    peers: bool = False


_EOT = dict(budget=lambda quick: QUICK_BUDGET if quick else FULL_BUDGET, solvers=EOT_SOLVERS, default_solver="egnot",
            run_cell=_eot_run_cell, peers=True)
SUITES: Registry[Suite] = Registry("benchmark suite")  # what `otgen bench SUITE` names
for _name, _families in EOT_SUITES.items():
    SUITES.add(_name, Suite(cells=_eot_cells(_families), **_EOT))
SUITES.add("uot-gaussian", Suite(bench_maps.uot_cells, bench_maps.uot_budget, bench_maps.UOT_SOLVERS, "uotm",
                                 bench_maps.run_uot_cell))
SUITES.add("jko-gaussian", Suite(bench_maps.jko_cells, bench_maps.jko_budget, bench_maps.JKO_SOLVERS, "sjko",
                                 bench_maps.run_jko_cell))


def get_suite(suite: str) -> Suite:
    """The suite named ``suite``; ValueError with a "did you mean" and the suites otherwise."""
    return SUITES.get(suite, where="suite")


def suite_cells(suite: str, quick: bool = False) -> list:
    """The cells of ``suite`` (``quick``: the few of a fast run)."""
    return get_suite(suite).cells(quick)


def select_cells(suite: str, labels: list[str] | None, quick: bool = False) -> list:
    """The cells of ``suite`` whose ``label`` is one of ``labels`` (None: all), in the suite's order;
    ValueError naming the accepted labels for one that is not a cell of the suite."""
    cells = suite_cells(suite, quick)
    if labels is None:
        return cells
    known = [c.label for c in cells]
    unknown = [lb for lb in labels if lb not in known]
    if unknown:
        raise ValueError(f"--cells {unknown[0]!r} is not a cell of suite {suite!r}"
                         f"{' (--quick)' if quick else ''}; its cells are: {', '.join(known)}")
    return [c for c in cells if c.label in labels]


def check_solver(suite: str, solver: str | None) -> str | None:
    """The solver ``suite`` trains for ``solver`` ("default" or None: the suite's own; "none": baselines
    only); ValueError naming the accepted ones otherwise."""
    spec = get_suite(suite)
    key = normalise(solver) if isinstance(solver, str) else solver
    if key in (None, "default"):
        return spec.default_solver
    if key == "none":
        return None
    if solver not in spec.solvers:
        raise ValueError(f"--solver must be one of {sorted(spec.solvers) + ['none']} for suite {suite!r}, "
                         f"got {solver!r}{spec.solvers.suggest(solver)}")
    return spec.solvers.canonical(solver)


def check_suite_peers(suite: str, peers: Sequence[str] | None) -> list[str]:
    """``check_peers``, and ValueError for peers of a suite that trains none."""
    if peers and not get_suite(suite).peers:
        raise ValueError(f"--peers: suite {suite!r} has no peers (the EOT suites have: "
                         f"{list(bench_peers.PEERS.names())})")
    return check_peers(peers)


def run_suite(suite: str, solver: str | None = "default", quick: bool = False, seed: int = 0,
              progress: bool = False, on_cell: Callable[[dict], None] | None = None,
              cells: list | None = None, n_iters: int | None = None, peers: Sequence[str] = ()) -> list[dict]:
    """Run every cell of ``suite`` (or the given ``cells``); ``on_cell(result)`` after each one.
    ``solver``: a name the suite accepts, "default" (the suite's), or None for the baselines only.
    ``n_iters``: training iterations per cell instead of the budget's (for S-JKO: per phase after the
    first). ``peers``: names of ``bench_peers.PEERS`` trained and scored beside (EOT suites only)."""
    spec = get_suite(suite)
    solver = check_solver(suite, "none" if solver is None else solver)
    peers = check_suite_peers(suite, peers)
    cells = spec.cells(quick) if cells is None else cells
    budget = spec.budget(quick)
    if n_iters is not None:
        check_number("n_iters", n_iters, low=1, integer=True)
        budget = dataclasses.replace(budget, n_iters=n_iters,
                                     **({"mixture_iters": n_iters} if hasattr(budget, "mixture_iters") else {}))
    from tqdm.auto import tqdm

    results = []
    bar = tqdm(cells, desc=f"otgen bench {suite}", unit="cell", disable=not progress)
    for cell in bar:
        bar.set_postfix_str(cell.label)
        results.append(spec.run_cell(cell, solver, budget, seed, peers) if peers else
                       spec.run_cell(cell, solver, budget, seed))
        if on_cell is not None:
            on_cell(results[-1])
    return results


# ----------------------------------------------------------------------------- tables

METRICS = (  # key, header, format: the EOT suites'
    ("cbw2_uvp", "cBW2-UVP %", "{:.3g}"),
    ("loglik_gap", "LL gap", "{:+.3f}"),
    ("weight_tv", "w TV", "{:.3f}"),
    ("bw2_uvp", "BW2-UVP %", "{:.3g}"),
)


@dataclass(frozen=True)
class TableKind:
    """How the results of one kind of suite are tabulated: the cell's columns (header, result key),
    the metrics (key, header, format) and the baselines, in the order of their columns."""

    columns: tuple[tuple[str, str], ...]
    metrics: tuple[tuple[str, str, str], ...]
    baselines: tuple[str, ...]
    names: dict[str, str]
    describe_budget: Callable[[dict], str]


def _eot_budget_text(b: dict) -> str:
    extra = (f" ({b['mixture_iters']} of batch {b['peer_batch']} for egnot_mixture, {b['peer_iters']} of batch "
             f"{b['peer_batch']} for the peers)" if "peer_iters" in b else "")
    return (f"Each cell: {b.get('n_iters')} iterations of batch {b.get('batch_size')}{extra}; scores on "
            f"{b.get('n_conditions')} conditions × {b.get('n_per_condition')} draws and "
            f"{b.get('n_marginal')} marginal samples; Sinkhorn on {b.get('n_sinkhorn')} + "
            f"{b.get('n_sinkhorn')} samples.")


KINDS: dict[str, TableKind] = {
    "eot": TableKind(columns=(("pair", "family"), ("D", "dim"), ("eps", "eps")), metrics=METRICS,
                     baselines=BASELINES,
                     names={"exact": "floor (exact)", "conditional_mean": "E[y\\|x]", "independent": "independent",
                            "constant": "constant E[y]", "sinkhorn": "Sinkhorn", "lightsb": "LightSB",
                            "sbcfm": "SB-CFM (torchcfm)"},
                     describe_budget=_eot_budget_text),
    "uot": TableKind(**bench_maps.UOT_TABLE),
    "jko": TableKind(**bench_maps.JKO_TABLE),
}


def _kind(result: dict) -> TableKind:
    return KINDS[result.get("kind", "eot")]  # results saved before suites had kinds are EOT results


def _fmt(value, fmt: str) -> str:
    if isinstance(value, (list, tuple)):
        return " / ".join(_fmt(v, fmt) for v in value)
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def _cell_text(result: dict, key: str) -> str:
    value = result.get(key)
    return f"{value:g}" if isinstance(value, float) else str(value)


def format_table(results: list[dict]) -> str:
    """One plain-text table: a row per (cell, method), each metric in a column, training seconds last."""
    if not results:
        return ""
    kind = _kind(results[0])
    header = [h for h, _ in kind.columns] + ["method"] + [h for _, h, _ in kind.metrics] + ["train s"]
    n_cols = len(kind.columns)
    rows = []
    for r in results:
        for i, (name, s) in enumerate(r["methods"].items()):
            cell = [_cell_text(r, key) for _, key in kind.columns] if i == 0 else [""] * n_cols
            rows.append(cell + [name] + [_fmt(s.get(k), f) for k, _, f in kind.metrics]
                        + [f"{s['train_seconds']:.1f}"] + ([s["error"]] if "error" in s else []))
    widths = [max(len(h), *(len(row[j]) for row in rows)) if rows else len(h) for j, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.rjust(w) if j > n_cols else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths)))
            + ("  " + row[-1] if len(row) > len(widths) else "") for row in rows]
    return "\n".join(out)


def markdown_section(results: list[dict], meta: dict, command: str) -> str:
    """Markdown tables (one per metric: rows = cells, columns = methods) with the run's provenance."""
    kind = _kind(results[0]) if results else KINDS["eot"]
    solvers = [m for m in results[0]["methods"] if m not in kind.baselines] if results else []
    methods = solvers + [m for m in kind.baselines if results and m in results[0]["methods"]]
    budget = results[0]["budget"] if results else {}
    speed = f" ({meta['gflops']} GFLOP/s single-thread float32 matmul)" if "gflops" in meta else ""
    lines = [f"Measured {meta['date']} on {meta['machine']}{speed}, torch {meta['torch']}, {meta['threads']} torch "
             f"threads. Reproduce: `{command}`.", "", kind.describe_budget(budget), ""]
    for key, title, fmt in kind.metrics:
        if key == "weight_tv":
            rows = [r for r in results if "weight_tv" in r["methods"]["exact"]]
        else:
            rows = results
        if not rows:
            continue
        lines += [f"**{title}**", "",
                  "| " + " | ".join(h for h, _ in kind.columns) + " | "
                  + " | ".join(kind.names.get(m, m) for m in methods) + (" | train s |" if solvers else " |"),
                  "|" + "---|" * len(kind.columns) + "---|" * (len(methods) + (1 if solvers else 0))]
        for r in rows:
            cells = ["failed" if "error" in r["methods"][m] else _fmt(r["methods"][m].get(key), fmt) for m in methods]
            if solvers:
                cells[0] = f"**{cells[0]}**"
            train = [f"{r['methods'][solvers[0]]['train_seconds']:.0f}"] if solvers else []
            lines.append("| " + " | ".join(_cell_text(r, k) for _, k in kind.columns) + " | "
                         + " | ".join(cells + train) + " |")
        lines.append("")
    timed = [m for m in methods if any(r["methods"].get(m, {}).get("train_seconds") for r in results)
             and any("eval_seconds" in r["methods"].get(m, {}) for r in results)]
    if timed:  # the solver, the peers and Sinkhorn: each one's training and scoring time
        lines += ["**seconds: train / score**", "",
                  "| " + " | ".join(h for h, _ in kind.columns) + " | " + " | ".join(kind.names.get(m, m) for m in timed)
                  + " |", "|" + "---|" * (len(kind.columns) + len(timed))]
        for r in results:
            times = [f"{r['methods'][m]['train_seconds']:.0f} / {r['methods'][m]['eval_seconds']:.0f}"
                     if "eval_seconds" in r["methods"].get(m, {}) else "—" for m in timed]
            lines.append("| " + " | ".join(_cell_text(r, k) for _, k in kind.columns) + " | " + " | ".join(times) + " |")
        lines.append("")
    return "\n".join(lines)


def replace_section(text: str, name: str, body: str) -> str:
    """Replace (or append) the block between ``<!-- name:begin -->`` and ``<!-- name:end -->``."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n\n{body.rstrip()}\n\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        return head + block + rest.split(end, 1)[1]
    return text.rstrip() + "\n\n" + block + "\n"


# ----------------------------------------------------------------------------- the demo's baseline
# (the scores of a pair: otgen.evaluate.pairs, re-exported here for the benchmark scripts)


def pot_entropic_cost(x: torch.Tensor, y: torch.Tensor, eps: float) -> float:
    """E_pi[½‖x − y‖²] of POT's entropic plan between the empirical measures of ``x`` and ``y``
    (uniform weights, M = ½‖x_i − y_j‖², POT reg = eps; Sinkhorn as in DiscreteEntropicPlan)."""
    import ot

    plan = DiscreteEntropicPlan(x, y, eps, max_iter=20_000, tol=1e-9)
    M = 0.5 * ot.dist(x.double().numpy(), y.double().numpy())  # the "half_sqeuclidean" cost of the plan
    return float((plan.plan * M).sum())
