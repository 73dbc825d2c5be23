"""training.portable: save_prepared / load_prepared round trip on synthetic Prepared records."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.leads import LEAD_INDEX
from training.dataset import Prepared
from training.portable import load_prepared, save_prepared

INDEPENDENT = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]


def _twelve(ind: np.ndarray) -> np.ndarray:
    """12 leads from I, II, V1-V6 by Einthoven / Goldberger, written out here."""
    i, ii = ind[:, 0], ind[:, 1]
    out = np.zeros((len(ind), 12), np.float32)
    for k, name in enumerate(INDEPENDENT):
        out[:, LEAD_INDEX[name]] = ind[:, k]
    out[:, LEAD_INDEX["III"]] = ii - i
    out[:, LEAD_INDEX["aVR"]] = -(i + ii) / 2
    out[:, LEAD_INDEX["aVL"]] = i - ii / 2
    out[:, LEAD_INDEX["aVF"]] = ii - i / 2
    return out


def _record(key: str, n: int, seed: int) -> Prepared:
    rng = np.random.default_rng(seed)
    lead = np.round(rng.normal(0, 800, (n, 8))) / 1000.0  # whole µV: int16 keeps them exactly
    truth = np.round(rng.normal(0, 800, (n, 8))) / 1000.0
    return Prepared(key, "ptbxl" if seed % 2 else "chapman", _twelve(lead), _twelve(truth),
                    {"wearable": {"age": 40 + seed, "sex": "F"}, "none": {}}, "SR")


def test_round_trip_keeps_leads_truth_and_metadata(tmp_path: Path) -> None:
    data = {"train": [_record("a", 300, 1), _record("b", 300, 2)], "val": [_record("c", 300, 3)],
            "test": [_record("t", 300, 4)]}
    path = tmp_path / "prep.npz"
    save_prepared(data, path)
    got = load_prepared(path)
    assert got["test"] == []  # only the chosen splits travel
    for split in ("train", "val"):
        assert [p.key for p in got[split]] == [p.key for p in data[split]]
        for a, b in zip(got[split], data[split], strict=True):
            assert (a.source, a.meta, a.rhythm) == (b.source, b.meta, b.rhythm)
            assert a.leads12.shape == (300, 12) and a.truth12.shape == (300, 12)
            np.testing.assert_allclose(a.leads12, b.leads12, atol=1e-6)
            np.testing.assert_allclose(a.truth12, b.truth12, atol=1e-6)
            assert not np.allclose(a.leads12, a.truth12)  # truth is its own array


def test_records_are_cut_to_their_last_common_length_and_clipped_to_int16(tmp_path: Path
                                                                         ) -> None:
    long, short = _record("long", 400, 5), _record("short", 250, 6)
    long.leads12[-1, LEAD_INDEX["V1"]] = 40.0  # 40 mV: beyond int16 µV (32.767 mV)
    path = tmp_path / "prep.npz"
    save_prepared({"train": [long, short], "val": [short]}, path)
    got = load_prepared(path)
    a = got["train"][0]
    assert a.leads12.shape == (250, 12)
    np.testing.assert_allclose(a.leads12[:-1], long.leads12[-250:-1], atol=1e-6)
    assert a.leads12[-1, LEAD_INDEX["V1"]] == np.float32(32.767)


def test_export_without_truth_is_refused_by_name(tmp_path: Path) -> None:
    """An .npz from before the truth arrays: one named error, not a KeyError."""
    import json

    import pytest

    path = tmp_path / "old.npz"
    meta = {"train": [{"key": "a", "source": "ptbxl", "meta": {}, "rhythm": ""}]}
    np.savez_compressed(path, meta=np.array(json.dumps(meta)),
                        train=np.zeros((1, 10, 8), np.int16))
    with pytest.raises(ValueError, match="no 'train_truth' array"):
        load_prepared(path)
