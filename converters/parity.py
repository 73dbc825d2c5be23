"""Parity of a converted bundle against Keras, run through the gateway runtime ``edge.Bundle``:
deterministic error, Pearson r, latency, and MC samples for the same masks."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edge.bundle import Bundle
from edge.leads import PREDICTED


def pearson_per_lead(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean over records of Pearson r per lead; ``(N, L, C)`` arrays -> ``(C,)``."""
    from training.metrics import pearson_per_record

    return np.nanmean(pearson_per_record(target, pred), axis=0)


def lite_predict(bundle: Bundle, lead_i: np.ndarray, meta: np.ndarray) -> np.ndarray:
    """Deterministic predictions ``(N, L, 7)`` window by window (as the gateway runs)."""
    return np.stack([bundle.predict_window(x[:, 0], m, 0)[0]
                     for x, m in zip(lead_i, meta, strict=True)])


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


def latency_ms(bundle: Bundle, lead_i: np.ndarray, meta: np.ndarray, samples: int,
               runs: int = 20) -> tuple[float, float]:
    """Median ms of the trunk and of the rest of a window (head + T-sample MC) over ``runs``."""
    rng = np.random.default_rng(0)
    t_trunk, t_rest = [], []
    for i in range(runs + 1):  # the first run warms up (allocation, delegate)
        x, m = lead_i[i % len(lead_i), :, 0], meta[i % len(meta)]
        t0 = time.perf_counter()
        bundle.trunk.run({"lead_i": x[None, :, None]})
        t1 = time.perf_counter()
        bundle.predict_window(x, m, samples, rng)
        t2 = time.perf_counter()
        if i:
            t_trunk.append(t1 - t0)
            t_rest.append(max(0.0, (t2 - t1) - (t1 - t0)))
    return 1e3 * float(np.median(t_trunk)), 1e3 * float(np.median(t_rest))


def mc_statistics(keras_model, bundle: Bundle, lead_i: np.ndarray, meta: np.ndarray,
                  samples: int, seed: int = 0) -> dict[str, object]:
    """Keras MC model vs the bundle on the *same* masks (drawn by ``Bundle.masks``).

    Returns the max |difference| of the T samples (mV), of their std (mV), and per-lead
    mean MC std of both (over records and time).
    """
    from training.mc import EdgeMC

    ref = EdgeMC(keras_model)
    rng = np.random.default_rng(seed)
    k_std, l_std, d_samples = [], [], 0.0
    for x, m in zip(lead_i, meta, strict=True):
        masks = bundle.masks(samples, rng)
        skip, res, _ = bundle.head_samples(x[:, 0], m, masks)
        lite = skip[None] + res
        keras_s, _ = ref.samples(x[None], m[None], masks[None])
        d_samples = max(d_samples, float(np.abs(lite - keras_s[0]).max()))
        k_std.append(keras_s[0].std(0))
        l_std.append(lite.std(0))
    ks, ls = np.stack(k_std), np.stack(l_std)

    def per_lead(a: np.ndarray) -> dict[str, float]:
        return dict(zip(PREDICTED, a.mean((0, 1)).astype(float).round(5).tolist(), strict=True))

    return {"samples": samples, "records": len(lead_i),
            "keras_std_mv": per_lead(ks), "lite_std_mv": per_lead(ls),
            "max_sample_abs_diff_mv": d_samples,
            "max_std_abs_diff_mv": float(np.abs(ks - ls).max())}
