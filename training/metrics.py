"""Evaluation metrics: per-record Pearson r / RMSE (whole, masked segments), bootstrap CIs,
R-wave amplitude fidelity, and uncertainty quality (Spearman, spread-error curve).

Arrays are ``(N, L, K)``: N records (windows), L samples, K leads. Per-record metrics return
``(N, K)`` with NaN where undefined (constant signal, fewer than ``MIN_SAMPLES`` in a mask).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats

MIN_SAMPLES = 3
#: QRS and T segments around an R peak for corpora without expert annotations (s).
QRS_WINDOW_S = (-0.05, 0.05)
T_WINDOW_S = (0.15, 0.40)


class MetricError(ValueError):
    """Metric inputs have mismatched shapes or no usable values."""


def _pair(y: Any, yhat: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y, dtype=np.float64)
    b = np.asarray(yhat, dtype=np.float64)
    if a.shape != b.shape:
        raise MetricError(f"truth shape {a.shape} != prediction shape {b.shape}")
    if a.ndim != 3:
        raise MetricError(f"expected (N, L, K) arrays; got shape {a.shape}")
    return a, b


def _mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    if mask is None:
        return np.ones(shape, dtype=bool)
    m = np.asarray(mask, dtype=bool)
    if m.ndim == 2:
        m = m[:, :, None]
    try:
        return np.broadcast_to(m, shape)
    except ValueError:
        raise MetricError(f"mask shape {np.shape(mask)} does not fit arrays {shape}") from None


def pearson_per_record(y: Any, yhat: Any, mask: Any = None) -> np.ndarray:
    """Pearson r per record and lead over the (masked) samples -> ``(N, K)``."""
    a, b = _pair(y, yhat)
    m = _mask(mask, a.shape)
    n = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = np.where(m, a, 0).sum(axis=1) / n
        mb = np.where(m, b, 0).sum(axis=1) / n
        da = np.where(m, a - ma[:, None, :], 0)
        db = np.where(m, b - mb[:, None, :], 0)
        cov = (da * db).sum(axis=1)
        den = np.sqrt((da ** 2).sum(axis=1) * (db ** 2).sum(axis=1))
        r = cov / den
    r[(n < MIN_SAMPLES) | (den <= 1e-12)] = np.nan
    return r


def rmse_per_record(y: Any, yhat: Any, mask: Any = None) -> np.ndarray:
    """Root-mean-square error per record and lead over the (masked) samples -> ``(N, K)``."""
    a, b = _pair(y, yhat)
    m = _mask(mask, a.shape)
    n = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sqrt(np.where(m, (a - b) ** 2, 0).sum(axis=1) / n)
    out[n < MIN_SAMPLES] = np.nan
    return out


def bootstrap_ci(values: Any, n_boot: int = 1000, ci: float = 0.95, seed: int = 0
                 ) -> dict[str, float]:
    """Mean of the finite ``values`` (one per record) with a percentile bootstrap CI.

    Returns ``{"mean", "lo", "hi", "n"}``; NaNs when there is no finite value.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    if n_boot < 1:
        raise MetricError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return {"mean": float(v.mean()), "lo": float(lo), "hi": float(hi), "n": int(v.size)}


def paired_difference(a: dict[str, float], b: dict[str, float], n_boot: int = 1000,
                      seed: int = 0) -> dict[str, float]:
    """Mean of ``a[k] - b[k]`` over the records ``k`` both score (finite), with a percentile
    bootstrap CI over records: two models compared on the same records, so record-to-record
    spread that both share drops out (the paired test an unpaired pair of CIs is not)."""
    keys = [k for k in a if k in b and a[k] is not None and b[k] is not None]  # JSON NaN
    diff = np.array([a[k] - b[k] for k in keys], dtype=np.float64)
    return bootstrap_ci(diff, n_boot, seed=seed)


