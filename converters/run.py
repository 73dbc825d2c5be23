"""Read a training run folder (config, weights, run.json, calibration) for conversion."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from converters.errors import RunFolderError
from training.config import ConfigError, TrainConfig
from training.model import build_model

REQUIRED = ("config.json", "best.weights.h5", "run.json", "calibration.json")


@dataclass
class Run:
    """A loaded run: its config, the trained Keras model, run.json and calibration.json."""

    path: Path
    cfg: TrainConfig
    model: keras.Model
    info: dict[str, Any]
    calibration: dict[str, Any]


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{path}: unreadable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def load_run(run_dir: str | Path) -> Run:
    """Load a run folder; only the ``edge`` model kind can be converted."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunFolderError(f"run folder not found: {path}")
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if missing:
        raise RunFolderError(f"run folder {path} lacks {missing} (train it with `ecg12 train`)")
    try:
        cfg = TrainConfig.load(path / "config.json")
    except ConfigError as exc:
        raise RunFolderError(str(exc)) from None
    if cfg.model.kind != "edge":
        raise RunFolderError(f"{path}: model.kind is {cfg.model.kind!r}; only 'edge' models "
                             "split into trunk/head and can be converted")
    cal = _json(path / "calibration.json")
    for key in ("scale", "flag_std_mv"):
        if not (isinstance(cal.get(key), list) and len(cal[key]) == 7):
            raise RunFolderError(f"{path / 'calibration.json'}: {key!r} must be a list of 7 "
                                 f"numbers, got {cal.get(key)!r}")
    model = build_model(cfg)
    try:
        with warnings.catch_warnings():  # the optimizer state is not needed here
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model.load_weights(path / "best.weights.h5")
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"{path / 'best.weights.h5'}: does not fit the config's model: "
                             f"{exc}") from None
    return Run(path, cfg, model, _json(path / "run.json"), cal)
