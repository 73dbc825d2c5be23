"""The clinical report measured as a picture (ECG paper conventions: 25 mm/s, 10 mm/mV, 1 mm
and 5 mm grid, 1 mV x 200 ms calibration pulse), its header, and summary.json provenance.

At 254 dpi one millimetre of paper is exactly 10 pixels (254 / 25.4), so every expected
distance below follows from the paper standard, not from the drawing code.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DPI = 254.0
PX_PER_MM = DPI / 25.4  # = 10
FS = 500.0
LEAD = {n: i for i, n in enumerate(
    ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"])}


def _signal() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.arange(int(10 * FS)) / FS
    leads = np.zeros((len(t), 12), np.float32)
    std = np.zeros_like(leads)
    leads[(t >= 1.0) & (t < 1.5), LEAD["I"]] = 1.0  # 1 mV step, 500 ms
    for s in (6.0, 7.0):  # lead II: two 1.5 mV spikes 1 s apart (rhythm strip)
        leads[(t >= s) & (t < s + 0.004), LEAD["II"]] = 1.5
    leads[(t >= 5.5) & (t < 5.504), LEAD["V2"]] = 3.0  # a tall R wave: drawn whole
    return t, leads, std


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    import matplotlib.image as mpimg

    from edge.sinks.figure import report_figure

    t, leads, std = _signal()
    p = report_figure(tmp_path_factory.mktemp("rep") / "r.png", t, leads, std, [],
                      header={"hr_bpm": 72}, start_s=0.0, dpi=DPI)
    return mpimg.imread(p)[:, :, :3]


def _black(img: np.ndarray) -> np.ndarray:
    return img.max(axis=2) < 0.35


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of True runs in a 1-D mask."""
    d = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True))


def test_paper_size_and_grid_spacing(picture: np.ndarray) -> None:
    h, w, _ = picture.shape
    assert (w, h) == (round(297 * PX_PER_MM), round(210 * PX_PER_MM))  # A4 landscape
    # a horizontal scan line across the paper, between two rows of traces
    line = picture[int(h * 0.5) - 3]
    redness = line[:, 0] - line[:, 1]  # grid lines are red/pink, paper white, traces black
    centers = np.array([(a + b - 1) / 2 for a, b in _runs(redness > 0.08)])
    minor = np.diff(centers)
    assert len(centers) > 200
    assert np.median(minor) == pytest.approx(PX_PER_MM, abs=0.6)  # 1 mm
    assert np.percentile(np.abs(minor - PX_PER_MM), 95) < 1.5
    major = np.array([(a + b - 1) / 2 for a, b in _runs(redness > 0.3)])
    assert len(major) > 40
    assert np.median(np.diff(major)) == pytest.approx(5 * PX_PER_MM, abs=1.0)  # 5 mm


def _trace_y(img: np.ndarray, x: int, y_lo: int, y_hi: int) -> list[tuple[int, int]]:
    return [(y_lo + a, y_lo + b) for a, b in _runs(_black(img[y_lo:y_hi, x:x + 1])[:, 0])]


def test_one_millivolt_is_ten_millimetres_and_speed_25(picture: np.ndarray) -> None:
    h = picture.shape[0]
    top_row = (round(h * 38 / 210), round(h * 76 / 210))  # first row, below the header
    x_mm = 21.0  # traces start 21 mm from the paper's left edge (15 mm after the pulse)
    x_base = round((x_mm + 0.5 * 25) * PX_PER_MM)  # t = 0.5 s: baseline
    x_step = round((x_mm + 1.25 * 25) * PX_PER_MM)  # t = 1.25 s: 1 mV
    (b0, b1), = [r for r in _trace_y(picture, x_base, *top_row) if r[1] - r[0] < 20]
    (s0, s1), = [r for r in _trace_y(picture, x_step, *top_row) if r[1] - r[0] < 20]
    assert (b0 + b1) / 2 - (s0 + s1) / 2 == pytest.approx(10 * PX_PER_MM, abs=2)
    # the step's rising and falling edges are 500 ms = 12.5 mm apart
    row = _black(picture[int((s0 + b1) / 2), :, :][None])[0]
    edges = [(a + b) / 2 for a, b in _runs(row[round(x_mm * PX_PER_MM):])]
    assert edges[1] - edges[0] == pytest.approx(12.5 * PX_PER_MM, abs=2)


def test_calibration_pulse_is_1mv_by_200ms(picture: np.ndarray) -> None:
    h = picture.shape[0]
    area = _black(picture[round(h * 38 / 210):round(h * 76 / 210), :round(21 * PX_PER_MM)])
    ys, xs = np.nonzero(area)
    assert ys.max() - ys.min() == pytest.approx(10 * PX_PER_MM, abs=3)  # 1 mV
    top = area[ys.min() + 1]
    (a, b), = _runs(top)
    assert b - a == pytest.approx(5 * PX_PER_MM, abs=3)  # 200 ms at 25 mm/s


