"""Streaming image data: peak memory and time to the first training step for folders of 2 000, 60 000
and 200 000 JPEGs, and the loader's throughput (images/s decoded and delivered) by worker count.

    python benchmarks/image_data.py [--sizes 2000 60000 200000] [--throughput] [--root DIR]
                                    [--old-src PATH] [--repeats 3] [--json FILE]

The folders are generated once under ``--root`` (64×64 RGB JPEGs of random ellipses and rectangles on a
random background, quality 90; about 2.5 kB each) and reused. For each size, a fresh process
(``/usr/bin/time -v``, so the peak resident memory is that process's own) builds UOTM with a small
conv generator and critic on 3×64×64, then trains 10 steps of batch 64 on the folder with
``num_workers=0`` (everything in the one measured process) and prints the seconds from the start of
the process to the end of step 1. ``--old-src`` runs the same script against another checkout's
``src`` (e.g. a worktree of the commit before streaming) to get the earlier figures.

``--throughput``: images/s that ``DatasetStream`` delivers as float batches of 256 (decode, convert,
flip) with 0, 1 and 2 workers, from 64×64 and 256×256 JPEG folders and a memory-mapped uint8 ``.npy``
of CIFAR-10's size (50 000 × 32 × 32 × 3).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

TRAIN_SCRIPT = r"""
import sys, time
t0 = time.perf_counter()
import torch
torch.set_num_threads(1)
import otgen
from otgen.distributions import make
folder, n_iters = sys.argv[1], int(sys.argv[2])
target = make("image_folder", path=folder)
model = otgen.UOTM(event_shape=[3, 64, 64], source_shape=[3, 64, 64], generator={"name": "conv", "width": 16},
                   potential={"name": "conv", "width": 16}, seed=0)
first = []
def mark(step, solver, metrics):
    if step == 1:
        first.append(time.perf_counter() - t0)
kw = {"num_workers": 0} if "num_workers" in otgen.UOTM.fit.__code__.co_varnames else {}
model.fit(make("normal", shape=[3, 64, 64]), target, n_iters=n_iters, batch_size=64, progress=False,
          callbacks=[mark], **kw)
print(f"FIRST_STEP {first[0]:.3f}")
print(f"TOTAL {time.perf_counter() - t0:.3f}")
"""


def make_folder(path: Path, n: int, size: int, seed: int = 0) -> Path:
    """``n`` JPEGs ``size``×``size`` of random shapes in ``path`` (kept if already complete)."""
    from PIL import Image, ImageDraw

    path.mkdir(parents=True, exist_ok=True)
    done = path / ".complete"
    if done.exists():
        return path
    rng = np.random.default_rng(seed)
    for i in range(n):
        im = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(im)
        for _ in range(3):
            x0, y0 = rng.integers(0, size, 2)
            x1, y1 = x0 + rng.integers(4, size // 2), y0 + rng.integers(4, size // 2)
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape((int(x0), int(y0), int(x1), int(y1)), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        im.save(path / f"{i:06d}.jpg", quality=90)
    done.write_text(str(n))
    return path


def train_probe(folder: Path, src: Path, n_iters: int = 10, repeats: int = 1) -> dict:
    """Peak RSS (MiB) and seconds to the first step of a fresh training process on ``folder``: the
    medians of ``repeats`` runs, and every run's figures."""
    runs = [_probe_once(folder, src, n_iters) for _ in range(repeats)]
    if any("error" in r for r in runs):
        return next(r for r in runs if "error" in r)
    med = {k: float(np.median([r[k] for r in runs])) for k in ("peak_rss_mib", "first_step_s", "total_s")}
    return {**med, "n_iters": n_iters, "runs": runs}


def _probe_once(folder: Path, src: Path, n_iters: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    cmd = ["/usr/bin/time", "-v", sys.executable, "-c", TRAIN_SCRIPT, str(folder), str(n_iters)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        return {"error": p.stderr[-2000:], "wall_s": round(wall, 1)}
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
    first = float(re.search(r"FIRST_STEP ([\d.]+)", p.stdout).group(1))
    total = float(re.search(r"TOTAL ([\d.]+)", p.stdout).group(1))
    return {"peak_rss_mib": round(rss), "first_step_s": round(first, 2), "total_s": round(total, 1),
            "n_iters": n_iters}


def throughput(data, workers: int, batch: int = 256, n_batches: int = 12) -> float:
    """Images/s that ``DatasetStream`` delivers from the data set ``data`` (after two warm-up batches)."""
    import torch

    from otgen.train.loader import DatasetStream

    torch.set_num_threads(1)
    stream = DatasetStream(data, "target", seed=0, num_workers=workers)
    stream.start(batch)
    for _ in range(2):
        stream(batch)
    t0 = time.perf_counter()
    for _ in range(n_batches):
        stream(batch)
    rate = n_batches * batch / (time.perf_counter() - t0)
    stream.close()
    return rate


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="*", default=[2000, 60000, 200000])
    p.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "otgen_jpegs",
                   help="where the generated folders are kept and reused (default: otgen_jpegs in the system's "
                        "temporary folder)")
    p.add_argument("--old-src", type=Path, help="also run the probe against this src folder (the earlier code)")
    p.add_argument("--throughput", action="store_true")
    p.add_argument("--repeats", type=int, default=1, help="training probes per size (medians reported)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    results: dict = {"date": date.today().isoformat(), "probe": {}, "old_probe": {}, "throughput": {}}
    for n in args.sizes:
        t0 = time.perf_counter()
        folder = make_folder(args.root / f"jpeg64_{n}", n, 64)
        print(f"folder of {n}: {time.perf_counter() - t0:.0f} s to make (or reuse)", flush=True)
        results["probe"][n] = train_probe(folder, ROOT / "src", repeats=args.repeats)
        print(f"  streaming: {results['probe'][n]}", flush=True)
        if args.old_src:
            results["old_probe"][n] = train_probe(folder, args.old_src, repeats=args.repeats)
            print(f"  earlier code: {results['old_probe'][n]}", flush=True)
    if args.throughput:
        from otgen.distributions import image_folder, npy_images

        sets = {f"JPEG {size}x{size}": image_folder(make_folder(args.root / f"jpeg{size}_2000", 2000, size), flip=True)
                for size in (64, 256)}
        arr = args.root / "cifar_like_50000.npy"  # CIFAR-10's size and dtype, memory-mapped
        if not arr.exists():
            np.save(arr, np.random.default_rng(0).integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8))
        sets["uint8 .npy 32x32 (memory-mapped)"] = npy_images(arr, flip=True)
        for name, data in sets.items():
            for w in (0, 1, 2):
                rate = throughput(data, w)
                results["throughput"][f"{name}, {w} workers"] = round(rate)
                print(f"throughput {name}, {w} workers: {rate:.0f} images/s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
