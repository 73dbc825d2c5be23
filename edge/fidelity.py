"""Expected fidelity of a reconstructed window: the Pearson r its own uncertainty implies.

If the truth is the prediction plus an error of std ``s`` independent of it, Pearson r between
prediction and truth is ``sd / sqrt(sd**2 + s**2)`` (``sd``: the prediction's std over time).
Per lead: ``sd`` of the window's MC mean, ``s**2`` the time-mean of its calibrated variance;
the window's ``expected_r`` is the mean over the predicted leads. A small, flat or very
uncertain prediction has a low expected r, which is what a low measured r looks like (a
threshold on the calibrated std alone misses it: a small chest lead has a small std too).
The gateway flags ``high_uncertainty`` over a window whose expected r is below the bundle's
``uncertainty.flag_expected_r`` (fitted on validation windows, ``training.calibration``), or,
for a bundle with an atypicality model, whose risk (this and how atypical the window's Lead I
is, ``edge.atypicality``) exceeds its threshold.
"""

from __future__ import annotations

import numpy as np


def expected_r(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``mean``, ``std`` ``(..., L, leads)`` (mV) -> expected r ``(...)`` (mean over leads)."""
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    n = mean.shape[-2]
    mu = mean.sum(axis=-2) / n  # per-lead moments from sums: no temporaries the window's size
    var = np.maximum(np.einsum("...ij,...ij->...j", mean, mean) / n - mu * mu, 0.0)
    s2 = np.einsum("...ij,...ij->...j", std, std) / n
    den = np.sqrt(var + s2)
    r = np.divide(np.sqrt(var), den, out=np.zeros_like(den), where=den > 0)
    return r.mean(axis=-1)
