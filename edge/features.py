"""Lead-I features a wearable can know: R peaks, ventricular rate, QRS count, QRS duration.

A small Pan-Tompkins-style detector on numpy alone, not neurokit2 (which pulls pandas,
scikit-learn and matplotlib-era dependencies, too heavy for a Pi base install) and not scipy
(its import alone costs ~70 MB of RSS on the gateway). Steps: band-pass 5-15 Hz, derivative,
square (so negative or small QRS in Lead I count alike), 120 ms moving integration ->
envelope; envelope peaks 200 ms apart above 0.3 x a robust height reference, with a
search-back at half threshold in long gaps; each R peak is the largest |deflection| of the
0.5-40 Hz signal within 60 ms of the envelope peak.
QRS duration comes from the median beat: onset/offset where a smoothed slope envelope falls
below a fraction of its QRS maximum (fraction tuned on LUDB lead-I expert annotations, see
``training.validate_features``).

Features work on a whole window (not a stream), so the filters here are zero-phase
(forward-backward): peak indices then line up with the input samples.

The scipy pieces this used are re-implemented here with numpy and tested against scipy:
``butter_bandpass_sos`` (= ``scipy.signal.butter(2, ..., "bandpass", output="sos")``),
``_SosFilter.filtfilt`` (= ``scipy.signal.sosfiltfilt``, odd padding; run as one
state-space system block by block, so it is vectorised), ``find_peaks`` (=
``scipy.signal.find_peaks`` with ``height`` and ``distance``) and ``moving_average`` (=
``scipy.ndimage.uniform_filter1d``).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from edge.quantile import percentile

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


def butter_bandpass_sos(lo_hz: float, hi_hz: float, fs_hz: float) -> np.ndarray:
    """2nd-order digital Butterworth band-pass as two biquads (2, 6): bilinear transform with
    pre-warping, sections paired as ``scipy.signal.zpk2sos`` ("nearest") pairs them."""
    if not 0 < lo_hz < hi_hz < fs_hz / 2:
        raise FeatureError(f"band-pass edges {lo_hz:g}-{hi_hz:g} Hz must satisfy 0 < lo < "
                           f"hi < fs/2 ({fs_hz / 2:g} Hz)")
    # analog prototype at frequencies normalised to Nyquist, pre-warped for fs = 2
    w1, w2 = (4.0 * math.tan(math.pi * (2 * f / fs_hz) / 2.0) for f in (lo_hz, hi_hz))
    bw, wo = w2 - w1, math.sqrt(w1 * w2)
    p_lp = -np.exp(1j * np.pi * np.array([-1.0, 1.0]) / 4) * bw / 2  # Butterworth, N = 2
    root = np.sqrt(p_lp ** 2 - wo ** 2)
    p_bp = np.concatenate([p_lp + root, p_lp - root])  # low-pass -> band-pass
    # bilinear (2 * fs = 4); the band-pass has two zeros at s = 0 (-> z = 1), two at infinity
    k = bw ** 2 * float(np.real(16.0 / np.prod(4.0 - p_bp)))
    p = (4.0 + p_bp) / (4.0 - p_bp)
    p = p[p.imag > 0]  # one of each conjugate pair
    worst = int(np.argmin(np.abs(1 - np.abs(p))))  # nearest the unit circle: last section
    zeros = [-1.0, -1.0, 1.0, 1.0]
    sos = np.zeros((2, 6))
    for si, pole in ((1, p[worst]), (0, p[1 - worst])):
        pair = []
        for _ in range(2):
            i = int(np.argmin([abs(z - pole) for z in zeros]))
            pair.append(zeros.pop(i))
        sos[si, :3] = [1.0, -(pair[0] + pair[1]), pair[0] * pair[1]]
        sos[si, 3:] = [1.0, -(pole + pole.conjugate()).real, (pole * pole.conjugate()).real]
    sos[0, :3] *= k
    return sos


#: block length of the state-space IIR runner (a few matrix products per block)
_IIR_BLOCK = 128


class _SosFilter:
    """A cascade of biquads (``sos``, direct form II transposed) as one state-space system
    (the state is the sections' DF2T states, as ``scipy.signal.sosfilt``'s ``zi``), run
    ``_IIR_BLOCK`` samples at a time with matrix products."""

    def __init__(self, sos: np.ndarray) -> None:
        self.sos = sos = np.asarray(sos, dtype=np.float64)
        a_m = np.zeros((0, 0))
        b_v, c_v, d = np.zeros(0), np.zeros(0), 1.0
        for b0, b1, b2, a0, a1, a2 in sos:
            b0, b1, b2, a1, a2 = b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0
            a_s = np.array([[-a1, 1.0], [-a2, 0.0]])
            b_s = np.array([b1 - a1 * b0, b2 - a2 * b0])
            k = len(b_v)
            a_new = np.zeros((k + 2, k + 2))
            a_new[:k, :k] = a_m
            a_new[k:, :k] = np.outer(b_s, c_v)
            a_new[k:, k:] = a_s
            a_m, b_v = a_new, np.concatenate([b_v, b_s * d])
            c_v, d = np.concatenate([b0 * c_v, [1.0, 0.0]]), b0 * d
        m, n = len(b_v), _IIR_BLOCK
        powers = np.empty((n + 1, m, m))
        powers[0] = np.eye(m)
        for i in range(n):
            powers[i + 1] = a_m @ powers[i]
        h = np.concatenate([[d], c_v @ powers[:-2] @ b_v])  # impulse response h[0..n-1]
        i = np.arange(n)
        lag = i[:, None] - i[None, :]
        self.toeplitz = np.where(lag >= 0, h[np.clip(lag, 0, None)], 0.0)  # (n, n)
        self.observe = c_v @ powers[:-1]  # (n, m): output i from the block's start state
        self.control = (powers[n - 1::-1] @ b_v).T  # (m, n): end state from input j
        self.a_block = powers[n]
        self.steady = np.linalg.solve(np.eye(m) - a_m, b_v)  # state after a unit step
        self.padlen = 3 * (2 * len(sos) + 1 - min(int((sos[:, 2] == 0).sum()),
                                                  int((sos[:, 5] == 0).sum())))

    def run(self, u: np.ndarray, s0: np.ndarray) -> np.ndarray:
        """Filter ``u`` (n, c) from state ``s0`` (m, c)."""
        n, c = u.shape
        blk = _IIR_BLOCK
        nb = -(-n // blk)
        up = np.zeros((nb * blk, c))
        up[:n] = u
        cols = up.reshape(nb, blk, c).transpose(1, 0, 2).reshape(blk, nb * c)
        y = self.toeplitz @ cols
        drive = (self.control @ cols).reshape(-1, nb, c)
        states = np.empty_like(drive)
        s = s0
        for b in range(nb):
            states[:, b] = s
            s = self.a_block @ s + drive[:, b]
        y += self.observe @ states.reshape(-1, nb * c)
        return y.reshape(blk, nb, c).transpose(1, 0, 2).reshape(nb * blk, c)[:n]

    def filtfilt(self, x: np.ndarray) -> np.ndarray:
        """Forward-backward filtering along axis 0 of (n,) or (n, c), as
        ``scipy.signal.sosfiltfilt(sos, x, axis=0)`` (odd extension, steady-state start)."""
        x = np.asarray(x, dtype=np.float64)
        x2 = x[:, None] if x.ndim == 1 else x
        pad = self.padlen
        if len(x2) <= pad:
            raise FeatureError(f"signal of {len(x2)} samples is too short to filter (needs "
                               f"more than {pad})")
        ext = np.concatenate([2 * x2[:1] - x2[pad:0:-1], x2,
                              2 * x2[-1:] - x2[-2:-(pad + 2):-1]])
        y = self.run(ext, self.steady[:, None] * ext[:1])[::-1]
        y = self.run(y, self.steady[:, None] * y[:1])[::-1][pad:-pad]
        return y[:, 0] if x.ndim == 1 else y


@functools.lru_cache(maxsize=32)
def _design(lo: float, hi: float, fs: float) -> _SosFilter:
    return _SosFilter(butter_bandpass_sos(lo, hi, fs))


class _SosBank:
    """Several ``_SosFilter``s of one order applied to one signal together: batched matrix
    products and one state loop for all (the same outputs as running them one by one)."""

    def __init__(self, filters: list[_SosFilter]) -> None:
        if len({f.padlen for f in filters}) != 1 or len({len(f.steady) for f in filters}) != 1:
            raise ValueError("a filter bank needs filters of one order")
        k, m = len(filters), len(filters[0].steady)
        self.k, self.m, self.padlen = k, m, filters[0].padlen
        self.toeplitz = np.stack([f.toeplitz for f in filters])  # (k, n, n)
        self.observe = np.stack([f.observe for f in filters])  # (k, n, m)
        self.control = np.stack([f.control for f in filters])  # (k, m, n)
        self.steady = np.stack([f.steady for f in filters])  # (k, m)
        self.a_block = np.zeros((k * m, k * m))
        for i, f in enumerate(filters):
            self.a_block[i * m:(i + 1) * m, i * m:(i + 1) * m] = f.a_block

    def run(self, u: np.ndarray, s0: np.ndarray) -> np.ndarray:
        """Filter ``u`` (k, n) (row i by filter i) from states ``s0`` (k, m)."""
        k, n = u.shape
        blk = _IIR_BLOCK
        nb = -(-n // blk)
        up = np.zeros((k, nb * blk))
        up[:, :n] = u
        cols = np.ascontiguousarray(up.reshape(k, nb, blk).transpose(0, 2, 1))  # (k, blk, nb)
        y = self.toeplitz @ cols
        drive = (self.control @ cols).reshape(k * self.m, nb)
        states = np.empty_like(drive)
        s = s0.reshape(-1)
        for b in range(nb):
            states[:, b] = s
            s = self.a_block @ s + drive[:, b]
        y += self.observe @ states.reshape(k, self.m, nb)
        return y.transpose(0, 2, 1).reshape(k, nb * blk)[:, :n]

    def filtfilt(self, x: np.ndarray) -> np.ndarray:
        """Each filter's ``_SosFilter.filtfilt`` of the 1-D ``x``: (k, n)."""
        pad = self.padlen
        if len(x) <= pad:
            raise FeatureError(f"signal of {len(x)} samples is too short to filter (needs "
                               f"more than {pad})")
        ext = np.concatenate([2 * x[:1] - x[pad:0:-1], x, 2 * x[-1:] - x[-2:-(pad + 2):-1]])
        u = np.broadcast_to(ext, (self.k, len(ext)))
        y = self.run(u, self.steady * ext[0])[:, ::-1]
        y = self.run(y, self.steady * y[:, :1])[:, ::-1]
        return y[:, pad:-pad]


