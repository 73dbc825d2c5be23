"""`ecg12 evaluate RUN`: test-split evaluation of a training run -> metrics.json + report.md.

Steps: load config + best weights; for each metadata regime (none / wearable / clinical)
predict the test windows (dropout off) and score the 11 reconstructed leads (Pearson r, RMSE;
whole window, QRS and T segments) per corpus and overall with bootstrap CIs over records; fit
the per-lead linear baseline on the training split and score it alike; R-wave amplitude
fidelity per chest lead; MC dropout (wearable regime): Spearman(std, |err|), spread-error
curve, 90% coverage before/after the run's calibration.json; figures.

``metrics.json`` keys: ``run``, ``config``, ``mc_samples``, ``n_boot``, ``leads``,
``segments_note``, ``regimes.<regime>.<group>`` and ``baselines.linear.<group>`` where group
is ``overall`` or a corpus, each ``{n_records, whole|qrs|t: {pearson|rmse: {<lead>|mean:
{mean, lo, hi, n}}}}``; ``amplitude_fidelity.<model|linear>.<lead>: {slope, intercept, r2,
n}``; ``uncertainty`` {``target_leads``, ``scale``, ``coverage_before``, ``coverage_after``
(per target lead + mean), ``spearman_sample``, ``spearman_record`` (per lead + mean),
``spread_error_before``, ``spread_error_after`` ({std, rmse, count})}; ``figures``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress

from edge.features import detect_r_peaks
from edge.leads import LEADS, PREDICTED, RECONSTRUCTED, canonical_lead_name
from training.baselines import LinearBaseline
from training.calibration import coverage, load_calibration
from training.config import TrainConfig
from training.mc import mc_predict, predict, to_12_lead
from training.metrics import (
    amplitude_fidelity,
    pearson_per_record,
    r_wave_amplitude,
    rmse_per_record,
    segment_masks_from_annotations,
    segment_masks_from_peaks,
    spread_error_curve,
    summarize,
    uncertainty_metrics,
)

console = Console(stderr=True)
REGIME_ORDER = ("none", "wearable", "clinical")
CHEST = ("V1", "V2", "V3", "V4", "V5", "V6")
QUICK_LIMIT = 20
#: Training records used to fit the linear baseline (random subset).
LINEAR_MAX = 400
SEGMENTS_NOTE = (
    "QRS and T segments: LUDB from its expert per-lead annotations (mapped to the model rate "
    "and aligned to the conditioned window by cross-correlation with the raw record); other "
    "corpora from R peaks detected on the true Lead I (edge.features.detect_r_peaks): "
    "QRS = [R-50 ms, R+50 ms], T = [R+150 ms, R+400 ms] capped at the next QRS.")


class EvaluationError(RuntimeError):
    """A run folder is incomplete or the test split is empty."""


def require_trained(runs: list[Path]) -> None:
    """Exit with one line naming the first run folder without best weights."""
    for run in runs:
        if not (Path(run) / "best.weights.h5").is_file():
            raise SystemExit(f"error: {run}: no best.weights.h5 (not a trained run)")


def load_run(run_dir: Path) -> tuple[TrainConfig, Any]:
    """Config and model with the run's best weights."""
    from training.model import build_model

    run_dir = Path(run_dir)
    for name in ("config.json", "best.weights.h5"):
        if not (run_dir / name).is_file():
            raise EvaluationError(f"run folder {run_dir} has no {name}; train it first")
    cfg = TrainConfig.load(run_dir / "config.json")
    model = build_model(cfg)
    model.load_weights(run_dir / "best.weights.h5")
    return cfg, model


def _ludb_annotations(keys: list[str], limit: int | None, fs_hz: float
                      ) -> dict[str, tuple[dict, float, np.ndarray]]:
    """key -> (lead annotations, fs / fs_record, raw record resampled to fs) for LUDB keys."""
    if not any(k.startswith("ludb/") for k in keys):
        return {}
    from fractions import Fraction

    from scipy.signal import resample_poly

    from training.data import load_corpus

    rep = load_corpus("ludb", progress=False, limit=limit)
    out = {}
    for r in rep.records:
        if r.annotations and r.key in keys:
            ratio = Fraction(fs_hz / r.fs_hz).limit_denominator(1000)
            raw = resample_poly(r.signal_mv, ratio.numerator, ratio.denominator, axis=0)
            out[r.key] = (r.annotations, fs_hz / r.fs_hz, raw)
    return out


