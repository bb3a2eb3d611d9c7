"""Shared by the image benchmarks: run ``otgen train`` in a child process and read what it measured.

Each run is its own process, so that its wall time and peak resident memory are its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

CHILD = """
import resource, sys
from otgen.cli import main
rc = main(sys.argv[1:])
print("peak_rss_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
sys.exit(rc)
"""


def train_run(name: str, config: Path, out: Path, threads: int, sets: list[str] = (), resume: bool = False) -> dict:
    """``otgen train CONFIG --out OUT --threads T [--set ...] [--resume]``; returns the run's
    ``eval.json`` with ``wall_min``, ``peak_rss_mib`` and ``stdout`` added. Exits with the child's
    output if it fails."""
    cmd = [sys.executable, "-c", CHILD, "train", str(config), "--out", str(out), "--threads", str(threads)]
    if resume:
        cmd.append("--resume")
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{name}: otgen train failed:\n{proc.stdout}\n{proc.stderr}")
    rss = int(proc.stdout.split("peak_rss_kb")[-1].split()[0])
    scores = json.loads((out / "eval.json").read_text()) if (out / "eval.json").is_file() else {}
    return {"wall_min": wall / 60, "peak_rss_mib": rss / 1024, **scores, "stdout": proc.stdout}


def parser(doc: str, name: str) -> argparse.ArgumentParser:
    """The arguments every image benchmark takes: ``--threads`` (default 2) and ``--out`` (the folder of
    its run directories; default ``runs/bench_<name>-<date>-<time>``)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help=f"run directories go here (must not exist; default "
                                               f"runs/bench_{name}-<date>-<time>)")
    return p


def fresh_out(args: argparse.Namespace, name: str) -> Path:
    """The run folder of ``args.out`` (or the default of ``parser``); exits if it exists: nothing saved
    is overwritten."""
    out = Path(args.out or f"runs/bench_{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if out.exists():
        raise SystemExit(f"{out} exists; remove it or pass another --out (nothing saved is overwritten)")
    return out


def write_results(name: str, text: str, payload: dict) -> None:
    """Save a benchmark's Markdown table and its JSON under ``benchmarks/results/NAME.{md,json}`` and
    print the table."""
    from otgen import io

    io.write_text(RESULTS / f"{name}.md", text)
    io.write_text(RESULTS / f"{name}.json", json.dumps(payload, indent=1) + "\n")
    print(text)
