"""PTB-XL: WFDB records at 100 Hz (`records100/*_lr`) and 500 Hz (`records500/*_hr`) joined with
`ptbxl_database.csv` by ecg_id. A record without a CSV row still loads, with the pseudo patient
id `ptbxl/ecg<id>` (that ECG is its own patient)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from .record import MISSING, DataError, Recording, RecordRejected, is_missing, number_or_missing
from .wfdb_io import read_wfdb

SOURCE = "ptbxl"
AGE_OVER_89 = 300  # older releases code ages > 89 as 300


def patient_key(patient_id: Any, ecg_id: int) -> str:
    """Namespaced patient id; pseudo id from the ecg_id when the patient is unknown."""
    if is_missing(patient_id):
        return f"{SOURCE}/ecg{ecg_id}"
    return f"{SOURCE}/{int(float(patient_id))}"


def read_database(root: Path) -> dict[int, dict[str, Any]]:
    """ecg_id -> metadata (age, sex, strat_fold, scp_codes, ... ; absent = MISSING)."""
    path = root / "ptbxl_database.csv"
    if not path.is_file():
        return {}
    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    if missing := {"ecg_id", "patient_id", "age", "sex", "strat_fold"} - set(df.columns):
        raise DataError(f"{path}: missing columns {sorted(missing)}")
    classes = _diagnostic_classes(root / "scp_statements.csv")
    out: dict[int, dict[str, Any]] = {}
    for row in df.to_dict("records"):
        ecg_id = int(row["ecg_id"])
        md: dict[str, Any] = {"ecg_id": ecg_id, "patient_id": row["patient_id"]}
        try:
            age = number_or_missing(row["age"])
            fold = number_or_missing(row["strat_fold"])
        except (TypeError, ValueError):
            raise DataError(f"{path}: ecg_id {ecg_id}: age/strat_fold not numeric") from None
        if age is not MISSING and age >= AGE_OVER_89:
            age = 90.0
            md["note"] = "age coded 300 (> 89 years) recorded as 90"
        md["age"] = age
        sex = row["sex"]
        md["sex"] = MISSING if is_missing(sex) else {0: "M", 1: "F"}.get(int(sex), MISSING)
        md["strat_fold"] = MISSING if fold is MISSING else int(fold)
        codes = MISSING
        if not is_missing(row.get("scp_codes")):
            try:
                codes = ast.literal_eval(str(row["scp_codes"]))
            except (ValueError, SyntaxError):
                raise DataError(
                    f"{path}: ecg_id {ecg_id}: field scp_codes unparsable: {row['scp_codes']!r}"
                ) from None
        md["scp_codes"] = codes
        if codes is not MISSING and classes:
            md["diagnostic_superclass"] = sorted(
                {classes[c] for c in codes if c in classes}) or MISSING
        for col in ("heart_axis", "report", "device", "site", "recording_date"):
            md[col] = MISSING if is_missing(row.get(col)) else row[col]
        out[ecg_id] = md
    return out


def _diagnostic_classes(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    df = pd.read_csv(path, index_col=0)
    if "diagnostic_class" not in df.columns:
        return {}
    return {str(k): str(v) for k, v in df["diagnostic_class"].dropna().items()}


def record_paths(root: Path) -> list[Path]:
    """All record paths (no extension) under records100/ and records500/, sorted."""
    return sorted(p.with_suffix("") for d in ("records100", "records500")
                  for p in (root / d).glob("*/*.hea"))


def load_record(path: Path, db: dict[int, dict[str, Any]]) -> Recording:
    """One WFDB record (path without extension) joined with its database row, if any."""
    name = path.name  # e.g. 00001_lr / 00001_hr
    try:
        ecg_id = int(name.split("_")[0])
    except ValueError:
        raise RecordRejected(str(path), f"record name: no ecg_id in {name!r}") from None
    signal, fs, _ = read_wfdb(path)
    md = dict(db.get(ecg_id, {}))
    pid = md.pop("patient_id", MISSING)
    if ecg_id not in db:
        md["note"] = "no ptbxl_database.csv row: patient unknown, pseudo patient id"
    md["ecg_id"] = ecg_id
    return Recording(signal, fs, name, patient_key(pid, ecg_id), SOURCE, md)


def iter_records(root: Path) -> Iterator[tuple[str, Any]]:
    """Yields (name, Recording | RecordRejected) per WFDB record (unchecked)."""
    db = read_database(root)
    for path in record_paths(root):
        try:
            yield str(path), load_record(path, db)
        except RecordRejected as exc:
            yield str(path), exc


def dedupe_prefer_rate(records: list[Recording], prefer: float = 500.0) -> list[Recording]:
    """Keep one rendering per PTB-XL ECG (the one at `prefer` Hz when present); others pass."""
    best: dict[int, Recording] = {}
    out: list[Recording] = []
    for rec in records:
        ecg_id = rec.metadata.get("ecg_id") if rec.source == SOURCE else None
        if ecg_id is None:
            out.append(rec)
            continue
        cur = best.get(ecg_id)
        if cur is None or (rec.fs_hz == prefer and cur.fs_hz != prefer):
            best[ecg_id] = rec
    return out + [best[k] for k in sorted(best)]