def test_rhythm_strip_speed_and_tall_r_wave_not_clipped(picture: np.ndarray) -> None:
    h = picture.shape[0]
    strip = _black(picture[int(h * 0.75):])  # lead II rhythm strip: bottom quarter
    cols = np.flatnonzero(strip.sum(axis=0) > 5 * PX_PER_MM)  # columns with tall spikes
    spikes = [(a + b) / 2 for a, b in _runs(np.isin(np.arange(strip.shape[1]), cols))]
    spikes = [s for s in spikes if s > 21 * PX_PER_MM]  # not the calibration pulse
    assert len(spikes) == 2
    assert spikes[1] - spikes[0] == pytest.approx(25 * PX_PER_MM, abs=2)  # 1 s = 25 mm
    # V2 (third column, middle row) has a 3 mV R wave: 30 mm tall, over the row above
    x = round((21 + 5.5 * 25) * PX_PER_MM)
    colmask = _black(picture[:, x - 3:x + 4]).any(axis=1)
    runs = [b - a for a, b in _runs(colmask)]
    assert max(runs) == pytest.approx(30 * PX_PER_MM, abs=4)


def test_header_legend_and_bands() -> None:
    import matplotlib.pyplot as plt

    from edge.sinks.figure import draw_report

    t, leads, std = _signal()
    std[:] = 0.05
    header = {"start": "2026-03-01T10:00:00Z", "duration_s": 63.2, "hr_bpm": 71.6,
              "qrs_ms": 96.0, "age": 54, "sex": "F", "bundle": "default-x",
              "bundle_sha256": "b1621bfff2775257e17ef10278c38d59", "mc_samples": 30,
              "personalized": True, "version": "0.1.0"}
    flags = [{"kind": "high_uncertainty", "start_s": 3.0, "end_s": 3.5, "leads": ["V1"]},
             {"kind": "gap", "start_s": 8.0, "end_s": 8.4, "leads": []}]
    fig = draw_report(t, leads, std, flags, header, start_s=0.0)
    text = " ".join(x.get_text() for x in fig.texts)
    for needle in ("not a diagnostic ECG", "HR 72 bpm", "QRS 96 ms", "Age 54 y", "Sex female",
                   "default-x", "b1621bfff277", "MC samples 30", "personalised yes",
                   "shown 0.0\u201310.0 s", "duration 63.2 s", "2026-03-01T10:00:00Z",
                   "25 mm/s", "10 mm/mV"):
        assert needle in text, needle
    legend = [x.get_text() for x in fig.legends[0].get_texts()]
    assert {"\u00b12 std", "high uncertainty", "poor quality", "gap / no data"} <= set(legend)
    plt.close(fig)


def test_summary_provenance_and_report_files(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text('age = 54\nsex = "F"\n')
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "edge.cli", "demo", "--seconds", "12", "--out",
                        str(out), "--seed", "7", "--mc-samples", "5", "--profile",
                        str(tmp_path / "p.toml"), "--report", "pdf", "--report-at", "1.5",
                        "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    p = s["provenance"]
    bundle_dir = REPO / "edge" / "bundles" / "default"
    man = json.loads((bundle_dir / "manifest.json").read_text())
    assert p["ecg12_version"] == version("ecg12")
    assert p["bundle"]["name"] == man["name"]
    assert p["bundle"]["manifest_sha256"] == \
        hashlib.sha256((bundle_dir / "manifest.json").read_bytes()).hexdigest()
    for which in ("trunk", "head"):
        f = p["bundle"]["files"][which]
        assert f["sha256"] == hashlib.sha256((bundle_dir / f["path"]).read_bytes()).hexdigest()
    assert p["mc_samples"] == 5 and p["seed"] == 7
    assert p["metadata_given"] == {"age": 54.0, "sex": "F"}
    assert "ventricular_rate" in p["metadata_derived_from_lead_i"]
    assert p["profile"] == str((tmp_path / "p.toml").resolve()) and p["personalized"] is False
    assert p["conditioning"] == man["conditioning"]
    assert p["start_utc"] <= p["end_utc"] and p["start_utc"].endswith("Z")
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "report.pdf").read_bytes()[:4] == b"%PDF"
    assert s["files"]["report_pdf"].endswith("report.pdf")


def test_report_at_beyond_the_end_is_one_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "edge.cli", "demo", "--seconds", "10", "--out",
                        str(tmp_path / "o"), "--report-at", "50", "--quiet"], cwd=REPO,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "--report-at 50 s" in r.stderr.strip().splitlines()[-1]
