"""Workstation side of ecg12: data, model, training, evaluation (the CLI wraps these).

    from training import TrainConfig, load_corpus, train, evaluate_run
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainConfig", "calibrate_run", "evaluate_run", "load_all", "load_corpus",
           "load_split_arrays", "train", "train_from_config"]

_LAZY = {
    "TrainConfig": "training.config",
    "load_all": "training.data",
    "load_corpus": "training.data",
    "load_split_arrays": "training.dataset",
    "train": "training.train",
    "train_from_config": "training.train",
    "calibrate_run": "training.train",
    "evaluate_run": "training.evaluate",
}


def __getattr__(name: str) -> Any:
    """Import lazily, so `import training` does not load TensorFlow."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
