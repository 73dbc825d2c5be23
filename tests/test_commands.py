"""Commands: session loop (fake model), clean shutdown on cancel and SIGINT, demo CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from edge.commands import run_session
from edge.sinks import read_csv
from edge.sinks.recorder import Recorder
from edge.sources import open_source


@dataclass
class Blk:
    t0_s: float
    fs_hz: float
    leads: np.ndarray
    std: np.ndarray
    flags: list = field(default_factory=list)


class EchoModel:
    """Stands in for the bundle: Lead I copied to 12 leads, std 0.1, flush emits nothing."""

    def streaming(self, fs, metadata, mc_samples, seed, **kw):
        class Rec:
            def push(self, c):
                x = c.samples[:, :1].repeat(12, 1)
                return [Blk(c.t0_s, c.fs_hz, x, np.full_like(x, 0.1))]

            def push_many(self, cs):
                return [b for c in cs for b in self.push(c)]

            def check(self, c):
                pass

            def quiet_samples(self):
                return 0, 0, 0  # push every chunk at once

            def flush(self):
                return []

        return Rec()


def test_session_writes_every_received_sample_and_marks_gaps(tmp_path) -> None:
    src = open_source("sim:?duration=8&speed=0&drop=0.2&seed=2&chunk=0.25")
    rec = Recorder(tmp_path, figure=False)
    summary = asyncio.run(run_session(src, EchoModel(), rec))
    t, leads, _ = read_csv(tmp_path / "leads.csv")
    n_nan = int(np.isnan(leads[:, 0]).sum())
    assert summary["gaps"] > 0 and n_nan == round(summary["gap_s"] * 250)
    assert len(t) == summary["samples_in"] + n_nan
    assert not summary["interrupted"]


def test_cancel_mid_stream_leaves_complete_valid_outputs(tmp_path) -> None:
    src = open_source("sim:?duration=60&speed=20&chunk=0.1")
    rec = Recorder(tmp_path, figure=False)

    async def main():
        task = asyncio.create_task(run_session(src, EchoModel(), rec))
        await asyncio.sleep(0.5)
        task.cancel()
        return await task

    summary = asyncio.run(main())
    assert summary["interrupted"]
    t, leads, std = read_csv(tmp_path / "leads.csv")
    assert len(t) == summary["samples_in"] > 0 and np.isfinite(leads).all()
    last = json.loads((tmp_path / "events.ndjson").read_text().splitlines()[-1])
    assert last["type"] == "summary" and last["rows_out"] == len(t)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    pytest.importorskip("tensorflow")
    from bundle_fixture import tiny_bundle_dir

    return tiny_bundle_dir(tmp_path_factory)  # cached: shared with the other edge tests


def test_demo_cli_with_bundle(tiny_bundle, tmp_path) -> None:
    from click.testing import CliRunner

    from edge.cli import main

    out = tmp_path / "demo"
    res = CliRunner().invoke(main, ["demo", "--bundle", str(tiny_bundle), "--out", str(out),
                                    "--seconds", "12", "--format", "wfdb", "--quiet"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_out"] == 12 * 250 and summary["errors"] == []
    assert (out / "report.png").is_file() and (out / "ecg12.hea").is_file()
    _, leads, std = read_csv(out / "leads.csv")
    assert np.isfinite(leads).all() and np.isfinite(std[:, 1:]).all()


def test_stream_flat_signal_and_drops_are_flagged(tiny_bundle, tmp_path) -> None:
    from click.testing import CliRunner

    from edge.cli import main

    res = CliRunner().invoke(main, [
        "stream", "--source", "sim:?duration=20&speed=0&flat=8:12&drop=0.05&seed=5",
        "--bundle", str(tiny_bundle), "--out", str(tmp_path), "--quiet", "--events", "-"])
    assert res.exit_code == 0, res.output
    events = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    kinds = {e["type"] for e in events}
    assert {"start", "gap", "summary"} <= kinds
    flags = [e for e in events if e["type"] == "flag"]
    assert any(f["kind"] == "gap" for f in flags)
    assert any(f["kind"] == "poor_quality" and f["start_s"] < 12 and f["end_s"] > 8
               for f in flags)


def test_bad_source_and_profile_are_click_errors(tmp_path) -> None:
    from click.testing import CliRunner

    from edge.cli import main

    res = CliRunner().invoke(main, ["stream", "--source", "sim:?hr=abc", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "bad value for hr" in res.output
    (tmp_path / "p.json").write_text('{"age": -4}')
    res = CliRunner().invoke(main, ["stream", "--profile", str(tmp_path / "p.json")])
    assert res.exit_code != 0 and "age" in res.output


def test_sigint_stops_cleanly(tiny_bundle, tmp_path) -> None:
    out = tmp_path / "run"
    # as in a terminal: Ctrl-C is not ignored (a shell without job control starts background
    # jobs, and so this test's whole process tree, with SIGINT ignored, which a child keeps)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "stream", "--source", "sim:?speed=4",
         "--bundle", str(tiny_bundle), "--out", str(out), "--quiet"],
        cwd=os.path.dirname(os.path.dirname(__file__)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    csv = out / "leads.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if csv.is_file() and csv.stat().st_size > 20000:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130, -signal.SIGINT), err.decode()[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"]
    t, leads, _ = read_csv(csv)
    assert len(t) == summary["rows_out"] == summary["samples_in"] > 0


@pytest.mark.parametrize("uri", ["sim:?speed=0&drop=0.3&seed=3",  # gaps: 30 % of chunks lost
                                 "sim:?speed=0&chunk=20"])  # chunks longer than the rest
def test_duration_is_signal_time_gaps_included(uri, tmp_path) -> None:
    """--duration 30 at the sim's 250 Hz: the output spans 30 s (7500 rows, gaps as NaN
    rows), to within one chunk short (a lost last chunk), never more."""
    src = open_source(uri)
    chunk_n = src.chunk_n
    summary = asyncio.run(run_session(src, EchoModel(), Recorder(tmp_path, figure=False),
                                      duration_s=30.0))
    t, _, _ = read_csv(tmp_path / "leads.csv")
    assert 30 * 250 - chunk_n <= len(t) == summary["rows_out"] <= 30 * 250
    assert 30 - chunk_n / 250 <= summary["signal_s"] <= 30.0
    assert not summary["interrupted"]


def test_stream_duration_with_losses_cli(tiny_bundle, tmp_path) -> None:
    from click.testing import CliRunner

    from edge.cli import main

    res = CliRunner().invoke(main, [
        "stream", "--source", "sim:?speed=0&drop=0.3&seed=3", "--duration", "30",
        "--bundle", str(tiny_bundle), "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["gap_s"] > 0 and 29.8 - 1e-9 <= summary["signal_s"] <= 30.0


@pytest.mark.parametrize("query, needle", [("chunk=1e9", "chunk=1e+09 s must be at most 60 s"),
                                           ("drop=0.999", "drop=0.999 must be a probability")])
def test_unbounded_sim_options_are_one_line_errors(query, needle, tmp_path) -> None:
    """These used to hang (a chunk a minute; a link that never delivers): now refused
    before anything runs."""
    cmd = [sys.executable, "-m", "edge.cli", "stream", "--source", f"sim:?{query}",
           "--duration", "10", "--out", str(tmp_path / "o")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert res.returncode != 0 and "Traceback" not in res.stderr
    lines = [x for x in res.stderr.splitlines() if x.startswith("Error")]
    assert len(lines) == 1 and needle in lines[0], res.stderr[-2000:]
    assert not (tmp_path / "o").exists()


def test_a_failed_rerun_keeps_the_earlier_results_and_a_good_one_replaces_them(
        tiny_bundle, tmp_path) -> None:
    from click.testing import CliRunner

    from edge.cli import main

    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["demo", "--bundle", str(tiny_bundle), "--out", str(out),
                                    "--seconds", "12", "--format", "wfdb", "--quiet"])
    assert res.exit_code == 0, res.output
    (out / "mine.txt").write_text("the user's own file")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"leads.csv", "summary.json", "events.ndjson", "ecg12.hea"} <= set(before)
    res = CliRunner().invoke(main, ["stream", "--source", "sim:?speed=0", "--duration", "0.05",
                                    "--bundle", str(tiny_bundle), "--out", str(out), "--quiet"])
    assert res.exit_code != 0 and "no reconstruction" in res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing lost or left
    res = CliRunner().invoke(main, ["stream", "--source", "sim:?speed=0&seed=3", "--duration",
                                    "12", "--bundle", str(tiny_bundle), "--out", str(out),
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(after) == set(before)  # no files moved aside are left behind
    assert after["leads.csv"] != before["leads.csv"]  # this run's own output
    assert after["ecg12.hea"] == before["ecg12.hea"]  # not written by this csv run: kept
    assert after["mine.txt"] == before["mine.txt"]


@pytest.mark.parametrize(("missing", "gap"), [(slice(0, 2500), (0.0, 10.0)),
                                              (slice(6250, 7500), (25.0, 30.0))])
def test_missing_samples_at_a_files_start_or_end_are_a_gap_on_its_own_time_line(
        tiny_bundle, tmp_path, missing, gap) -> None:
    """Empty cells at the start (end) of a CSV: NaN rows and a gap there, the rest at the
    file's own times (not moved to t = 0, not cut off)."""
    from click.testing import CliRunner

    from benchmarks.bad_inputs import _csv, ecg
    from edge.cli import main

    t = np.arange(7500) / 250.0
    x = ecg(7500)
    x[missing] = np.nan
    _csv(tmp_path / "in.csv", {"t_s": t, "I": x})
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["reconstruct", str(tmp_path / "in.csv"), "--bundle",
                                    str(tiny_bundle), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    tt, leads, _ = read_csv(out / "leads.csv")
    np.testing.assert_allclose(tt, t, atol=1e-3)  # every row of the file, at its time
    np.testing.assert_array_equal(np.isnan(leads[:, 0]), np.isnan(x))
    ok = np.isfinite(x)
    lags = range(-25, 26)  # output Lead I is the input's, band-passed: no shift
    cc = [np.corrcoef(np.roll(leads[:, 0], k)[ok][50:-50], x[ok][50:-50])[0, 1] for k in lags]
    assert list(lags)[int(np.argmax(cc))] == 0 and max(cc) > 0.9
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_out"] == 7500 and summary["gaps"] == 1
    assert summary["gap_s"] == pytest.approx(gap[1] - gap[0], abs=0.01)
    events = [json.loads(line) for line in (out / "events.ndjson").read_text().splitlines()]
    flags = [e for e in events if e["type"] == "flag" and e["kind"] == "gap"]
    assert [(round(f["start_s"], 2), round(f["end_s"], 2)) for f in flags] == [gap]


def test_duration_counts_from_the_files_start_missing_samples_included(tiny_bundle,
                                                                      tmp_path) -> None:
    from click.testing import CliRunner

    from benchmarks.bad_inputs import _csv, ecg
    from edge.cli import main

    x = ecg(7500)
    x[:2500] = np.nan  # 10 s missing at the start
    _csv(tmp_path / "in.csv", {"t_s": np.arange(7500) / 250.0, "I": x})
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["stream", "--source", f"file:{tmp_path / 'in.csv'}",
                                    "--duration", "20", "--bundle", str(tiny_bundle), "--out",
                                    str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    t, leads, _ = read_csv(out / "leads.csv")
    assert len(t) == 20 * 250 and t[0] == 0.0  # 20 s of the file's time line, from its start
    assert np.isnan(leads[:2500, 0]).all() and np.isfinite(leads[2600:, 0]).all()
