"""otgen's scores, in one place (the layer under the faces; it never imports solvers):

* ``pairs`` — scores of a learned plan against a ground-truth pair (cBW2-UVP, BW2-UVP, and the exact
  samples' floor): what ``otgen train`` writes for a run on a pair and ``otgen bench`` tabulates;
* ``scores`` — Fréchet distance, KID and precision/recall of feature sets, and ``FeatureStats``
  (moments fed batch by batch);
* ``images`` — those scores for images in a feature space: the digit classifier (``"digits"``),
  the standard FID InceptionV3 (``"inception"``, ``inception.py``; the weights file must be on the
  machine) or any module; reference statistics cached in pytorch-fid's ``.npz`` (``mu``, ``sigma``);
* ``stats`` — reading and writing those statistics files.

How a *run* on images is sampled and scored (``eval.json``, ``otgen eval``) is the face
``otgen.image_runs.score_image_run``.
"""

from .images import FEATURE_SPACES, ReferenceStats, compare, feature_network, image_stats, reference_stats
from .pairs import evaluate_pair, exact_sample_floor, score_sampler
from .scores import FeatureStats, fd_from_features, frechet_distance, kid, precision_recall
from .stats import load_stats, save_stats

__all__ = ["FEATURE_SPACES", "ReferenceStats", "compare", "feature_network", "image_stats", "reference_stats",
           "evaluate_pair", "exact_sample_floor", "score_sampler", "FeatureStats", "fd_from_features",
           "frechet_distance", "kid", "precision_recall", "load_stats", "save_stats"]
