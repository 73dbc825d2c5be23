"""Sinks: CSV with NaN gap rows, WFDB read-back, NDJSON, report figure, profile file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.chunk import Chunk
from edge.profile import ProfileError, load_profile
from edge.sinks import CsvSink, EventWriter, SinkError, read_csv
from edge.sinks.recorder import Recorder


@dataclass
class FakeFlag:
    kind: str
    start_s: float
    end_s: float
    leads: tuple[str, ...] = ()
    value: float = 0.0
    threshold: float = 0.0
    detail: str = ""


@dataclass
class FakeBlock:
    t0_s: float
    fs_hz: float
    leads: np.ndarray
    std: np.ndarray
    flags: list = field(default_factory=list)


def block(t0: float, n: int, fs: float = 100.0, v: float = 0.5) -> FakeBlock:
    leads = np.full((n, 12), v, np.float32) + np.arange(n)[:, None] / 1000
    return FakeBlock(t0, fs, leads.astype(np.float32), np.full((n, 12), 0.05, np.float32))


def test_csv_fills_gaps_with_nan_rows_and_reads_back(tmp_path) -> None:
    sink = CsvSink(tmp_path / "o.csv")
    sink.write(block(10.0, 100))
    sink.write(block(11.0, 50))
    sink.write(block(12.0, 100))  # 0.5 s missing -> 50 NaN rows
    sink.close()
    t, leads, std = read_csv(tmp_path / "o.csv")
    assert len(t) == 300 and sink.nan_rows == 50
    assert np.allclose(np.diff(t), 0.01, atol=1e-4)  # row index <-> time stays true
    assert np.isnan(leads[150:200]).all() and np.isfinite(leads[:150]).all()
    assert np.allclose(leads[200:], block(12.0, 100).leads, atol=1e-4)
    with pytest.raises(SinkError, match="closed"):
        sink.write(block(13.0, 1))


def test_csv_rejects_bad_blocks(tmp_path) -> None:
    sink = CsvSink(tmp_path / "o.csv")
    with pytest.raises(SinkError, match=r"\(n, 12\)"):
        sink.write(FakeBlock(0, 100, np.zeros((5, 11)), np.zeros((5, 11))))
    sink.write(block(0, 10))
    with pytest.raises(SinkError, match="differs"):
        sink.write(block(0.1, 10, fs=250))


def test_wfdb_written_from_csv_reads_back_with_nan(tmp_path) -> None:
    import wfdb

    from edge.sinks.wfdb import write_wfdb

    sink = CsvSink(tmp_path / "o.csv")
    sink.write(block(0.0, 100))
    sink.write(block(1.5, 100))
    sink.close()
    write_wfdb(tmp_path / "o.csv", tmp_path, "rec", 100.0)
    rec = wfdb.rdrecord(str(tmp_path / "rec"))
    assert rec.sig_name[1] == "II" and rec.fs == 100 and rec.p_signal.shape == (250, 12)
    _, leads, _ = read_csv(tmp_path / "o.csv")
    assert np.allclose(rec.p_signal, leads, atol=1e-3, equal_nan=True)
    assert np.isnan(rec.p_signal[100:150]).all()
    assert wfdb.rdrecord(str(tmp_path / "rec_std")).p_signal[0, 3] == pytest.approx(0.05)


def test_events_are_valid_ndjson_with_nan_as_null(tmp_path) -> None:
    w = EventWriter(tmp_path / "e.ndjson")
    w.emit("flag", value=float("nan"), leads=("II",), n=np.int64(3), s=frozenset({"b", "a"}))
    w.close()
    ev = json.loads((tmp_path / "e.ndjson").read_text())
    assert ev == {"type": "flag", "value": None, "leads": ["II"], "n": 3, "s": ["a", "b"]}


def test_recorder_session_outputs(tmp_path) -> None:
    rec = Recorder(tmp_path / "run", fmt="wfdb", source="test")
    rng = np.random.default_rng(0)
    for k in range(12):  # 12 s of 1-s chunks; chunk 7 missing
        if k == 7:
            continue
        c = Chunk(rng.standard_normal(100).astype(np.float32), 100.0 + k, 100.0, seq=k,
                  gap_before_s=1.0 if k == 8 else 0.0)
        rec.on_chunk(c)
        b = block(100.0 + k, 100)
        if k == 3:
            b.flags = [FakeFlag("high_uncertainty", 103.2, 103.6, ("V1",), 0.3, 0.2)]
        rec.on_blocks([b])
    summary = rec.close()
    out = tmp_path / "run"
    assert {p.name for p in out.iterdir()} >= {"leads.csv", "events.ndjson", "report.png",
                                               "summary.json", "ecg12.hea", "ecg12_std.hea"}
    events = [json.loads(line) for line in (out / "events.ndjson").read_text().splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "summary" and "gap" in kinds
    gap = next(e for e in events if e["type"] == "gap")
    assert gap["start_s"] == pytest.approx(7.0) and gap["duration_s"] == 1.0
    flag = next(e for e in events if e["type"] == "flag")
    assert flag["start_s"] == pytest.approx(3.2) and flag["leads"] == ["V1"]
    assert summary["rows_out"] == 1200 and summary["gaps"] == 1
    assert summary["flags"] == {"high_uncertainty": 1}
    assert json.loads((out / "summary.json").read_text())["rows_out"] == 1200


def test_report_figure_writes_png(tmp_path) -> None:
    from edge.sinks.figure import report_figure

    t = np.arange(1500) / 100
    leads = np.sin(t)[:, None].repeat(12, 1).astype(np.float32)
    std = np.full_like(leads, 0.1)
    leads[300:400] = np.nan
    p = report_figure(tmp_path / "f.png", t, leads, std,
                      [{"kind": "poor_quality", "start_s": 8, "end_s": 9, "leads": ["II"]}])
    assert p.read_bytes()[:4] == b"\x89PNG"


def test_profile_json_and_toml(tmp_path) -> None:
    (tmp_path / "p.toml").write_text('age = 54\nsex = "female"\nr_axis = 35\n')
    assert load_profile(tmp_path / "p.toml") == {"age": 54.0, "sex": "F", "r_axis": 35.0}
    (tmp_path / "p.json").write_text('{"patient": {"age": 30, "sex": null}}')
    assert load_profile(tmp_path / "p.json") == {"age": 30.0}  # absent stays absent


@pytest.mark.parametrize("text, needle", [
    ('{"age": 300}', "outside plausible range"),
    ('{"ventricular_rate": 70}', "unknown field 'ventricular_rate'"),
    ('{"sex": "x"}', "sex"),
    ("{nope", "cannot parse"),
    ('{"age": NaN, "sex": "F"}', "field 'age' is nan"),  # Python's json reads NaN
    ('{"r_axis": Infinity}', "field 'r_axis' is inf"),
])
def test_profile_errors_name_the_field(tmp_path, text: str, needle: str) -> None:
    (tmp_path / "p.json").write_text(text)
    with pytest.raises(ProfileError, match=needle):
        load_profile(tmp_path / "p.json")
    with pytest.raises(ProfileError, match="not found"):
        load_profile(tmp_path / "missing.json")


def _python_csv(a: np.ndarray) -> bytes:
    """The reference: one line per row, Python's '%.4f' per value (what np.savetxt does)."""
    fmt = ",".join(["%.4f"] * a.shape[1]) + "\n"
    return "".join(fmt % tuple(row) for row in a.tolist()).encode()


