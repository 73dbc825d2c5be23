"""The input layer against wfdb-python and pyedflib: files of every kind they write (and the
WFDB bit-packed formats 310/311, packed here by hand from the WFDB spec) read by us sample for
sample as `wfdb.rdrecord` / `pyedflib.EdfReader` read them, at the true rate, also in blocks."""

from __future__ import annotations

import numpy as np
import pytest

from edge.sources.recording import open_recording

wfdb = pytest.importorskip("wfdb")
pyedflib = pytest.importorskip("pyedflib")

N = 3000


def _digital(n: int = N, lo: int = -500, hi: int = 500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.round(300 * np.sin(np.arange(n) / 17.0) + rng.integers(-40, 40, n))
    return np.clip(x, lo, hi).astype(np.int64)


def _stream(rec, block_n: int) -> np.ndarray:
    out = np.full(rec.n_samples, np.nan)
    last = -1
    for start, x in rec.blocks(block_n):
        assert start > last  # blocks go forward, never overlap
        out[start:start + len(x)] = x
        last = start + len(x) - 1
    return out


@pytest.mark.parametrize("fmt", ["16", "212", "80", "24", "32", "516"])
def test_wfdb_formats_match_rdrecord(tmp_path, fmt: str) -> None:
    lim = 120 if fmt == "80" else 500  # format 80 is 8-bit
    d = np.column_stack([_digital(lo=-lim, hi=lim, seed=1), _digital(lo=-lim, hi=lim, seed=2)])
    wfdb.wrsamp("r", fs=500, units=["mV", "mV"], sig_name=["II", "I"], d_signal=d,
                fmt=[fmt, fmt], adc_gain=[200.0, 200.0], baseline=[0, 0], write_dir=str(tmp_path))
    ref = wfdb.rdrecord(str(tmp_path / "r"), channels=[1]).p_signal[:, 0]
    np.testing.assert_allclose(ref, d[:, 1] / 200.0, atol=1e-9)  # wfdb agrees with the writer
    rec = open_recording(tmp_path / "r.hea", "I")
    assert (rec.fs_hz, rec.n_samples, rec.index) == (500.0, N, 1)
    np.testing.assert_allclose(rec.read(), ref, atol=1e-6)
    np.testing.assert_allclose(_stream(rec, 701), ref, atol=1e-6)  # blocks = whole


def _pack_310(v: np.ndarray) -> bytes:
    """WFDB format 310 (signal(5)): per 3 samples two 16-bit little-endian words; samples 1
    and 2 in bits 1-10 of words 1 and 2, sample 3's low 5 bits in bits 11-15 of word 1 and
    its high 5 bits in bits 11-15 of word 2 (bit 0 unused)."""
    u = (v.reshape(-1, 3) & 0x3FF).astype(np.uint16)
    w0 = (u[:, 0] << 1) | ((u[:, 2] & 0x1F) << 11)
    w1 = (u[:, 1] << 1) | ((u[:, 2] >> 5) << 11)
    return np.column_stack([w0, w1]).astype("<u2").tobytes()


def _pack_311(v: np.ndarray) -> bytes:
    """WFDB format 311: 3 10-bit samples in a 32-bit little-endian word, bits 0-9, 10-19,
    20-29 (bits 30-31 unused)."""
    u = (v.reshape(-1, 3) & 0x3FF).astype(np.uint32)
    words = u[:, 0] | (u[:, 1] << 10) | (u[:, 2] << 20)
    return words.astype("<u4").tobytes()


@pytest.mark.parametrize("fmt, pack", [("310", _pack_310), ("311", _pack_311)])
def test_wfdb_bit_packed_formats(tmp_path, fmt: str, pack) -> None:
    v = _digital(N, -511, 511)
    (tmp_path / "p.dat").write_bytes(pack(v))
    checksum = int(v.sum()) & 0xFFFF  # WFDB: the 16-bit sum of the samples
    (tmp_path / "p.hea").write_text(f"p 1 360 {N}\np.dat {fmt} 100/mV 10 0 0 {checksum} 0 ECG\n")
    ref = wfdb.rdrecord(str(tmp_path / "p")).p_signal[:, 0]
    np.testing.assert_allclose(ref, v / 100.0, atol=1e-9)  # our packing is what wfdb reads
    rec = open_recording(tmp_path / "p.hea")
    assert rec.fs_hz == 360.0 and rec.channel == "ECG"
    np.testing.assert_allclose(_stream(rec, 1001), ref, atol=1e-6)


def test_a_signal_file_that_does_not_match_its_checksum_is_refused(tmp_path) -> None:
    """The header's checksum (the 16-bit sum of a signal's samples, written here by wfdb)
    catches one corrupted sample before any is used; the error names the file, the field
    and the value the samples give."""
    from edge.sources.recording import RecordingInputError

    d = _digital()
    wfdb.wrsamp("c", fs=500, units=["mV"], sig_name=["I"], d_signal=d[:, None], fmt=["16"],
                adc_gain=[200.0], baseline=[0], write_dir=str(tmp_path))
    assert wfdb.rdheader(str(tmp_path / "c")).checksum == [int(d.sum()) & 0xFFFF]
    np.testing.assert_allclose(open_recording(tmp_path / "c.hea").read(), d / 200.0)
    raw = bytearray((tmp_path / "c.dat").read_bytes())
    raw[2 * 1234:2 * 1234 + 2] = (int(d[1234]) + 7).to_bytes(2, "little", signed=True)
    (tmp_path / "c.dat").write_bytes(bytes(raw))
    got = (int(d.sum()) + 7 + 32768) % 65536 - 32768
    with pytest.raises(RecordingInputError, match=rf"c\.hea: signal 0 checksum "
                                                  rf"{int(d.sum()) & 0xFFFF} does not match "
                                                  rf".*their checksum is {got}\)"):
        open_recording(tmp_path / "c.hea")


def test_multi_frequency_record_is_read_at_the_true_rate(tmp_path) -> None:
    n_frames = 2500
    a = _digital(n_frames * 4, seed=3)  # Lead I: 4 samples per frame
    b = _digital(n_frames, seed=4)
    rec = wfdb.Record(
        record_name="mf", n_sig=2, fs=125, sig_len=n_frames, file_name=["mf.dat"] * 2,
        fmt=["212", "212"], samps_per_frame=[4, 1], adc_gain=[200.0, 200.0], baseline=[0, 0],
        units=["mV", "mV"], sig_name=["I", "II"], e_d_signal=[a, b], adc_res=[12, 12],
        adc_zero=[0, 0], init_value=[int(a[0]), int(b[0])], block_size=[0, 0],
        checksum=[int(a.sum()) & 0xFFFF, int(b.sum()) & 0xFFFF])
    rec.wrsamp(expanded=True, write_dir=str(tmp_path))
    ref = wfdb.rdrecord(str(tmp_path / "mf"), channels=[0], smooth_frames=False).e_p_signal[0]
    assert len(ref) == n_frames * 4
    got = open_recording(tmp_path / "mf.hea")
    assert got.fs_hz == 500.0 and got.n_samples == n_frames * 4  # not 125 Hz
    np.testing.assert_allclose(_stream(got, 999), ref, atol=1e-6)


def test_multi_segment_record_with_null_segment(tmp_path) -> None:
    x = _digital(5000, seed=5) / 200.0
    wfdb.wrsamp("s1", fs=250, units=["mV", "mV"], sig_name=["II", "I"],
                p_signal=np.column_stack([-x[:2000], x[:2000]]), fmt=["16", "16"],
                write_dir=str(tmp_path))
    wfdb.wrsamp("s2", fs=250, units=["mV"], sig_name=["I"], p_signal=x[3000:, None],
                fmt=["16"], write_dir=str(tmp_path))
    (tmp_path / "ms_layout.hea").write_text("ms_layout 2 250 0\n~ 0 200/mV 16 0 0 0 0 II\n"
                                            "~ 0 200/mV 16 0 0 0 0 I\n")
    (tmp_path / "ms.hea").write_text("ms/4 2 250 5000\nms_layout 0\ns1 2000\n~ 1000\ns2 2000\n")
    ref = wfdb.rdrecord(str(tmp_path / "ms"), channel_names=["I"]).p_signal[:, 0]
    assert len(ref) == 5000 and np.isnan(ref[2000:3000]).all()
    rec = open_recording(tmp_path / "ms.hea")
    assert rec.fs_hz == 250.0 and rec.n_samples == 5000
    got = _stream(rec, 700)
    np.testing.assert_allclose(got, ref, atol=1e-6)  # NaN (gap) exactly where wfdb has it
    # fixed layout (no layout segment): wfdb itself cannot read it, we read it by index
    (tmp_path / "fx.hea").write_text("fx/3 2 250 5000\ns1 2000\n~ 1000\ns1 2000\n")
    fx = open_recording(tmp_path / "fx.hea", "I").read()
    np.testing.assert_allclose(fx[:2000], ref[:2000], atol=1e-6)
    assert np.isnan(fx[2000:3000]).all()
    np.testing.assert_allclose(fx[3000:], ref[:2000], atol=1e-6)


@pytest.mark.parametrize("kind", ["edf", "edf+", "bdf", "bdf+"])
def test_edf_and_bdf_match_pyedflib(tmp_path, kind: str) -> None:
    ft = {"edf": pyedflib.FILETYPE_EDF, "edf+": pyedflib.FILETYPE_EDFPLUS,
          "bdf": pyedflib.FILETYPE_BDF, "bdf+": pyedflib.FILETYPE_BDFPLUS}[kind]
    path = tmp_path / f"r.{kind[:3]}"
    bdf = kind.startswith("bdf")
    w = pyedflib.EdfWriter(str(path), 2, file_type=ft)
    w.setSignalHeaders([
        {"label": "EEG Fz", "dimension": "uV", "sample_frequency": 100, "physical_max": 500,
         "physical_min": -500, "digital_max": 32767, "digital_min": -32768},
        {"label": "ECG I", "dimension": "uV", "sample_frequency": 256, "physical_max": 3000,
         "physical_min": -3000, "digital_max": 8388607 if bdf else 32767,
         "digital_min": -8388608 if bdf else -32768}])
    x = _digital(256 * 12, seed=6) * 5.0  # uV
    w.writeSamples([_digital(100 * 12, seed=7) * 0.5, x])
    if kind.endswith("+"):
        w.writeAnnotation(1.0, -1, "marker")
    w.close()
    with pyedflib.EdfReader(str(path)) as r:
        ref = r.readSignal(1) / 1000.0  # uV -> mV
    rec = open_recording(path)
    assert rec.kind == kind.upper() and rec.channel == "ECG I" and rec.fs_hz == 256.0
    assert rec.unit == "uv" and rec.n_samples == len(ref)
    np.testing.assert_allclose(_stream(rec, 500), ref, atol=1e-6)


def test_csv_hole_is_a_gap_not_packed(tmp_path) -> None:
    t = np.arange(2000) / 200.0
    x = np.sin(t * 7)
    keep = np.ones(2000, bool)
    keep[700:760] = False
    p = tmp_path / "h.csv"
    p.write_text("t_s,I\n" + "".join(f"{a:.3f},{b:.5f}\n" for a, b in zip(t[keep], x[keep],
                                                                         strict=True)))
    rec = open_recording(p)
    assert rec.fs_hz == 200.0 and rec.n_samples == 2000
    got = rec.read()
    assert np.isnan(got[700:760]).all()
    np.testing.assert_allclose(got[keep], np.round(x[keep], 5), atol=1e-6)  # nothing shifted


def test_the_first_samples_time_as_the_file_gives_it(tmp_path) -> None:
    """Output t_s counts from the first sample; the summary keeps the file's own time of it
    (a CSV time column, a WFDB base date/time, an EDF start date/time), written here."""
    import datetime as dt

    t = 1_700_000_000.0 + np.arange(2000) / 200.0  # Unix time, s
    (tmp_path / "e.csv").write_text("t_s,I\n" + "\n".join(
        f"{a:.3f},{np.sin(a):.4f}" for a in t) + "\n")
    rec = open_recording(tmp_path / "e.csv")
    assert rec.describe()["first_sample_time"] == 1_700_000_000.0
    d = _digital(seed=3)[:, None]
    wfdb.wrsamp("b", fs=500, units=["mV"], sig_name=["I"], d_signal=d, fmt=["16"],
                adc_gain=[200.0], baseline=[0], write_dir=str(tmp_path),
                base_date=dt.date(2024, 5, 17), base_time=dt.time(13, 45, 2))
    assert open_recording(tmp_path / "b.hea").describe()["first_sample_time"] == \
        "2024-05-17T13:45:02"
    wfdb.wrsamp("n", fs=500, units=["mV"], sig_name=["I"], d_signal=d, fmt=["16"],
                adc_gain=[200.0], baseline=[0], write_dir=str(tmp_path))
    assert "first_sample_time" not in open_recording(tmp_path / "n.hea").describe()
    w = pyedflib.EdfWriter(str(tmp_path / "s.edf"), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    w.setSignalHeaders([{"label": "ECG I", "dimension": "uV", "sample_frequency": 256,
                         "physical_max": 3000, "physical_min": -3000, "digital_max": 32767,
                         "digital_min": -32768}])
    w.setStartdatetime(dt.datetime(2023, 1, 2, 3, 4, 5))
    w.writeSamples([_digital(256 * 10, seed=6) * 5.0])
    w.close()
    assert open_recording(tmp_path / "s.edf").describe()["first_sample_time"] == \
        "2023-01-02T03:04:05"


def test_header_gains_that_break_einthoven_are_noted(tmp_path) -> None:
    """Raw values with III = II - I exactly but per-lead gains that differ (LUDB's headers):
    the physical Lead I is off, and the recording says so; with one gain it says nothing."""
    d1, d2 = _digital(seed=11), _digital(seed=12)
    d = np.column_stack([d1, d2, d2 - d1])  # I, II, III = II - I, raw counts
    for name, gains, noted in (("bad", [1716.0, 1000.0, 2411.0], True),
                               ("good", [1000.0] * 3, False)):
        wfdb.wrsamp(name, fs=500, units=["mV"] * 3, sig_name=["I", "II", "III"], d_signal=d,
                    fmt=["16"] * 3, adc_gain=gains, baseline=[0] * 3, write_dir=str(tmp_path))
        notes = open_recording(tmp_path / f"{name}.hea").notes
        assert any("break Einthoven" in n and "gains I 1716" in n for n in notes) == noted


def test_a_refused_edf_leaves_stdout_clean(tmp_path) -> None:
    """edflib printf()s why it refuses a file ("filesize ... != ...") on file descriptor 1,
    where ``--events -`` writes NDJSON; opening must keep that off stdout and still name the
    problem in the error."""
    import os
    import subprocess
    import sys

    p = tmp_path / "t.edf"
    w = pyedflib.EdfWriter(str(p), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    w.setSignalHeaders([{"label": "ECG I", "dimension": "mV", "sample_frequency": 250,
                         "physical_min": -10.0, "physical_max": 10.0,
                         "digital_min": -32768, "digital_max": 32767}])
    w.writeSamples([np.sin(np.arange(5000) / 20.0)])
    w.close()
    os.truncate(p, p.stat().st_size - 3000)
    code = ("import sys\nfrom edge.sources.recording import open_recording\n"
            "try:\n    open_recording(sys.argv[1])\n"
            "except Exception as e:\n    print(e, file=sys.stderr)\n")
    res = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True,
                         timeout=120)
    assert res.stdout == ""
    assert "cannot read EDF+ file" in res.stderr and "Filesize" in res.stderr
