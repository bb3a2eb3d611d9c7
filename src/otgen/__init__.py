"""otgen: generative modelling with neural optimal transport.

    import otgen
    m = otgen.EgNOT(dim=2, eps=0.1, seed=0)
    m.fit(source, target, n_iters=2000, batch_size=256)
    y = m.sample(x, n_per_x=16)          # (len(x), 16, 2): draws from pi(. | x)
"""

from . import costs, distributions, evaluate, groundtruth, image_metrics, kernels, metrics, options, runtime
from .models import SJKO, UOTM, WAE, EgNOT, load
from .train import TrainingDiverged

__version__ = "0.1.0"
__all__ = ["EgNOT", "UOTM", "SJKO", "WAE", "load", "TrainingDiverged", "costs", "distributions", "evaluate", "groundtruth",
           "image_metrics", "kernels", "metrics", "options", "runtime"]
