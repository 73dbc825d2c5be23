"""Load-time sanity checks: shape, finiteness, flat/saturated leads, Einthoven/Goldberger."""

from __future__ import annotations

import numpy as np

from edge.leads import LEADS

from .record import RecordRejected

#: Max relative RMS error of the derived limb leads (III, aVR, aVL, aVF) vs I and II.
#: Raw acquisitions (PTB-XL, LUDB digital, CinC) stay below ~0.03; LUDB with the wrong .hea
#: gains gives 0.13-1.45. Chapman was denoised lead by lead: median 0.15, max 0.56 on the 35
#: records here, so it gets a looser, corpus-specific tolerance.
EINTHOVEN_MAX_REL_ERR = 0.1
EINTHOVEN_MAX_REL_ERR_BY_SOURCE = {"chapman": 0.6}
MIN_DURATION_S = 2.0
FLAT_PTP_MV = 0.01
#: Clipping = a lead pinned at its own max or min in >= 3 separate runs of >= this long
#: (one flat stretch at the start or end of a record is lead settling, not saturation).
SATURATION_RUN_S = 0.02
SATURATION_MIN_RUNS = 3
MAX_ABS_MV = 30.0


def einthoven_errors(signal_mv: np.ndarray) -> np.ndarray:
    """Relative RMS error of III, aVR, aVL, aVF vs their derivation from I and II.

    Each lead is mean-removed; the error is rms(measured - derived) / max(rms(measured),
    rms(derived)), so 0 is exact and ~1 means unrelated.
    """
    x = signal_mv.astype(np.float64)
    x = x - x.mean(axis=0)
    i, ii = x[:, 0], x[:, 1]
    derived = np.stack([ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2], axis=1)
    measured = x[:, 2:6]
    rms = lambda a: np.sqrt(np.mean(a**2, axis=0))  # noqa: E731
    denom = np.maximum(np.maximum(rms(measured), rms(derived)), 1e-6)
    return rms(measured - derived) / denom


def einthoven_error(signal_mv: np.ndarray) -> float:
    """Worst of the four derived-limb-lead relative errors (see `einthoven_errors`)."""
    return float(einthoven_errors(signal_mv).max())


def _runs_at(values: np.ndarray, target: float) -> np.ndarray:
    """Lengths of the runs of consecutive samples equal to `target`."""
    hit = np.concatenate([[0], (values == target).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(hit))
    return edges[1::2] - edges[::2]


def check_signal(signal_mv: np.ndarray, fs_hz: float, name: str,
                 einthoven_max: float = EINTHOVEN_MAX_REL_ERR) -> None:
    """Raise RecordRejected naming `name` if the signal is unusable; never alters it."""
    if signal_mv.ndim != 2 or signal_mv.shape[1] != len(LEADS):
        raise RecordRejected(name, f"shape: expected (n, 12), got {signal_mv.shape}")
    if not fs_hz or fs_hz <= 0:
        raise RecordRejected(name, f"sampling rate: {fs_hz!r}")
    if signal_mv.shape[0] < MIN_DURATION_S * fs_hz:
        raise RecordRejected(
            name, f"too short: {signal_mv.shape[0]} samples at {fs_hz:g} Hz < {MIN_DURATION_S} s"
        )
    bad = ~np.isfinite(signal_mv)
    if bad.any():
        leads = [LEADS[j] for j in np.flatnonzero(bad.any(axis=0))]
        raise RecordRejected(name, f"non-finite: {int(bad.sum())} NaN/inf samples in {leads}")
    ptp = np.ptp(signal_mv, axis=0)
    flat = [LEADS[j] for j in np.flatnonzero(ptp < FLAT_PTP_MV)]
    if flat:
        raise RecordRejected(name, f"flat lead: {flat} (peak-to-peak < {FLAT_PTP_MV} mV)")
    big = np.abs(signal_mv).max(axis=0)
    if big.max() > MAX_ABS_MV:
        j = int(big.argmax())
        raise RecordRejected(
            name, f"amplitude: lead {LEADS[j]} reaches {big[j]:.1f} mV > {MAX_ABS_MV} mV (units?)"
        )
    run_min = max(3, int(SATURATION_RUN_S * fs_hz))
    for j, lead in enumerate(LEADS):
        col = signal_mv[:, j]
        for extreme in (col.max(), col.min()):
            runs = _runs_at(col, extreme)
            runs = runs[runs >= run_min]
            if runs.size >= SATURATION_MIN_RUNS:
                raise RecordRejected(
                    name, f"saturated lead: {lead} pinned at {extreme:.3f} mV in {runs.size} "
                    f"runs of >= {run_min} samples",
                )
    errs = einthoven_errors(signal_mv)
    if errs.max() > einthoven_max:
        worst = LEADS[2 + int(errs.argmax())]
        raise RecordRejected(
            name,
            f"einthoven: {worst} vs derivation from I, II has relative RMS error "
            f"{errs.max():.3f} > {einthoven_max} (unit/gain error?)",
        )