@functools.lru_cache(maxsize=32)
def _feature_bands(fs: float) -> _SosBank:
    """The 0.5-40 Hz (R peaks, median beat) and 5-15 Hz (QRS envelope) band-passes."""
    return _SosBank([_design(0.5, float(min(40.0, 0.45 * fs)), fs),
                     _design(5.0, float(min(15.0, 0.45 * fs)), fs)])


def gradient0(y: np.ndarray) -> np.ndarray:
    """``numpy.gradient(y, axis=0)`` (unit spacing, first-order ends), without its overhead."""
    d = np.empty_like(y)
    d[1:-1] = (y[2:] - y[:-2]) / 2.0
    d[0] = y[1] - y[0]
    d[-1] = y[-1] - y[-2]
    return d


def moving_average(x: np.ndarray, size: int, mode: str = "reflect") -> np.ndarray:
    """Centred running mean of ``size`` samples (window ``[i - size // 2, i + (size - 1) //
    2]``) of a 1-D signal; ``mode`` "reflect" or "nearest" extends the ends, as
    ``scipy.ndimage.uniform_filter1d``."""
    pad = {"reflect": "symmetric", "nearest": "edge"}[mode]
    left = size // 2
    right = size - 1 - left
    x = np.asarray(x, dtype=np.float64)
    if 0 < max(left, right) <= len(x):  # np.pad's result, without its overhead
        if pad == "edge":
            xp = np.concatenate([np.full(left, x[0]), x, np.full(right, x[-1])])
        else:
            xp = np.concatenate([x[left - 1::-1] if left else x[:0], x,
                                 x[:len(x) - right - 1:-1]])
    else:
        xp = np.pad(x, (left, right), mode=pad)
    return np.convolve(xp, np.ones(size), mode="valid") / size


