"""Percentiles of small 1-D arrays, bit-identical to ``np.percentile`` (linear method) at a
fraction of its call overhead (the gateway takes a few per model window)."""

from __future__ import annotations

import math

import numpy as np


def percentile(x: np.ndarray, q: float) -> float:
    """``float(np.percentile(x, q))`` of a non-empty 1-D float array without NaN."""
    a = np.sort(np.asarray(x, dtype=np.float64).ravel())
    return sorted_percentile(a, q)


def sorted_percentile(a: np.ndarray, q: float) -> float:
    """The ``q`` percentile of an already sorted ``a``, computed as numpy does it."""
    return _linear(a, len(a), q)


def _linear(a: np.ndarray, n: int, q: float) -> float:
    """numpy's linear-method percentile from ``a``, whose elements at the two order
    statistics around the virtual index are in their sorted places."""
    f = q / 100.0
    vi = (n - 1) * f  # numpy's virtual index for the linear method
    lo = math.floor(vi)
    gamma = vi - lo
    lo = min(max(lo, 0), n - 1)
    hi = min(lo + 1, n - 1)
    if vi < 0:
        lo = hi = 0
    elif vi >= n - 1:
        lo = hi = n - 1
    va, vb = float(a[lo]), float(a[hi])
    d = vb - va
    return vb - d * (1.0 - gamma) if gamma >= 0.5 else va + d * gamma


def percentiles(x: np.ndarray, *qs: float) -> list[float]:
    """``[float(np.percentile(x, q)) for q in qs]`` of a non-empty 1-D float array without
    NaN (in float64), from one ``np.partition`` at the order statistics they need (not a
    full sort)."""
    a = np.asarray(x, dtype=np.float64).ravel()
    n = len(a)
    ks = sorted({min(max(math.floor((n - 1) * q / 100.0) + d, 0), n - 1)
                 for q in qs for d in (0, 1)})
    p = np.partition(a, ks)
    return [_linear(p, n, q) for q in qs]


def median(x: np.ndarray) -> float:
    """``float(np.median(x))`` of a non-empty 1-D float array without NaN: the middle
    element (odd length) or the mean of the two middle ones, from one ``np.partition``."""
    a = np.asarray(x, dtype=np.float64).ravel()
    n = len(a)
    k = n // 2
    if n % 2:
        return float(np.partition(a, k)[k])
    p = np.partition(a, (k - 1, k))
    return float(np.mean(p[k - 1:k + 1]))