HARD = [0.0, -0.0, 1e-5, -1e-5, 0.00005, -0.00005, 0.03125, -0.03125, 0.00015, 2.5e-5,
        0.99995, 9.99995, -9.99995, 999.99995, 1000.0, -999.9999, -1000.0, -1234.5678,
        9999.99995, 10000.0, 12345.6789, -98765.4321, 9999999.9999, 1e7, -1e7, 1.5e9,
        1e20, -1e300, 5e-324, float("inf"), float("-inf"), float("nan"), -float("nan")]


def test_format_rows_matches_python_on_hard_values() -> None:
    """Ties (0.03125 = 312.5e-4 exactly: half to even), rounding up across digits
    (9.99995 -> 10.0000), signed zero and tiny negatives ('-0.0000'), widths around 1e3/1e4,
    huge values, inf and NaN (Python writes any NaN as 'nan')."""
    from edge.sinks.csv import format_rows

    a = np.array(HARD, dtype=np.float64)
    for cols in (1, 3, len(a)):
        m = np.resize(a, (len(a) * 3 // cols + 1) * cols).reshape(-1, cols)
        assert format_rows(m) == _python_csv(m)
    assert format_rows(np.array([[0.03125, -0.0, -1e-5]])) == b"0.0312,-0.0000,-0.0000\n"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1,
                max_size=60), st.integers(1, 7))
