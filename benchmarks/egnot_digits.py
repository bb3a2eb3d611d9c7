"""EgNOT translation of coloured digits 2 -> 3, in pixel space (several eps) and in a WAE's latent space.

    python benchmarks/egnot_digits.py [--threads 2] [--eps 0.003 0.01 0.03] [--seeds 0] [--no-latent]
                                      [--name egnot_digits] [--out DIR]

Each run is ``otgen train`` in its own process (its wall time and peak memory are its own), once per
training seed (``--set train.seed=S --set model.seed=S``):

* ``configs/digits_egnot_pixel.yaml`` once per ``--eps`` value (every other setting unchanged; ``--eps``
  with no value: none);
* ``configs/digits_wae_colored3.yaml``, the generator G (a WAE on coloured 3s), then
  ``configs/digits_egnot_latent.yaml`` with ``cost.run`` pointing at it (not with ``--no-latent``).

With several seeds every map gets a row per seed and a row of means (digits-FD with the seeds'
standard deviation, the share read as 3 with its range): one run's 136 draws move by a few points.

Every run scores the 34 held-out coloured 2s with 4 draws each (``image_runs.translation_scores``):
the share of draws classified as 3 by otgen's digit classifier, E‖x − y‖², the stroke-hue error (in
turns; 0.25 for independent colours), digits-FD to the 52 held-out 3s and the diversity per input,
beside the identity map and random train 3s. Writes ``benchmarks/results/NAME.md`` and ``.json`` and
copies the first seed's source | draws grids to ``docs/images/`` (with another ``--name``: into the
first seed's folder).
"""

from __future__ import annotations

import shutil
import statistics
from datetime import date
from pathlib import Path

import torch

from bench_runs import fresh_out, parser, train_run, write_results
from otgen.bench import machine_meta

ROOT = Path(__file__).resolve().parents[1]
PIXEL = ROOT / "configs" / "digits_egnot_pixel.yaml"
WAE = ROOT / "configs" / "digits_wae_colored3.yaml"
LATENT = ROOT / "configs" / "digits_egnot_latent.yaml"


def row(name: str, r: dict, minutes: str = "–", memory: str = "–") -> str:
    hue = f"{r['hue_error']:.3f}" if "hue_error" in r else "–"
    diversity = f"{r['diversity']:.1f}" if "diversity" in r else "–"
    return (f"| {name} | {r['accuracy']:.1%} | {hue} | {r['content']:.1f} | {r['fd']:.1f} | {diversity} | "
            f"{minutes} | {memory} |")


def mean_row(name: str, rs: list[dict]) -> str:
    """The means over a map's seeds (digits-FD with the seeds' sd, the share read as 3 with its range)."""
    m = [r["model"] for r in rs]
    mean = {k: statistics.mean(x[k] for x in m) for k in ("accuracy", "hue_error", "content", "fd", "diversity")
            if all(k in x for x in m)}
    acc = [x["accuracy"] for x in m]
    fd_sd = f" (sd {statistics.stdev(x['fd'] for x in m):.1f})" if len(m) > 1 else ""
    hue = f"{mean['hue_error']:.3f}" if "hue_error" in mean else "–"
    diversity = f"{mean['diversity']:.1f}" if "diversity" in mean else "–"
    return (f"| **{name}, mean of {len(m)} seeds** | **{mean['accuracy']:.1%}** ({min(acc):.1%}–{max(acc):.1%}) | "
            f"{hue} | {mean['content']:.1f} | **{mean['fd']:.1f}**{fd_sd} | {diversity} | "
            f"{statistics.mean(r['wall_min'] for r in rs):.1f} min | |")


