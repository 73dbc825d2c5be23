"""Post-hoc calibration of MC-dropout spread, fitted on the validation split.

Method "scale": one factor ``s_k`` per predicted lead so that the nominal Gaussian interval
``mean ± z · s_k · std`` (z = 1.645 for 90%) covers the nominal fraction of validation samples.
That is ``s_k = quantile(|err| / std, nominal) / z`` — exact on the fitting data, whatever the
error distribution. Training fits it corpus-robust (``fit_corpus_robust_scale``): halfway
between that pooled quantile and one that weights every corpus equally. ``flag_std_mv`` is a
per-lead threshold on the *calibrated* std above which the gateway raises a
``high_uncertainty`` flag (a high quantile of validation std).

The stored form (``calibration.json`` in a run folder, ``uncertainty`` in a bundle manifest) is
``{"method": "scale", "scale": [7 floats], "flag_std_mv": [7 floats]}`` in PREDICTED order.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from edge.atypicality import Atypicality
from edge.leads import PREDICTED

#: Floor on std (mV) so that a zero-spread sample does not make the ratio infinite.
STD_FLOOR_MV = 1e-6
CALIBRATION_FILE = "calibration.json"


class CalibrationError(ValueError):
    """Calibration inputs or a calibration file are unusable (message names the problem)."""


def z_value(nominal: float) -> float:
    """Two-sided Gaussian quantile for a central interval of probability ``nominal``."""
    if not 0.0 < nominal < 1.0:
        raise CalibrationError(f"nominal coverage {nominal!r} must lie strictly in (0, 1)")
    return float(stats.norm.ppf(0.5 + nominal / 2.0))


def _as_leads(name: str, a: Any) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim < 1 or arr.shape[-1] == 0:
        raise CalibrationError(f"{name} must have a trailing lead axis; got shape {arr.shape}")
    arr = arr.reshape(-1, arr.shape[-1])
    if arr.shape[0] == 0:
        raise CalibrationError(f"{name} holds no samples (shape {np.shape(a)})")
    if not np.isfinite(arr).all():
        raise CalibrationError(f"{name} has {int((~np.isfinite(arr)).sum())} non-finite values")
    if (arr < 0).any():
        raise CalibrationError(f"{name} has negative values; expected std / absolute error")
    return arr


def fit_scale_calibration(std: Any, abs_err: Any, nominal: float = 0.9) -> np.ndarray:
    """Per-lead scale so that ``|err| <= z · scale · std`` holds for ``nominal`` of samples.

    ``std`` and ``abs_err``: same shape ``(..., n_leads)`` (e.g. ``(N, L, 7)``), mV.
    Returns float64 ``(n_leads,)``.
    """
    z = z_value(nominal)
    s = _as_leads("std", std)
    e = _as_leads("abs_err", abs_err)
    if s.shape != e.shape:
        raise CalibrationError(f"std shape {np.shape(std)} != abs_err shape {np.shape(abs_err)}")
    ratio = e / np.maximum(s, STD_FLOOR_MV)
    return np.quantile(ratio, nominal, axis=0) / z


def balanced_quantile(values: Any, groups: Any, q: float) -> np.ndarray:
    """Per lead (last axis), the ``q`` quantile of ``values`` ``(N, ..., leads)`` with every
    group of records (``groups``: ``(N,)`` labels) weighted equally, however many records it
    has: the smallest value whose cumulative weight reaches ``q``."""
    v = np.asarray(values, dtype=np.float64)
    g = np.asarray(groups)
    if len(g) != len(v):
        raise CalibrationError(f"{len(g)} group labels for {len(v)} records")
    labels, inverse, counts = np.unique(g, return_inverse=True, return_counts=True)
    per = int(np.prod(v.shape[1:-1], dtype=np.int64))  # samples per record and lead
    w = np.repeat(1.0 / (counts[inverse] * len(labels)), per)
    flat = v.reshape(len(v) * per, v.shape[-1])
    out = np.empty(flat.shape[1])
    for j in range(flat.shape[1]):
        order = np.argsort(flat[:, j], kind="stable")
        cum = np.cumsum(w[order])
        out[j] = flat[order[min(np.searchsorted(cum, q * cum[-1]), len(order) - 1)], j]
    return out


def fit_corpus_robust_scale(std: Any, abs_err: Any, groups: Any, nominal: float = 0.9
                            ) -> np.ndarray:
    """Per-lead scale halfway (geometric mean) between the pooled fit
    (``fit_scale_calibration``) and the corpus-balanced one (every corpus weighted equally,
    ``balanced_quantile``). The pooled fit is exact on data like the validation split, which
    one corpus dominates; records from another hospital err more than that (intervals
    covered 0.86 of their samples leave-one-corpus-out), and the corpus-balanced fit hedges
    toward the corpora that fit worst. ``std``, ``abs_err``: ``(N, L, leads)``; ``groups``:
    ``(N,)`` corpus of each record. With one corpus, the pooled fit."""
    pooled = fit_scale_calibration(std, abs_err, nominal)
    if len(set(np.asarray(groups).tolist())) < 2:  # one corpus: nothing to balance
        return pooled
    s = np.asarray(std, dtype=np.float64)
    e = np.asarray(abs_err, dtype=np.float64)
    if s.shape != e.shape or s.ndim < 2:
        raise CalibrationError(f"std shape {s.shape} != abs_err shape {e.shape}")
    balanced = balanced_quantile(e / np.maximum(s, STD_FLOOR_MV), groups, nominal)
    return np.sqrt(pooled * balanced / z_value(nominal))


def coverage(std: Any, abs_err: Any, scale: Any = 1.0, nominal: float = 0.9) -> np.ndarray:
    """Per-lead fraction of samples with ``|err| <= z · scale · std``."""
    z = z_value(nominal)
    s = _as_leads("std", std)
    e = _as_leads("abs_err", abs_err)
    if s.shape != e.shape:
        raise CalibrationError(f"std shape {np.shape(std)} != abs_err shape {np.shape(abs_err)}")
    sc = np.broadcast_to(np.asarray(scale, dtype=np.float64), (s.shape[1],))
    return (e <= z * sc * s).mean(axis=0)


def fit_flag_thresholds(std: Any, scale: Any = 1.0, quantile: float = 0.95) -> np.ndarray:
    """Per-lead ``high_uncertainty`` threshold: the ``quantile`` of calibrated validation std."""
    if not 0.0 < quantile < 1.0:
        raise CalibrationError(f"flag quantile {quantile!r} must lie strictly in (0, 1)")
    s = _as_leads("std", std)
    sc = np.broadcast_to(np.asarray(scale, dtype=np.float64), (s.shape[1],))
    return np.quantile(s * sc, quantile, axis=0)


def fit_fidelity_threshold(mean: Any, cal_std: Any, target: Any, budget: float = 0.05,
                           good_r: float = 0.8) -> float:
    """Threshold on a window's expected r (``edge.fidelity``) below which the gateway flags
    it: the ``budget`` quantile of expected r over the windows whose measured r (mean over
    leads, prediction vs ``target``) exceeds ``good_r``, so about ``budget`` of the good
    windows get flagged. ``mean``, ``cal_std``, ``target``: ``(N, L, leads)``."""
    from edge.fidelity import expected_r
    from training.metrics import pearson_per_record

    if not 0.0 < budget < 1.0:
        raise CalibrationError(f"fidelity budget {budget!r} must lie strictly in (0, 1)")
    mean, target = np.asarray(mean, np.float64), np.asarray(target, np.float64)
    if mean.shape != target.shape or mean.ndim != 3:
        raise CalibrationError(f"mean {mean.shape} and target {target.shape} must be the same "
                               "(N, L, leads) shape")
    r = np.nan_to_num(pearson_per_record(target, mean), nan=0.0).mean(axis=1)
    good = r > good_r
    if good.sum() < 20:
        raise CalibrationError(f"only {int(good.sum())} windows with r > {good_r}: too few to "
                               "fit the fidelity threshold")
    return float(np.quantile(expected_r(mean, cal_std)[good], budget))


#: principal directions of the atypicality model (the rest is one residual variance)
ATYPICALITY_K = 16


def fit_atypicality_model(pooled: Any, k: int = ATYPICALITY_K) -> Atypicality:
    """The Gaussian of ``edge.atypicality`` fitted on pooled trunk features ``(N, D)`` of
    training windows: per-feature mean and std, the top ``k`` principal directions of the
    standardised features and the mean variance left outside them."""
    x = np.asarray(pooled, dtype=np.float64)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise CalibrationError(f"pooled features must be a finite (N, D) array, got {x.shape}")
    n, d = x.shape
    if not 0 < k < d or n <= k + 1:
        raise CalibrationError(f"atypicality needs 0 < k < D and more than k + 1 windows: "
                               f"k={k}, {n} windows of {d} features")
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)  # a constant feature: no contribution
    z = (x - mean) / scale
    _, sv, vt = np.linalg.svd(z, full_matrices=False)
    var = sv ** 2 / (n - 1)
    resid = z - (z @ vt[:k].T) @ vt[:k]
    residual_var = float((resid ** 2).sum(axis=1).mean() / (d - k))
    return Atypicality(mean, scale, vt[:k].copy(), np.maximum(var[:k], 1e-12),
                       max(residual_var, 1e-12))


def fit_atypicality_flag(model: Atypicality, expected_r: Any, score: Any, measured_r: Any,
                         record: Any, budget: float = 0.1, good_r: float = 0.8,
                         weight: float = 0.5) -> Atypicality:
    """``model`` with the risk's parameters fitted on the validation windows the gateway runs
    (several per record, ``record`` their record index): expected r and atypicality score
    standardised over the good windows (measured r > ``good_r``), and the threshold that
    flags ``budget`` of the good records (mean window r > ``good_r``) somewhere, as the
    product path counts a record with any flagged window."""
    if not 0.0 < budget < 1.0:
        raise CalibrationError(f"fidelity budget {budget!r} must lie strictly in (0, 1)")
    er, sc, r = (np.asarray(a, dtype=np.float64) for a in (expected_r, score, measured_r))
    rec = np.asarray(record, dtype=int)
    if not er.shape == sc.shape == r.shape == rec.shape or er.ndim != 1:
        raise CalibrationError(f"expected r {er.shape}, score {sc.shape}, measured r "
                               f"{r.shape} and record {rec.shape} must be the same (N,) shape")
    good = r > good_r
    if good.sum() < 20:
        raise CalibrationError(f"only {int(good.sum())} windows with r > {good_r}: too few to "
                               "fit the atypicality flag")
    spread = [float(a[good].std()) for a in (er, sc)]
    if min(spread) <= 0:
        raise CalibrationError("expected r or atypicality is constant over the good "
                               "validation windows")
    fitted = dataclasses.replace(model, er_ref=float(er[good].mean()), er_spread=spread[0],
                                 score_ref=float(sc[good].mean()), score_spread=spread[1],
                                 weight=float(weight))
    risk = np.array([fitted.risk(e, s) for e, s in zip(er, sc, strict=True)])
    ids = np.unique(rec)
    rec_r = np.array([r[rec == i].mean() for i in ids])
    rec_risk = np.array([risk[rec == i].max() for i in ids])
    return dataclasses.replace(
        fitted, threshold=float(np.quantile(rec_risk[rec_r > good_r], 1.0 - budget)))


#: weights of the expected r in the flag risk tried on validation (1.0: expected r alone)
ATYPICALITY_WEIGHTS = (1.0, 0.7, 0.5, 0.3)


def record_flags(model: Atypicality, expected_r: Any, score: Any, record: Any
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(record ids, does any of the record's windows exceed the risk threshold)."""
    rec = np.asarray(record, dtype=int)
    hit = np.array([model.risk(e, s) > model.threshold
                    for e, s in zip(expected_r, score, strict=True)], bool)
    ids = np.unique(rec)
    out = np.zeros(len(ids), bool)
    np.logical_or.at(out, np.searchsorted(ids, rec), hit)
    return ids, out


