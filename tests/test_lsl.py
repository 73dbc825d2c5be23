"""`--publish lsl:`: three LSL outlets checked by inlets in this process (labels, units, rate,
values = the pipeline's blocks, time stamps from the input's time line, gaps as NaN), the
option's one-line errors, and mne-lsl imported only when asked for."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from test_commands import EchoModel

from edge.commands import run_session
from edge.leads import LEADS
from edge.sinks.csv import read_csv
from edge.sinks.lsl import LslOutlet, LslTarget, parse_lsl_url
from edge.sinks.recorder import Recorder
from edge.sinks.tap import attach
from edge.sources import open_source

REPO = Path(__file__).resolve().parents[1]

try:
    from mne_lsl import lsl as _lsl
except ImportError:  # outside CI: skip; under CI (needs_tools) a skip fails the session
    _lsl = None
NO_LSL = "mne-lsl is not installed (pip install -e '.[lsl]', or '.[dev]' as CI does)"


class _Capture:
    """A tap keeping the blocks the pipeline produced."""

    def __init__(self) -> None:
        self.blocks: list[Any] = []

    def on_chunk(self, chunk: Any, recorder: Any) -> None:
        pass

    def on_blocks(self, blocks: list[Any], recorder: Any) -> None:
        self.blocks.extend(b for b in blocks if len(b.leads))


def _inlet(name: str) -> Any:
    found = _lsl.resolve_streams(timeout=5.0, name=name)
    assert len(found) == 1, f"LSL stream {name!r} not found (or more than one): {found}"
    inlet = _lsl.StreamInlet(found[0], max_buffered=60)
    inlet.open_stream(timeout=5.0)
    return inlet


def _pull(inlet: Any, n: int, timeout_s: float = 5.0) -> tuple[Any, np.ndarray]:
    rows: list[Any] = []
    stamps: list[float] = []
    deadline = time.monotonic() + timeout_s
    while len(stamps) < n and time.monotonic() < deadline:
        data, ts = inlet.pull_chunk(timeout=0.2, max_samples=4096)
        if len(ts):
            rows.extend(list(data))
            stamps.extend(ts.tolist())
    return rows, np.asarray(stamps)


@pytest.mark.needs_tools
@pytest.mark.skipif(_lsl is None, reason=NO_LSL)
def test_lsl_streams_carry_the_pipeline_blocks(tmp_path: Path) -> None:
    name = f"ecg12t{os.getpid()}"
    src = open_source("sim:?duration=6&speed=0&drop=0.1&seed=3&chunk=0.25")
    rec = Recorder(tmp_path, figure=False)
    tap, cap = LslOutlet(LslTarget(name), "gw-test", source=src), _Capture()

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        await tap.start(rec)  # the input rate is known: the outlets exist before any sample
        with ThreadPoolExecutor(3) as pool:  # opening an inlet takes ~0.5 s
            keys = ("", "-std", "-events")
            inlets = dict(zip(keys, pool.map(lambda k: _inlet(name + k), keys), strict=True))
        attach(rec, [tap, cap])  # type: ignore[list-item]
        summary = await run_session(src, EchoModel(), rec)
        n = rec.csv.rows
        got = {k: _pull(inlets[k], n) for k in ("", "-std")}
        got["-events"] = _pull(inlets["-events"], 10**6, timeout_s=0.5)
        got["info"] = {k: inlets[k].get_sinfo() for k in inlets}
        await tap.stop(summary)
        return summary, got

    summary, got = asyncio.run(main())
    assert summary["gaps"] > 0  # the simulator dropped frames: holes between blocks
    info = got["info"][""]
    assert info.n_channels == 12 and info.sfreq == 250.0 and info.stype == "ECG"
    assert info.get_channel_names() == list(LEADS)
    assert info.get_channel_units() == ["mV"] * 12
    assert info.get_channel_types() == ["ECG"] * 12
    assert info.source_id == f"ecg12-gw-test-{name}-leads"
    sinfo = got["info"]["-std"]
    assert sinfo.get_channel_names() == [f"std_{lead}" for lead in LEADS]
    assert sinfo.n_channels == 12 and sinfo.sfreq == 250.0
    assert got["info"]["-events"].stype == "Markers"

    # every row of leads.csv, NaN rows for the gaps included, in order, on the input's time line
    t, leads, std = read_csv(tmp_path / "leads.csv")
    x, ts = np.asarray(got[""][0], np.float32), got[""][1]
    s, ts_std = np.asarray(got["-std"][0], np.float32), got["-std"][1]
    assert x.shape == leads.shape and s.shape == std.shape
    assert int(np.isnan(x[:, 0]).sum()) == int(np.isnan(leads[:, 0]).sum()) > 0
    np.testing.assert_allclose(x, leads, atol=1e-4)  # the CSV has 4 decimals
    np.testing.assert_allclose(s, std, atol=1e-4)
    np.testing.assert_allclose(np.diff(ts), 1 / 250.0, atol=1e-6)
    np.testing.assert_array_equal(ts, ts_std)
    np.testing.assert_allclose(ts - ts[0], t - t[0], atol=1e-6)
    # stamped from the blocks' t0_s (one offset for the session), not when they were pushed
    b = cap.blocks[len(cap.blocks) // 2]
    k = int(round((b.t0_s - rec.origin_s) * 250.0))
    np.testing.assert_allclose(ts[k], b.t0_s + tap.offset_s, atol=1e-6)
    np.testing.assert_array_equal(x[k:k + len(b.leads)], np.asarray(b.leads, np.float32))
    np.testing.assert_array_equal(s[k:k + len(b.leads)], np.asarray(b.std, np.float32))

    events = [json.loads(row[0]) for row in got["-events"][0]]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds.count("gap") == summary["gaps"]
    gap = next(e for e in events if e["type"] == "gap")
    i = next(j for j, e in enumerate(events) if e["type"] == "gap")
    assert got["-events"][1][i] == pytest.approx(rec.origin_s + gap["start_s"] + tap.offset_s)


def test_lsl_url() -> None:
    from edge.sinks.csv import SinkError

    assert parse_lsl_url("lsl:") == LslTarget("ecg12")
    assert parse_lsl_url("lsl:?name=ward-3") == LslTarget("ward-3")
    for bad in ("lsl:?rate=3", "lsl:?name=", "lsl:?name=a b", "lsl://host", "lsl:?name"):
        with pytest.raises(SinkError):
            parse_lsl_url(bad)


@pytest.mark.parametrize("url, words", [("lsl:?rate=3", "unknown option 'rate'"),
                                        ("udp://x", "lsl:[?name=NAME]"),
                                        ("lsl:?name=a/b", "name 'a/b'")])
def test_bad_lsl_option_is_one_line(tmp_path: Path, url: str, words: str) -> None:
    from edge.cli import main

    r = CliRunner().invoke(main, ["stream", "--publish", url, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert words in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()


def test_missing_mne_lsl_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.cli import main

    monkeypatch.setitem(sys.modules, "mne_lsl", None)  # import mne_lsl -> ImportError
    r = CliRunner().invoke(main, ["stream", "--publish", "lsl:", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "pip install 'ecg12[lsl]'" in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "o").exists()


def test_mne_lsl_is_imported_only_for_lsl() -> None:
    code = ("import sys, edge.cli, edge.commands, edge.fieldkit, edge.sinks.lsl, "
            "edge.sinks.tap; from edge.cli import main; "
            "from click.testing import CliRunner; CliRunner().invoke(main, ['stream', '--help']);"
            "print('mne_lsl' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=60)
    assert r.stdout.strip() == "False", r.stderr[-2000:]
