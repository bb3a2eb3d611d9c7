"""The ``otgen`` command line: demo, train, sample, eval, bench."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import config as cfgmod
from . import io, metrics
from .bench import pot_entropic_cost
from .evaluate.pairs import evaluate_pair
from . import sampling_run
from .image_runs import own_source, plan_keywords, score_image_run
from .models import check_generator_spec, get_solver, is_generator_spec, load, run_weights
from .runtime import keep_freed_memory
from .solvers.base import cuda_problem
from .train import TrainingDiverged
from .train import checkpoint as ckpt
from .train.loader import DataLoaderFailed
from .train.logging import SUPERSEDED
from .train.distributed import is_main_process, launched_by_torchrun, shutdown


def _threads(n: int | None) -> int:
    if n is not None:
        torch.set_num_threads(n)
    return torch.get_num_threads()


# -- checks every command makes before any work -------------------------------------------------
DEVICE_NAMES = "cpu, cuda, cuda:N (N: a GPU's number) or auto"


def check_device(value: str, label: str = "--device") -> str:
    """``value`` if it names a device otgen runs on here: "cpu", "cuda", "cuda:N" or "auto" (a GPU if
    there is one); a ConfigError naming ``label`` otherwise, or when CUDA is asked for on a machine
    without it."""
    if not isinstance(value, str) or not re.fullmatch(r"cpu|cuda|cuda:\d+|auto", value):
        raise cfgmod.ConfigError(f"{label} must be one of {DEVICE_NAMES}, got {value!r}")
    problem = cuda_problem(torch.device(value), remedy="use --device cpu or auto") if value != "auto" else None
    if problem:
        raise cfgmod.ConfigError(f"{label} {value}: {problem}")
    return value


def set_device(cfg: dict, device: str | None) -> dict:
    """The config with ``--device`` as its ``model.device`` (if given); a ``model.device`` of a config
    that asks for CUDA where there is none is refused like ``--device cuda``."""
    model = cfg.get("model")
    if device is not None:
        check_device(device)
        if isinstance(model, dict):
            model["device"] = device
    elif isinstance(model, dict) and str(model.get("device", "cpu")).startswith("cuda"):
        check_device(str(model["device"]), "model.device")
    return cfg


def check_writable(path: Path, flag: str, directory: bool) -> None:
    """Before any work: ``path`` (a directory to create or write into, or a file to write) can be
    written: it is not a file where a directory is meant (or the reverse), and the nearest existing
    folder on its way is writable. ConfigError naming ``flag`` and the path otherwise."""
    if directory and path.exists() and not path.is_dir():
        raise cfgmod.ConfigError(f"{flag} {path}: exists and is not a directory")
    if not directory and path.is_dir():
        raise cfgmod.ConfigError(f"{flag} {path}: is a directory, not a file")
    folder = path if directory else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise cfgmod.ConfigError(f"{flag} {path}: {folder} is a file, not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise cfgmod.ConfigError(f"{flag} {path}: {folder} is not writable (permission denied)")


def check_new_file(path: Path, flag: str, overwrite: bool) -> None:
    """Before any work: ``path`` (a file the user named) can be written, and does not exist unless
    ``overwrite``: a ConfigError naming ``flag`` otherwise, so that no earlier output is lost."""
    check_writable(path, flag, directory=False)
    if path.exists() and not overwrite:
        raise cfgmod.ConfigError(f"{flag} {path}: exists; pass --overwrite to replace it, or name another file")


# -- otgen demo ----------------------------------------------------------------------------------
DEMO_CONFIG = Path(__file__).parent / "configs" / "demo.yaml"
DEMO_POINTS = [(0.1, 0.1), (0.5, 0.5), (1.5, -1.5)]  # the three x of the EgNOT paper's figure


def cmd_demo(args: argparse.Namespace) -> int:
    if args.out:
        check_writable(Path(args.out), "--out", directory=True)
    cfg = set_device(cfgmod.apply_overrides(cfgmod.load_yaml(DEMO_CONFIG), args.set or []), args.device)
    cfg = cfgmod.validate(cfg)
    threads = _threads(args.threads)
    source, target, _ = cfgmod.build_data(cfg["data"])
    model = cfgmod.build_model(cfg["model"])
    tr = cfg["train"]
    print(f"otgen demo: EgNOT, N(0, I) -> Swiss roll, eps = {model.eps}; {tr['n_iters']} iterations of "
          f"batch {tr['batch_size']} on {threads} threads")
    t0 = time.perf_counter()
    model.fit(source, target, n_iters=tr["n_iters"], batch_size=tr["batch_size"], seed=tr["seed"],
              out=args.out, progress=True, log_every=tr["log_every"], checkpoint_every=tr["checkpoint_every"])
    train_s = time.perf_counter() - t0

    n = cfg["eval"]["n_samples"]
    gen = torch.Generator().manual_seed(cfg["eval"]["seed"])
    x, y = source(n, generator=gen), target(n, generator=gen)
    t1 = time.perf_counter()
    y_hat = model.transport(x)
    x_cond = torch.tensor(DEMO_POINTS, dtype=torch.float32)
    y_cond = model.sample(x_cond, 500)
    sample_s = time.perf_counter() - t1
    learned = float(0.5 * ((x - y_hat) ** 2).sum(1).mean())
    sinkhorn = pot_entropic_cost(x, y, model.eps)
    independent = float(0.5 * ((x - y[torch.randperm(n, generator=gen)]) ** 2).sum(1).mean())
    big = target(200_000, generator=gen).double()
    bw = metrics.bw2_uvp(y_hat, big.mean(0), torch.cov(big.T))
    floor = metrics.bw2_uvp(y, big.mean(0), torch.cov(big.T))

    out_dir = Path(args.out) if args.out else Path(".")
    plot_path = out_dir / "plots" / "plan.png"
    from .viz import plot_plan

    plot_plan(x[:3000], y[:3000], y_hat[:3000], x_cond, y_cond, plot_path,
              title=f"EgNOT, N(0, I) -> Swiss roll, eps = {model.eps}")
    print(f"\ntraining {train_s:.0f} s, sampling {sample_s:.0f} s ({n} points)")
    print(f"E[½‖x − y‖²] on the same {n} source and target points:")
    print(f"  learned plan (EgNOT)      {learned:.4f}   ({100 * (learned / sinkhorn - 1):+.1f} % against POT's)")
    print(f"  POT entropic plan         {sinkhorn:.4f}   (Sinkhorn, same eps)")
    print(f"  independent coupling      {independent:.4f}")
    print(f"target BW2-UVP of the transported samples: {bw:.2f} %   (exact samples: {floor:.2f} %)")
    print(f"plot: {plot_path}")
    return 0


# -- otgen train ---------------------------------------------------------------------------------
PLOT_SAMPLES = 3000  # source points transported for the plots and samples/samples.npz of a run


def write_run_plots(model, data, out: Path, seed: int = 0, n: int = PLOT_SAMPLES) -> list[Path]:
    """After training, write ``out/plots/*.png`` and ``out/samples/samples.npz``.

    Image data ((C, H, W) samples): ``image_runs.write_image_run`` (grids of samples, data,
    reconstructions, source | outputs). 1-D or 2-D vectors: arrays ``x`` (n, d) source points (the
    first data side, or the model's own source), ``y`` (n, d) of the last side, and what the model's
    ``run_arrays`` gives for x (``y_hat`` (n, d), the transported points; S-JKO adds ``phases``
    (K, n, d), T_k(x) of every trained phase); ``viz.plot_run`` picks the plot from the arrays.
    Samples and noise come from generators seeded with ``seed``. Other data: nothing is written,
    returns []."""
    from .distributions.base import draw
    from .image_runs import draw_sources, write_image_run
    from .viz import plot_run

    gen = torch.Generator().manual_seed(seed)
    probe = draw(data[-1], 2, torch.Generator().manual_seed(seed))
    if probe.ndim == 4 or model.present(probe.to(model.device)).ndim == 4:  # images, or latents of images
        return write_image_run(model, data, out, seed=seed)
    if probe.ndim != 2 or probe.shape[1] not in (1, 2):
        return []
    x, y = draw_sources(model, data, n, gen), draw(data[-1], n, gen).float()
    if x.ndim != 2 or x.shape[1] != y.shape[1]:
        return []
    produced = model.run_arrays(x.to(model.device), torch.Generator(device=model.device).manual_seed(seed + 1))
    arrays = {"x": x, "y": y, **{k: v.detach().cpu() for k, v in produced.items()}}
    plot = plot_run(arrays, out / "plots", name=type(model).__name__)
    numpy_arrays = {k: v.numpy() for k, v in arrays.items()}
    samples = io.atomic_write(out / "samples" / "samples.npz", lambda f: np.savez(f, **numpy_arrays))
    return [plot, samples]


def cmd_train(args: argparse.Namespace) -> int:
    """``otgen train``. Every check comes before anything is written to the run directory: the paths,
    the device, the config (all its problems at once), the data and the model, a generator cost, and
    for ``--resume`` the checkpoint (readable, of this model, at a step the run has not passed).
    ``config.yaml`` is written once the training loop has made its own checks too (after the first
    step, before any checkpoint). ``--resume auto`` (``args.resume == "auto"``; plain ``--resume`` is
    True) continues the run in ``--out`` if it holds a checkpoint and starts it there otherwise, with
    the config of the command line, which must be of the same run as a ``config.yaml`` already there."""
    resume = getattr(args, "resume", False)
    auto = resume == "auto"
    if auto and not args.out:
        raise cfgmod.ConfigError("--resume auto needs --out DIR: it continues the run in DIR if DIR holds a "
                                 "checkpoint, and starts it there if not")
    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    device = getattr(args, "device", None)
    check_writable(out, "--out", directory=True)
    last = ckpt.checkpoint_path(out)
    if auto:
        # Decided once, from checkpoints/last.pt alone, before this process writes anything; under
        # torchrun every process decides alike: rank 0 writes last.pt (atomically, by rename) only
        # after a step whose all-reduce needs every process (each has decided by then), and torchrun
        # stops every process of a failed attempt before it starts the next. config.yaml, written by
        # rank 0 after the first step, does not enter the decision.
        resume = last.is_file()
    if resume and not last.is_file():
        raise cfgmod.ConfigError(f"--resume: there is no checkpoint in {out} (no checkpoints/{ckpt.LAST}); check "
                                 "the path, or drop --resume to start a fresh run")
    if not resume and last.is_file():
        raise cfgmod.ConfigError(f"{out} already holds a run; pass --resume to continue it or --out to choose "
                                 "another directory")
    source = args.config
    if resume and not auto and (out / "config.yaml").is_file():
        fixed = [a for a in args.set or [] if a.split("=", 1)[0].strip().split(".")[0] in ("model", "data")]
        if fixed:
            raise cfgmod.ConfigError(f"a resumed run keeps its model and data; cannot --set {', '.join(fixed)} "
                                     "(start a new run with --out instead)")
        source = out / "config.yaml"
    cfg = cfgmod.validate(set_device(cfgmod.apply_overrides(cfgmod.load_yaml(source), args.set or []), device))
    if auto and (out / "config.yaml").is_file():
        check_same_run(cfg, out / "config.yaml", resume)
    threads = _threads(args.threads)
    existing = ckpt.load_checkpoint(out) if resume else None  # ValueError naming the file if unreadable
    saved_step = ckpt.saved_step(existing, last) if existing is not None else None
    train_generator_first(cfg, out, threads, device)
    model_cls = get_solver(cfg["model"]["name"])
    *data, pair = cfgmod.build_data(cfg["data"], model_cls.data_sides)
    model = cfgmod.build_model(cfg["model"], pair)
    tr = cfg["train"]
    total = model.run_steps(tr["n_iters"])
    if existing is not None:
        if total < saved_step:
            counted = "" if total == tr["n_iters"] else f" ({model.describe_steps(tr['n_iters'])}: {total} steps in all)"
            raise cfgmod.ConfigError(
                f"train.n_iters = {tr['n_iters']}{counted} is below the step {saved_step} of the checkpoint {last}; "
                f"a resumed run continues to train.n_iters steps in all: give train.n_iters >= {saved_step} (or "
                "start a new run with another --out)")
        check_checkpoint_fits(model, existing, last, source)

    def write_config() -> None:
        if is_main_process():
            io.write_text(out / "config.yaml", cfgmod.dump(cfg))

    pending = [True]

    def config_after_first_step(step, solver, metrics):  # the loop's own checks have passed by now
        if pending:
            pending.clear()
            write_config()

    main = is_main_process()  # under torchrun, rank 0 alone prints, scores and writes run files
    say = print if main else (lambda *a, **k: None)
    if auto and existing is None:
        log = out / "metrics.jsonl"
        moved = (f" (the records of an earlier start move from {log.name} to {SUPERSEDED})"
                 if log.is_file() and log.stat().st_size else "")
        say(f"--resume auto: {out} holds no checkpoint; starting a new run there{moved}")
    if existing is not None:
        say(f"resuming {last} at step {saved_step} of {total}")
        if saved_step == total:  # no step to take: the config (eval settings) is written now
            pending.clear()
            write_config()
    say(f"otgen train: {model.name} -> {out} ({model.describe_steps(tr['n_iters'])}, {threads} threads"
        + (f", {os.environ['WORLD_SIZE']} processes" if launched_by_torchrun() else "") + ")")
    if tr["compile"]:  # in place, before the loop restores a checkpoint into the same modules
        say(compile_summary(model.compile()))
    result = model.fit(*data, n_iters=tr["n_iters"], batch_size=tr["batch_size"], seed=tr["seed"],
                       out=out, resume=resume, progress=True, log_every=tr["log_every"],
                       checkpoint_every=tr["checkpoint_every"], callbacks=[config_after_first_step],
                       precision=tr["precision"], num_workers=tr.get("num_workers")).history
    if not main:
        return 0
    print(f"trained to step {result.steps} in {result.seconds:.1f} s; last metrics: "
          + ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items() if isinstance(v, float)))
    if pair is not None:
        ev = cfg["eval"]
        scores = evaluate_pair(model, pair, ev["n_conditions"], ev["n_per_condition"], ev["n_samples"], ev["seed"])
        io.write_text(out / "eval.json", json.dumps(scores, indent=2) + "\n")
        line = f"cBW2-UVP {scores['cbw2_uvp']:.3f} %, target BW2-UVP {scores['bw2_uvp']:.3f} %"
        if hasattr(pair, "baselines"):
            line += f" (baselines: {', '.join(f'{k} {v:.2f} %' for k, v in pair.baselines().items())})"
        print(line)
    image_run = score_image_run(model, cfg, data, out)  # None for a run that is not on images
    if image_run is not None:
        scores, line = image_run
        io.write_text(out / "eval.json", json.dumps(scores, indent=2) + "\n")
        print(line)
    written = write_run_plots(model, data, out, seed=cfg["eval"]["seed"])
    if written:
        print("\n".join(f"plot: {p}" for p in written[:-1]) + f"\nsamples: {written[-1]}")
    return 0


def check_same_run(cfg: dict, saved: Path, resuming: bool) -> None:
    """``--resume auto`` in a directory whose ``config.yaml`` (``saved``) an earlier start wrote: the
    config of the command line (``cfg``, validated) must be of the same run, as a plain ``--resume``
    keeps it: the same model and data sections (``model.device`` aside; train and eval may change).
    ConfigError naming the keys that differ otherwise."""
    before = cfgmod.validate(cfgmod.load_yaml(saved))  # ConfigError naming the file and line if it is damaged
    differ = [f"{key} = {_shown(a)} there, {_shown(b)} here"
              for section in ("model", "data")
              for key, a, b in _differences(before.get(section), cfg.get(section), section)
              if key != "model.device"]
    if differ:
        remedy = ("give the command line that started it" if resuming else
                  "give the command line that started it, or drop --resume auto to start a new run there")
        raise cfgmod.ConfigError(f"--resume auto: {saved} is of another run ({'; '.join(differ[:4])}"
                                 f"{'; ...' if len(differ) > 4 else ''}); a run keeps its model and data: {remedy}, "
                                 "or choose another --out")


def _differences(a, b, key: str) -> list[tuple[str, object, object]]:
    """(dotted key, value in ``a``, value in ``b``) of every leaf where two nested dicts differ; a key
    missing on one side has the value ``_MISSING``."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in _differences(a.get(k, _MISSING), b.get(k, _MISSING), f"{key}.{k}")]
    return [] if a == b else [(key, a, b)]


_MISSING = object()


def _shown(value) -> str:
    return "(not set)" if value is _MISSING else repr(value)


def compile_summary(report: dict[str, str | None]) -> str:
    """One line (two with networks left eager) saying what ``train.compile`` compiled: the report of
    ``Solver.compile`` (network name -> None where compiled, else the reason it stays eager)."""
    done = [name for name, why in report.items() if why is None]
    line = f"train.compile: compiled {', '.join(done) if done else 'no network'} with torch.compile"
    eager = "; ".join(f"{name}: {why}" for name, why in report.items() if why is not None)
    return line + (f"\ntrain.compile: left eager: {eager}" if eager else "")


def check_checkpoint_fits(model, blob: dict, path: Path, config: str | Path) -> None:
    """Load the checkpoint's state into the freshly built ``model`` (the loop loads it again): a
    checkpoint of another solver, or of other network shapes than the config gives, is refused now."""
    try:
        ckpt.restore(model, blob)
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError, IndexError) as e:
        reason = f"no entry {e}" if isinstance(e, KeyError) else " ".join(str(e).split())[:300]
        raise ValueError(f"{path} does not fit the {model.name} of {config} ({reason})") from None


def train_generator_first(cfg: dict, out: Path, threads: int, device: str | None = None) -> None:
    """A model cost ``{name: generator, run: DIR, config: CONFIG}`` whose DIR holds no finished model:
    train CONFIG into DIR first (``otgen train CONFIG --out DIR``), or resume it there if it stopped
    part way. The spec is checked first (a bad key must not cost the generator's training)."""
    cost = cfg["model"].get("cost")
    if not is_generator_spec(cost):
        return
    spec = check_generator_spec(cost)
    run = Path(spec["run"])
    if run == out.resolve():
        raise cfgmod.ConfigError(f"cost.run {spec['run']!r} is this run's own directory; the generator needs a run "
                                 "of its own")
    if (run / "model.pt").is_file() or "config" not in spec:
        return
    resume = ckpt.checkpoint_path(run).is_file()
    if is_main_process():
        print(f"otgen train: the generator run {run} holds no finished model; "
              f"{'resuming' if resume else 'training'} {spec['config']} there first")
    config = run / "config.yaml" if resume and (run / "config.yaml").is_file() else spec["config"]
    cmd_train(argparse.Namespace(config=str(config), out=str(run), resume=resume, set=[], threads=threads,
                                 device=device))


# -- otgen sample --------------------------------------------------------------------------------
def read_points(path: str, flag: str = "--source") -> np.ndarray:
    """The points of a ``.npy`` file (one row each) as float32; ConfigError naming the file when it is
    missing, not a numeric array, empty, or holds NaN/Inf (its row shape is checked against the model
    by the caller)."""
    p = Path(path)
    if not p.is_file():
        raise cfgmod.ConfigError(f"{flag} {path}: " + ("is a directory, not a .npy file" if p.is_dir() else "no such file"))
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, EOFError, OSError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        if "Object arrays" in reason:
            raise cfgmod.ConfigError(f"{flag} {path}: holds an array of Python objects, which otgen does not unpickle; "
                                     "give an array of numbers") from None
        if "pickle" in reason:  # numpy takes a file without the .npy header for a pickle
            reason = "no .npy header: a text file or another format"
        raise cfgmod.ConfigError(f"{flag} {path}: not a readable .npy array file ({reason[:200]})") from None
    if isinstance(arr, np.lib.npyio.NpzFile):
        names = list(arr.files)
        arr.close()
        raise cfgmod.ConfigError(f"{flag} {path}: an .npz archive (arrays {names}); give one array of points as a "
                                 ".npy file (numpy.save)")
    if arr.dtype.kind not in "fiu":
        raise cfgmod.ConfigError(f"{flag} {path}: holds values of type {arr.dtype}; give an array of numbers")
    if arr.ndim < 1 or arr.shape[0] == 0 or arr.size == 0:
        raise cfgmod.ConfigError(f"{flag} {path}: holds no points (shape {arr.shape}); give an array (n, ...) "
                                 "with n >= 1")
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise cfgmod.ConfigError(f"{flag} {path}: has {int(bad.sum())} NaN or Inf value(s) (the first in row {row})")
    return arr.astype(np.float32, copy=False)


def cmd_sample(args: argparse.Namespace) -> int:
    run = Path(args.run_dir)
    cfg_path = run / "config.yaml"
    if not cfg_path.is_file():
        raise cfgmod.ConfigError(f"{run} is not a run directory (no config.yaml)")
    if args.n < 1:
        raise cfgmod.ConfigError(f"--n must be >= 1, got {args.n}")
    if args.n_per_x < 1:
        raise cfgmod.ConfigError(f"--n-per-x must be >= 1, got {args.n_per_x}")
    if args.batch_size < 1:
        raise cfgmod.ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    where = sampling_run.layout(args.out, args.format, args.shard_size)
    if where.folder:
        check_writable(where.path, "--out", directory=True)  # layout refused a folder holding earlier outputs
    else:
        check_new_file(where.path, "--out", args.overwrite)
    if args.grid:
        if Path(args.grid).suffix != ".png":
            raise cfgmod.ConfigError(f"--grid must name a .png file, got {args.grid!r}")
        check_new_file(Path(args.grid), "--grid", args.overwrite)
    device = getattr(args, "device", None)
    if device is not None:
        check_device(device)
    points = read_points(args.source) if args.source else None
    weights = run_weights(run)
    if not weights.is_file():
        raise cfgmod.ConfigError(f"{run} holds no trained model (no model.pt, no checkpoints/{ckpt.LAST})")
    model = load(weights, **({"device": device} if device is not None else {}))
    own = own_source(model, args.latent)  # ValueError for --latent fitted where the model has no fitted sampler
    keywords = plan_keywords(model, args.temperature)  # ValueError where the draws take no temperature
    if own is not None and (args.source or args.n_per_x > 1):
        raise cfgmod.ConfigError(f"{model.name} draws its own source (its prior) and decodes it deterministically; "
                                 "--source and --n-per-x do not apply")
    gen = torch.Generator().manual_seed(args.seed)
    if points is not None:
        shape = tuple(model.expected_shapes()[0])
        if tuple(points.shape[1:]) != shape:
            raise cfgmod.ConfigError(f"--source {args.source}: points of shape {points.shape[1:]} (array {points.shape}); "
                                     f"this {model.name} transports points of shape {shape}: give an array "
                                     f"(n, {', '.join(map(str, shape))})")
        n, draw_x = min(args.n, len(points)), sampling_run.rows_of(points)
    else:
        source = own or cfgmod.build_data(cfgmod.validate(cfgmod.load_yaml(cfg_path))["data"], model.data_sides)[0]
        n, draw_x = args.n, lambda k: source(k, generator=gen)
    sample_gen = torch.Generator(device=model.device).manual_seed(args.seed + 1)
    done = sampling_run.write_samples(model, draw_x, n, where, sample_gen, n_per_x=args.n_per_x,
                                      batch_size=args.batch_size, keep=100 if args.grid else 0, keywords=keywords)
    files = (str(where.path) if len(done.paths) == 1 and not where.folder
             else f"{len(done.paths)} files to {where.path} ({done.paths[0].name} ... {done.paths[-1].name})")
    print(f"wrote {files}: x {done.x_shape}, y {done.y_shape}")
    x, y = done.head_x, done.head_y
    if args.grid:
        from .viz import plot_image_grid, plot_image_pairs

        if y.ndim < 4:
            raise cfgmod.ConfigError(f"--grid draws images; this run's outputs have shape {done.y_shape}")
        m = min(len(x), 100 if x.ndim != 4 else 20)
        grid = (plot_image_pairs(x[:m], y[:m], args.grid, title=model.name) if x.ndim == 4
                else plot_image_grid(y[:m] if y.ndim == 4 else y[:m].flatten(0, 1), args.grid, title=model.name))
        print(f"grid: {grid}")
    return 0


# -- otgen eval ----------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    """``otgen eval``: the scores ``otgen train`` writes to an image run's ``eval.json`` (the same code,
    ``image_runs.score_image_run``), with another sample size, feature space or reference; every check
    comes before any sampling."""
    run = Path(args.run_dir)
    cfg_path = run / "config.yaml"
    if not cfg_path.is_file():
        raise cfgmod.ConfigError(f"{run} is not a run directory (no config.yaml)")
    for flag, value, low in (("--n", args.n, 2), ("--batch-size", args.batch_size, 1), ("--seed", args.seed, 0)):
        if value is not None and value < low:
            raise cfgmod.ConfigError(f"{flag} must be >= {low}, got {value}")
    if args.ref is not None:
        from .evaluate.stats import load_stats

        load_stats(args.ref)  # ValueError naming the file if it is not (mu, sigma) statistics
    if args.features == "inception":
        from .evaluate.inception import load_inception

        load_inception()  # FileNotFoundError saying how to get the weights, before any sampling
    if args.json:
        check_new_file(Path(args.json), "--json", args.overwrite)
    device = getattr(args, "device", None)
    if device is not None:
        check_device(device)
    weights = run_weights(run)
    if not weights.is_file():
        raise cfgmod.ConfigError(f"{run} holds no trained model (no model.pt, no checkpoints/{ckpt.LAST})")
    model = load(weights, **({"device": device} if device is not None else {}))
    cfg = cfgmod.validate(cfgmod.load_yaml(cfg_path))
    *data, _ = cfgmod.build_data(cfg["data"], model.data_sides)
    result = score_image_run(model, cfg, data, run, n=args.n, features=args.features, ref=args.ref, seed=args.seed,
                             batch_size=args.batch_size, progress=True, latent=args.latent,
                             temperature=args.temperature)
    if result is None:
        raise cfgmod.ConfigError(f"{run} is not a run on images (its target data are not (C, H, W) images); "
                                 "otgen eval scores image runs (a run on a ground-truth pair is scored by otgen train)")
    scores, line = result
    print(line)
    if args.json:
        io.write_text(args.json, json.dumps(scores, indent=2) + "\n")
        print(f"scores: {args.json}")
    return 0


# -- otgen bench ---------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    args.suite = bench.SUITES.canonical(args.suite, where="suite")  # as registered: "EOT" runs (and files) as "eot"
    solver = bench.check_solver(args.suite, args.solver)  # checks the suite and solver names before any work
    peers = bench.check_suite_peers(args.suite, args.peers)
    solver_name = solver or "none"
    if args.iters is not None and args.iters < 1:
        raise ValueError(f"--iters must be >= 1 (training iterations per cell), got {args.iters}")
    if args.from_json and (args.cells or args.iters is not None or peers):
        raise ValueError("--cells, --iters and --peers choose what to run; --from-json runs nothing (drop one of them)")
    if args.json and not args.from_json:
        check_new_file(Path(args.json), "--json", args.overwrite)
    if args.cells and args.write:
        raise ValueError("--cells with --write would replace the suite's whole section of "
                         f"{args.write} by a partial table; save the cells with --json instead")
    if args.from_json:
        data = json.loads(Path(args.from_json).read_text())
        if data.get("suite") != args.suite:
            raise ValueError(f"{args.from_json} holds results of suite {data.get('suite')!r}, not {args.suite!r}")
        results, meta, command = data["cells"], data["meta"], data["command"]
        solver_name = data.get("solver", solver_name)
    else:
        cells = bench.select_cells(args.suite, args.cells, args.quick)  # checks the names before any work
        threads = _threads(args.threads)
        meta = bench.machine_meta(threads)
        command = " ".join(["otgen bench", args.suite, "--solver", solver_name] + (["--quick"] if args.quick else [])
                           + (["--cells"] + [shlex.quote(c) for c in args.cells] if args.cells else [])
                           + (["--peers"] + peers if peers else [])
                           + (["--iters", str(args.iters)] if args.iters is not None else [])
                           + (["--seed", str(args.seed)] if args.seed else [])
                           + (["--threads", str(args.threads)] if args.threads else []))
        print(f"otgen bench {args.suite}: {len(cells)} cells, solver {solver_name}, {threads} threads"
              + (" (quick)" if args.quick else ""), flush=True)
        results: list[dict] = []

        def save(result: dict) -> None:
            results.append(result)
            if args.json:
                io.write_text(args.json, json.dumps({"suite": args.suite, "solver": solver_name, "quick": args.quick,
                                                     "command": command, "meta": meta, "cells": results},
                                                    indent=1) + "\n")

        bench.run_suite(args.suite, solver_name, quick=args.quick, seed=args.seed, progress=True, on_cell=save,
                        cells=cells, n_iters=args.iters, peers=peers)
    print(bench.format_table(results))
    if args.json and not args.from_json:
        print(f"results: {args.json}")
    if args.write:
        path = Path(args.write)
        text = path.read_text() if path.exists() else ""
        # one section per suite and solver: the default solver's keeps its old name
        default = bench.get_suite(args.suite).default_solver
        name = "bench-" + args.suite + ("" if solver_name == default else f"-{solver_name}")
        io.write_text(path, bench.replace_section(text, name, bench.markdown_section(results, meta, command)))
        print(f"tables: {path} (section {name})")
    return 0


def thread_count(value: str) -> int:
    """The value of ``--threads N``: a whole number >= 1 (argparse reports anything else, exit 2,
    before any work)."""
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of torch threads >= 1, got {value!r}")
    return n


LATENTS = ("prior", "fitted")
LATENT_HELP = ("a WAE's codes: prior (N(0, σ² I), the default) or fitted (the Gaussian mixture fitted to its "
               "training codes at the end of training)")
TEMPERATURE_HELP = ("EgNOT: draw from pi(y|x)^(1/T), T in (0, 1], the plan sharpened around its modes "
                    "(1: the plan itself; docs/egnot.md)")
THREADS_HELP = "torch threads, >= 1 (default: torch's choice)"
OVERWRITE_HELP = "replace the files named by --out, --grid or --json if they exist (default: refuse, nothing is lost)"


def resume_value(value: str) -> str:
    """The value of ``--resume VALUE``: "auto" only (a bare ``--resume`` is True)."""
    if value != "auto":
        raise argparse.ArgumentTypeError(
            f"--resume takes no value (continue the run in --out) or auto (continue it if --out holds a checkpoint, "
            f"else start it there), got {value!r}; the config comes first: otgen train CONFIG --out DIR --resume [auto]")
    return value


DEVICE_HELP = ("device: cpu, cuda, cuda:N or auto (a GPU if there is one); sets model.device (default: the "
               "config's, else cpu)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="otgen", description="Generative modelling with neural optimal transport.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="EgNOT from N(0, I) to the Swiss roll (eps = 0.1): plot and metrics")
    d.add_argument("--out", help="keep the run (checkpoints, metrics.jsonl) and the plot in this directory "
                                 "(default: only plots/plan.png in the current directory)")
    d.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value, e.g. train.n_iters=100")
    d.add_argument("--threads", type=thread_count, help=THREADS_HELP)
    d.add_argument("--device", help=DEVICE_HELP)
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("train", help="train from a YAML config (sections model, data, train, eval)")
    t.add_argument("config", help="config file, e.g. configs/gauss_egnot.yaml")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value, e.g. train.n_iters=20")
    t.add_argument("--out", help="run directory (default runs/<config name>)")
    t.add_argument("--resume", nargs="?", const=True, default=False, type=resume_value, metavar="auto",
                   help="continue the run in --out from its last checkpoint (which must exist); --resume auto: "
                        "continue it if --out holds a checkpoint, else start it there (one command for a first "
                        "start and a restart, e.g. torchrun --max-restarts=N)")
    t.add_argument("--threads", type=thread_count, help=THREADS_HELP)
    t.add_argument("--device", help=DEVICE_HELP)
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="draw from a trained run's plan into an .npz (arrays x, y; for a WAE x are "
                                      "prior draws and y the decoded images), .npz shards or PNG files, in batches")
    s.add_argument("run_dir")
    s.add_argument("--n", type=int, required=True, help="number of source points")
    s.add_argument("--n-per-x", type=int, default=1, help="draws per source point (y then has shape (n, k, ...))")
    s.add_argument("--source", help=".npy file of source points to transport (default: draw from the run's source)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="output .npz file (arrays x, y in the data's scale; images in [-1, 1]), "
                                                "or a folder for --format (many files, for n too large for one array)")
    s.add_argument("--batch-size", type=int, default=sampling_run.DEFAULT_BATCH_SIZE,
                   help=f"source points per network call (default {sampling_run.DEFAULT_BATCH_SIZE}); memory grows with "
                        "it, not with --n")
    s.add_argument("--format", choices=sampling_run.FORMATS,
                   help="with --out DIR: npz (default), shards samples_00000.npz, ... holding x, y of --shard-size "
                        "points each; png, one image per file (000000.png, ...; image outputs only)")
    s.add_argument("--shard-size", type=int, help=f"with --out DIR: source points per shard, drawn at once "
                                                  f"(default {sampling_run.DEFAULT_SHARD_SIZE})")
    s.add_argument("--grid", metavar="PNG", help="also draw the outputs (images) as a grid in this PNG; "
                                                 "image sources are drawn beside their outputs")
    s.add_argument("--latent", choices=LATENTS, default="prior", help=LATENT_HELP)
    s.add_argument("--temperature", type=float, default=1.0, help=TEMPERATURE_HELP)
    s.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    s.add_argument("--device", help="device to load the model on: cpu, cuda, cuda:N or auto (default: where it "
                                     "was trained if that is here, else cpu)")
    s.set_defaults(func=cmd_sample)
    e = sub.add_parser("eval", help="score an image run's samples: FD, KID, precision/recall against its held-out "
                                    "or target images, or a statistics file")
    e.add_argument("run_dir")
    e.add_argument("--n", type=int, help="samples to generate and score (default: the run's eval.n_samples)")
    e.add_argument("--features", choices=("auto", "digits", "inception"),
                   help="feature space: digits (otgen's digit classifier), inception (standard FID features; needs "
                        "the weights file, see docs/images.md) or auto (inception where its weights are found, "
                        "else digits; the digits' own scores for digits runs). Default: the run's eval.features")
    e.add_argument("--ref", metavar="STATS.npz", help="score against these statistics (arrays mu, sigma: "
                                                      "pytorch-fid's format) instead of the run's images; FD only")
    e.add_argument("--batch-size", type=int, help="samples per network call (default: the run's eval.batch_size)")
    e.add_argument("--seed", type=int, help="default: the run's eval.seed; the same seed gives the same numbers")
    e.add_argument("--json", help="also write the scores to this JSON file")
    e.add_argument("--latent", choices=LATENTS, default="prior", help=LATENT_HELP)
    e.add_argument("--temperature", type=float, help=TEMPERATURE_HELP + "; default: the run's eval.temperature, else 1")
    e.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    e.add_argument("--device", help="device for the model and the feature network: cpu, cuda, cuda:N or auto")
    e.set_defaults(func=cmd_eval)
    b = sub.add_parser("bench", help="score solvers and baselines against ground truth (one table)")
    b.add_argument("suite", help="eot (Gaussian and mixture pairs), eot-mixture, eot-gaussian (EgNOT); "
                                 "uot-gaussian (UOTM); jko-gaussian (S-JKO)")
    b.add_argument("--solver", default="default", help="solver to train in each cell (default: the suite's: egnot, "
                                                       "uotm or sjko), or none for baselines only")
    b.add_argument("--quick", action="store_true", help="a few small cells, short training (a few minutes)")
    b.add_argument("--json", help="write the results to this JSON file (updated after every cell)")
    b.add_argument("--write", metavar="MARKDOWN", help="regenerate this suite's tables in a Markdown file (BENCHMARKS.md)")
    b.add_argument("--from-json", metavar="FILE", help="do not run: make the table (and --write) from saved results")
    b.add_argument("--cells", nargs="+", metavar="LABEL", help="run only these cells, named as in the "
                                                               "progress bar, e.g. 'mixture D=2 eps=0.1'")
    b.add_argument("--iters", type=int, help="training iterations per cell instead of the suite's budget "
                                             "(S-JKO: per phase after the first)")
    b.add_argument("--peers", nargs="+", metavar="NAME", help="EOT suites: also train and score these peer methods "
                                                             "with their published settings: lightsb, sbcfm "
                                                             "(torchcfm, optional: pip install --no-deps torchcfm==1.0.7)")
    b.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--threads", type=thread_count, help=THREADS_HELP)
    b.set_defaults(func=cmd_bench)
    return p


def error_text(e: BaseException) -> str:
    """An error as the one line ``otgen`` prints (a config with several problems: one line each). An
    OSError of the file system reads ``<path>: <what the system says>``."""
    if isinstance(e, cfgmod.ConfigError) and len(e.problems) > 1:
        return str(e)
    if isinstance(e, OSError) and e.errno is not None and e.strerror:
        text = f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    else:
        text = str(e) or type(e).__name__
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # steadier, faster CPU steps (see otgen.runtime)
    try:
        return args.func(args)
    except (ValueError, TypeError, TrainingDiverged, DataLoaderFailed, OSError) as e:  # OSError: disk full, ...
        print(f"otgen {args.command}: error: {error_text(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"otgen {args.command}: interrupted (the last checkpoint, if any, is kept)", file=sys.stderr)
        return 130
    finally:
        shutdown()  # leave a torchrun process group


if __name__ == "__main__":
    sys.exit(main())