def select_atypicality_flag(model: Atypicality, expected_r: Any, score: Any, measured_r: Any,
                            record: Any, budget: float = 0.1,
                            weights: tuple[float, ...] = ATYPICALITY_WEIGHTS,
                            bad_r: float = 0.5, good_r: float = 0.8
                            ) -> tuple[Atypicality, dict[str, dict[str, float]]]:
    """``fit_atypicality_flag`` for each weight; the one that flags the most bad validation
    records (mean window r < ``bad_r``) at the budget (ties: the first, i.e. the most weight
    on the expected r), and each weight's catch / false-flag rates on validation."""
    r = np.asarray(measured_r, dtype=np.float64)
    rec = np.asarray(record, dtype=int)
    rec_r = np.array([r[rec == i].mean() for i in np.unique(rec)])
    bad, good = rec_r < bad_r, rec_r > good_r
    best, table = None, {}
    for w in weights:
        fitted = fit_atypicality_flag(model, expected_r, score, r, rec, budget, good_r, w)
        _, flagged = record_flags(fitted, expected_r, score, rec)
        catch = float(flagged[bad].mean()) if bad.any() else 0.0
        table[f"{w:g}"] = {"catch_rate": catch, "false_flag_rate": float(flagged[good].mean()),
                           "records_r_below_0_5": int(bad.sum())}
        if best is None or catch > best[0]:
            best = (catch, fitted)
    return best[1], table


