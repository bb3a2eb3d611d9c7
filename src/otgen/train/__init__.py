"""The training loop shared by every solver: iteration, logging, checkpoints, resume, guards."""

from .fit import Trainable
from .loop import TrainingDiverged, TrainResult, train

__all__ = ["train", "Trainable", "TrainResult", "TrainingDiverged"]
