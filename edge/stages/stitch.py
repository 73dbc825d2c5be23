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
    """Running sums per model sample in one buffer: ``[weight, weight x mean (leads),
    weight x variance (leads)]``, so a read is one gather and one division."""

    def __init__(self, length: int, n_leads: int) -> None:
        self.taper = taper(length)
        self.n_leads = n_leads
        self.sums = Buffer((1 + 2 * n_leads,))

    def extend_to(self, n: int) -> None:
        """Make room for model samples up to ``n`` (no window there yet: weight 0)."""
        self.sums.grow(n - self.sums.end)

    def add(self, start: int, mean: np.ndarray, std: np.ndarray) -> None:
        L, nl = len(self.taper), self.n_leads
        self.extend_to(start + L)
        one = np.empty((L, 1 + 2 * nl))  # [1, mean, std²] per sample, then one weighted add
        one[:, 0] = 1.0
        one[:, 1:1 + nl] = mean
        np.square(std, out=one[:, 1 + nl:], dtype=np.float64)
        self.sums.view(start, start + L)[:] += self.taper[:, None] * one

    def at(self, p: np.ndarray, n_model: int) -> tuple[np.ndarray, np.ndarray]:
        """Stitched (mean, var) at model positions ``p`` (NaN where no window ran)."""
        n = len(p)
        j0 = np.floor(p).astype(int)
        frac = (p - j0)[:, None]
        g = self.sums.at(np.concatenate([j0, np.minimum(j0 + 1, n_model - 1)]))  # both sides
        w = g[:, :1]
        y = g[:, 1:] / np.where(w == 0, np.nan, w)  # no window there: NaN, not inf
        out = (1 - frac) * y[:n] + frac * y[n:]
        return out[:, :self.n_leads], out[:, self.n_leads:]

    def drop_before(self, i: int) -> None:
        self.sums.drop_before(i)
