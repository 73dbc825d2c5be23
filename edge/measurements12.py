"""12-lead measurements (rate, QRS count/duration, R and T axes) from a standard 12-lead ECG.

The one implementation (``training.measurements`` re-exports it): ``ecg12 enroll`` fills a
wearer's profile (r_axis, t_axis, qrs_duration) from their enrolment 12-lead, and training
fills the "clinical" metadata regime with it.
Beats come from the Pan-Tompkins envelope summed over all
12 leads (``edge.features``); QRS onset/offset from the summed slope envelope of the 12-lead
median beat (global QRS: earliest onset to latest offset). Frontal axes use the net areas A of
leads I and aVF on the median beat, baseline = PR-segment level. With Einthoven's triangle,
I = E cos(theta) and aVF = (sqrt(3)/2) E sin(theta), so theta = atan2(2 A_aVF / sqrt(3), A_I)
(the common shortcut atan2(A_aVF, A_I) is biased towards 0 and 180 degrees).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edge.features import (
    FeatureError,
    _check,
    bandpass,
    median_beat,
    peaks_from_envelope,
    qrs_bounds,
    qrs_envelope,
    rhythm_features,
)
from edge.leads import LEADS

_I, _AVF = LEADS.index("I"), LEADS.index("aVF")
#: Slope fraction for the global (12-lead) QRS onset/offset.
GLOBAL_EDGE_FRACTION = 0.07


def frontal_axis(area_i: float, area_avf: float) -> float:
    """Frontal-plane axis in degrees (-180, 180] from net areas of leads I and aVF."""
    return float(math.degrees(math.atan2(2.0 * area_avf / math.sqrt(3.0), area_i)))


def twelve_lead_measurements(signal_mv: Any, fs_hz: float) -> dict[str, float]:
    """ventricular_rate, qrs_count, qrs_duration, r_axis, t_axis; absent when not computable."""
    x, fs = _check(signal_mv, fs_hz, ndim=(2,))
    if x.shape[1] != len(LEADS):
        raise FeatureError(f"signal must have {len(LEADS)} leads (LEADS order); "
                           f"got shape {x.shape}")
    if len(x) < 2 * fs or np.ptp(x) == 0:
        return {}
    env = qrs_envelope(x, fs)
    peaks = peaks_from_envelope(env, fs)
    if len(peaks) == 0:
        return {}
    xb = bandpass(x, fs, 0.5, 40.0)
    # re-centre each beat on the summed-slope maximum of the 0.5-40 Hz signal
    w = int(round(0.06 * fs))
    slope = np.abs(np.gradient(xb, axis=0)).sum(axis=1)
    peaks = np.asarray([max(0, p - w) + int(np.argmax(slope[max(0, p - w): p + w + 1]))
                        for p in peaks], dtype=np.int64)
    out: dict[str, float] = rhythm_features(peaks, len(x), fs)
    rr_s = float(np.median(np.diff(peaks))) / fs if len(peaks) >= 2 else 1.0
    post_s = min(0.6, max(0.3, 0.75 * rr_s))
    mb = median_beat(xb, peaks, fs, pre_s=0.3, post_s=post_s)
    if mb is None:
        return out
    beat, r = mb
    b = qrs_bounds(beat, r, fs, GLOBAL_EDGE_FRACTION)
    if b is None:
        return out
    on, off = b
    out["qrs_duration"] = float((off - on) * 1000.0 / fs)
    pr = beat[max(0, on - int(0.03 * fs)): max(1, on - int(0.005 * fs))]
    base = np.median(pr, axis=0) if len(pr) else beat[on]
    qrs = (beat[on: off + 1] - base).sum(axis=0)
    out["r_axis"] = frontal_axis(qrs[_I], qrs[_AVF])
    t0, t1 = off + int(0.04 * fs), len(beat)
    if t1 - t0 > int(0.08 * fs):
        tw = (beat[t0:t1] - base).sum(axis=0)
        out["t_axis"] = frontal_axis(tw[_I], tw[_AVF])
    return out
