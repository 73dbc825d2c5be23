"""The streaming WFDB writer (edge.sinks.wfdb) against wfdb-python's own ``wrsamp``: the same
bytes in .dat and .hea, also across block boundaries, with gaps, clipping and rounding ties;
and no wfdb / pandas import when writing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.leads import LEADS
from edge.sinks.csv import CsvSink, SinkError, read_csv
from edge.sinks.wfdb import write_wfdb

wfdb = pytest.importorskip("wfdb")


class _Block:
    def __init__(self, t0: float, leads: np.ndarray, std: np.ndarray, fs: float) -> None:
        self.t0_s, self.fs_hz, self.leads, self.std = t0, fs, leads, std
        self.n = len(leads)
        self.flags: list = []


def _session_csv(path: Path, n: int, fs: float, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    leads = rng.normal(0, 1.5, (n, 12)).astype(np.float32)
    leads[5:40] = np.nan  # a gap
    leads[50, 0], leads[51, 1], leads[52, 2] = 40.0, -40.0, 32.767  # clipped / at the limit
    leads[60, :4] = [0.0005, 0.0015, -0.0005, -0.0025]  # halves: round half to even
    std = np.abs(rng.normal(0.1, 0.05, (n, 12))).astype(np.float32)
    std[5:40] = np.nan
    sink = CsvSink(path)
    sink.write(_Block(0.0, leads, std, fs))
    sink.close()
    return path


def _reference(csv: Path, out: Path, name: str, fs: float, comments: list[str] | None) -> None:
    """What edge.sinks.wfdb wrote before it streamed: the whole CSV through wfdb.wrsamp."""
    _, leads, std = read_csv(csv)
    for rec, sig, names in ((name, leads, list(LEADS)),
                            (f"{name}_std", std, [f"std_{lead}" for lead in LEADS])):
        wfdb.wrsamp(rec, fs=round(fs, 6), units=["mV"] * 12, sig_name=names,
                    p_signal=np.clip(sig.astype(np.float64), -32.767, 32.767),
                    fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12,
                    write_dir=str(out), comments=comments)


@pytest.mark.parametrize("fs,block_rows", [(100.0, 65536), (130.0, 7), (1000 / 3, 64),
                                           (250.0, 1)])
def test_same_bytes_as_wrsamp(tmp_path: Path, fs: float, block_rows: int) -> None:
    csv = _session_csv(tmp_path / "leads.csv", 300, fs)
    comments = {"bundle": "default  (sha 1234)", "mc_samples": "30"}
    ref, got = tmp_path / "ref", tmp_path / "got"
    ref.mkdir()
    _reference(csv, ref, "ecg12", fs, [f"{k}: {' '.join(v.split())}" for k, v in
                                       comments.items()])
    paths = write_wfdb(csv, got, "ecg12", fs, comments=comments, block_rows=block_rows)
    assert paths == [got / "ecg12.hea", got / "ecg12_std.hea"]
    for f in ("ecg12.hea", "ecg12.dat", "ecg12_std.hea", "ecg12_std.dat"):
        assert (got / f).read_bytes() == (ref / f).read_bytes(), f
    rec = wfdb.rdrecord(str(got / "ecg12"))
    assert rec.fs == pytest.approx(fs, rel=1e-6) and rec.p_signal.shape == (300, 12)
    assert np.isnan(rec.p_signal[5:40]).all() and rec.p_signal[50, 0] == pytest.approx(32.767)


def test_rate_from_the_time_column_and_errors(tmp_path: Path) -> None:
    csv = _session_csv(tmp_path / "leads.csv", 300, 250.0)
    write_wfdb(csv, tmp_path / "a", "r")
    assert wfdb.rdheader(str(tmp_path / "a" / "r")).fs == 250
    one = tmp_path / "one.csv"
    one.write_text("\n".join(csv.read_text().splitlines()[:2]) + "\n")
    with pytest.raises(SinkError, match="too few rows"):
        write_wfdb(one, tmp_path / "b", "r")
    assert not list((tmp_path / "b").glob("*.dat"))
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(SinkError, match="not an ecg12 output CSV"):
        write_wfdb(bad, tmp_path / "c", "r", 100.0)


def test_cut_last_row_is_dropped(tmp_path: Path) -> None:
    csv = _session_csv(tmp_path / "leads.csv", 100, 100.0)
    raw = csv.read_bytes()
    csv.write_bytes(raw + raw.splitlines(keepends=True)[-1][:40])  # a torn row at the end
    write_wfdb(csv, tmp_path / "o", "r", 100.0)
    assert wfdb.rdheader(str(tmp_path / "o" / "r")).sig_len == 100


def test_writing_imports_neither_wfdb_nor_pandas(tmp_path: Path) -> None:
    csv = _session_csv(tmp_path / "leads.csv", 200, 100.0)
    code = (f"import sys; from edge.sinks.wfdb import write_wfdb; "
            f"write_wfdb({str(csv)!r}, {str(tmp_path / 'o')!r}, 'r', 100.0); "
            f"print(sorted(m for m in ('wfdb', 'pandas', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
