"""CSV input internals (edge.sources.formats_csv): the drift hulls against brute force, and the
batched reader across batch boundaries (holes, missing-value words, a drifting clock) against
time lines and error rows computed here from how each file was written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.sources import formats_csv
from edge.sources.formats_csv import _DRIFT_EVERY, GRID_TOLERANCE, _Drift, _Hull, open_csv
from edge.sources.recording import RecordingInputError

FS = 250.0


def test_hull_max_equals_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 400))
        a = np.cumsum(rng.uniform(0.01, 1.0, n))  # increasing slopes
        b = rng.normal(0, 1, n) * rng.choice([1e-3, 1.0, 1e3])
        h = _Hull()
        for ai, bi in zip(a, b, strict=True):
            h.add(float(ai), float(bi))
        assert len(h.a) <= n
        for f in rng.normal(0, 5, 20):
            assert h.max_at(float(f)) == pytest.approx(float(np.max(a * f + b)), rel=1e-12,
                                                       abs=1e-9)


def test_drift_worst_is_the_largest_deviation() -> None:
    rng = np.random.default_rng(1)
    m = np.cumsum(rng.integers(1, 3, 500))
    a = m / FS + rng.normal(0, 0.3 / FS, 500)
    d = _Drift()
    for mi, ai in zip(m, a, strict=True):
        d.add(int(mi), float(ai))
    for fs in (FS * (1 - 1e-4), FS, FS * (1 + 1e-4)):
        assert d.worst(fs) == pytest.approx(float(np.max(np.abs(a * fs - m))), rel=1e-9)


def _write(path: Path, t: np.ndarray, x: list[str]) -> Path:
    path.write_text("t_s,I\n" + "".join(f"{ti:.6f},{xi}\n" for ti, xi in zip(t, x,
                                                                              strict=True)))
    return path


def test_batches_holes_and_missing_words_across_batch_boundaries(tmp_path: Path,
                                                                   monkeypatch) -> None:
    monkeypatch.setattr(formats_csv, "_BATCH", 64)  # many batches, boundaries inside holes
    n = 1000
    keep = np.ones(n, bool)
    keep[[63, 64, 65]] = False  # a hole across the first batch boundary
    keep[300:420] = False  # a long hole
    vals = np.round(np.sin(np.arange(n) / 7.0), 4)
    words = [f"{v:.4f}" for v in vals]
    words[130], words[700] = "NA", ""  # missing-value words: those batches go row by row
    t = np.arange(n) / FS
    p = _write(tmp_path / "x.csv", t[keep], [w for w, k in zip(words, keep, strict=True) if k])
    rec = open_csv(p, "I", None, None, None)
    assert rec.fs_hz == FS and rec.n_samples == n
    got = np.full(n, np.inf)
    starts = []
    for start, x in rec.reader(100):
        assert len(x) <= 100
        starts.append(start)
        got[start: start + len(x)] = x
    want = np.where(keep, vals, np.inf)  # never written: a gap
    want[[130, 700]] = np.nan
    np.testing.assert_array_equal(got, want)
    assert 66 in starts and 420 in starts  # each run starts a block


def test_drift_error_names_the_first_sample_row_off_the_grid(tmp_path: Path,
                                                             monkeypatch) -> None:
    monkeypatch.setattr(formats_csv, "_BATCH", 100)
    n = 4000
    i = np.arange(n)
    t = i / FS + 0.9 / FS * (i / n) ** 6  # a clock that bends late: off the fitted grid
    p = _write(tmp_path / "d.csv", t, ["0.1"] * n)
    tt = np.array([float(f"{v:.6f}") for v in t])  # as written
    fs_fit = (n - 1) / (tt[-1] - tt[0])
    fs_fit = round(fs_fit, 3) if abs(round(fs_fit, 3) / fs_fit - 1) < 1e-6 else fs_fit
    rows = np.arange(0, n, _DRIFT_EVERY)  # rows 1, 33, 65, ... (1-based) are checked
    dev = (tt[rows] - tt[0]) * fs_fit - rows
    first = rows[np.flatnonzero(np.abs(dev) > GRID_TOLERANCE)[0]]
    with pytest.raises(RecordingInputError, match=rf"line {first + 2}, time column"):
        open_csv(p, "I", None, None, None)


def test_batches_follow_the_batch_size(monkeypatch) -> None:
    monkeypatch.setattr(formats_csv, "_BATCH", 3)
    assert [len(b) for b in formats_csv._batches(iter([(i, "") for i in range(7)]))] == [3, 3, 1]


@pytest.mark.parametrize("batch", [7, 100000])  # the row-by-row and the vectorised reader
def test_a_hole_over_an_hour_is_refused_naming_its_line(tmp_path: Path, monkeypatch,
                                                        batch: int) -> None:
    """A time column that jumps by days is not one recording: its NaN rows alone would fill
    memory (a 1e7 s jump used to be a 224 GiB MemoryError). An hour of hole is still a gap."""
    monkeypatch.setattr(formats_csv, "_BATCH", batch)
    t = np.arange(2000) / 250.0
    for hole_s, refused in ((3600.0, False), (7200.0, True), (1e7, True)):
        tt = t + np.where(np.arange(2000) >= 1500, hole_s, 0.0)
        p = tmp_path / f"h{int(hole_s)}.csv"
        p.write_text("t_s,I\n" + "\n".join(f"{a:.4f},{np.sin(a):.4f}" for a in tt) + "\n")
        if refused:
            with pytest.raises(RecordingInputError, match=r"line 1502, time column 't_s': jumps"):
                open_csv(p, "I", None, None, None).read()
        else:
            rec = open_csv(p, "I", None, None, None)
            x = rec.read()
            assert len(x) == 2000 + int(hole_s * 250) and np.isnan(x[1500:1500 + 900000]).all()


@pytest.mark.parametrize("lead_in", [0.0, np.nan, 512.0])
def test_units_are_judged_on_the_signal_after_a_flat_or_missing_lead_in(
        tmp_path: Path, lead_in: float) -> None:
    """60 s at 250 Hz whose first 32 s are a constant (or empty) and the rest an ECG in uV
    (column without a unit): read as uV, as the same signal without the lead-in is."""
    from benchmarks.bad_inputs import _csv, ecg

    n = 60 * 250
    x = ecg(n) * 1000.0  # uV
    x[:32 * 250] = lead_in
    p = _csv(tmp_path / "lead_in.csv", {"t_s": np.arange(n) / 250.0, "ecg": x}, fmt="{:.3f}")
    rec = open_csv(p, None, 1, None, None)
    assert rec.unit == "uv", rec.unit_from
    ref = _csv(tmp_path / "ref.csv", {"t_s": np.arange(n) / 250.0, "ecg": ecg(n) * 1000.0},
               fmt="{:.3f}")
    assert open_csv(ref, None, 1, None, None).unit == "uv"


def test_units_sample_skips_the_lead_in_and_keeps_n() -> None:
    from edge.sources.recording import UnitsSample

    s = UnitsSample(5)
    s.add(np.array([np.nan, 3.0, 3.0]))
    s.add(np.array([3.0, np.nan, 1.0, 2.0]))
    s.add(np.array([3.0, 4.0, 5.0, 6.0]))
    assert s.full and s.values().tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    flat = UnitsSample(5)
    flat.add(np.zeros(100))
    assert not flat.full and np.all(flat.values() == 0.0)


def test_a_blank_line_in_a_one_column_file_is_a_missing_sample_not_dropped(
        tmp_path: Path) -> None:
    """One column, no time: an empty cell is a blank line. It is a missing sample (NaN at
    its place, the rest unshifted); blank lines after the last value are not samples."""
    x = np.sin(np.arange(3000) / 20.0)
    lines = [f"{v:.5f}" for v in x]
    lines[1000] = ""
    lines[2000:2002] = ["", ""]
    p = tmp_path / "one.csv"
    p.write_text("\n".join(lines) + "\n\n\n")
    got = open_csv(p, None, 0, 250.0, None).read()
    assert len(got) == 3000
    missing = np.zeros(3000, bool)
    missing[[1000, 2000, 2001]] = True
    np.testing.assert_array_equal(np.isnan(got), missing)
    np.testing.assert_allclose(got[~missing], x[~missing], atol=1e-5)


def test_a_late_non_utf8_byte_is_named_by_its_line(tmp_path: Path) -> None:
    body = "".join(f"{i / 250:.4f},{np.sin(i / 9):.4f}\n" for i in range(20000))
    lines = body.splitlines(keepends=True)
    p = tmp_path / "late.csv"
    p.write_bytes(b"t_s,I\n" + "".join(lines[:15000]).encode() + b"0.5,\xff\n"
                  + "".join(lines[15000:]).encode())
    with pytest.raises(RecordingInputError, match="on line 15002"):
        open_csv(p, "I", None, None, None).read()


@pytest.mark.parametrize("header", [True, False])
def test_semicolons_with_decimal_commas_are_read_as_numbers(tmp_path: Path, header: bool) -> None:
    t = np.arange(2500) / 250.0
    x = np.round(np.sin(t * 7.0), 6)
    body = "".join(f"{a:.3f};{v:.6f}\n".replace(".", ",") for a, v in zip(t, x, strict=True))
    p = tmp_path / "eu.csv"
    p.write_text(("t_s;I\n" if header else "") + body)
    rec = open_csv(p, "I" if header else None, None if header else 1, None, None)
    assert rec.fs_hz == 250.0 and any("decimal commas" in n for n in rec.notes)
    np.testing.assert_allclose(rec.read(), x, atol=1e-6)
