"""Loaders on the real shared corpora (small subsets, except where counts are the point)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edge.metadata import FIELDS, encode_metadata
from training.data import (
    MISSING,
    DataError,
    RecordRejected,
    chapman,
    cinc,
    load_corpus,
    ludb,
    ptbxl,
)
from training.data.checks import check_signal, einthoven_errors
from training.data.wfdb_io import read_wfdb


def _sane(rec) -> None:
    assert rec.signal_mv.dtype == np.float32 and rec.signal_mv.shape[1] == 12
    assert rec.signal_mv.shape[0] == int(round(10 * rec.fs_hz))
    assert 0.1 < np.ptp(rec.signal_mv[:, 1]) < 15  # mV, not µV
    assert set(FIELDS) <= set(rec.metadata)
    encode_metadata(rec.model_metadata())  # values are plausible for the shared encoder


def test_chapman_mat_with_diagnostics(data_root: Path) -> None:
    rep = load_corpus("chapman", data_root, progress=False, limit=3, cache=False)
    assert rep.found == 3 and rep.loaded == 3
    for rec in rep.records:
        _sane(rec)
        assert rec.fs_hz == 500 and rec.patient_id == f"chapman/{rec.record_id}"
        md = rec.metadata
        assert md["sex"] in ("M", "F") and md["age"] is not MISSING
        assert 2 <= md["qrs_count"] <= 60 and md["rhythm"] is not MISSING


@pytest.mark.parametrize("header", [True, False])
def test_chapman_csv_layout_matches_mat(data_root: Path, tmp_path: Path, header: bool) -> None:
    mat = sorted((data_root / "chapman").rglob("*.mat"))[0]
    uv = chapman.read_mat(mat)
    folder = tmp_path / "ECGDataDenoised"
    folder.mkdir()
    cols = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    if header:  # shuffled header order must be honoured
        order = cols[::-1]
        pd.DataFrame(uv[:, ::-1], columns=order).to_csv(folder / f"{mat.stem}.csv", index=False)
    else:
        pd.DataFrame(uv).to_csv(folder / f"{mat.stem}.csv", index=False, header=False)
    (tmp_path / "Diagnostics.xlsx").symlink_to(chapman.find_diagnostics(data_root / "chapman"))
    (name, rec), = list(chapman.iter_records(tmp_path))
    assert name.endswith(".csv") and rec.record_id == mat.stem
    np.testing.assert_allclose(rec.signal_mv, (uv * 1e-3).astype(np.float32), atol=1e-6)
    assert rec.metadata["sex"] in ("M", "F")


def test_chapman_bad_csv_is_rejected_by_name(data_root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "MUSE_bad.csv"
    bad.write_text("I,II,XX\n1,2,3\n")
    with pytest.raises(RecordRejected, match="MUSE_bad.csv.*XX"):
        chapman.read_csv(bad)


def test_ptbxl_both_rates_and_metadata(data_root: Path) -> None:
    root = data_root / "ptbxl"
    db = ptbxl.read_database(root)
    lr = ptbxl.load_record(root / "records100/00000/00001_lr", db)
    hr = ptbxl.load_record(root / "records500/00000/00001_hr", db)
    for rec in (lr, hr):
        _sane(rec)
    assert (lr.fs_hz, hr.fs_hz) == (100, 500) and lr.patient_id == hr.patient_id
    assert lr.patient_id == "ptbxl/15709" and lr.metadata["sex"] == "F"
    assert lr.metadata["age"] == 56 and lr.metadata["strat_fold"] == 3
    assert "NORM" in lr.metadata["scp_codes"]
    # same ECG at two rates: 500 Hz decimated by 5 is close to the 100 Hz rendering
    assert np.median(np.abs(hr.signal_mv[::5, 1] - lr.signal_mv[:, 1])) < 0.05


def test_ptbxl_flac_and_missing_row(data_root: Path) -> None:
    root = data_root / "ptbxl"
    db = ptbxl.read_database(root)
    flac = ptbxl.load_record(root / "records500/05000/05016_hr", db)  # format 516
    _sane(flac)
    check_signal(flac.signal_mv, flac.fs_hz, flac.key)
    orphan = next(p for p in ptbxl.record_paths(root) if int(p.name[:5]) not in db)
    rec = ptbxl.load_record(orphan, db)
    assert rec.patient_id == f"ptbxl/ecg{int(orphan.name[:5])}"
    assert rec.metadata["age"] is MISSING and "pseudo patient" in rec.metadata["note"]


def test_ptbxl_age_300_recorded_as_90(data_root: Path) -> None:
    df = pd.read_csv(data_root / "ptbxl" / "ptbxl_database.csv")
    coded = df.loc[df.age == 300, "ecg_id"]
    if coded.empty:
        pytest.skip("no age-300 row in this copy")
    md = ptbxl.read_database(data_root / "ptbxl")[int(coded.iloc[0])]
    assert md["age"] == 90 and "300" in md["note"]


def test_ludb_amplitudes_satisfy_einthoven(data_root: Path) -> None:
    rep = load_corpus("ludb", data_root, progress=False, limit=5, cache=False)
    assert rep.loaded == 5
    for rec in rep.records:
        _sane(rec)
        assert einthoven_errors(rec.signal_mv).max() < 0.02
        np.testing.assert_allclose(rec.signal_mv[:, 2], rec.signal_mv[:, 1] - rec.signal_mv[:, 0],
                                   atol=0.011)
    first = rep.records[0]
    assert first.record_id == "1" and first.metadata["sex"] == "F" and first.metadata["age"] == 51
    qrs = first.annotations["II"]["QRS"]
    assert qrs.shape[1] == 3 and len(qrs) >= 5
    assert np.all(qrs[:, 0] < qrs[:, 1]) and np.all(qrs[:, 1] < qrs[:, 2])


def test_ludb_gain_quirk_is_rejected(data_root: Path) -> None:
    phys, fs, _ = read_wfdb(data_root / "ludb" / "data" / "1")  # wfdb physical = wrong gains
    with pytest.raises(RecordRejected, match="einthoven"):
        check_signal(phys, fs, "ludb/1")
    good, fs, _ = read_wfdb(data_root / "ludb" / "data" / "1", digital_uv=True)
    corrupted = good.copy()
    corrupted[:, 0] *= 1.3  # a single wrong lead gain
    with pytest.raises(RecordRejected, match="ludb/1.*einthoven"):
        check_signal(corrupted, fs, "ludb/1")


def test_cinc_counts_duplicates_and_ptbxl_origin(data_root: Path) -> None:
    rep = load_corpus("cinc2021", data_root, progress=False, cache=False)
    assert rep.found == 50 and rep.loaded + len(rep.rejected) == 50
    dups = [(n, r) for n, r in rep.rejected if r.startswith("duplicate")]
    assert len(dups) == 1 and dups[0][0].endswith("E07510") and "E07509" in dups[0][1]
    by_id = {r.record_id: r for r in rep.records}
    hr = by_id["HR06000"]
    assert hr.metadata["ptbxl_ecg_id"] == 6000 and hr.patient_id.startswith("ptbxl/")
    assert by_id["E07500"].metadata["dx"] == ["67741000119109", "426177001"]
    assert by_id["E07500"].metadata["sex"] == "M" and by_id["E07500"].metadata["age"] == 78
    for rec in rep.records[:5]:
        _sane(rec)


def test_cinc_header_parsing() -> None:
    md = cinc.parse_comments(["Age: NaN", "Sex: Female", "Dx: 1,2"], "x.hea")
    assert md["age"] is MISSING and md["sex"] == "F" and md["dx"] == ["1", "2"]
    with pytest.raises(RecordRejected, match="x.hea.*Age.*'old'"):
        cinc.parse_comments(["Age: old"], "x.hea")


def test_unknown_corpus_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown corpus 'foo'"):
        load_corpus("foo", tmp_path)
    with pytest.raises(DataError, match="ludb.*not found"):
        load_corpus("ludb", tmp_path)


def test_ludb_metadata_quirks(data_root: Path) -> None:
    meta = ludb.read_metadata(data_root / "ludb")
    assert len(meta) == 200
    over = [m for m in meta.values() if "note" in m]
    assert over and all(m["age"] == 90 for m in over)
