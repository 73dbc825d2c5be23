"""LUDB: WFDB records whose raw sample values are µV (the .hea gains are wrong), per-lead
P/QRS/T annotation files and `ludb.csv` metadata."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import wfdb

from edge.leads import LEADS

from .record import MISSING, DataError, Recording, RecordRejected, is_missing
from .wfdb_io import read_wfdb

SOURCE = "ludb"
_WAVES = {"p": "P", "N": "QRS", "t": "T"}


def read_metadata(root: Path) -> dict[str, dict[str, Any]]:
    """Record id -> metadata (age, sex, rhythm, axis, dx); '>89' ages recorded as 90."""
    path = root / "ludb.csv"
    if not path.is_file():
        return {}
    df = pd.read_csv(path, dtype=str)
    if missing := {"ID", "Sex", "Age", "Rhythms"} - set(df.columns):
        raise DataError(f"{path}: missing columns {sorted(missing)}")
    out: dict[str, dict[str, Any]] = {}
    for row in df.to_dict("records"):
        rid = str(row["ID"]).strip()
        md: dict[str, Any] = {}
        age = "" if is_missing(row["Age"]) else str(row["Age"]).strip()
        if age.startswith(">"):
            md["age"], md["note"] = 90.0, f"age {age!r} recorded as 90"
        elif age:
            try:
                md["age"] = float(age)
            except ValueError:
                raise DataError(f"{path}: ID {rid}: field Age: not a number: {age!r}") from None
        else:
            md["age"] = MISSING
        sex = "" if is_missing(row["Sex"]) else str(row["Sex"]).strip().upper()
        md["sex"] = sex if sex in ("M", "F") else MISSING
        md["rhythm"] = _text(row.get("Rhythms"))
        md["axis"] = _text(row.get("Electric axis of the heart"))
        dx = [_text(v) for k, v in row.items()
              if k not in ("ID", "Sex", "Age", "Rhythms", "Electric axis of the heart")]
        md["dx"] = [d for d in dx if d is not MISSING] or MISSING
        out[rid] = md
    return out


def _text(value: Any) -> Any:
    return MISSING if is_missing(value) else " ".join(str(value).split())


def read_annotations(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Lead -> wave ('P', 'QRS', 'T') -> int array (k, 3) of (onset, peak, offset) samples."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for lead in LEADS:
        try:
            with warnings.catch_warnings():  # wfdb's own pandas deprecation noise
                warnings.simplefilter("ignore", category=FutureWarning)
                warnings.simplefilter("ignore", category=DeprecationWarning)
                ann = wfdb.rdann(str(path), lead.lower())
        except Exception as exc:
            raise RecordRejected(
                str(path), f"annotations: lead {lead}: {type(exc).__name__}: {exc}") from None
        sym, samp = list(ann.symbol), np.asarray(ann.sample)
        waves: dict[str, list[tuple[int, int, int]]] = {w: [] for w in _WAVES.values()}
        for k, s in enumerate(sym):
            if s in _WAVES and 0 < k < len(sym) - 1 and sym[k - 1] == "(" and sym[k + 1] == ")":
                waves[_WAVES[s]].append((int(samp[k - 1]), int(samp[k]), int(samp[k + 1])))
        out[lead] = {w: np.asarray(v, dtype=np.int64).reshape(-1, 3) for w, v in waves.items()}
    return out


def record_paths(root: Path) -> list[Path]:
    base = root / "data" if (root / "data").is_dir() else root
    return sorted((p.with_suffix("") for p in base.glob("*.hea")),
                  key=lambda p: (len(p.name), p.name))


def iter_records(root: Path, *, digital_uv: bool = True) -> Iterator[tuple[str, Any]]:
    """Yields (name, Recording | RecordRejected); `digital_uv=False` reproduces the gain quirk."""
    meta = read_metadata(root)
    for path in record_paths(root):
        rid = path.name
        try:
            signal, fs, _ = read_wfdb(path, digital_uv=digital_uv)
            md = dict(meta.get(rid, {"note": "no ludb.csv row"}))
            rec = Recording(signal, fs, rid, f"{SOURCE}/{rid}", SOURCE, md,
                            annotations=read_annotations(path))
            yield str(path), rec
        except RecordRejected as exc:
            yield str(path), exc
