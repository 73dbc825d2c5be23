"""ASCII codec, synthetic ECG, signals, pacing/faults, virtual serial device, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import serial
from click.testing import CliRunner
from scipy.signal import find_peaks

from firmware_bridge import FrameDecoder
from firmware_bridge.ascii import AdcScale, AsciiDecoder, encode_ascii
from firmware_bridge.cli import device
from firmware_bridge.errors import FirmwareBridgeError, SignalSourceError
from firmware_bridge.faults import Faults, Pacer
from firmware_bridge.signals import load_signal, load_wfdb_lead
from firmware_bridge.synth import synthetic_ecg
from firmware_bridge.virtual_serial import VirtualSerialDevice


def test_ascii_noise_lead_off_and_random_chunking() -> None:
    text = (b"AD8232 ready\r\n512\r\n513\n!\r\n\r\n51x2\r\n-3.5\r\n" + b"9" * 40 + b"\n"
            b"700\r\n2000\r\n")
    offline = AsciiDecoder(valid_range=(0, 1023))
    ref = offline.feed(text)
    assert np.array_equal(ref, [512, 513, np.nan, 700], equal_nan=True)
    assert (offline.samples, offline.lead_off, offline.noise_lines) == (3, 1, 5)
    rng = np.random.default_rng(0)
    for _ in range(20):
        dec, out, i = AsciiDecoder(valid_range=(0, 1023)), [], 0
        while i < len(text):
            j = i + int(rng.integers(1, 8))
            out.append(dec.feed(text[i:j]))
            i = j
        assert np.array_equal(np.concatenate(out), ref, equal_nan=True)
        assert dec.noise_lines == 5


def test_ascii_encode_round_trip_and_truncated_tail() -> None:
    adc = AdcScale()
    counts = adc.mv_to_counts([0.0, 0.5, -0.5, 5.0])
    assert counts[0] == 512 and counts[-1] == 1023  # rails like a real AD8232
    assert np.allclose(adc.counts_to_mv(counts[:3]), [0, 0.5, -0.5], atol=1 / adc.counts_per_mv)
    dec = AsciiDecoder(skip_first_line=True)
    wire = b"12\r\n" + encode_ascii(counts, lead_off=np.array([0, 0, 1, 0], bool)) + b"51"
    assert np.array_equal(dec.feed(wire), [512, counts[1], np.nan, 1023], equal_nan=True)
    dec.finish()
    assert dec.noise_lines == 2  # partial first line and the truncated last one


def test_synthetic_ecg_looks_like_ecg() -> None:
    fs = 250
    x = synthetic_ecg(60, fs, seed=3, heart_rate_bpm=72, hrv=0.05, noise_mv=0.02)
    assert x.shape == (60 * fs,)
    assert np.array_equal(x, synthetic_ecg(60, fs, seed=3, heart_rate_bpm=72))
    peaks, _ = find_peaks(x, height=0.7, distance=int(0.3 * fs))
    rr = np.diff(peaks) / fs
    assert 66 <= 60 / rr.mean() <= 78  # beats at the requested rate
    assert 0.005 < rr.std() < 0.15  # with heart-rate variability (not a fixed period)
    # P before and T after each R: positive bumps in the 0.1-0.3 s windows
    mid = peaks[2:-2]
    p = [x[r - int(0.25 * fs): r - int(0.12 * fs)].max() - x[r - int(0.1 * fs)] for r in mid]
    t = [x[r + int(0.15 * fs): r + int(0.45 * fs)].max() - x[r + int(0.08 * fs)] for r in mid]
    assert np.median(p) > 0.05 and np.median(t) > 0.15
    with pytest.raises(SignalSourceError, match="heart_rate_bpm"):
        synthetic_ecg(10, fs, heart_rate_bpm=5)


def test_faults_validation_and_pacer(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FirmwareBridgeError, match="drop_prob"):
        Faults(drop_prob=1.5)
    with pytest.raises(FirmwareBridgeError, match="speed"):
        Pacer(speed=-1)
    monkeypatch.setattr("firmware_bridge.faults.time.monotonic", lambda: 100.0)
    assert Pacer(speed=2).delay(10.0) == pytest.approx(5.0)
    assert Pacer(speed=1, drift_ppm=1e4).delay(10.1) == pytest.approx(10.0)  # 1% fast clock
    assert Pacer(speed=0).delay(1e6) == 0.0


def _read_all(dev: VirtualSerialDevice) -> bytes:
    """Attach a pyserial reader before streaming starts; read until the device is done."""
    port = serial.Serial(dev.open(), timeout=0.05)
    dev.start()
    chunks = []
    try:
        while True:
            try:
                b = port.read(4096)
            except serial.SerialException:  # device disconnected
                break
            if not b and dev.finished.is_set():
                break
            chunks.append(b)
    finally:
        port.close()
    return b"".join(chunks)


def test_virtual_serial_ecg12_with_faults_counts_every_gap() -> None:
    x = synthetic_ecg(20, 250, seed=1)
    faults = Faults(drop_prob=0.1, corrupt_prob=0.1, garbage_prob=0.1)
    dev = VirtualSerialDevice(x, 250, "ecg12", speed=0, faults=faults, seed=5, loop=False)
    data = _read_all(dev)
    dev.stop()
    assert dev.error is None
    dec = FrameDecoder()
    frames = dec.feed(data) + dec.finish()
    s = dev.stats
    assert s.frames == 200 and s.dropped > 0 and s.corrupted > 0 and s.garbage_bytes > 0
    span = frames[-1].seq - frames[0].seq + 1
    assert dec.lost_frames == span - len(frames) and span - len(frames) >= s.dropped
    assert len(frames) >= s.sent - s.corrupted
    for f in frames:  # every decoded frame carries exactly the signal it claims
        start = f.timestamp_us * 250 // 1_000_000
        expect = np.rint(x[start:start + 25] * 1000)
        assert np.array_equal(f.samples_uv, expect)


def test_virtual_serial_repeated_link_drops_lose_device_time() -> None:
    """--disconnect-every / --offline-s on a pty: the link goes silent while the device keeps
    sampling; the frames' numbers and time stamps say exactly what was lost."""
    x = synthetic_ecg(20, 250, seed=1)
    dev = VirtualSerialDevice(x, 250, "ecg12", speed=0, seed=5, loop=False,
                              faults=Faults(disconnect_every=30, offline_s=0.5,
                                            rate_error=0.02))
    data = _read_all(dev)
    dev.stop()
    dec = FrameDecoder()
    frames = dec.feed(data) + dec.finish()
    seqs = np.array([f.seq for f in frames])
    jumps = np.diff(seqs)[np.diff(seqs) > 1] - 1
    # each drop loses the frame that tripped it plus 0.5 s of frames (5 at 25 samples/frame
    # on a 2 % fast clock: 0.5 s * 255 Hz / 25 = 5.1), never anything else
    assert dev.stats.disconnects >= 4 and set(jumps.tolist()) == {6}
    assert len(frames) + jumps.sum() == seqs[-1] + 1
    for f in frames:  # device time: 25 samples per frame at 255 Hz
        assert abs(f.timestamp_us - round(f.seq * 25 * 1e6 / 255)) <= 1


