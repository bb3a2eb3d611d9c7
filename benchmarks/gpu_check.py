"""GPU check: speed, memory and host overhead of the GPU configs, fp32 and bf16, eager and compiled.

    .venv/bin/python benchmarks/gpu_check.py [--out DIR] [--steps N] [--configs CONFIG ...]
    .venv/bin/python benchmarks/gpu_check.py --device cpu --steps 3 --configs tiny.yaml   # smoke run, no GPU

Every measurement (a config × precision × compile) runs in its own process: a fresh model built from
the config through otgen's API (``config.build_data`` / ``build_model``, then ``model.fit(precision=,
compile=)``, the library's one training loop), a fresh CUDA context and fresh compile caches. A
measurement that fails or runs past its time is recorded with its error and the next one runs.
Within one, the steps are

    warm-up (W steps; compiling happens here)  →  profiled (P steps)  →  timed (N steps, or fewer
    when the timed window passes --max-timed-s)

and it reports, for the timed steps (the GPU synchronised at both ends of the window):

* ``steps_per_s``, ``images_per_s`` (steps/s × the config's global batch; for EgNOT each step also
  runs its Langevin chains), ``warmup_s`` (wall time of the W warm-up steps, compiling included);
* ``peak_mib``: ``torch.cuda.max_memory_allocated`` of the process (on the CPU: its peak RSS);
* from ``torch.profiler`` over the P profiled steps (its Chrome trace; the GPU synchronised before
  the profiler starts and before it stops): ``gpu_idle_share``, the share of the profiled wall window
  (first to last recorded event) in which no CUDA kernel, memcpy or memset ran (the union of their
  intervals): the time the GPU waits for the host (Python, dispatch, launches, syncs, data); and
  ``host_op_share``, the share of that window in which the host was inside some torch operator (the
  union of the ``cpu_op`` intervals of all threads); ``kernel_ms_per_step``, the summed kernel time.

S-JKO runs two phases, phase 0 being the warm-up, so that the profiled and timed steps are of phase 1
(which also runs the frozen map T_0). EgNOT's steps each run 500 Langevin moves: fewer of them.
The eager measurements come first (all configs), then a 2-process run (torchrun, NCCL; the first
config, bf16, eager) when two GPUs are visible (skipped with a message otherwise), then the compiled
ones, bf16 before fp32. No new measurement starts
once --budget seconds have passed, and none runs past --hard-limit (the default fits 8 minutes).

Output: ``DIR/gpu_check.json`` (the environment and every row) and a markdown table, printed and
written to ``DIR/gpu_check.md``, to paste into BENCHMARKS.md. Exit status 0; 2 (with a message,
nothing measured) when --device cuda and torch sees no GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = "GPU_CHECK_RESULT "  # the line a measurement prints its result on (rank 0)
PEAK = "GPU_CHECK_PEAK "      # every rank's peak memory, MiB

#: per solver: steps (warm-up, profiled, timed) and the overrides that shape the check's run
PLANS = {
    "UOTM": {"warmup": 15, "profile": 10, "steps": 200, "sets": []},
    "SJKO": {"warmup": 15, "profile": 10, "steps": 200,
             "sets": ["model.n_phases=2", "model.phases.first_iters={warmup}"]},
    "EgNOT": {"warmup": 3, "profile": 2, "steps": 20, "sets": []},
    "WAE": {"warmup": 15, "profile": 10, "steps": 200, "sets": []},
}


# -- one measurement (a child process) -------------------------------------------------------------
class Enough(Exception):
    """Raised by the probe to end a run once the timed window is long enough."""


def interval_union(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by [start, end) intervals (overlaps counted once)."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def trace_stats(path: Path, steps: int) -> dict:
    """What the profiler's Chrome trace ``path`` (``steps`` steps) says about host and GPU time."""
    events = [e for e in json.loads(path.read_text()).get("traceEvents", [])
              if e.get("ph") == "X" and "ts" in e and "dur" in e]
    if not events:
        return {}
    span = [(float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in events]
    start, end = min(a for a, _ in span), max(b for _, b in span)
    window = max(end - start, 1e-9)
    gpu = [(float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in events
           if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    ops = [(float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in events if e.get("cat") == "cpu_op"]
    busy = interval_union(gpu) / window if gpu else None
    return {"profiled_ms_per_step": window / 1e3 / steps,
            "gpu_idle_share": None if busy is None else 1.0 - busy,
            "host_op_share": interval_union(ops) / window,
            "kernel_ms_per_step": sum(b - a for a, b in gpu) / 1e3 / steps if gpu else None}


class Probe:
    """The training callback that profiles steps (W, W+P] and times (W+P, end]."""

    def __init__(self, device, warmup: int, profile: int, total: int, max_timed_s: float, trace: Path,
                 single_process: bool):
        import torch
        self.torch, self.device = torch, device
        self.warmup, self.profile, self.total = warmup, profile, total
        self.max_timed_s, self.trace, self.single = max_timed_s, trace, single_process
        self.t_start = time.perf_counter()
        self.result: dict = {}
        self.profiler = None

    def sync(self) -> float:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def __call__(self, step, solver, metrics):
        torch = self.torch
        if step == self.warmup:
            self.result["warmup_s"] = self.sync() - self.t_start
            if self.profile:
                activities = [torch.profiler.ProfilerActivity.CPU]
                if self.device.type == "cuda":
                    activities.append(torch.profiler.ProfilerActivity.CUDA)
                self.profiler = torch.profiler.profile(activities=activities)
                self.profiler.__enter__()
        if step == self.warmup + self.profile:
            if self.profiler is not None:
                self.sync()
                self.profiler.__exit__(None, None, None)
                self.profiler.export_chrome_trace(str(self.trace))
                self.result.update(trace_stats(self.trace, self.profile))
                self.profiler = None
            self.t0, self.s0 = self.sync(), step
        elif step > self.warmup + self.profile:
            long_enough = self.single and time.perf_counter() - self.t0 > self.max_timed_s
            if step == self.total or long_enough:
                seconds = self.sync() - self.t0
                self.result.update(steps_timed=step - self.s0, timed_s=seconds, steps_per_s=(step - self.s0) / seconds)
                if step < self.total:
                    raise Enough
        return None


def measure(spec: dict) -> dict | None:
    """One measurement (``spec``: see ``plan``); returns the row (None in a rank other than 0)."""
    import torch
    from otgen import config as cfgmod
    from otgen.models import get_solver
    from otgen.train.distributed import shutdown

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    cfg = cfgmod.load_yaml(spec["config"])
    name = get_solver((cfg.get("model") or {}).get("name", "EgNOT")).name
    plan = PLANS.get(name, PLANS["UOTM"])
    warmup, profile, steps = spec["warmup"], spec["profile"], spec["steps"]
    sets = [s.format(warmup=warmup) for s in plan["sets"]] + spec["sets"] + [f"model.device={spec['device']}"]
    cfg = cfgmod.validate(cfgmod.apply_overrides(cfg, sets))
    *data, pair = cfgmod.build_data(cfg["data"], get_solver(name).data_sides)
    model = cfgmod.build_model(cfg["model"], pair)
    device = model.device
    total = warmup + profile + steps
    n_iters = total - (model.run_steps(1) - 1)  # S-JKO counts per phase: its phase 0 is the warm-up
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    probe = Probe(device, warmup, profile if rank == 0 else 0, total, spec["max_timed_s"], Path(spec["trace"]),
                  world == 1)  # under torchrun rank 0 alone profiles
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    batch = cfg["train"]["batch_size"]
    try:
        model.fit(*data, n_iters=n_iters, batch_size=batch, seed=cfg["train"]["seed"], progress=False,
                  log_every=total, checkpoint_every=total, callbacks=[probe], precision=spec["precision"],
                  compile=spec["compile"])
    except Enough:
        pass
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(PEAK + json.dumps(peak), flush=True)
    shutdown()
    if rank:
        return None
    row = {**probe.result, "solver": name, "batch_size": batch, "processes": world, "peak_mib": peak,
           "params_m": sum(p.numel() for m in model.networks().values() for p in m.parameters()) / 1e6,
           "compile_report": model.compile_report}
    if "steps_per_s" in row:
        row["images_per_s"] = row["steps_per_s"] * batch
    return row


# -- the parent: plan, run, report ----------------------------------------------------------------
def plan(args) -> list[dict]:
    """The measurements in the order they run: every eager one, then DDP, then the compiled ones (bf16
    first: when time runs out, what is left is the least asked for)."""
    from otgen import config as cfgmod
    from otgen.models import get_solver

    specs = []
    for config in args.configs:
        name = get_solver((cfgmod.load_yaml(config).get("model") or {}).get("name", "EgNOT")).name
        p = PLANS.get(name, PLANS["UOTM"])
        steps = args.steps if args.steps is not None else p["steps"]
        warmup = args.warmup if args.warmup is not None else (min(p["warmup"], steps) if args.steps else p["warmup"])
        profile = args.profile_steps if args.profile_steps is not None else (min(p["profile"], steps) if args.steps
                                                                             else p["profile"])
        for compiled in args.compile:
            for precision in args.precisions:
                specs.append({"config": str(config), "label": Path(config).stem, "precision": precision,
                              "compile": compiled == "on", "warmup": warmup, "profile": profile, "steps": steps,
                              "sets": args.set or [], "device": args.device, "threads": args.threads,
                              "max_timed_s": args.max_timed_s, "nproc": 1})
    eager = [s for s in specs if not s["compile"]]
    ddp = []
    if args.nproc > 1 and eager:  # the first config, eager, bf16 if measured; a fixed number of steps (no time cap:
        # every process must stop after the same step)
        first = [s for s in eager if s["config"] == eager[0]["config"]]
        base = next((s for s in first if s["precision"] == "bf16"), first[0])
        ddp = [{**base, "nproc": args.nproc, "max_timed_s": float("inf")}]
    compiled = sorted((s for s in specs if s["compile"]), key=lambda s: s["precision"] != "bf16")  # bf16 first
    return eager + ddp + compiled


def run_child(spec: dict, out: Path, timeout: float) -> dict:
    """Run one measurement in a new process (torchrun for nproc > 1); the row, or an error row."""
    tag = f"{spec['label']}-{spec['precision']}-{'compiled' if spec['compile'] else 'eager'}-p{spec['nproc']}"
    spec = {**spec, "trace": str(out / f"trace-{tag}.json")}
    script = [str(Path(__file__).resolve()), "--one", json.dumps(spec)]
    if spec["nproc"] > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={spec['nproc']}",
               *script]
    else:
        cmd = [sys.executable, *script]
    paths = (str(ROOT / "src"), os.environ.get("PYTHONPATH"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    if spec.get("threads"):
        env["OMP_NUM_THREADS"] = str(spec["threads"])
    row = {k: spec[k] for k in ("label", "config", "precision", "compile", "nproc", "device")}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)  # its own process group: a timeout ends compile workers too
    try:
        text, _ = proc.communicate(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        text, _ = proc.communicate()
        return {**row, "error": f"stopped after {timeout:.0f} s (the time left of the check)",
                "wall_s": time.perf_counter() - t0}
    row["wall_s"] = time.perf_counter() - t0
    lines = text.splitlines()
    peaks = [json.loads(l[len(PEAK):]) for l in lines if l.startswith(PEAK)]
    results = [json.loads(l[len(RESULT):]) for l in lines if l.startswith(RESULT)]
    if proc.returncode or not results:
        errors = [l for l in lines if re.search(r"\b\w*(Error|Exception|Interrupt)\b", l) and "elastic" not in l]
        tail = errors[-3:] or [l for l in lines if l.strip() and not l.startswith(PEAK)][-12:]
        return {**row, "error": f"exit status {proc.returncode}: " + " | ".join(tail)[-1500:]}
    if spec["nproc"] > 1 and peaks:
        results[-1]["peak_mib"] = max(peaks)
    if not os.environ.get("GPU_CHECK_KEEP_TRACES"):
        Path(spec["trace"]).unlink(missing_ok=True)
    return {**row, **results[-1]}


def environment(device: str) -> dict:
    import torch
    env = {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
           "cpus": os.cpu_count(), "device": device, "date": time.strftime("%Y-%m-%d %H:%M")}
    if torch.cuda.is_available():
        env.update(cuda=torch.version.cuda, gpus=torch.cuda.device_count(), gpu=torch.cuda.get_device_name(0))
    return env


def fmt(value, spec: str = ".3g", scale: float = 1.0) -> str:
    return "–" if value is None else format(value * scale, spec)


def markdown(rows: list[dict], env: dict) -> str:
    memory = "peak GPU MiB" if env["device"].startswith("cuda") else "peak RSS MiB"
    head = (f"| config | precision | compile | processes | steps/s | images/s | {memory} | GPU idle % | "
            "host in ops % | warm-up s | note |")
    out = [f"GPU check, {env.get('gpu', env['device'])}, torch {env['torch']}, {env['date']}", "", head,
           "|" + "---|" * 11]
    for r in rows:
        switch = f"| {r['label']} | {r['precision']} | {'on' if r['compile'] else 'off'} | {r['nproc']} |"
        if "skipped" in r:
            out.append(f"{switch} – | – | – | – | – | – | {r['skipped']} |")
            continue
        eager = [f"{k} eager" for k, why in (r.get("compile_report") or {}).items() if why]
        note = r.get("error", "")[:200] or "; ".join(eager)
        out.append(f"{switch} {fmt(r.get('steps_per_s'))} | {fmt(r.get('images_per_s'))} | "
                   f"{fmt(r.get('peak_mib'), '.0f')} | "
                   f"{fmt(r.get('gpu_idle_share'), '.1f', 100)} | {fmt(r.get('host_op_share'), '.1f', 100)} | "
                   f"{fmt(r.get('warmup_s'), '.1f')} | {note.replace('|', '/')} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="folder for gpu_check.json and .md (default runs/gpu_check-DATE)")
    p.add_argument("--configs", nargs="+", default=sorted(str(c) for c in (ROOT / "configs").glob("gpu_*.yaml")))
    p.add_argument("--steps", type=int, help="timed steps of every config (default: 200, EgNOT 20)")
    p.add_argument("--warmup", type=int, help="warm-up steps (default: 15, EgNOT 3; at most --steps if given)")
    p.add_argument("--profile-steps", type=int, help="profiled steps (default: 10, EgNOT 2; 0: no profile)")
    p.add_argument("--max-timed-s", type=float, default=15.0, help="end the timed window after this many seconds")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--compile", nargs="+", default=["off", "on"], choices=["off", "on"])
    p.add_argument("--nproc", type=int, default=2, help="processes of the torchrun run (needs that many GPUs; 1: none)")
    p.add_argument("--cpu-ddp", action="store_true", help="with --device cpu: run the torchrun check with gloo")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (a smoke run of the whole script)")
    p.add_argument("--threads", type=int, help="torch threads of each measurement (default: torch's choice)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a config override for every config")
    p.add_argument("--budget", type=float, default=450.0, help="no measurement starts after this many seconds")
    p.add_argument("--hard-limit", type=float, default=470.0, help="no measurement runs past this many seconds")
    p.add_argument("--one", help=argparse.SUPPRESS)  # a measurement: its spec as JSON (a child process)
    args = p.parse_args(argv)

    if args.one:
        row = measure(json.loads(args.one))
        if row is not None:
            print(RESULT + json.dumps(row), flush=True)
        return 0

    for flag, value, low in (("--steps", args.steps, 1), ("--warmup", args.warmup, 1),
                             ("--profile-steps", args.profile_steps, 0), ("--nproc", args.nproc, 1)):
        if value is not None and value < low:
            p.error(f"{flag} must be >= {low}, got {value}")
    t_start = time.perf_counter()
    import torch
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"gpu_check: CUDA is not available (torch {torch.__version__}, "
              f"{'built without CUDA' if torch.version.cuda is None else 'no GPU visible'}); nothing measured. "
              "For a smoke run of the script on the CPU: --device cpu --steps 3 --configs A_SMALL_CONFIG.yaml",
              file=sys.stderr)
        return 2
    for c in args.configs:
        if not Path(c).is_file():
            p.error(f"--configs: no such file {c}")
    out = Path(args.out or ROOT / "runs" / f"gpu_check-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    env = environment(args.device)
    gpus = torch.cuda.device_count() if args.device.startswith("cuda") else 0
    rows: list[dict] = []
    for spec in plan(args):
        label = f"{spec['label']} {spec['precision']} compile={'on' if spec['compile'] else 'off'} x{spec['nproc']}"
        if spec["nproc"] > 1 and not (gpus >= spec["nproc"] or (args.device == "cpu" and args.cpu_ddp)):
            why = (f"{spec['nproc']}-process run skipped: {gpus} GPU(s) visible" if args.device != "cpu" else
                   f"{spec['nproc']}-process run skipped on the CPU (--cpu-ddp runs it with gloo)")
            print(f"gpu_check: {why}", flush=True)
            rows.append({**{k: spec[k] for k in ("label", "precision", "compile", "nproc")}, "skipped": why})
            continue
        elapsed = time.perf_counter() - t_start
        left = args.hard_limit - elapsed
        if elapsed > args.budget or left < 10:
            print(f"gpu_check: {label}: not started ({elapsed:.0f} s passed, budget {args.budget:.0f} s)", flush=True)
            rows.append({**{k: spec[k] for k in ("label", "precision", "compile", "nproc")},
                         "skipped": f"not started: {elapsed:.0f} s had passed (--budget {args.budget:.0f})"})
            continue
        print(f"gpu_check: {label} ...", flush=True)
        row = run_child(spec, out, left)
        rows.append(row)
        print(f"gpu_check: {label}: " + (f"error: {row['error'][:300]}" if "error" in row else
                                         f"{row.get('steps_per_s', float('nan')):.3g} steps/s, "
                                         f"{row.get('peak_mib', float('nan')):.0f} MiB peak") +
              f" ({row['wall_s']:.0f} s)", flush=True)
    env["total_s"] = time.perf_counter() - t_start
    (out / "gpu_check.json").write_text(json.dumps({"environment": env, "args": vars(args), "rows": rows},
                                                   indent=2, default=str) + "\n")
    table = markdown(rows, env)
    (out / "gpu_check.md").write_text(table + "\n")
    print("\n" + table + f"\n\n{len(rows)} rows in {env['total_s']:.0f} s; JSON: {out / 'gpu_check.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