def test_format_rows_matches_python_on_any_floats(values: list[float], cols: int) -> None:
    from edge.sinks.csv import format_rows

    a = np.resize(np.array(values, dtype=np.float64), (len(values) + cols - 1) // cols * cols)
    assert format_rows(a.reshape(-1, cols)) == _python_csv(a.reshape(-1, cols))


def test_format_rows_matches_savetxt_on_stream_like_blocks() -> None:
    """float32 leads and std with NaN rows and a time column past 1e3 and 1e4 s."""
    import io

    from edge.sinks.csv import format_rows

    rng = np.random.default_rng(3)
    for t0 in (0.0, 999.99, 86400.0):
        leads = rng.normal(0, 0.8, (300, 24)).astype(np.float32).astype(np.float64)
        leads[40:60] = np.nan
        m = np.column_stack([t0 + np.arange(300) / 130.0, leads])
        buf = io.StringIO()
        np.savetxt(buf, m, fmt="%.4f", delimiter=",")
        assert format_rows(m) == buf.getvalue().encode()
    assert format_rows(np.zeros((0, 25))) == b""


def test_csv_sink_text_is_python_formatted(tmp_path) -> None:
    """The sink's bytes = header + Python's '%.4f' of (t, leads, std) per row."""
    from edge.sinks.csv import COLUMNS

    b = block(5.0, 40)
    b.leads[3, 4] = np.nan
    sink = CsvSink(tmp_path / "o.csv")
    sink.write(b)
    sink.close()
    rows = np.column_stack([np.arange(40) / 100.0, b.leads, b.std])
    assert (tmp_path / "o.csv").read_bytes() == (",".join(COLUMNS) + "\n").encode() + \
        _python_csv(rows)


def test_read_csv_span_reads_only_the_span(tmp_path) -> None:
    """--report-at draws 10 s: only those rows are kept, and reading stops after them (the
    row after the span is unparseable here: reaching it would raise)."""
    from edge.sinks.csv import COLUMNS, SinkError, read_csv_span

    p = tmp_path / "leads.csv"
    rows = [",".join([f"{k / 100:.4f}"] + [f"{k % 7 * 0.1:.4f}"] * 24) for k in range(3000)]
    p.write_text(",".join(COLUMNS) + "\n" + "\n".join(rows[:1501]) + "\nnot,a,row\n"
                 + "\n".join(rows[1501:]) + "\n")
    t, leads, std, last = read_csv_span(p, 5.0, 10.0)
    np.testing.assert_allclose(t, np.arange(500, 1500) / 100)
    assert leads.shape == std.shape == (1000, 12) and leads.dtype == np.float32
    np.testing.assert_allclose(leads[:, 0], (np.arange(500, 1500) % 7) * 0.1, atol=1e-6)
    with pytest.raises(SinkError, match="unreadable row"):  # a span that reaches the bad row
        read_csv_span(p, 12.0, 10.0)
    q = tmp_path / "short.csv"
    q.write_text(",".join(COLUMNS) + "\n" + "\n".join(rows[:300]) + "\n3.0000,1")  # cut row
    t, _, _, last = read_csv_span(q, 2.5, 10.0)
    assert len(t) == 50 and last == 2.99
    t, _, _, last = read_csv_span(q, 50.0, 10.0)  # beyond the end: no rows, the end known
    assert len(t) == 0 and last == 2.99
