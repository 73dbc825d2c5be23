"""Deterministic patient-level train/val/test splits across corpora, stored as ids only.

Rule (v1): a patient with a PTB-XL `strat_fold` goes by the dataset's own fold (1-8 train,
9 val, 10 test). Every other patient is ranked by sha256(patient_id) within its source (the
alphabetically first source among its records) and the ranks are cut 80/10/10. All records of
a patient (e.g. both PTB-XL renderings, a CinC copy of a PTB-XL ECG) share one split.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from .record import MISSING, DataError, Recording

SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_FILE = Path(__file__).resolve().parents[1] / "splits" / "splits_v1.json"
FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
RULE = ("PTB-XL strat_fold 1-8 train, 9 val, 10 test; other patients ranked by "
        "sha256(patient_id) within source, cut 80/10/10")


def _fold_split(fold: int) -> str:
    return "test" if fold == 10 else "val" if fold == 9 else "train"


def assign_patients(records: Iterable[Recording]) -> dict[str, str]:
    """patient_id -> split, following RULE."""
    folds: dict[str, set[int]] = defaultdict(set)
    sources: dict[str, set[str]] = defaultdict(set)
    for rec in records:
        sources[rec.patient_id].add(rec.source)
        fold = rec.metadata.get("strat_fold", MISSING)
        if fold is not MISSING:
            folds[rec.patient_id].add(int(fold))
    out: dict[str, str] = {}
    for pid, fs in folds.items():
        if len(fs) > 1:
            raise DataError(f"patient {pid}: records carry different strat_fold {sorted(fs)}")
        out[pid] = _fold_split(next(iter(fs)))
    groups: dict[str, list[str]] = defaultdict(list)
    for pid, srcs in sources.items():
        if pid not in out:
            groups[min(srcs)].append(pid)
    for pids in groups.values():
        pids.sort(key=lambda p: hashlib.sha256(p.encode()).hexdigest())
        n = len(pids)
        n_val, n_test = round(n * FRACTIONS["val"]), round(n * FRACTIONS["test"])
        n_train = n - n_val - n_test
        for i, pid in enumerate(pids):
            out[pid] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    return out


def make_splits(records: Iterable[Recording], path: Path | None = SPLIT_FILE
                ) -> dict[str, tuple[str, str]]:
    """record key -> (split, patient_id); written to `path` (one record per line) unless None."""
    records = list(records)
    by_patient = assign_patients(records)
    table = {r.key: (by_patient[r.patient_id], r.patient_id) for r in records}
    if len(table) != len(records):
        raise DataError("make_splits: duplicate record keys in input")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"  {json.dumps(k)}: {json.dumps(list(v))}" for k, v in sorted(table.items())]
        header = json.dumps({"version": 1, "rule": RULE, "fractions": FRACTIONS})[1:-1]
        path.write_text("{" + header + ',\n "records": {\n' + ",\n".join(lines) + "\n }\n}\n")
    return table


def _read(path: Path) -> dict[str, list[str]]:
    if not path.is_file():
        raise DataError(f"split file {path} not found; create it with "
                        "training.data.splits.make_splits(records)")
    try:
        data = json.loads(path.read_text())
        return data["records"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise DataError(f"split file {path}: malformed ({type(exc).__name__}: {exc})") from None


def load_splits(path: Path = SPLIT_FILE) -> dict[str, str]:
    """record key -> 'train' | 'val' | 'test'."""
    return {k: v[0] for k, v in _read(path).items()}


def load_split_patients(path: Path = SPLIT_FILE) -> dict[str, str]:
    """record key -> patient id, as stored in the split file."""
    return {k: v[1] for k, v in _read(path).items()}


def split_hash(path: Path = SPLIT_FILE) -> str:
    """sha256 of the split file (stored in bundle provenance)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split_records(records: Iterable[Recording], splits: dict[str, str] | None = None
                  ) -> dict[str, list[Recording]]:
    """Group records by split; a record absent from the split file raises DataError."""
    splits = load_splits() if splits is None else splits
    out: dict[str, list[Recording]] = {s: [] for s in SPLITS}
    for rec in records:
        if rec.key not in splits:
            raise DataError(f"record {rec.key} is not in the split file; regenerate it "
                            "with make_splits")
        out[splits[rec.key]].append(rec)
    return out
