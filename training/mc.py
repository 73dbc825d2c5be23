"""Monte Carlo dropout prediction with a Keras model (training-mode dropout, T passes)."""

from __future__ import annotations

import keras
import numpy as np


def mc_predict(model: keras.Model, lead_i: np.ndarray, meta: np.ndarray, samples: int = 30,
               seed: int = 0, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over `samples` stochastic passes; `samples=0` = one deterministic pass.

    Returns float32 arrays shaped like the model output, (N, L, n_out).
    """
    keras.utils.set_random_seed(seed)
    n = len(lead_i)
    means, stds = [], []
    for s in range(0, n, batch_size):
        x, m = lead_i[s:s + batch_size], meta[s:s + batch_size]
        if samples <= 0:
            y = np.asarray(model([x, m], training=False))
            means.append(y)
            stds.append(np.zeros_like(y))
            continue
        acc = np.zeros((len(x), *model.output_shape[1:]), np.float64)
        acc2 = np.zeros_like(acc)
        for _ in range(samples):
            y = np.asarray(model([x, m], training=True), dtype=np.float64)
            acc += y
            acc2 += y * y
        mean = acc / samples
        var = np.maximum(acc2 / samples - mean * mean, 0.0)
        means.append(mean.astype(np.float32))
        stds.append(np.sqrt(var).astype(np.float32))
    return np.concatenate(means), np.concatenate(stds)
