"""``fit``: the training loop offered as a method of every public model class."""

from __future__ import annotations

from typing import Any

from .loop import TrainResult, train


class Trainable:
    """Mixin giving a solver ``fit(source, target, n_iters, batch_size, ...)`` (see ``train.loop.train``)."""

    history: TrainResult | None = None

    def fit(self, source: Any, target: Any, n_iters: int, batch_size: int = 256, *, seed: int | None = None,
            out: Any = None, resume: bool = False, progress: bool = True, log_every: int = 50,
            checkpoint_every: int = 500, callbacks: Any = ()):
        """Train on ``source``/``target`` (Tensors of samples, Samplers or callables ``n -> Tensor``)
        until ``n_iters`` steps in all; returns ``self``. ``self.history`` holds the TrainResult.
        ``seed`` (default: the model's seed) seeds the data draws."""
        seed = self.config.get("seed", 0) if seed is None else seed
        self.history = train(self, source, target, n_iters, batch_size, seed=seed, out=out, resume=resume,
                             progress=progress, log_every=log_every, checkpoint_every=checkpoint_every,
                             callbacks=callbacks)
        return self
