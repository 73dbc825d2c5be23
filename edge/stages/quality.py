"""Per-window signal quality: flat / lead-off / saturated (not reconstructed) and noisy.

Works on one model-rate window of conditioned Lead I plus a per-sample "bad" mask carried from
the raw input (device ``lead_off`` status, |raw| at or above the saturation level). A window
depends only on its own samples, so the verdict is the same however the input was chunked.
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
GOOD, LEAD_OFF, SATURATED, GAP = 0, 1, 2, 3


def sample_codes(raw_mv: np.ndarray, lead_off: bool, cfg: QualityConfig) -> np.ndarray:
    """Per raw input sample: GOOD, LEAD_OFF (device status) or SATURATED."""
    bad = raw_bad_mask(raw_mv, lead_off, cfg)
    return bad.astype(np.int8) * (LEAD_OFF if lead_off else SATURATED)
