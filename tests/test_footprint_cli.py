"""Footprint of the gateway command line (issue #16): peak RSS of `ecg12 stream` with the
shipped bundle, and no scipy / pandas / matplotlib (or TensorFlow) on the streaming path.

Each test runs a fresh child process: what a module import costs can only be seen there.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks import footprint

pytest.importorskip("ai_edge_litert")

LIMIT_MB = 150.0  # issue #16 (target 120 MB)

# The CLI run in a child, as `ecg12 stream`: the heavy packages loaded when the report starts
# (the streaming part is over) and at the end; the report may import matplotlib, no more.
_TRACE = r"""
import json, sys
import edge.sinks.report as report
heavy = sys.argv[1].split(",")
seen = {}
def mods():
    return sorted(m for m in sys.modules if m.split(".")[0] in heavy)
orig = report.write_report
def write_report(rec):
    seen["before_report"] = mods()
    return orig(rec)
report.write_report = write_report
from edge.cli import main
try:
    main(sys.argv[2:], standalone_mode=False)
finally:
    seen["end"] = mods()
    print(json.dumps(seen))
"""


def test_cli_stream_30s_peak_rss_within_limit() -> None:
    res = footprint.cli_peak_rss(None, stream_s=30.0, file_hours=None)
    rss = res["stream"]["peak_rss_mb"]
    assert 30.0 < rss <= LIMIT_MB, res  # > 30 MB: python + numpy + LiteRT, i.e. measured


def test_cli_stream_imports_nothing_heavy_before_the_report(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _TRACE, ",".join(footprint.HEAVY), "stream", "--source",
         "sim:?duration=12&speed=0", "--out", str(tmp_path / "o"), "--quiet"],
        capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["before_report"] == [], seen  # the whole streaming part
    assert {m.split(".")[0] for m in seen["end"]} <= {"matplotlib"}, seen  # report only
    assert (tmp_path / "o" / "report.png").stat().st_size > 10_000


def test_pipeline_and_recorder_import_nothing_heavy() -> None:
    assert footprint.gateway_modules(None) == []


def test_long_csv_helper_writes_the_time_line(tmp_path) -> None:
    p = footprint.write_long_csv(tmp_path / "x.csv", hours=1 / 3600 * 2.5)  # 2.5 s
    lines = p.read_text().splitlines()
    assert lines[0] == "t_s,I" and len(lines) == 1 + 325  # 2.5 s x 130 Hz
    assert [float(v.split(",")[0]) for v in lines[1:3]] == [0.0, round(1 / 130, 6)]
