"""benchmarks/gpu_check.py: its arithmetic on a known trace, and the whole script on the CPU (smoke mode)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
TINY = """model: {name: UOTM, dim: 2, generator: {hidden: [8]}, potential: {hidden: [8]}, critic: {r1: 0.1}}
data: {source: {name: standard_gaussian, dim: 2}, target: {name: 8gaussians}}
train: {n_iters: 10, batch_size: 16}
"""


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*args, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


def test_trace_stats_on_a_known_trace(tmp_path):
    """Kernels over [0, 10) ∪ [5, 15) ∪ [20, 30) of a 40 µs window: busy 25 µs, idle 37.5 %; host ops
    [0, 12) ∪ [10, 18) on two threads: 18 µs, 45 %; the summed kernel time 30 µs over 2 steps."""
    gc = load_script()
    assert gc.interval_union([(0, 10), (5, 15), (20, 30), (22, 25)]) == 25
    events = [{"ph": "X", "cat": "kernel", "ts": 0, "dur": 10}, {"ph": "X", "cat": "gpu_memcpy", "ts": 5, "dur": 10},
              {"ph": "X", "cat": "kernel", "ts": 20, "dur": 10},
              {"ph": "X", "cat": "cpu_op", "ts": 0, "dur": 12, "tid": 1},
              {"ph": "X", "cat": "cpu_op", "ts": 10, "dur": 8, "tid": 2},
              {"ph": "X", "cat": "cuda_runtime", "ts": 30, "dur": 10}, {"ph": "s", "cat": "ac2g", "ts": 99}]
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps({"traceEvents": events}))
    stats = gc.trace_stats(trace, steps=2)
    assert stats == {"profiled_ms_per_step": 0.02, "gpu_idle_share": 0.375, "host_op_share": 0.45,
                     "kernel_ms_per_step": 0.015}


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message for a machine without CUDA")
def test_without_cuda_it_says_so_and_measures_nothing(tmp_path):
    proc = run("--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "gpu_check: CUDA is not available" in proc.stderr and "--device cpu --steps 3" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_smoke_run_on_the_cpu_writes_the_json_and_the_table(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    out = tmp_path / "out"
    proc = run("--device", "cpu", "--steps", "3", "--configs", str(config), "--precisions", "bf16", "--compile", "off",
               "--threads", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((out / "gpu_check.json").read_text())
    measured, skipped = result["rows"]
    assert "error" not in measured, measured
    switches = (measured["label"], measured["precision"], measured["compile"], measured["solver"])
    assert switches == ("tiny", "bf16", False, "UOTM")
    assert measured["steps_timed"] == 3 and measured["steps_per_s"] > 0
    assert measured["images_per_s"] == pytest.approx(16 * measured["steps_per_s"])
    assert 0 < measured["host_op_share"] <= 1 and measured["profiled_ms_per_step"] > 0
    assert measured["gpu_idle_share"] is None and measured["kernel_ms_per_step"] is None  # no GPU
    # T: Linear(2 + 2 noise, 8), Linear(8, 2); v: Linear(2, 8), Linear(8, 1)
    assert measured["peak_mib"] > 0 and measured["params_m"] == pytest.approx((40 + 18 + 24 + 9) / 1e6)
    assert skipped["nproc"] == 2 and "skipped" in skipped["skipped"]
    table = (out / "gpu_check.md").read_text()
    assert table.strip() in proc.stdout
    assert "| tiny | bf16 | off | 1 |" in table and "2-process run skipped" in table
    assert not list(out.glob("trace-*.json"))  # the traces are deleted once read


@pytest.mark.slow
def test_smoke_run_compiled_and_in_two_processes(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    out = tmp_path / "out"
    proc = run("--device", "cpu", "--steps", "3", "--configs", str(config), "--precisions", "fp32", "--cpu-ddp",
               "--threads", "1", "--out", str(out), timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    eager, ddp, compiled = json.loads((out / "gpu_check.json").read_text())["rows"]
    assert not any("error" in r for r in (eager, ddp, compiled)), (eager, ddp, compiled)
    assert ddp["processes"] == 2 and ddp["steps_timed"] == 3
    assert compiled["compile"] and compiled["compile_report"]["generator_net"] is None
    assert "R1" in compiled["compile_report"]["potential"]  # r1 > 0: the potential stays eager
    assert "potential eager" in (out / "gpu_check.md").read_text()
