"""Signals: SIGTERM stops a run as cleanly as Ctrl-C (summary.json `interrupted`, report,
every received sample written); a CSV writer killed with SIGKILL never leaves a torn row;
a long file streams from disk in blocks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from edge.sinks import read_csv
from edge.sinks.csv import COLUMNS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    pytest.importorskip("tensorflow")
    from bundle_fixture import tiny_bundle_dir

    return tiny_bundle_dir(tmp_path_factory)


def _wait_for(path: Path, size: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.stat().st_size > size:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} never grew past {size} bytes")


def test_sigterm_finishes_like_ctrl_c(tiny_bundle, tmp_path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "stream", "--source", "sim:?speed=4",
         "--bundle", str(tiny_bundle), "--out", str(out), "--quiet"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(out / "leads.csv", 20000)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["signal"] == "SIGTERM"
    assert (out / "report.png").is_file()
    t, leads, _ = read_csv(out / "leads.csv")
    # the tail is flushed: every sample received is a row (none dropped at the stop)
    assert len(t) == summary["rows_out"] == summary["samples_in"] > 0
    assert np.isfinite(leads[:, 0]).all()


_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from edge.sinks.csv import CsvSink

    class B:
        def __init__(self, t0, i, n):
            self.t0_s, self.fs_hz, self.flags = t0, 250.0, []
            self.leads = np.full((n, 12), i % 10 + 0.123456, np.float32)
            self.std = np.full((n, 12), 0.5, np.float32)

    sink = CsvSink(sys.argv[1])
    print("ready", flush=True)
    i, t0 = 0, 0.0
    while True:  # blocks of 0.1-0.3 s, as the pipeline emits them
        n = 25 + (i * 37) % 50
        sink.write(B(t0, i, n))
        i, t0 = i + 1, t0 + n / 250.0
""")


def test_sigkill_of_the_csv_writer_leaves_whole_rows(tmp_path) -> None:
    for k in range(12):
        path = tmp_path / f"k{k}.csv"
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], cwd=REPO,
                                stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(0.05 + 0.037 * k)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        text = path.read_bytes().decode()
        lines = text.splitlines()
        if not text.endswith("\n"):
            # the kernel may cut one write() short when the writer is SIGKILLed mid-block:
            # only the last line can be partial, and read_csv drops it
            lines = lines[:-1]
        assert lines[0] == ",".join(COLUMNS)
        assert all(len(line.split(",")) == len(COLUMNS) for line in lines[1:])
        t, _, _ = read_csv(path)
        assert len(t) == len(lines) - 1
        np.testing.assert_allclose(np.diff(t), 1 / 250.0, atol=1e-4)  # no row lost inside


def test_long_file_streams_in_blocks(tmp_path, monkeypatch) -> None:
    """The file source never holds more than one block of the file."""
    import asyncio

    import edge.sources.recording as recording
    from edge.sources import open_source

    n = 130 * 600  # 10 min at 130 Hz
    p = tmp_path / "long.csv"
    x = np.sin(np.arange(n) / 9.0)
    p.write_text("I\n" + "".join(f"{v:.4f}\n" for v in x))
    monkeypatch.setattr(recording, "BLOCK_S", 30.0)
    src = open_source(str(p), fs=130.0)
    sizes: list[int] = []
    real_blocks = src.recording.blocks

    def spy(block_n=None):
        for start, b in real_blocks(block_n):
            sizes.append(len(b))
            yield start, b

    monkeypatch.setattr(src.recording, "blocks", spy)

    async def drain() -> int:
        total = 0
        async for c in src:
            total += c.n
        return total

    assert asyncio.run(drain()) == n
    assert len(sizes) == 20 and max(sizes) == 130 * 30


def test_reader_peak_memory_is_bounded(tmp_path) -> None:
    """Reading a 2 h file in blocks peaks at well under its size in float64."""
    code = textwrap.dedent(f"""
        import resource, sys
        import numpy as np
        import wfdb
        n = 130 * 7200
        x = (np.sin(np.arange(n) / 9.0) * 1000).astype(np.int16)[:, None]
        wfdb.wrsamp("long", fs=130, units=["mV"], sig_name=["I"], d_signal=x, fmt=["16"],
                    adc_gain=[1000.0], baseline=[0], write_dir={str(tmp_path)!r})
        del x
        from edge.sources.recording import open_recording
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rec = open_recording({str(tmp_path / 'long.hea')!r})
        total = 0
        for start, b in rec.blocks():
            total += len(b)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(total, (after - before) / 1024)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    total, grew_mb = res.stdout.split()
    assert int(total) == 130 * 7200
    assert float(grew_mb) < 30  # the whole record in float64 would be 7.5 MB x 4 copies


def _stop_fast_run(tiny_bundle: Path, out: Path, args: list[str], sig: int) -> dict:
    """Start `ecg12 ARGS` on a source that never waits (speed 0), send `sig` once output is
    being written, and return summary.json: the run must stop within seconds (it would
    otherwise run to the end of 100000 s of signal, or forever)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", *args, "--bundle", str(tiny_bundle),
         "--out", str(out), "--quiet"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    try:
        _wait_for(out / "leads.csv", 200_000)
        proc.send_signal(sig)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert time.monotonic() - sent < 30
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["signal"] == signal.Signals(sig).name
    t, _, _ = read_csv(out / "leads.csv")
    assert len(t) == summary["rows_out"] == summary["samples_in"] > 0
    return summary


def test_sigint_stops_a_demo_that_runs_as_fast_as_possible(tiny_bundle, tmp_path) -> None:
    summary = _stop_fast_run(tiny_bundle, tmp_path / "run", ["demo", "--seconds", "100000"],
                             signal.SIGINT)
    assert summary["rows_out"] < 100000 * 250


def test_sigterm_stops_an_endless_speed_0_stream(tiny_bundle, tmp_path) -> None:
    _stop_fast_run(tiny_bundle, tmp_path / "run", ["stream", "--source", "sim:?speed=0"],
                   signal.SIGTERM)


def test_double_ctrl_c_early_keeps_what_was_reconstructed(tiny_bundle, tmp_path) -> None:
    """Two Ctrl-Cs 20 ms apart, after one window of signal but (about) before the first
    output block: the second must not abort the flush (and the folder be removed)."""
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "stream", "--source", "sim:",
         "--bundle", str(tiny_bundle), "--out", str(out), "--quiet"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    try:
        _wait_for(out / "events.ndjson", 0)  # the first chunk has arrived
        time.sleep(2.6)  # > one window of the tiny bundle (2 s)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err and b"Error" not in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["signal"] == "SIGINT"
    t, leads, _ = read_csv(out / "leads.csv")
    assert len(t) == summary["rows_out"] == summary["samples_in"] >= 2 * 250
    assert np.isfinite(leads[:, 0]).all()