def segment_masks(leads12: np.ndarray, keys: list[str], fs_hz: float,
                  ludb: dict[str, tuple[dict, float, np.ndarray]]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """QRS and T masks ``(N, L, 12)``: expert annotations where known, else R-peak windows.

    An annotated record's window is its last ``L`` samples at ``fs_hz`` (conditioning is zero
    phase and keeps the length), so the annotations shift by ``len(raw) - L`` exactly.
    """
    n, L = leads12.shape[:2]
    qrs = np.zeros((n, L, 12), bool)
    t = np.zeros((n, L, 12), bool)
    for i, key in enumerate(keys):
        if key in ludb:
            ann, scale, raw = ludb[key]
            offset = max(0, raw.shape[0] - L)
            for lead, waves in ann.items():
                k = LEADS.index(canonical_lead_name(lead))
                qrs[i, :, k], t[i, :, k] = segment_masks_from_annotations(waves, L, scale, offset)
        else:
            q, tt = segment_masks_from_peaks(detect_r_peaks(leads12[i, :, 0], fs_hz), L, fs_hz)
            qrs[i], t[i] = q[:, None], tt[:, None]
    return qrs, t


def score(true12: np.ndarray, pred12: np.ndarray, sources: list[str], masks: dict[str, Any],
          n_boot: int) -> dict[str, Any]:
    """Pearson / RMSE of the 11 reconstructed leads, per corpus and overall, with CIs."""
    y, p = true12[:, :, 1:], pred12[:, :, 1:]
    per = {}
    for seg, m in masks.items():
        mm = None if m is None else m[:, :, 1:]
        per[seg] = (pearson_per_record(y, p, mm), rmse_per_record(y, p, mm))
    src = np.asarray(sources)
    groups = {"overall": np.ones(len(src), bool)}
    groups.update({s: src == s for s in sorted(set(sources))})
    out: dict[str, Any] = {}
    for g, sel in groups.items():
        out[g] = {"n_records": int(sel.sum())}
        for seg, (r, e) in per.items():
            out[g][seg] = {"pearson": summarize(r[sel], RECONSTRUCTED, n_boot),
                           "rmse": summarize(e[sel], RECONSTRUCTED, n_boot)}
    return out


def _amplitudes(true12: np.ndarray, pred12: np.ndarray, fs: float) -> dict[str, Any]:
    out = {}
    peaks = [detect_r_peaks(w[:, 0], fs) for w in true12]
    for lead in CHEST:
        k = LEADS.index(lead)
        a = [r_wave_amplitude(true12[i, :, k], pk, fs) for i, pk in enumerate(peaks)]
        b = [r_wave_amplitude(pred12[i, :, k], pk, fs) for i, pk in enumerate(peaks)]
        out[lead] = amplitude_fidelity(a, b)
    return out


def _uncertainty(cfg: TrainConfig, model: Any, arr: Any, run_dir: Path, T: int
                 ) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]:
    target_leads = list(PREDICTED if cfg.model.outputs == "independent" else RECONSTRUCTED)
    mean, std = mc_predict(model, arr.lead_i, arr.meta, T, seed=cfg.seed)
    cal = load_calibration(run_dir, n_leads=len(target_leads))
    scale = np.asarray(cal["scale"]) if cal else np.ones(len(target_leads))
    err = np.abs(mean - arr.target)
    cal_std = std * scale
    mean12, std12 = to_12_lead(arr.lead_i, mean, cfg.model.outputs, cal_std)
    err12 = np.abs(mean12 - arr.leads12)
    out = {"target_leads": target_leads, "calibrated": cal is not None,
           "scale": [float(s) for s in scale]}
    for name, sc in (("coverage_before", 1.0), ("coverage_after", scale)):
        cov = coverage(std, err, sc, 0.9)
        out[name] = {**dict(zip(target_leads, map(float, cov), strict=True)),
                     "mean": float(cov.mean())}
    out.update(uncertainty_metrics(std12[:, :, 1:], err12[:, :, 1:], RECONSTRUCTED))
    out["spread_error_before"] = spread_error_curve(std, err)
    out["spread_error_after"] = spread_error_curve(cal_std, err)
    return out, mean12, std12, err12


