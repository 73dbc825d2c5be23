"""Chapman-Shaoxing: per-record CSV (figshare `ECGDataDenoised/`) or `.mat` re-saves, µV,
joined with `Diagnostics.xlsx`. One record per patient, so FileName is the patient id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.io

from edge.leads import LEADS, canonical_lead_name

from .record import MISSING, DataError, Recording, RecordRejected, is_missing, number_or_missing

SOURCE = "chapman"
FS_HZ = 500.0
_NUMERIC = {
    "PatientAge": "age", "VentricularRate": "ventricular_rate", "QRSCount": "qrs_count",
    "QRSDuration": "qrs_duration", "RAxis": "r_axis", "TAxis": "t_axis",
    "AtrialRate": "atrial_rate", "QTInterval": "qt", "QTCorrected": "qtc",
    "QOnset": "q_onset", "QOffset": "q_offset", "TOffset": "t_offset",
}
_TEXT = {"Rhythm": "rhythm", "Beat": "beat"}


def signal_files(root: Path) -> dict[str, Path]:
    """FileName -> signal file; a CSV (the dataset's own layout) wins over a `.mat` re-save."""
    files: dict[str, Path] = {}
    for pattern in ("**/*.mat", "**/*.csv"):
        for p in sorted(root.glob(pattern)):
            if p.stem.startswith("MUSE_"):
                files[p.stem] = p
    return files


def find_diagnostics(root: Path) -> Path | None:
    hits = sorted(root.rglob("Diagnostics.xlsx"))
    return hits[0] if hits else None


def read_diagnostics(path: Path) -> dict[str, dict[str, Any]]:
    """FileName -> metadata dict (FIELDS + extras; absent values are MISSING)."""
    try:
        df = pd.read_excel(path, dtype={"FileName": str})
    except Exception as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    need = {"FileName", "Gender", *_NUMERIC}
    if missing := need - set(df.columns):
        raise DataError(f"{path}: missing columns {sorted(missing)}")
    out: dict[str, dict[str, Any]] = {}
    for row in df.to_dict("records"):
        md: dict[str, Any] = {}
        for col, key in _NUMERIC.items():
            try:
                md[key] = number_or_missing(row[col])
            except (TypeError, ValueError):
                raise DataError(
                    f"{path}: row {row['FileName']}: field {col}: not a number: {row[col]!r}"
                ) from None
        g = row["Gender"]
        md["sex"] = MISSING if is_missing(g) else {"MALE": "M", "FEMALE": "F"}.get(
            str(g).strip().upper(), MISSING)
        for col, key in _TEXT.items():
            md[key] = MISSING if is_missing(row.get(col)) else str(row[col]).strip()
        out[str(row["FileName"]).strip()] = md
    return out


def read_mat(path: Path) -> np.ndarray:
    """(n, 12) float µV from a `.mat` re-save (key `val`); transposes a (12, n) array."""
    try:
        val = scipy.io.loadmat(str(path))["val"]
    except KeyError:
        raise RecordRejected(str(path), "unreadable: no 'val' key in .mat") from None
    except Exception as exc:
        raise RecordRejected(str(path), f"unreadable: {type(exc).__name__}: {exc}") from None
    val = np.asarray(val, dtype=np.float64)
    if val.ndim == 2 and val.shape[0] == len(LEADS) and val.shape[1] != len(LEADS):
        val = val.T
    return val


def read_csv(path: Path) -> np.ndarray:
    """(n, 12) float µV from an `ECGDataDenoised` CSV, with or without a lead-name header."""
    try:
        df = pd.read_csv(path, header=None)
    except Exception as exc:
        raise RecordRejected(str(path), f"unreadable: {type(exc).__name__}: {exc}") from None
    first = df.iloc[0].astype(str).tolist() if len(df) else []
    if first and not _is_number(first[0]):
        try:
            names = [canonical_lead_name(s) for s in first]
        except ValueError as exc:
            raise RecordRejected(str(path), f"leads: header {first}: {exc}") from None
        df = df.iloc[1:]
        df.columns = names
        if sorted(names) != sorted(LEADS):
            raise RecordRejected(str(path), f"leads: header {first} is not the 12 leads")
        df = df[list(LEADS)]
    try:
        return df.to_numpy(dtype=np.float64)
    except ValueError as exc:
        raise RecordRejected(str(path), f"non-numeric: {exc}") from None


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def iter_records(root: Path) -> Iterator[tuple[str, Any]]:
    """Yields (name, Recording | RecordRejected) per signal file (unchecked)."""
    diag_path = find_diagnostics(root)
    if diag_path is None:
        raise DataError(f"{root}: no Diagnostics.xlsx found")
    diag = read_diagnostics(diag_path)
    for stem, path in signal_files(root).items():
        try:
            uv = read_mat(path) if path.suffix == ".mat" else read_csv(path)
            md = dict(diag.get(stem, {}))
            if stem not in diag:
                md["note"] = f"no Diagnostics.xlsx row for {stem}"
            rec = Recording(uv * 1e-3, FS_HZ, stem, f"{SOURCE}/{stem}", SOURCE, md)
            yield str(path), rec
        except RecordRejected as exc:
            yield str(path), exc