def find_peaks(x: np.ndarray, distance: float = 1.0, height: float | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of a 1-D signal (a flat top counts once, at its middle) at least
    ``height`` high, thinned to ``distance`` samples apart (higher peaks first): ``(peaks,
    heights)`` as ``scipy.signal.find_peaks(x, height=height, distance=distance)``."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 3:
        return np.zeros(0, dtype=np.intp), np.zeros(0)
    starts = np.concatenate([[0], np.flatnonzero(x[1:] != x[:-1]) + 1])  # runs of equals
    ends = np.concatenate([starts[1:] - 1, [len(x) - 1]])
    v = x[starts]
    top = np.flatnonzero((v[1:-1] > v[:-2]) & (v[1:-1] > v[2:])) + 1
    peaks = ((starts[top] + ends[top]) // 2).astype(np.intp)
    heights = x[peaks]
    if height is not None:
        keep = heights >= height
        peaks, heights = peaks[keep], heights[keep]
    dist = math.ceil(distance)
    if dist > 1 and len(peaks) > 1:
        pos = peaks.tolist()
        keep_l = [True] * len(pos)
        for j in np.argsort(heights)[::-1].tolist():
            if not keep_l[j]:
                continue
            k = j - 1
            while k >= 0 and pos[j] - pos[k] < dist:
                keep_l[k] = False
                k -= 1
            k = j + 1
            while k < len(pos) and pos[k] - pos[j] < dist:
                keep_l[k] = False
                k += 1
        keep = np.array(keep_l)
        peaks, heights = peaks[keep], heights[keep]
    return peaks, heights


def bandpass(x: np.ndarray, fs: float, lo: float, hi: float) -> np.ndarray:
    """Zero-phase Butterworth band-pass (order 2) along axis 0; ``hi`` capped at 0.45 fs."""
    return _design(float(lo), float(min(hi, 0.45 * fs)), float(fs)).filtfilt(x)


def qrs_envelope(x: np.ndarray, fs: float) -> np.ndarray:
    """Pan-Tompkins envelope (n,) of a (n,) or (n, c) signal; channels summed."""
    x2 = x[:, None] if x.ndim == 1 else x
    return _envelope(bandpass(x2, fs, 5.0, 15.0), fs)


def _envelope(y: np.ndarray, fs: float) -> np.ndarray:
    """``qrs_envelope`` given the 5-15 Hz band-pass ``y`` (n,) or (n, c)."""
    d = gradient0(y) * fs
    e = d ** 2 if d.ndim == 1 else (d ** 2).sum(axis=1)
    return moving_average(e, max(1, int(round(0.12 * fs))), mode="nearest")


def peaks_from_envelope(env: np.ndarray, fs: float) -> np.ndarray:
    """Beat locations (envelope maxima) with an adaptive threshold and search-back."""
    dist = max(1, int(REFRACTORY_S * fs))
    cand, h = find_peaks(env, distance=dist, height=0.0)
    if len(cand) == 0:
        return cand
    ref = percentile(h, 90)
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
    if len(peaks) == 0:
        return np.zeros(0, dtype=np.int64)
    # the first largest |xb| within w of each peak (the -1 padding is never the largest)
    a = np.concatenate([np.full(w, -1.0), np.abs(xb), np.full(w, -1.0)])
    win = np.lib.stride_tricks.sliding_window_view(a, 2 * w + 1)[np.asarray(peaks)]
    r = np.unique((np.asarray(peaks) - w + np.argmax(win, axis=1)).astype(np.int64))
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
    return _r_peaks(*_feature_bands(fs).filtfilt(x), fs)


def _r_peaks(xb: np.ndarray, x515: np.ndarray, fs: float) -> np.ndarray:
    """``detect_r_peaks`` from a signal's 0.5-40 Hz (``xb``) and 5-15 Hz band-passes."""
    return _refine(peaks_from_envelope(_envelope(x515, fs), fs), xb, fs)


def median_beat(x: np.ndarray, peaks: np.ndarray, fs: float, pre_s: float = _BEAT_PRE_S,
                post_s: float = _BEAT_POST_S) -> tuple[np.ndarray, int] | None:
    """Median beat (m, c) of a (n, c) signal around ``peaks`` and the R index in it."""
    pre, post = int(round(pre_s * fs)), int(round(post_s * fs))
    ok = peaks[(peaks >= pre) & (peaks + post < len(x))]
    if len(ok) == 0:
        return None
    beats = x[ok[:, None] + np.arange(-pre, post)]  # (beats, pre + post, c)
    return np.median(beats, axis=0), pre


def qrs_bounds(beat: np.ndarray, r: int, fs: float,
               fraction: float = QRS_EDGE_FRACTION) -> tuple[int, int] | None:
    """QRS (onset, offset) indices in a median beat (m, c): slope envelope vs threshold."""
    slope = np.abs(gradient0(beat)).sum(axis=1) * fs
    slope = moving_average(slope, max(1, int(round(_SLOPE_SMOOTH_S * fs))))
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
    xb, x515 = _feature_bands(fs).filtfilt(x)  # xb: the R peaks and the median beat alike
    peaks = _r_peaks(xb, x515, fs)
    if len(peaks) == 0:
        return {}
    out = rhythm_features(peaks, len(x), fs)
    mb = median_beat(xb[:, None], peaks, fs)
    if mb is not None:
        b = qrs_bounds(mb[0], mb[1], fs)
        if b is not None:
            out["qrs_duration"] = float((b[1] - b[0]) * 1000.0 / fs)
    return out