def summarize(per_record: np.ndarray, lead_names: tuple[str, ...] | list[str], n_boot: int,
              seed: int = 0) -> dict[str, dict[str, float]]:
    """Per lead and ``"mean"`` (lead-averaged per record, then bootstrapped over records)."""
    pr = np.asarray(per_record, dtype=np.float64)
    if pr.ndim != 2 or pr.shape[1] != len(lead_names):
        raise MetricError(f"per-record metrics {pr.shape} do not match {len(lead_names)} leads")
    out = {name: bootstrap_ci(pr[:, k], n_boot, seed=seed) for k, name in enumerate(lead_names)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows -> NaN
        avg = np.nanmean(pr, axis=1) if pr.size else np.zeros(0)
    out["mean"] = bootstrap_ci(avg, n_boot, seed=seed)
    return out


def _finite_pairs(x: Any, y: Any, mismatch: str) -> tuple[np.ndarray, np.ndarray]:
    """Flattened float arrays of the pairs where both are finite (sizes must match)."""
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise MetricError(mismatch.format(a.size, b.size))
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def spearman(x: Any, y: Any) -> float:
    """Spearman rank correlation of the finite pairs; NaN if fewer than 3 or constant."""
    a, b = _finite_pairs(x, y, "spearman: x has {} values, y has {}")
    if a.size < MIN_SAMPLES or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


# ----------------------------------------------------------------------------- segments
def segment_masks_from_peaks(peaks: np.ndarray, n: int, fs_hz: float
                             ) -> tuple[np.ndarray, np.ndarray]:
    """QRS = [R-50 ms, R+50 ms]; T = [R+150 ms, R+400 ms] capped before the next QRS."""
    qrs = np.zeros(n, dtype=bool)
    t = np.zeros(n, dtype=bool)
    p = np.sort(np.asarray(peaks, dtype=np.int64))
    q0, q1 = (int(round(s * fs_hz)) for s in QRS_WINDOW_S)
    t0, t1 = (int(round(s * fs_hz)) for s in T_WINDOW_S)
    for i, r in enumerate(p):
        qrs[max(0, r + q0):max(0, min(n, r + q1 + 1))] = True
        end = r + t1 + 1
        if i + 1 < len(p):
            end = min(end, p[i + 1] + q0)
        t[max(0, r + t0):max(0, min(n, end))] = True
    return qrs, t


def segment_masks_from_annotations(ann: dict[str, np.ndarray], n: int, scale: float,
                                   offset: int) -> tuple[np.ndarray, np.ndarray]:
    """QRS and T masks from one lead's (onset, peak, offset) annotations.

    Sample ``s`` of the annotated record maps to ``round(s * scale) - offset`` in the window.
    """
    masks = []
    for wave in ("QRS", "T"):
        m = np.zeros(n, dtype=bool)
        for on, _, off in np.asarray(ann.get(wave, np.zeros((0, 3))), dtype=np.int64):
            a = int(round(on * scale)) - offset
            b = int(round(off * scale)) - offset + 1
            if b > 0 and a < n:
                m[max(0, a):min(n, b)] = True
        masks.append(m)
    return masks[0], masks[1]


# ----------------------------------------------------------------------------- amplitude
def r_wave_amplitude(x: np.ndarray, peaks: np.ndarray, fs_hz: float) -> float:
    """Median over beats of the largest positive deflection in [R-50 ms, R+50 ms] (mV)."""
    x = np.asarray(x, dtype=np.float64)
    h = int(round(QRS_WINDOW_S[1] * fs_hz))
    vals = [x[max(0, r - h):r + h + 1].max() for r in np.asarray(peaks, dtype=np.int64)
            if 0 <= r < len(x)]
    return float(np.median(vals)) if vals else float("nan")


def amplitude_fidelity(true_amp: Any, pred_amp: Any) -> dict[str, float]:
    """Least-squares slope, intercept and R² of predicted vs true amplitude.

    A slope well below 1 means regression to the mean (amplitudes shrunk toward the average).
    """
    a, b = _finite_pairs(true_amp, pred_amp, "amplitudes: {} true vs {} predicted")
    nan = float("nan")
    if a.size < MIN_SAMPLES or np.ptp(a) == 0:
        return {"slope": nan, "intercept": nan, "r2": nan, "n": int(a.size)}
    slope, intercept = np.polyfit(a, b, 1)
    resid = b - (slope * a + intercept)
    ss_tot = float(((b - b.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else nan
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2, "n": int(a.size)}


# ----------------------------------------------------------------------------- uncertainty
def spread_error_curve(std: Any, abs_err: Any, n_bins: int = 10) -> dict[str, list[float]]:
    """Bin samples by predicted std (quantile bins): mean std vs RMSE per bin.

    A calibrated model lies on the diagonal (RMSE == std).
    """
    s = np.asarray(std, dtype=np.float64).ravel()
    e = np.asarray(abs_err, dtype=np.float64).ravel()
    if s.shape != e.shape:
        raise MetricError(f"spread-error: {s.size} std vs {e.size} errors")
    ok = np.isfinite(s) & np.isfinite(e)
    s, e = s[ok], e[ok]
    if s.size == 0:
        return {"std": [], "rmse": [], "count": []}
    edges = np.unique(np.quantile(s, np.linspace(0, 1, n_bins + 1)))
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, max(0, len(edges) - 2))
    out: dict[str, list[float]] = {"std": [], "rmse": [], "count": []}
    for b in range(max(1, len(edges) - 1)):
        sel = idx == b
        if sel.any():
            out["std"].append(float(s[sel].mean()))
            out["rmse"].append(float(np.sqrt((e[sel] ** 2).mean())))
            out["count"].append(float(sel.sum()))
    return out


def uncertainty_metrics(std: np.ndarray, abs_err: np.ndarray, lead_names: list[str] | tuple,
                        max_samples: int = 200_000, seed: int = 0) -> dict[str, Any]:
    """Per lead: Spearman(std, |err|) over samples (subsampled) and over records (means)."""
    s = np.asarray(std, dtype=np.float64)
    e = np.asarray(abs_err, dtype=np.float64)
    if s.shape != e.shape or s.ndim != 3 or s.shape[2] != len(lead_names):
        raise MetricError(f"std {s.shape} / abs_err {e.shape} / {len(lead_names)} leads mismatch")
    rng = np.random.default_rng(seed)
    flat = s.shape[0] * s.shape[1]
    pick = rng.choice(flat, size=min(flat, max_samples), replace=False) if flat else []
    out: dict[str, Any] = {"spearman_sample": {}, "spearman_record": {}}
    for k, name in enumerate(lead_names):
        out["spearman_sample"][name] = spearman(s[:, :, k].ravel()[pick], e[:, :, k].ravel()[pick])
        out["spearman_record"][name] = spearman(s[:, :, k].mean(axis=1), e[:, :, k].mean(axis=1))
    for key in ("spearman_sample", "spearman_record"):
        vals = [v for v in out[key].values() if np.isfinite(v)]
        out[key]["mean"] = float(np.mean(vals)) if vals else float("nan")
    return out
