"""Lead-I features a wearable can know: R peaks, ventricular rate, QRS count, QRS duration.

A small Pan-Tompkins-style detector on scipy, not neurokit2: neurokit2 pulls pandas,
scikit-learn and matplotlib-era dependencies (too heavy for a Pi base install) while the job
here is ~100 lines. Steps: band-pass 5-15 Hz, derivative, square (so negative or small QRS in
Lead I count alike), 120 ms moving integration -> envelope; envelope peaks 200 ms apart above
0.3 x a robust height reference, with a search-back at half threshold in long gaps; each R peak
is the largest |deflection| of the 0.5-40 Hz signal within 60 ms of the envelope peak.
QRS duration comes from the median beat: onset/offset where a smoothed slope envelope falls
below a fraction of its QRS maximum (fraction tuned on LUDB lead-I expert annotations, see
``training.validate_features``).

Features work on a whole window (not a stream), so the filters here are zero-phase
(``sosfiltfilt``): peak indices then line up with the input samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage, signal

REFRACTORY_S = 0.2
MIN_SECONDS = 1.0
#: Slope-envelope fraction that defines QRS onset/offset on the median beat.
QRS_EDGE_FRACTION = 0.05
_SLOPE_SMOOTH_S = 0.016
_BEAT_PRE_S, _BEAT_POST_S = 0.25, 0.30


class FeatureError(ValueError):
    """Unusable input for feature extraction (non-finite samples, bad rate or shape)."""


def _check(x: Any, fs_hz: Any, ndim: tuple[int, ...] = (1,)) -> tuple[np.ndarray, float]:
    try:
        fs = float(fs_hz)
    except (TypeError, ValueError):
        raise FeatureError(f"fs_hz={fs_hz!r} is not a number") from None
    if not np.isfinite(fs) or fs < 50:
        raise FeatureError(f"fs_hz={fs_hz!r} must be a finite rate >= 50 Hz")
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise FeatureError(f"signal is not numeric: {e}") from None
    if a.ndim not in ndim:
        raise FeatureError(f"signal must have {' or '.join(f'{d}-D' for d in ndim)} shape; "
                           f"got {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        first = np.argwhere(bad)[0]
        raise FeatureError(f"signal has {int(bad.sum())} non-finite value(s) (NaN/inf); "
                           f"first at sample {int(first[0])}")
    return a, fs


def bandpass(x: np.ndarray, fs: float, lo: float, hi: float) -> np.ndarray:
    """Zero-phase Butterworth band-pass (order 2) along axis 0; ``hi`` capped at 0.45 fs."""
    sos = signal.butter(2, [lo, min(hi, 0.45 * fs)], "bandpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, x, axis=0)


def qrs_envelope(x: np.ndarray, fs: float) -> np.ndarray:
    """Pan-Tompkins envelope (n,) of a (n,) or (n, c) signal; channels summed."""
    x2 = x[:, None] if x.ndim == 1 else x
    d = np.gradient(bandpass(x2, fs, 5.0, 15.0), axis=0) * fs
    e = (d ** 2).sum(axis=1)
    return ndimage.uniform_filter1d(e, max(1, int(round(0.12 * fs))), mode="nearest")


def peaks_from_envelope(env: np.ndarray, fs: float) -> np.ndarray:
    """Beat locations (envelope maxima) with an adaptive threshold and search-back."""
    dist = max(1, int(REFRACTORY_S * fs))
    cand, props = signal.find_peaks(env, distance=dist, height=0.0)
    if len(cand) == 0:
        return cand
    h = props["peak_heights"]
    ref = np.percentile(h, 90)
    if ref <= 1e-12 * max(1.0, float(env.max())) or ref == 0:
        return cand[:0]
    thr = 0.3 * ref
    peaks = cand[h >= thr]
    if len(peaks) >= 3:  # search back in gaps longer than 1.66 x median RR
        rr = np.median(np.diff(peaks))
        extra = []
        for a, b in zip(peaks[:-1], peaks[1:], strict=True):
            if b - a > 1.66 * rr:
                m = (cand > a + dist) & (cand < b - dist) & (h >= 0.5 * thr)
                if m.any():
                    extra.append(cand[m][np.argmax(h[m])])
        peaks = np.sort(np.concatenate([peaks, np.asarray(extra, dtype=peaks.dtype)]))
    return peaks


def _refine(peaks: np.ndarray, xb: np.ndarray, fs: float) -> np.ndarray:
    w = int(round(0.06 * fs))
    out = []
    for p in peaks:
        a, b = max(0, p - w), min(len(xb), p + w + 1)
        out.append(a + int(np.argmax(np.abs(xb[a:b]))))
    r = np.unique(np.asarray(out, dtype=np.int64))
    if len(r) > 1:  # drop a peak within the refractory period of a larger one
        keep = [r[0]]
        for p in r[1:]:
            if p - keep[-1] < REFRACTORY_S * fs:
                if abs(xb[p]) > abs(xb[keep[-1]]):
                    keep[-1] = p
            else:
                keep.append(p)
        r = np.asarray(keep, dtype=np.int64)
    return r


def detect_r_peaks(lead_i_mv: Any, fs_hz: float) -> np.ndarray:
    """R-peak sample indices (int64) of a single-lead ECG (mV); empty if none or too short."""
    x, fs = _check(lead_i_mv, fs_hz)
    if len(x) < MIN_SECONDS * fs or np.ptp(x) == 0:
        return np.zeros(0, dtype=np.int64)
    peaks = peaks_from_envelope(qrs_envelope(x, fs), fs)
    return _refine(peaks, bandpass(x, fs, 0.5, 40.0), fs)


def median_beat(x: np.ndarray, peaks: np.ndarray, fs: float, pre_s: float = _BEAT_PRE_S,
                post_s: float = _BEAT_POST_S) -> tuple[np.ndarray, int] | None:
    """Median beat (m, c) of a (n, c) signal around ``peaks`` and the R index in it."""
    pre, post = int(round(pre_s * fs)), int(round(post_s * fs))
    ok = peaks[(peaks >= pre) & (peaks + post < len(x))]
    if len(ok) == 0:
        return None
    beats = np.stack([x[p - pre: p + post] for p in ok])
    return np.median(beats, axis=0), pre


def qrs_bounds(beat: np.ndarray, r: int, fs: float,
               fraction: float = QRS_EDGE_FRACTION) -> tuple[int, int] | None:
    """QRS (onset, offset) indices in a median beat (m, c): slope envelope vs threshold."""
    slope = np.abs(np.gradient(beat, axis=0)).sum(axis=1) * fs
    slope = ndimage.uniform_filter1d(slope, max(1, int(round(_SLOPE_SMOOTH_S * fs))))
    w = int(round(0.08 * fs))
    core = slope[max(0, r - w): r + w + 1]
    if core.size == 0 or core.max() <= 0:
        return None
    thr = fraction * core.max()
    lim = int(round(0.2 * fs))
    pre, post = slope[max(0, r - lim): r], slope[r: r + lim]
    if len(pre) == 0 or len(post) == 0:
        return None
    # first crossing below threshold; if none (very wide or noisy QRS), the slope minimum
    below_pre, below_post = np.nonzero(pre < thr)[0], np.nonzero(post < thr)[0]
    on = int(below_pre[-1]) if len(below_pre) else int(np.argmin(pre))
    off = int(below_post[0]) if len(below_post) else int(np.argmin(post))
    return max(0, r - lim) + on, r + off


def rhythm_features(peaks: np.ndarray, n: int, fs: float) -> dict[str, float]:
    """ventricular_rate (bpm, median RR) and qrs_count (beats per 10 s)."""
    out: dict[str, float] = {"qrs_count": float(len(peaks) * 10.0 * fs / n)}
    if len(peaks) >= 2:
        out["ventricular_rate"] = float(60.0 * fs / np.median(np.diff(peaks)))
    return out


def lead_i_features(lead_i_mv: Any, fs_hz: float) -> dict[str, float]:
    """Lead-I metadata: ventricular_rate, qrs_count, qrs_duration (absent if not computable)."""
    x, fs = _check(lead_i_mv, fs_hz)
    if len(x) < 2 * fs or np.ptp(x) == 0:
        return {}
    peaks = detect_r_peaks(x, fs)
    if len(peaks) == 0:
        return {}
    out = rhythm_features(peaks, len(x), fs)
    mb = median_beat(bandpass(x, fs, 0.5, 40.0)[:, None], peaks, fs)
    if mb is not None:
        b = qrs_bounds(mb[0], mb[1], fs)
        if b is not None:
            out["qrs_duration"] = float((b[1] - b[0]) * 1000.0 / fs)
    return out