def test_cli_serve_takes_the_clock_and_link_faults() -> None:
    runner = CliRunner()
    for args, word in ((["--rate-error", "0.5"], "rate_error"),
                       (["--replay", "1.5"], "replay_prob"),
                       (["--timestamp-corrupt", "-1"], "timestamp_corrupt_prob"),
                       (["--disconnect-every", "0"], "disconnect_every"),
                       (["--offline-s", "-1"], "--offline-s"),
                       (["--fs", "1e9"], "--fs"), (["--fs", "nan"], "--fs"),
                       (["--seed", "-1"], "--seed")):
        res = runner.invoke(device, ["serve", *args])
        assert res.exit_code != 0 and word in res.output and "Traceback" not in res.output
    help_text = runner.invoke(device, ["serve", "--help"]).output
    assert all(o in help_text for o in ("--rate-error", "--replay", "--timestamp-corrupt",
                                        "--disconnect-every", "--offline-s"))


def test_virtual_serial_ascii_and_disconnect() -> None:
    x = synthetic_ecg(4, 250, seed=2)
    dev = VirtualSerialDevice(x, 250, "ascii", speed=0, faults=Faults(disconnect_after=30),
                              loop=True)
    data = _read_all(dev)
    assert dev.stats.disconnected and dev.wait(1)
    dev.stop()
    dec = AsciiDecoder(valid_range=(0, 1023))
    values = dec.feed(data)
    # a hang-up may discard what the reader had not yet taken: a prefix, never garbage
    assert len(values) <= 30 * 25 and dec.noise_lines <= 1
    assert np.array_equal(values[:-1], AdcScale().mv_to_counts(x[:750])[:max(len(values) - 1, 0)])


def test_device_rejects_bad_arguments() -> None:
    with pytest.raises(FirmwareBridgeError, match="format"):
        VirtualSerialDevice(np.zeros(10), 250, "csv")  # type: ignore[arg-type]
    with pytest.raises(FirmwareBridgeError, match="integer fs_hz"):
        VirtualSerialDevice(np.zeros(10), 250.5, "ecg12")
    with pytest.raises(SignalSourceError, match="not found"):
        load_signal("/nonexistent/rec.hea")


@pytest.mark.needs_data
def test_signal_from_wfdb_recording(data_root) -> None:  # noqa: ANN001
    hea = sorted((data_root / "ptbxl" / "records100").rglob("*.hea"))[0]
    x, fs = load_wfdb_lead(hea, "i")
    assert fs == 100 and x.ndim == 1 and x.size == 1000 and np.abs(x).max() < 20
    with pytest.raises(SignalSourceError, match="no lead 'X9'"):
        load_wfdb_lead(hea, "X9")


def test_cli_spec_and_serve_errors() -> None:
    runner = CliRunner()
    res = runner.invoke(device, ["spec"])
    assert res.exit_code == 0 and res.output.strip().endswith("SPEC.md")
    assert "CRC-32" in runner.invoke(device, ["spec", "--show"]).output
    res = runner.invoke(device, ["serve", "--signal", "/nope.hea"])
    assert res.exit_code != 0 and "WFDB header not found" in res.output
    res = runner.invoke(device, ["serve", "--drop", "2"])
    assert res.exit_code != 0 and "drop_prob" in res.output