def calibration_dict(std: Any, abs_err: Any, nominal: float = 0.9,
                     flag_quantile: float = 0.95) -> dict[str, Any]:
    """Fit scale and flag thresholds; the JSON-ready ``calibration.json`` content."""
    scale = fit_scale_calibration(std, abs_err, nominal)
    flags = fit_flag_thresholds(std, scale, flag_quantile)
    return {
        "method": "scale",
        "nominal": float(nominal),
        "scale": [float(v) for v in scale],
        "flag_std_mv": [float(v) for v in flags],
        "coverage_before": [float(v) for v in coverage(std, abs_err, 1.0, nominal)],
        "coverage_after": [float(v) for v in coverage(std, abs_err, scale, nominal)],
    }


def save_calibration(cal: dict[str, Any], run_dir: Path) -> Path:
    """Write ``calibration.json`` into ``run_dir``; returns the path."""
    path = Path(run_dir) / CALIBRATION_FILE
    path.write_text(json.dumps(cal, indent=2) + "\n")
    return path


def load_calibration(run_dir: Path, n_leads: int = len(PREDICTED)) -> dict[str, Any] | None:
    """Read a run's ``calibration.json``; None when absent, CalibrationError when malformed."""
    path = Path(run_dir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        cal = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"cannot read {path}: {exc}") from None
    if not isinstance(cal, dict) or cal.get("method") != "scale":
        raise CalibrationError(f"{path}: method must be 'scale'")
    for key in ("scale", "flag_std_mv"):
        vals = cal.get(key)
        if (not isinstance(vals, list) or len(vals) != n_leads
                or not all(isinstance(v, int | float) and np.isfinite(v) and v > 0 for v in vals)):
            raise CalibrationError(f"{path}: {key!r} must be {n_leads} positive finite numbers; "
                                   f"got {vals!r}")
    return cal
