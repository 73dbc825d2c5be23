"""Provenance beside leads.csv (leads.meta.json) and in WFDB headers, unit-named features in
summary.json, the periodic status line off a terminal, and HR/QRS across bridged gaps."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_commands import EchoModel

from edge.cli import main
from edge.commands import run_session
from edge.sinks.csv import COLUMNS, read_csv
from edge.sinks.recorder import Recorder
from edge.sources import open_source


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    pytest.importorskip("tensorflow")
    from bundle_fixture import tiny_bundle_dir

    return tiny_bundle_dir(tmp_path_factory)


def test_provenance_in_meta_sidecar_and_wfdb_header(tiny_bundle, tmp_path: Path) -> None:
    import wfdb

    out = tmp_path / "run"
    prof = tmp_path / "p.json"
    prof.write_text(json.dumps({"age": 61, "sex": "F"}))
    res = CliRunner().invoke(main, ["demo", "--bundle", str(tiny_bundle), "--out", str(out),
                                    "--seconds", "12", "--format", "wfdb", "--quiet",
                                    "--mc-samples", "3", "--seed", "7", "--profile", str(prof)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    meta = json.loads((out / "leads.meta.json").read_text())
    prov = summary["provenance"]
    want = {"ecg12_version": prov["ecg12_version"], "bundle": prov["bundle"]["name"],
            "bundle_manifest_sha256": prov["bundle"]["manifest_sha256"], "mc_samples": "3",
            "seed": "7", "metadata_given": "age=61,sex=F", "personalized": "no"}
    assert len(want["bundle_manifest_sha256"]) == 64
    assert {k: meta["header"][k] for k in want} == want
    assert meta["columns"] == list(COLUMNS) and meta["units"]["V1"] == "mV"
    assert meta["rows"] == summary["rows_out"] and meta["provenance"]["end_utc"]
    assert summary["files"]["meta"].endswith("leads.meta.json")
    for rec in ("ecg12", "ecg12_std"):
        comments = wfdb.rdheader(str(out / rec)).comments
        got = dict(c.split(": ", 1) for c in comments)
        assert {k: got[k] for k in want} == want, comments
    # the CSV keeps one plain header line: every reader of leads.csv still takes it
    assert (out / "leads.csv").read_text().splitlines()[0] == ",".join(COLUMNS)
    assert len(read_csv(out / "leads.csv")[0]) == summary["rows_out"]
    # features as users see them carry their units; qrs_count is per 10 s window
    assert set(summary["features"]) <= {"ventricular_rate_bpm", "qrs_count_per_10s_window",
                                        "qrs_duration_ms"}
    assert summary["feature_units"]["qrs_count_per_10s_window"] == "beats per 10 s window"


def _status_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("t=")]


def test_status_line_every_n_seconds_off_a_terminal(tiny_bundle, tmp_path: Path) -> None:
    args = ["demo", "--bundle", str(tiny_bundle), "--seconds", "12", "--speed", "12"]
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a"), "--status-every",
                                    "0.2"])
    assert res.exit_code == 0, res.output
    lines = _status_lines(res.stdout)  # CliRunner's stdout is not a terminal
    assert len(lines) >= 3, res.stdout  # ~1 s of wall time
    assert "HR " in lines[-1] and "/10s window" in lines[-1]
    quiet = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "b"), "--status-every",
                                      "0.2", "--quiet"])
    assert quiet.exit_code == 0 and not _status_lines(quiet.stdout)
    ev = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "c"), "--status-every",
                                   "0.2", "--events", "-", "--quiet"])
    assert ev.exit_code == 0 and all(ln.startswith("{") for ln in ev.stdout.splitlines())
    bad = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "d"), "--status-every",
                                    "-1"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output and "--status-every" in \
        bad.output


def test_hr_and_qrs_survive_bridged_gaps(tmp_path: Path) -> None:
    """5 % of 0.1 s chunks lost (a gap every ~2 s): HR and QRS are still estimated."""
    src = open_source("sim:?duration=40&speed=0&drop=0.05&seed=4&chunk=0.1&hr=72")
    rec = Recorder(tmp_path, figure=False)
    summary = asyncio.run(run_session(src, EchoModel(), rec))
    assert summary["gaps"] >= 8 and max(g["duration_s"] for g in rec.gaps) <= 1.0
    assert summary["features"]["ventricular_rate_bpm"] == pytest.approx(72, abs=4)
    assert "qrs_duration_ms" in summary["features"]
    events = [json.loads(ln) for ln in (tmp_path / "events.ndjson").read_text().splitlines()]
    assert sum(e["type"] == "features" for e in events) >= 2
