"""Rate-distortion training of codecs: ``train(TrainConfig)`` and ``export(run_dir, out)``."""

from .config import TrainConfig
from .loop import evaluate, export, train

__all__ = ["TrainConfig", "evaluate", "export", "train"]
