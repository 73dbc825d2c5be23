"""Agreement of edge.features / training.measurements with expert and machine references.

- LUDB (200 records, 500 Hz): R peaks in lead I vs the lead-I expert QRS annotations
  (sensitivity / PPV, 75 ms tolerance, inside the annotated span) and QRS duration vs the
  annotated onset/offset (MAE of per-record medians, ms).
- Chapman (35 records with signals): Lead-I features and 12-lead measurements vs the machine
  VentricularRate / QRSCount / QRSDuration / RAxis / TAxis (MAE; circular for axes).

Run: ``python -m training.validate_features [--max-records N]``. Reads the corpora directly
(LUDB raw digital values in uV: the header gains are wrong, see the data README).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edge.features import detect_r_peaks, lead_i_features
from training.measurements import twelve_lead_measurements

TOL_S = 0.075


def data_root() -> Path:
    env = os.environ.get("ECG12_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def ludb_records(root: Path, limit: int | None = None) -> Iterator[tuple[str, np.ndarray, float,
                                                                         dict]]:
    """(id, lead-I mV, fs, lead-I QRS annotation dict with 'peak','onset','offset')."""
    import wfdb

    d = root / "ludb" / "data"
    ids = sorted((p.stem for p in d.glob("*.hea")), key=lambda s: int(s) if s.isdigit() else s)
    for rid in ids[:limit]:
        rec = wfdb.rdrecord(str(d / rid), physical=False)
        names = [n.lower() for n in rec.sig_name]
        x = rec.d_signal[:, names.index("i")].astype(np.float64) / 1000.0
        ann = wfdb.rdann(str(d / rid), "i")
        sym, smp = list(ann.symbol), np.asarray(ann.sample)
        peaks, on, off = [], [], []
        for k, s in enumerate(sym):
            if s == "N":
                peaks.append(smp[k])
                if 0 < k < len(sym) - 1 and sym[k - 1] == "(" and sym[k + 1] == ")":
                    on.append(smp[k - 1])
                    off.append(smp[k + 1])
        yield rid, x, float(rec.fs), {"peak": np.asarray(peaks), "onset": np.asarray(on),
                                      "offset": np.asarray(off),
                                      "span": (int(smp.min()), int(smp.max()))}


def match(ref: np.ndarray, det: np.ndarray, tol: int) -> tuple[int, int, int]:
    """(true positives, false negatives, false positives), greedy one-to-one within tol."""
    used = np.zeros(len(det), dtype=bool)
    tp = 0
    for r in ref:
        if len(det) == 0:
            break
        d = np.abs(det - r).astype(float)
        d[used] = np.inf
        j = int(np.argmin(d))
        if d[j] <= tol:
            used[j] = True
            tp += 1
    return tp, len(ref) - tp, int((~used).sum())


def validate_ludb(root: Path, limit: int | None = None) -> dict[str, float]:
    tp = fn = fp = 0
    dur_err = []
    for _rid, x, fs, ann in ludb_records(root, limit):
        det = detect_r_peaks(x, fs)
        lo, hi = ann["span"]
        tol = int(TOL_S * fs)
        det = det[(det >= lo - tol) & (det <= hi + tol)]
        a, b, c = match(ann["peak"], det, tol)
        tp, fn, fp = tp + a, fn + b, fp + c
        feats = lead_i_features(x, fs)
        if len(ann["onset"]) and "qrs_duration" in feats:
            ref = float(np.median(ann["offset"] - ann["onset"])) * 1000.0 / fs
            dur_err.append(feats["qrs_duration"] - ref)
    e = np.asarray(dur_err)
    return {"ludb_records": float(limit or 200), "ludb_sensitivity": tp / max(1, tp + fn),
            "ludb_ppv": tp / max(1, tp + fp), "ludb_qrs_duration_mae_ms": float(np.abs(e).mean()),
            "ludb_qrs_duration_bias_ms": float(e.mean())}


def chapman_records(root: Path) -> Iterator[tuple[str, np.ndarray, dict]]:
    """(FileName, (5000, 12) mV at 500 Hz, Diagnostics row) for records with signals."""
    import pandas as pd
    import scipy.io

    diag = pd.read_excel(root / "chapman" / "metadata" / "Diagnostics.xlsx")
    rows = diag.set_index("FileName")
    for f in sorted((root / "chapman" / "ECGDataDenoisedMat").glob("*.mat")):
        if f.stem in rows.index:
            x = np.asarray(scipy.io.loadmat(str(f))["val"], dtype=np.float64) / 1000.0
            yield f.stem, x, rows.loc[f.stem].to_dict()


def _circ(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def validate_chapman(root: Path) -> dict[str, float]:
    fs = 500.0
    lead_i: dict[str, list[float]] = {"ventricular_rate": [], "qrs_count": [], "qrs_duration": []}
    twelve: dict[str, list[float]] = {**{k: [] for k in lead_i}, "r_axis": [], "t_axis": []}
    ref_key = {"ventricular_rate": "VentricularRate", "qrs_count": "QRSCount",
               "qrs_duration": "QRSDuration", "r_axis": "RAxis", "t_axis": "TAxis"}
    n = 0
    for _name, x, row in chapman_records(root):
        n += 1
        for res, got in ((lead_i, lead_i_features(x[:, 0], fs)),
                         (twelve, twelve_lead_measurements(x, fs))):
            for k in res:
                ref = float(row[ref_key[k]])
                if k in got and np.isfinite(ref):
                    res[k].append(_circ(got[k], ref) if "axis" in k else abs(got[k] - ref))
    out = {"chapman_records": float(n)}
    for tag, res in (("lead_i", lead_i), ("12lead", twelve)):
        for k, v in res.items():
            out[f"chapman_{tag}_{k}_mae"] = float(np.mean(v)) if v else float("nan")
            out[f"chapman_{tag}_{k}_n"] = float(len(v))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-records", type=int, default=None, help="LUDB records to use")
    args = ap.parse_args()
    root = data_root()
    res = {**validate_ludb(root, args.max_records), **validate_chapman(root)}
    for k, v in res.items():
        print(f"{k:45s} {v:9.3f}")


if __name__ == "__main__":
    main()
