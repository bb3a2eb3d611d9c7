"""EgNOT translation of coloured digits 2 -> 3, in pixel space (several eps) and in a WAE's latent space.

    python benchmarks/egnot_digits.py [--threads 2] [--eps 0.003 0.01 0.03] [--out DIR]

Each run is ``otgen train`` in its own process (its wall time and peak memory are its own):

* ``configs/digits_egnot_pixel.yaml`` once per ``--eps`` value (every other setting unchanged);
* ``configs/digits_wae_colored3.yaml``, the generator G (a WAE on coloured 3s), then
  ``configs/digits_egnot_latent.yaml`` with ``cost.run`` pointing at it.

Every run scores the 34 held-out coloured 2s with 4 draws each (``image_runs.translation_scores``):
the share of draws classified as 3 by otgen's digit classifier, E‖x − y‖², the stroke-hue error (in
turns; 0.25 for independent colours), digits-FD to the 52 held-out 3s and the diversity per input,
beside the identity map and random train 3s. Writes ``benchmarks/results/egnot_digits.md`` and
``.json`` and copies the source | draws grids to ``docs/images/``.
"""

from __future__ import annotations

import shutil
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


def main() -> int:
    p = parser(__doc__, "egnot_digits")
    p.add_argument("--eps", type=float, nargs="+", default=[0.003, 0.01, 0.03])
    args = p.parse_args()
    out = fresh_out(args, "egnot_digits")
    runs: dict[str, dict] = {}
    for eps in args.eps:
        name = f"pixel, eps = {eps:g}"
        runs[name] = train_run(name, PIXEL, out / f"pixel_eps{eps:g}", args.threads, [f"model.eps={eps}"])
        print(runs[name].pop("stdout"), flush=True)
    runs["WAE generator (coloured 3s)"] = train_run("wae", WAE, out / "wae_colored3", args.threads)
    print(runs["WAE generator (coloured 3s)"].pop("stdout"), flush=True)
    runs["latent, eps = 1"] = train_run("latent", LATENT, out / "latent", args.threads,
                                        [f"model.cost.run={out / 'wae_colored3'}"])
    print(runs["latent, eps = 1"].pop("stdout"), flush=True)

    meta = machine_meta(args.threads)
    lines = [f"Measured {date.today().isoformat()} on {meta['machine']} ({meta['gflops']} GFLOP/s single-thread "
             f"float32 matmul), {args.threads} threads, torch {torch.__version__}; `python benchmarks/egnot_digits.py`. "
             "34 held-out coloured 2s x 4 draws; accuracy: share classified as 3 by otgen's digit classifier; "
             "hue error in turns (0.25: independent colours); E‖x − y‖² summed over 768 pixels; digits-FD to the 52 "
             "held-out 3s (otgen classifier features, not Inception FID); diversity: the unbiased variance of an "
             "input's 4 draws, summed over pixels (pixel noise of variance eps alone gives 768·eps); the identity "
             "row scores 34 images, the others 136.", "",
             "| map | accuracy (3) | hue error | E‖x − y‖² | digits-FD | diversity | train time | peak memory |",
             "|---|---|---|---|---|---|---|---|"]
    first = next(r for k, r in runs.items() if k.startswith("pixel"))
    for name, r in runs.items():
        if "model" in r:
            lines.append(row(f"EgNOT {name}", r["model"], f"{r['wall_min']:.1f} min", f"{r['peak_rss_mib']:.0f} MiB"))
        else:
            lines.append(f"| {name}: training G | – | – | – | – | – | {r['wall_min']:.1f} min | "
                         f"{r['peak_rss_mib']:.0f} MiB |")
    lines.append(row("identity (y = x)", first["identity"]))
    lines.append(row("random train 3s", first["random_target"]))
    text = "\n".join(lines) + "\n"
    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    for eps in args.eps:
        shutil.copyfile(out / f"pixel_eps{eps:g}" / "plots" / "draws.png", images / f"digits_egnot_pixel_eps{eps:g}_draws.png")
    shutil.copyfile(out / "latent" / "plots" / "draws.png", images / "digits_egnot_latent_draws.png")
    write_results("egnot_digits", text, {"meta": meta, "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
