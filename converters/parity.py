"""Parity of a converted bundle against Keras: deterministic error, Pearson r, MC statistics."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from converters.runtime import LiteMC
from edge.leads import PREDICTED
from training.config import ModelConfig


def pearson_per_lead(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean over records of Pearson r per lead; ``(N, L, C)`` arrays -> ``(C,)``."""
    p = pred - pred.mean(axis=1, keepdims=True)
    t = target - target.mean(axis=1, keepdims=True)
    den = np.sqrt((p * p).sum(1) * (t * t).sum(1))
    r = np.where(den > 0, (p * t).sum(1) / np.where(den > 0, den, 1.0), np.nan)
    return np.nanmean(r, axis=0)


def lite_predict(lite: LiteMC, lead_i: np.ndarray, meta: np.ndarray,
                 cfg: ModelConfig) -> np.ndarray:
    """Deterministic predictions ``(N, L, 7)`` window by window (as the gateway runs)."""
    return np.stack([lite.predict(x, m, cfg) for x, m in zip(lead_i, meta, strict=True)])


@dataclass
class Parity:
    max_abs_err_mv: float
    r_keras: list[float]  # mean Pearson r per lead vs target, Keras float model
    r_variant: list[float]

    @property
    def delta_r(self) -> list[float]:
        return [v - k for v, k in zip(self.r_variant, self.r_keras, strict=True)]

    @property
    def worst_delta_r(self) -> float:
        return float(min(self.delta_r))


def parity(lite_pred: np.ndarray, keras_pred: np.ndarray, target: np.ndarray) -> Parity:
    """Max abs error (mV) vs Keras and per-lead Pearson r vs target, Keras and variant."""
    return Parity(float(np.abs(lite_pred - keras_pred).max()),
                  [float(v) for v in pearson_per_lead(keras_pred, target)],
                  [float(v) for v in pearson_per_lead(lite_pred, target)])


def latency_ms(lite: LiteMC, lead_i: np.ndarray, meta: np.ndarray, cfg: ModelConfig,
               samples: int, runs: int = 20) -> tuple[float, float]:
    """Median trunk and head (T = samples) latency in ms over ``runs`` windows."""
    rng = np.random.default_rng(0)
    t_trunk, t_head = [], []
    for i in range(runs + 1):  # the first run warms up (allocation, delegate)
        x, m = lead_i[i % len(lead_i)], meta[i % len(meta)]
        t0 = time.perf_counter()
        feats, _ = lite.trunk(x)
        t1 = time.perf_counter()
        from training.model import sample_masks

        lite.head(feats, m, sample_masks(cfg, samples, rng))
        t2 = time.perf_counter()
        if i:
            t_trunk.append(t1 - t0)
            t_head.append(t2 - t1)
    return 1e3 * float(np.median(t_trunk)), 1e3 * float(np.median(t_head))


def mc_statistics(keras_model, lite: LiteMC, lead_i: np.ndarray, meta: np.ndarray,
                  cfg: ModelConfig, samples: int, seed: int = 0) -> dict[str, object]:
    """Keras MC dropout (training=True, T passes) vs LiteRT MC (trunk once, head on T masks).

    Returns per-lead mean std of both (over records and time), their relative difference,
    and the max |mean difference| in units of the Keras std (sampling noise ~ 1/sqrt(T)).
    """
    from training.mc import mc_predict

    k_mean, k_std = mc_predict(keras_model, lead_i, meta, samples, seed=seed, aleatoric=False)
    rng = np.random.default_rng(seed)
    draws = [lite.mc(x, m, cfg, samples, rng) for x, m in zip(lead_i, meta, strict=True)]
    l_mean = np.stack([d.mean(0) for d in draws])
    l_std = np.stack([d.std(0) for d in draws])
    ks, ls = k_std.mean(axis=(0, 1)), l_std.mean(axis=(0, 1))
    rel = np.abs(ls - ks) / np.maximum(ks, 1e-9)
    z = np.abs(l_mean - k_mean) / np.maximum(k_std, 1e-6) * np.sqrt(samples)
    return {"samples": samples, "records": len(lead_i),
            "keras_std_mv": dict(zip(PREDICTED, ks.round(5).tolist(), strict=True)),
            "lite_std_mv": dict(zip(PREDICTED, ls.round(5).tolist(), strict=True)),
            "std_rel_diff": dict(zip(PREDICTED, rel.round(4).tolist(), strict=True)),
            "max_std_rel_diff": float(rel.max()),
            "mean_abs_diff_mv": float(np.abs(l_mean - k_mean).mean()),
            "mean_z_median": float(np.median(z))}