def main() -> int:
    p = parser(__doc__, "egnot_digits")
    p.add_argument("--eps", type=float, nargs="*", default=[0.003, 0.01, 0.03])
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (model and data)")
    p.add_argument("--no-latent", action="store_true", help="train no WAE generator and no latent EgNOT")
    p.add_argument("--name", default="egnot_digits", help="results file name (benchmarks/results/NAME.*)")
    args = p.parse_args()
    if not args.eps and args.no_latent:
        p.error("nothing to train: --eps is empty and --no-latent is given")
    for name, values, shown in (("--seeds", args.seeds, args.seeds), ("--eps", args.eps, [f"{e:g}" for e in args.eps])):
        if len(set(shown)) != len(shown):  # two runs would share a run directory
            p.error(f"{name} holds a value twice: {values}")
    out = fresh_out(args, "egnot_digits")
    runs: dict[str, list[dict]] = {}  # map -> one result per seed
    for seed in args.seeds:
        seeded = [f"train.seed={seed}", f"model.seed={seed}"]
        for eps in args.eps:
            name = f"pixel, eps = {eps:g}"
            r = train_run(name, PIXEL, out / f"seed{seed}" / f"pixel_eps{eps:g}", args.threads,
                          [f"model.eps={eps}", *seeded])
            print(r.pop("stdout"), flush=True)
            runs.setdefault(name, []).append({**r, "seed": seed})
        if not args.no_latent:
            wae = out / f"seed{seed}" / "wae_colored3"
            r = train_run("wae", WAE, wae, args.threads, seeded)
            print(r.pop("stdout"), flush=True)
            runs.setdefault("WAE generator (coloured 3s)", []).append({**r, "seed": seed})
            r = train_run("latent", LATENT, out / f"seed{seed}" / "latent", args.threads,
                          [f"model.cost.run={wae}", *seeded])
            print(r.pop("stdout"), flush=True)
            runs.setdefault("latent, eps = 1", []).append({**r, "seed": seed})

    meta = machine_meta(args.threads)
    command = " ".join(["python benchmarks/egnot_digits.py", f"--threads {args.threads}",
                        " ".join(["--eps", *(f"{e:g}" for e in args.eps)]), "--seeds " + " ".join(map(str, args.seeds)),
                        *(["--no-latent"] if args.no_latent else []),
                        *([f"--name {args.name}"] if args.name != "egnot_digits" else [])])
    lines = [f"Measured {date.today().isoformat()} on {meta['machine']} ({meta['gflops']} GFLOP/s single-thread "
             f"float32 matmul), {args.threads} threads, torch {torch.__version__}; `{command}`. "
             "34 held-out coloured 2s x 4 draws; accuracy: share classified as 3 by otgen's digit classifier; "
             "hue error in turns (0.25: independent colours); E‖x − y‖² summed over 768 pixels; digits-FD to the 52 "
             "held-out 3s (otgen classifier features, not Inception FID); diversity: the unbiased variance of an "
             "input's 4 draws, summed over pixels (pixel noise of variance eps alone gives 768·eps); the identity "
             "row scores 34 images, the others 136.", "",
             "| map | accuracy (3) | hue error | E‖x − y‖² | digits-FD | diversity | train time | peak memory |",
             "|---|---|---|---|---|---|---|---|"]
    several = len(args.seeds) > 1
    for name, rs in runs.items():
        for r in rs:
            label = f"{name}, seed {r['seed']}" if several else name
            if "model" in r:
                lines.append(row(f"EgNOT {label}", r["model"], f"{r['wall_min']:.1f} min",
                                 f"{r['peak_rss_mib']:.0f} MiB"))
            else:
                lines.append(f"| {label}: training G | – | – | – | – | – | {r['wall_min']:.1f} min | "
                             f"{r['peak_rss_mib']:.0f} MiB |")
        if several and "model" in rs[0]:
            lines.append(mean_row(f"EgNOT {name}", rs))
    first = next(rs[0] for rs in runs.values() if "model" in rs[0])
    lines.append(row("identity (y = x)", first["identity"]))
    lines.append(row("random train 3s", first["random_target"]))
    text = "\n".join(lines) + "\n"
    # the first seed's grids; under the default name only, so that another --name leaves docs' images
    first_seed = out / f"seed{args.seeds[0]}"
    images = ROOT / "docs" / "images" if args.name == "egnot_digits" else first_seed
    images.mkdir(parents=True, exist_ok=True)
    for eps in args.eps:
        shutil.copyfile(first_seed / f"pixel_eps{eps:g}" / "plots" / "draws.png",
                        images / f"digits_egnot_pixel_eps{eps:g}_draws.png")
    if not args.no_latent:
        shutil.copyfile(first_seed / "latent" / "plots" / "draws.png", images / "digits_egnot_latent_draws.png")
    write_results(args.name, text, {"meta": meta, "seeds": args.seeds, "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
