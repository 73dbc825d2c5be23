"""Stitch stage: overlapping window outputs -> one continuous mean and variance.

Weighted overlap-add with a raised-sine taper (never zero, so segment edges are covered);
variance = weighted mean of the windows' variances (std², not std). ``at`` reads the stitched
stream at fractional model-rate positions by linear interpolation (to the input rate).
"""

from __future__ import annotations

import numpy as np

from edge.stages.buffer import Buffer


def taper(n: int) -> np.ndarray:
    """Overlap-add weights of one window: 0.05 + sin²(pi (i + 0.5) / n)."""
    return 0.05 + np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2


class Stitcher:
    def __init__(self, length: int, n_leads: int) -> None:
        self.taper = taper(length)
        self.w = Buffer()
        self.mu = Buffer((n_leads,))
        self.var = Buffer((n_leads,))

    def extend_to(self, n: int) -> None:
        """Make room for model samples up to ``n`` (no window there yet: weight 0)."""
        k = n - self.w.end
        if k > 0:
            for b in (self.w, self.mu, self.var):
                b.grow(k)

    def add(self, start: int, mean: np.ndarray, std: np.ndarray) -> None:
        L = len(self.taper)
        self.extend_to(start + L)
        tw = self.taper
        self.w.view(start, start + L)[:] += tw
        self.mu.view(start, start + L)[:] += tw[:, None] * mean
        self.var.view(start, start + L)[:] += tw[:, None] * np.square(std.astype(np.float64))

    def at(self, p: np.ndarray, n_model: int) -> tuple[np.ndarray, np.ndarray]:
        """Stitched (mean, var) at model positions ``p`` (NaN where no window ran)."""
        j0 = np.floor(p).astype(int)
        j1 = np.minimum(j0 + 1, n_model - 1)
        frac = (p - j0)[:, None]
        w0, w1 = self.w.at(j0)[:, None], self.w.at(j1)[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            m0, m1 = self.mu.at(j0) / w0, self.mu.at(j1) / w1
            v0, v1 = self.var.at(j0) / w0, self.var.at(j1) / w1
        for arr, w in ((m0, w0), (m1, w1), (v0, w0), (v1, w1)):
            arr[np.broadcast_to(w == 0, arr.shape)] = np.nan
        return (1 - frac) * m0 + frac * m1, (1 - frac) * v0 + frac * v1

    def drop_before(self, i: int) -> None:
        for b in (self.w, self.mu, self.var):
            b.drop_before(i)
