"""Seconds per S-JKO phase, from a run directory's metrics.jsonl.

    python benchmarks/sjko_phase_cost.py RUN_DIR

Every T_k pushes mu_0 directly, so a step of phase k costs the same for every k ≥ 1 (one generator
forward/backward, one frozen forward of T_{k−1}, two critic passes); phase 0 skips the frozen map
(T_{−1} is the identity). The table should be flat in k: O(K) for a whole run, not O(K²).

metrics.jsonl holds one record every ``log_every`` steps: ``step``, ``time`` (wall seconds since the
training call started, so it includes checkpoint writes inside the loop) and ``phase`` (the mean phase
of the steps in the window). A window that straddles a phase boundary has a fractional mean; its
steps and seconds are split between the two phases in that proportion (exact for the steps, pro rata
for the time). A resumed run restarts its clock; a record whose time goes down is counted from the
restart (the steps between the checkpoint and the restart are then not timed).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path


def phase_costs(run_dir: str | Path) -> list[dict]:
    """[{"phase": k, "steps": n, "seconds": s, "s_per_step": s / n}, ...] for the phases in the log."""
    records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if line.strip()]
    if not records or "phase" not in records[0] or "time" not in records[0]:
        raise SystemExit(f"{run_dir}/metrics.jsonl has no S-JKO records with 'phase' and 'time'")
    steps: dict[int, float] = {}
    seconds: dict[int, float] = {}
    prev_step, prev_time = 0, 0.0
    for r in records:
        n, t = r["step"] - prev_step, r["time"] - prev_time
        if t < 0:  # a resumed run: its clock starts again at 0
            t = r["time"]
        lo = math.floor(r["phase"] + 1e-9)
        frac = r["phase"] - lo  # the share of the window's steps in phase lo + 1
        for k, share in ((lo, 1.0 - frac), (lo + 1, frac)):
            if share > 1e-9:
                steps[k] = steps.get(k, 0.0) + n * share
                seconds[k] = seconds.get(k, 0.0) + t * share
        prev_step, prev_time = r["step"], r["time"]
    return [{"phase": k, "steps": round(steps[k]), "seconds": seconds[k], "s_per_step": seconds[k] / steps[k]}
            for k in sorted(steps)]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    rows = phase_costs(argv[0])
    print(f"{'phase k':>7} {'steps':>7} {'seconds':>9} {'s/step':>8}")
    for r in rows:
        print(f"{r['phase']:>7} {r['steps']:>7} {r['seconds']:>9.1f} {r['s_per_step']:>8.4f}")
    total_steps, total_s = sum(r["steps"] for r in rows), sum(r["seconds"] for r in rows)
    later = [r["s_per_step"] for r in rows if r["phase"] > 0]
    print(f"{'all':>7} {total_steps:>7} {total_s:>9.1f} {total_s / total_steps:>8.4f}")
    if len(later) > 1:
        print(f"phases 1..{rows[-1]['phase']}: s/step from {min(later):.4f} to {max(later):.4f} "
              f"(max/min {max(later) / min(later):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
