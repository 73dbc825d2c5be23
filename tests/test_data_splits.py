"""Patient-level splits: rule on synthetic records, and the committed split file on real data."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from training.data import Recording, load_all
from training.data.splits import (
    SPLIT_FILE,
    assign_patients,
    load_split_patients,
    load_splits,
    make_splits,
    split_records,
)


def _rec(source: str, rid: str, pid: str, **md) -> Recording:
    return Recording(np.zeros((10, 12), np.float32), 500.0, rid, pid, source, dict(md))


def _synthetic() -> list[Recording]:
    recs = [_rec("chapman", f"c{i}", f"chapman/c{i}") for i in range(100)]
    recs += [_rec("ptbxl", f"{i}_{r}", f"ptbxl/{i // 2}", strat_fold=(i // 2) % 10 + 1)
             for i in range(60) for r in ("lr", "hr")]
    recs += [_rec("ptbxl", f"{i}_lr", f"ptbxl/ecg{i}") for i in range(100, 130)]
    recs.append(_rec("cinc2021", "HR00004", "ptbxl/2"))  # same patient as ptbxl ecg 4/5
    return recs


def _disjoint(table: dict[str, tuple[str, str]]) -> None:
    per_patient: dict[str, set[str]] = defaultdict(set)
    for split, pid in table.values():
        per_patient[pid].add(split)
    assert all(len(s) == 1 for s in per_patient.values())


def test_rule_folds_fractions_and_determinism(tmp_path: Path) -> None:
    recs = _synthetic()
    table = make_splits(recs, tmp_path / "a.json")
    _disjoint(table)
    pids = assign_patients(recs)
    assert pids["ptbxl/8"] == "val" and pids["ptbxl/9"] == "test" and pids["ptbxl/0"] == "train"
    assert table["cinc2021/HR00004"][0] == pids["ptbxl/2"]
    chap = Counter(v[0] for k, v in table.items() if k.startswith("chapman/"))
    assert chap == {"train": 80, "val": 10, "test": 10}
    shuffled = recs[:]
    random.Random(1).shuffle(shuffled)
    make_splits(shuffled, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert load_splits(tmp_path / "a.json") == {k: v[0] for k, v in table.items()}


def test_split_records_refuses_unknown_key() -> None:
    from training.data import DataError

    with pytest.raises(DataError, match="chapman/zz"):
        split_records([_rec("chapman", "zz", "p")], {})


def test_committed_split_file_is_disjoint_by_patient() -> None:
    keys = load_splits()
    patients = load_split_patients()
    _disjoint({k: (keys[k], patients[k]) for k in keys})
    assert set(keys.values()) == {"train", "val", "test"}


@pytest.mark.needs_data
@pytest.mark.slow
def test_committed_split_file_matches_loaded_records(data_root: Path, tmp_path: Path) -> None:
    reports = load_all(data_root, progress=False)  # uses the runs/cache pickle when present
    records = [r for rep in reports.values() for r in rep.records]
    groups = split_records(records)  # every loaded record has a split
    assert sum(len(g) for g in groups.values()) == len(records)
    make_splits(records, tmp_path / "regen.json")
    assert (tmp_path / "regen.json").read_bytes() == SPLIT_FILE.read_bytes()
