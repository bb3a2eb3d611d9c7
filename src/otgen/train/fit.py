"""``fit``: the training loop offered as a method of every public model class."""

from __future__ import annotations

from typing import Any

from .loop import TrainResult, train


class Trainable:
    """Mixin giving a solver ``fit(*data, n_iters, batch_size, ...)`` (see ``train.loop.train``)."""

    history: TrainResult | None = None

    def fit(self, *data: Any, n_iters: int, batch_size: int = 256, seed: int | None = None, out: Any = None,
            resume: bool | str = False, progress: bool = True, log_every: int = 50, checkpoint_every: int = 500,
            callbacks: Any = (), precision: str = "fp32", num_workers: int | None = None,
            compile: bool = False):
        """Train on ``data``, one entry per side of ``data_sides`` (``source, target`` for the transport
        solvers): Tensors of samples, Samplers or callables ``n -> Tensor``. ``n_iters`` counts as the
        solver says (``describe_steps``: S-JKO counts per phase) and ends the run at that count in all;
        returns ``self``, with the TrainResult in ``self.history``. ``seed`` (default: the model's
        seed) seeds the data draws; ``out`` a run directory (checkpoints, metrics.jsonl, model.pt) that
        ``resume=True`` continues (``resume="auto"``: continues if it holds a checkpoint, else starts
        there); ``callbacks``: ``cb(step, model, metrics) -> dict | None``;
        ``precision``: "fp32" or "bf16" (autocast); ``num_workers``: data-loading processes for a
        streaming image data set (None: one fewer than the cores, at most 8). Under ``torchrun`` every process calls ``fit`` alike
        and ``batch_size`` is the global batch (``otgen.train.loop.train``). ``compile=True`` compiles the
        networks with torch.compile first (``Solver.compile``: in place, the state_dict keys unchanged;
        the networks the solver cannot compile stay eager, with the reason in ``compile_report``)."""
        if not isinstance(compile, bool):
            raise ValueError(f"compile must be True or False, got {compile!r}")
        if compile:
            self.compile()
        seed = self.config.get("seed", 0) if seed is None else seed
        self.history = train(self, data, self.run_steps(n_iters), batch_size, seed=seed, out=out, resume=resume,
                             progress=progress, log_every=log_every, checkpoint_every=checkpoint_every,
                             callbacks=callbacks, precision=precision, num_workers=num_workers)
        return self
