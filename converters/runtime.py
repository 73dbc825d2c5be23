"""Run a converted trunk/head pair with LiteRT (no TensorFlow needed): MC dropout by masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.config import ModelConfig
from training.model import sample_masks


def _interpreter(model: bytes | Path, threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - fallback for machines without LiteRT
        from tensorflow.lite import Interpreter
    if isinstance(model, bytes | bytearray):
        return Interpreter(model_content=bytes(model), num_threads=threads)
    return Interpreter(model_path=str(model), num_threads=threads)


class LiteMC:
    """Trunk once per window, head on T masks as one batch (the gateway's scheme)."""

    def __init__(self, trunk: bytes | Path, head: bytes | Path, reset_state: bool = False,
                 threads: int = 1) -> None:
        self.trunk_interp = _interpreter(trunk, threads)
        self.head_interp = _interpreter(head, threads)
        self.trunk_interp.allocate_tensors()
        self._trunk = self.trunk_interp.get_signature_runner()
        self._head = self.head_interp.get_signature_runner()
        self.reset_state = reset_state

    def trunk(self, lead_i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``lead_i (L, 1)`` -> ``features (L/4, F)``, ``skip (L, 7)``."""
        if self.reset_state:
            self.trunk_interp.reset_all_variables()
        out = self._trunk(lead_i=np.asarray(lead_i, np.float32)[None])
        return out["features"][0], out["skip"][0]

    def head(self, features: np.ndarray, meta: np.ndarray,
             masks: dict[str, np.ndarray]) -> np.ndarray:
        """Residual ``(T, L, 7)`` for T masks (features and meta repeated T times)."""
        t = len(next(iter(masks.values())))
        feed = {name: np.ascontiguousarray(m, np.float32) for name, m in masks.items()}
        feed["features"] = np.repeat(np.asarray(features, np.float32)[None], t, axis=0)
        feed["meta"] = np.repeat(np.asarray(meta, np.float32)[None], t, axis=0)
        return self._head(**feed)["residual"]

    def predict(self, lead_i: np.ndarray, meta: np.ndarray, cfg: ModelConfig) -> np.ndarray:
        """Deterministic prediction ``(L, 7)``: all masks = 1 (the dropout expectation)."""
        feats, skip = self.trunk(lead_i)
        ones = {s.name: np.ones((1, s.size), np.float32) for s in _sites(cfg)}
        return skip + self.head(feats, meta, ones)[0]

    def mc(self, lead_i: np.ndarray, meta: np.ndarray, cfg: ModelConfig, samples: int,
           rng: np.random.Generator) -> np.ndarray:
        """MC samples ``(T, L, 7)`` of the prediction, masks drawn from ``rng``."""
        feats, skip = self.trunk(lead_i)
        return skip[None] + self.head(feats, meta, sample_masks(cfg, samples, rng))


def _sites(cfg: ModelConfig):
    from training.model import mask_sites

    return mask_sites(cfg)
