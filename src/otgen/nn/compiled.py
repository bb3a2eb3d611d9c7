"""``torch.compile`` of a network in place, and whether it can run here.

``compile_in_place(module, mode)`` compiles the module's forward (``nn.Module.compile``): the module
object, its parameters and its ``state_dict`` keys stay as they are (``torch.compile(module)`` would
wrap it in an ``OptimizedModule`` whose keys carry an ``_orig_mod.`` prefix), so optimisers, EMAs,
checkpoints and model files see the same module. Compilation is lazy: it happens at the first call
of each new kind of input (shape, dtype, grad mode, train/eval mode, autocast), and a copy of the
module (``copy.deepcopy``, pickling: an EMA's shadow, S-JKO's frozen maps) runs eager.

What torch.compile cannot run: a graph differentiated twice (``torch.autograd.grad(...,
create_graph=True)`` through a compiled forward, e.g. an R1 penalty) raises "torch.compile with
aot_autograd does not currently support double backward" (torch 2.13); first-order gradients with
respect to the inputs (Langevin moves) are fine. A solver leaves such networks eager
(``Solver.compile_exclusions``).
"""

from __future__ import annotations

import importlib.util

import torch
from torch import nn

#: the ``mode`` values of ``torch.compile``
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_problem(device: torch.device) -> str | None:
    """Why ``torch.compile`` (inductor) cannot run for ``device`` here, in words; None if it can:
    it needs a Python and platform that TorchDynamo supports, a C++ compiler for the CPU and Triton
    for CUDA."""
    try:
        from torch._dynamo import is_dynamo_supported
        supported = is_dynamo_supported()
    except ImportError:
        supported = False
    if not supported:
        return f"torch.compile is not supported with torch {torch.__version__} on this Python and platform"
    if device.type == "cuda":
        if importlib.util.find_spec("triton") is None:
            return "torch.compile on CUDA needs Triton, which is not installed"
        return None
    if device.type == "cpu":
        try:
            from torch._inductor.cpp_builder import get_cpp_compiler
            get_cpp_compiler()
        except Exception:  # noqa: BLE001 - inductor raises its own InvalidCxxCompiler (and may change it)
            return ("torch.compile on the CPU needs a C++ compiler (g++ or clang++ on the PATH, or CXX), "
                    "and none was found")
        return None
    return None


def compile_in_place(module: nn.Module, mode: str = "default") -> None:
    """Compile ``module``'s forward with ``torch.compile(mode=mode)`` (inductor), in place.

    ``nn.Module.compile`` compiles ``_call_impl``, which TorchDynamo skips for modules defined in
    torch itself (``nn.Sequential``, ``nn.Linear``: their frames are in its skip list) and would leave
    eager without a word; those get a frame of ours around the call, as ``torch.compile(module)``
    does for them. ``mode``: one of ``COMPILE_MODES`` (ValueError naming ``mode`` otherwise)."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"mode must be one of {COMPILE_MODES}, got {mode!r}")
    if type(module).__module__.split(".")[0] != "torch":
        module.compile(mode=mode)
        return
    call = module._call_impl

    def call_module(*args, **kwargs):
        return call(*args, **kwargs)

    module._compiled_call_impl = torch.compile(call_module, mode=mode)


def is_compiled(module: nn.Module) -> bool:
    """Whether ``module``'s forward runs compiled (``compile_in_place`` or ``nn.Module.compile``)."""
    return getattr(module, "_compiled_call_impl", None) is not None
