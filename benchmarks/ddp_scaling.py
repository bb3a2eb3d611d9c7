"""Throughput of one solver in 1 and 2 processes (torchrun, gloo on the CPU; NCCL on GPUs with --device cuda).

Runs ``otgen train CONFIG`` as one plain process (``--threads T``) and under ``torchrun
--nproc_per_node=K`` (``--threads 1`` each) with the same global batch, and reads the loop's own
clock (``metrics.jsonl``: seconds since the first step) at the last step: steps/s and samples/s (the
global batch per step). With --device cuda, also bf16 autocast (train.precision=bf16) and the peak
GPU memory, from torch.cuda.max_memory_allocated in each process.

    python benchmarks/ddp_scaling.py                      # EgNOT on the 16-d Gaussian pair, CPU
    python benchmarks/ddp_scaling.py --device cuda --config configs/gpu_uotm_32.yaml --nproc 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench_runs import write_results

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SETS = ["data.pair.dim=16", "train.batch_size=256", "train.log_every=10", "train.checkpoint_every=100000",
                "eval.n_conditions=4", "eval.n_per_condition=16", "eval.n_samples=256"]

# a child that reports its peak GPU memory (when it used CUDA) after `otgen train`
CHILD = """
import sys, torch
from otgen.cli import main
rc = main(sys.argv[1:])
if torch.cuda.is_available() and torch.cuda.is_initialized():
    print("peak_cuda_mib", torch.cuda.max_memory_allocated() / 2**20, flush=True)
sys.exit(rc)
"""


def run(label: str, launcher: list[str], config: str, out: Path, threads: int, sets: list[str]) -> dict:
    cmd = [*launcher, "train", config, "--out", str(out), "--threads", str(threads)]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{label} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    first, last = records[0], records[-1]
    # the loop's clock starts before step 1; (last - first) skips the first logged interval (warm-up)
    steps = last["step"] - first["step"]
    seconds = last["time"] - first["time"]
    peaks = [float(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("peak_cuda_mib")]
    return {"label": label, "steps_timed": steps, "seconds": seconds, "steps_per_s": steps / seconds,
            "wall_s": wall, "peak_cuda_mib": max(peaks) if peaks else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "gauss_egnot.yaml"))
    p.add_argument("--n-iters", type=int, default=300)
    p.add_argument("--nproc", type=int, nargs="+", default=[2], help="process counts to run under torchrun")
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", action="append", default=None, help="config overrides (default: the 16-d pair)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    sets = (args.set if args.set is not None else DEFAULT_SETS) + [f"train.n_iters={args.n_iters}"]
    out = Path(args.out or f"runs/bench_ddp-{time.strftime('%Y%m%d-%H%M%S')}")
    if out.exists():
        raise SystemExit(f"{out} exists; pass another --out (nothing saved is overwritten)")
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    plain = [sys.executable, "-c", CHILD]
    precisions = ["fp32", "bf16"] if args.device.startswith("cuda") else ["fp32"]
    rows = []
    for precision in precisions:
        ps = sets + [f"train.precision={precision}"]
        if args.device == "cpu":
            rows.append(run("1 process, 1 thread", plain, args.config, out / f"p1t1-{precision}", 1, ps))
            rows.append(run("1 process, 2 threads", plain, args.config, out / f"p1t2-{precision}", 2, ps))
        else:
            rows.append(run(f"1 process ({precision})", plain, args.config, out / f"p1-{precision}", 1,
                            ps + [f"model.device={args.device}"]))
        for k in args.nproc:
            launcher = [torchrun, "--standalone", f"--nproc_per_node={k}", "-m", "otgen"]
            extra = [] if args.device == "cpu" else [f"model.device={args.device}"]
            rows.append(run(f"torchrun, {k} processes x 1 thread ({precision})", launcher, args.config,
                            out / f"torchrun{k}-{precision}", 1, ps + extra))
    batch = next(int(s.split("=")[1]) for s in sets if s.startswith("train.batch_size="))
    from otgen.bench import machine_meta

    meta = machine_meta(1)
    lines = [f"Throughput, `{Path(args.config).name}` with {' '.join('--set ' + s for s in sets)} "
             f"(global batch {batch}), device {args.device}; {meta['machine']}, {meta['gflops']} GFLOP/s "
             f"single-thread float32 matmul, torch {meta['torch']}, {meta['date']}. Timed on the loop's own "
             "clock from the first logged step to the last (start-up and the first interval excluded).", "",
             "| run | steps/s | samples/s | wall (s) | peak GPU memory (MiB) |", "|---|---|---|---|---|"]
    for r in rows:
        peak = f"{r['peak_cuda_mib']:.0f}" if r["peak_cuda_mib"] is not None else "—"
        lines.append(f"| {r['label']} | {r['steps_per_s']:.2f} | {r['steps_per_s'] * batch:.0f} | {r['wall_s']:.1f} "
                     f"| {peak} |")
    shown = [a for i, a in enumerate(sys.argv[1:]) if a != "--out" and (i == 0 or sys.argv[i] != "--out")]
    cmd = "python benchmarks/ddp_scaling.py " + " ".join(shown)  # without --out: where runs went is local
    write_results(f"ddp_scaling_{Path(args.config).stem}_{args.device.split(':')[0]}", "\n".join(lines) + f"\n\nCommand: `{cmd.strip()}`\n",
                  {"meta": meta, "sets": sets, "rows": rows, "command": cmd})


if __name__ == "__main__":
    main()
