"""Per-lead linear-regression baseline: each predicted lead as a least-squares FIR of Lead I.

For lead k, ``y_k[t] = b_k + sum_j w_kj · x[t + lag_j]`` with lags ``-LAG..+LAG`` samples
(edge-padded), fitted on the training split. It sets the floor a learned model must beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Lag half-width in samples (at 100 Hz: +/- 50 ms).
DEFAULT_LAG = 5


class BaselineError(ValueError):
    """Baseline inputs have the wrong shape or too few samples to fit."""


def lagged_design(lead_i: np.ndarray, lag: int) -> np.ndarray:
    """``(N, L, 1)`` Lead I -> ``(N * L, 2·lag + 2)`` design matrix (lags + intercept)."""
    x = np.asarray(lead_i, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != 1:
        raise BaselineError(f"lead_i must be (N, L, 1); got {x.shape}")
    pad = np.pad(x[:, :, 0], ((0, 0), (lag, lag)), mode="edge")
    L = x.shape[1]
    cols = [pad[:, lag + d:lag + d + L] for d in range(-lag, lag + 1)]
    cols.append(np.ones_like(x[:, :, 0]))
    return np.stack(cols, axis=-1).reshape(-1, len(cols))


@dataclass
class LinearBaseline:
    """Fitted weights ``(2·lag + 2, n_leads)``."""

    weights: np.ndarray
    lag: int

    @classmethod
    def fit(cls, lead_i: np.ndarray, target: np.ndarray, lag: int = DEFAULT_LAG,
            ridge: float = 1e-6) -> LinearBaseline:
        """Least squares (tiny ridge for stability) of ``target (N, L, K)`` on lagged Lead I."""
        y = np.asarray(target, dtype=np.float64)
        if y.ndim != 3 or y.shape[:2] != np.shape(lead_i)[:2]:
            raise BaselineError(f"target {y.shape} does not match lead_i {np.shape(lead_i)}")
        a = lagged_design(lead_i, lag)
        if a.shape[0] < a.shape[1]:
            raise BaselineError(f"{a.shape[0]} samples cannot fit {a.shape[1]} coefficients")
        gram = a.T @ a + ridge * a.shape[0] * np.eye(a.shape[1])
        w = np.linalg.solve(gram, a.T @ y.reshape(-1, y.shape[2]))
        return cls(w, lag)

    def predict(self, lead_i: np.ndarray) -> np.ndarray:
        """``(N, L, 1)`` -> ``(N, L, K)`` float32."""
        x = np.asarray(lead_i)
        out = lagged_design(x, self.lag) @ self.weights
        return out.reshape(x.shape[0], x.shape[1], -1).astype(np.float32)