def _pick_records(true12: np.ndarray, pred12: np.ndarray, rhythms: list[str], fs: float
                  ) -> dict[str, int]:
    """Indices of a typical (median r), arrhythmic (AF / irregular RR) and atypical record."""
    r = np.nanmean(pearson_per_record(true12[:, :, 1:], pred12[:, :, 1:]), axis=1)
    e = np.nanmean(rmse_per_record(true12[:, :, 1:], pred12[:, :, 1:]), axis=1)
    r = np.where(np.isfinite(r), r, -np.inf)
    order = np.argsort(r)
    picks = {"typical": int(order[len(order) // 2]),
             "atypical": int(np.nanargmax(np.where(np.isfinite(e), e, -np.inf)))}
    best, best_cv = None, 0.15
    for i, w in enumerate(true12):
        rh = (rhythms[i] if i < len(rhythms) else "").lower()
        if any(s in rh for s in ("afib", "atrial fib", "fibrillation", "afl")):
            best = i
            break
        rr = np.diff(detect_r_peaks(w[:, 0], fs))
        if len(rr) >= 3 and np.std(rr) / np.mean(rr) > best_cv:
            best, best_cv = i, float(np.std(rr) / np.mean(rr))
    if best is not None:
        picks["arrhythmic"] = int(best)
    return picks


def evaluate_run(run_dir: Path, mc_samples: int = 30, quick: bool = False,
                 progress: bool = True) -> dict[str, Any]:
    """Evaluate a run folder on the test split; writes metrics.json, report.md, figures/."""
    from training.dataset import load_split_arrays
    from training.report import write_figures, write_report
    from training.truth import TRUTH_TEXT

    run_dir = Path(run_dir)
    cfg, model = load_run(run_dir)
    limit = cfg.data.limit_per_source or (QUICK_LIMIT if quick else None)
    n_boot = 100 if quick else 1000
    fs = cfg.data.fs_hz
    results: dict[str, Any] = {
        "run": run_dir.name, "config": cfg.name, "kind": cfg.model.kind,
        "outputs": cfg.model.outputs, "mc_samples": mc_samples, "n_boot": n_boot,
        "quick": quick, "leads": list(RECONSTRUCTED), "segments_note": SEGMENTS_NOTE,
        "regimes": {}, "baselines": {}, "truth": TRUTH_TEXT,
        "weights_sha256": hashlib.sha256((run_dir / "best.weights.h5").read_bytes()).hexdigest(),
    }
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("evaluating", total=len(REGIME_ORDER) + 3)
        arrays = {}
        for regime in REGIME_ORDER:
            bar.update(task, description=f"regime {regime}")
            arr = load_split_arrays(cfg, "test", regime=regime, limit=limit, progress=False)
            if not arr.keys:
                raise EvaluationError(f"test split of run {run_dir} has no records "
                                      f"(sources {cfg.data.sources}, limit {limit})")
            arrays[regime] = arr
            if regime == "none":
                qrs, tm = segment_masks(arr.leads12, arr.keys, fs,
                                        _ludb_annotations(arr.keys, limit, fs))
                masks = {"whole": None, "qrs": qrs, "t": tm}
            pred12, _ = to_12_lead(arr.lead_i, predict(model, arr.lead_i, arr.meta),
                                   cfg.model.outputs)
            results["regimes"][regime] = score(arr.leads12, pred12, arr.sources, masks, n_boot)
            if regime == "wearable":
                wear_pred12 = pred12
                with np.errstate(all="ignore"):
                    r_rec = np.nanmean(pearson_per_record(arr.leads12[:, :, 1:],
                                                          pred12[:, :, 1:]), axis=1)
                results["per_record"] = {"regime": "wearable", "measure": "r_mean_11",
                                         "r_mean_11": dict(zip(arr.keys, map(float, r_rec),
                                                               strict=True))}
            bar.advance(task)
        wear = arrays["wearable"]
        bar.update(task, description="linear baseline (train split)")
        train_arr = load_split_arrays(cfg, "train", regime="none", limit=limit, progress=False)
        sel = np.random.default_rng(cfg.seed).permutation(len(train_arr.keys))[:LINEAR_MAX]
        lin = LinearBaseline.fit(train_arr.lead_i[sel],
                                 train_arr.leads12[sel][:, :, [1, *range(6, 12)]])
        lin12, _ = to_12_lead(wear.lead_i, lin.predict(wear.lead_i), "independent")
        results["baselines"]["linear"] = score(wear.leads12, lin12, wear.sources, masks, n_boot)
        results["amplitude_fidelity"] = {"model": _amplitudes(wear.leads12, wear_pred12, fs),
                                         "linear": _amplitudes(wear.leads12, lin12, fs)}
        bar.advance(task)
        bar.update(task, description=f"MC dropout (T={mc_samples})")
        unc, mean12, std12, err12 = _uncertainty(cfg, model, wear, run_dir, mc_samples)
        results["uncertainty"] = unc
        bar.advance(task)
        bar.update(task, description="figures and report")
        picks = _pick_records(wear.leads12, wear_pred12, wear.rhythms, fs)
        results["figures"] = write_figures(run_dir, wear, mean12, std12, picks, unc, fs)
        (run_dir / "metrics.json").write_text(json.dumps(_clean(results), indent=2) + "\n")
        write_report(run_dir, results)
        bar.advance(task)
    _summary(run_dir, results)
    return results


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _summary(run_dir: Path, res: dict[str, Any]) -> None:
    w = res["regimes"]["wearable"]["overall"]
    lin = res["baselines"]["linear"]["overall"]
    u = res["uncertainty"]
    console.print(
        f"[green]evaluated[/] {run_dir} on {w['n_records']} test records: "
        f"r {w['whole']['pearson']['mean']['mean']:.3f} "
        f"(linear {lin['whole']['pearson']['mean']['mean']:.3f}), "
        f"RMSE {w['whole']['rmse']['mean']['mean']:.3f} mV, 90% coverage "
        f"{u['coverage_before']['mean']:.2f} -> {u['coverage_after']['mean']:.2f}; "
        f"report {run_dir / 'report.md'}")


def compare_runs(run_dirs: list[Path], out: Path) -> Path:
    """One Markdown table (wearable regime, overall) across evaluated runs + linear baseline."""
    from training.report import comparison_table

    rows = []
    for d in run_dirs:
        path = Path(d) / "metrics.json"
        if not path.is_file():
            raise EvaluationError(f"{d} has no metrics.json; run `ecg12 evaluate {d}` first")
        rows.append(json.loads(path.read_text()))
    out = Path(out)
    out.write_text(comparison_table(rows))
    return out
