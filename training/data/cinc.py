"""PhysioNet/CinC 2021 style WFDB (`.hea` + `.mat`) with `# Age:`, `# Sex:`, `# Dx:` comments.

Patients are unknown: each record is its own patient, except PTB-XL-origin records (`HR<id>`,
ecg_id = id) which map to the PTB-XL patient when `ptbxl_database.csv` knows the ecg_id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import ptbxl
from .record import MISSING, Recording, RecordRejected, is_missing
from .wfdb_io import read_wfdb

SOURCE = "cinc2021"
_ORIGIN = {"E": "georgia", "HR": "ptbxl", "JS": "ningbo", "S": "ptb", "I": "incart",
           "A": "cpsc2018", "Q": "cpsc2018-extra"}


def parse_comments(comments: list[str], name: str) -> dict[str, Any]:
    """age / sex / dx (list of SNOMED CT codes) from header comments; absent -> MISSING."""
    raw: dict[str, str] = {}
    for line in comments:
        if ":" in line:
            k, v = line.split(":", 1)
            raw[k.strip().lower()] = v.strip()
    md: dict[str, Any] = {"age": MISSING, "sex": MISSING, "dx": MISSING}
    age = raw.get("age")
    if not is_missing(age):
        try:
            md["age"] = float(age)
        except ValueError:
            raise RecordRejected(
                name, f"metadata: header field Age: not a number: {age!r}") from None
    sex = (raw.get("sex") or "").strip().lower()
    md["sex"] = {"male": "M", "m": "M", "female": "F", "f": "F"}.get(sex, MISSING)
    dx = raw.get("dx")
    if not is_missing(dx):
        md["dx"] = [c.strip() for c in dx.split(",") if c.strip()]
    return md


def origin(record_id: str) -> str:
    prefix = record_id.rstrip("0123456789")
    return _ORIGIN.get(prefix, "unknown")


def iter_records(root: Path, ptbxl_root: Path | None = None) -> Iterator[tuple[str, Any]]:
    """Yields (name, Recording | RecordRejected) per `.hea` under `root` (recursively)."""
    ptb_db = ptbxl.read_database(ptbxl_root) if ptbxl_root and ptbxl_root.is_dir() else {}
    for hea in sorted(root.rglob("*.hea")):
        path, rid = hea.with_suffix(""), hea.stem
        try:
            signal, fs, comments = read_wfdb(path)
            md = parse_comments(comments, str(hea))
            md["origin"] = origin(rid)
            pid = f"{SOURCE}/{rid}"
            if md["origin"] == "ptbxl":
                ecg_id = int(rid[2:])
                md["ptbxl_ecg_id"] = ecg_id
                row = ptb_db.get(ecg_id)
                pid = ptbxl.patient_key(row["patient_id"] if row else MISSING, ecg_id)
                if row is None:
                    md["note"] = f"PTB-XL ecg_id {ecg_id} unknown here: pseudo patient {pid}"
            yield str(path), Recording(signal, fs, rid, pid, SOURCE, md)
        except RecordRejected as exc:
            yield str(path), exc
