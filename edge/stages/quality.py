"""Signal quality: per input sample (lead-off, saturated, flat: not reconstructed) and per
window (too many bad samples: not used; noisy: reconstructed and flagged).

Per sample, from the raw input: device ``lead_off`` status, |raw| at or above the saturation
level, and flat stretches (``FlatRuns``: at least ``min_flat_s`` of blocks whose raw
peak-to-peak is under ``flat_ptp_mv``, judged on the raw input so the conditioning filter's
ringing at the edges of a stretch does not hide it). Per window: one model-rate window of
conditioned Lead I plus those codes. Both depend only on the samples (blocks sit on a grid
from the segment start), so the verdicts are the same however the input was chunked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.quantile import median, percentiles


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds. ``flat_ptp_mv``: a 1-s block with a smaller peak-to-peak is flat.
    ``max_bad_fraction``: above this fraction of flat/lead-off/saturated samples the window is
    not reconstructed. ``noise_ratio``: median |first difference| over the robust range above
    which a window is noisy (clean ECG ~0.01-0.03, white noise ~0.2)."""

    flat_ptp_mv: float = 0.02
    saturation_mv: float = 8.0
    max_bad_fraction: float = 0.2
    noise_ratio: float = 0.08
    flat_block_s: float = 0.25  # raw flatness is judged per block of this length ...
    min_flat_s: float = 1.0  # ... and a run of flat blocks this long is not reconstructed


@dataclass(frozen=True)
class Verdict:
    reconstruct: bool
    problem: str | None  # None = good; else 'flat or lead-off', 'saturated', 'noisy'
    value: float
    threshold: float


def raw_bad_mask(raw_mv: np.ndarray, lead_off: bool, cfg: QualityConfig) -> np.ndarray:
    """Per raw input sample: lead-off or saturated."""
    if lead_off:
        return np.ones(len(raw_mv), dtype=bool)
    return np.abs(raw_mv) >= cfg.saturation_mv


def assess(x_mv: np.ndarray, bad: np.ndarray, saturated: np.ndarray, fs_hz: float,
           cfg: QualityConfig) -> Verdict:
    """Quality verdict for one window ``x_mv`` (conditioned, model rate)."""
    n = len(x_mv)
    block = max(1, int(round(fs_hz)))
    n_full = n // block * block  # whole 1-s blocks at once, then the rest
    blocks = x_mv[:n_full].reshape(-1, block)
    flat = (blocks.max(axis=1) - blocks.min(axis=1)) < cfg.flat_ptp_mv  # per block
    tail_flat = n > n_full and bool(np.ptp(x_mv[n_full:]) < cfg.flat_ptp_mv)
    sat_frac = float(np.count_nonzero(saturated)) / n
    if sat_frac > cfg.max_bad_fraction:
        return Verdict(False, "saturated", sat_frac, cfg.max_bad_fraction)
    # flat or bad samples: the flat blocks whole, plus the bad samples outside them
    n_bad = int(np.count_nonzero(flat)) * block + (n - n_full if tail_flat else 0)
    if bad.any():
        n_bad += int(np.count_nonzero(bad[:n_full].reshape(-1, block)[~flat]))
        if not tail_flat:
            n_bad += int(np.count_nonzero(bad[n_full:]))
    bad_frac = n_bad / n
    if bad_frac > cfg.max_bad_fraction:
        return Verdict(False, "flat or lead-off", bad_frac, cfg.max_bad_fraction)
    lo, hi = percentiles(x_mv, 1, 99)
    ratio = median(np.abs(np.diff(x_mv))) / max(hi - lo, 1e-6)
    if ratio > cfg.noise_ratio:
        return Verdict(True, "noisy", ratio, cfg.noise_ratio)
    return Verdict(True, None, ratio, cfg.noise_ratio)


#: per input sample codes kept by the pipeline
GOOD, LEAD_OFF, SATURATED, GAP, FLAT = 0, 1, 2, 3, 4
#: every code but GOOD makes its output row NaN; the ``poor_quality`` detail of these (a
#: bridged gap has a ``gap`` flag)
NOT_RECONSTRUCTED = {LEAD_OFF: "lead-off (device status); not reconstructed",
                     SATURATED: "saturated input; not reconstructed",
                     FLAT: "flat input (electrode off?); not reconstructed"}


def sample_codes(raw_mv: np.ndarray, lead_off: bool, cfg: QualityConfig) -> np.ndarray:
    """Per raw input sample: GOOD, LEAD_OFF (device status) or SATURATED."""
    bad = raw_bad_mask(raw_mv, lead_off, cfg)
    return bad.astype(np.int8) * (LEAD_OFF if lead_off else SATURATED)


class FlatRuns:
    """Flat stretches of one segment's raw input, found across chunks.

    Blocks of ``flat_block_s`` on a grid from the segment's first sample; a block is flat when
    its raw peak-to-peak is under ``flat_ptp_mv``; a run of at least ``min_flat_s`` of flat
    blocks is flat (the run's samples, including the ones before it was long enough).
    ``push`` returns the ``[a, b)`` sample ranges that became flat: at most ``min_flat_s``
    plus one block behind the newest sample, which the conditioning look-ahead (over 2 s)
    keeps from every window and output row until then."""

    def __init__(self, fs_hz: float, cfg: QualityConfig) -> None:
        self.block = max(1, int(round(cfg.flat_block_s * fs_hz)))
        self.need = max(1, int(np.ceil(cfg.min_flat_s * fs_hz / self.block)))  # blocks
        self.ptp = cfg.flat_ptp_mv
        self.n = 0  # samples seen
        self.part = np.zeros(0)  # the samples of the incomplete last block
        self.run = 0  # flat blocks in the run that ends at the last complete block

    @property
    def reach(self) -> int:
        """How far behind the newest sample ``push`` may mark samples flat (samples): the
        run that just became long enough plus the incomplete block after it."""
        return (self.need + 1) * self.block

    def push(self, x: np.ndarray) -> list[tuple[int, int]]:
        start = self.n - len(self.part)  # first sample of the incomplete block
        y = np.concatenate([self.part, np.asarray(x, dtype=np.float64)])
        self.n += len(x)
        nb = len(y) // self.block
        self.part = y[nb * self.block:]
        if nb == 0:
            return []
        b = y[:nb * self.block].reshape(nb, self.block)
        flat = (b.max(axis=1) - b.min(axis=1)) < self.ptp
        if not self.run and not flat.any():  # the usual chunk of ECG
            return []
        out: list[tuple[int, int]] = []
        for i, f in enumerate(flat.tolist()):
            self.run = self.run + 1 if f else 0
            k = start + i * self.block  # first sample of block i
            if self.run == self.need:  # the run is long enough: all of it
                out.append((k - (self.need - 1) * self.block, k + self.block))
            elif self.run > self.need:
                out.append((k, k + self.block))
        return _merged(out)

    def close(self) -> list[tuple[int, int]]:
        """End of the segment: the incomplete last block joins a flat run it continues."""
        p, self.part = self.part, np.zeros(0)
        if len(p) and self.run >= self.need and np.ptp(p) < self.ptp:
            return [(self.n - len(p), self.n)]
        return []


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
