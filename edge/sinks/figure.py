"""The report a clinician reads: ECG paper, standard 3x4 layout plus a lead-II rhythm strip.

Paper: A4 landscape; one axes whose data units are millimetres of paper, so the scale is
exact at any DPI: 25 mm/s, 10 mm/mV, a 1 mm minor and 5 mm major grid, a 1 mV x 200 ms
calibration pulse at the start of each row. Uniform fixed scale across leads (no
auto-scaling); traces overlap neighbouring rows as on paper ECGs and are clipped only beyond
+-CLIP_MV, where a clip mark is drawn. Mean +- 2 std bands, flagged stretches (orange high
uncertainty, red poor quality, hatched grey gap), a legend, and a header with time,
duration, the stretch shown, HR/QRS, age/sex, bundle name/hash, MC samples, personalisation.
matplotlib (Agg) is imported only when a report is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.leads import LEAD_INDEX

#: columns of the standard layout (each column 2.5 s; rows top to bottom)
LAYOUT: tuple[tuple[str, str, str], ...] = (
    ("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"), ("V4", "V5", "V6"),
)
MM_PER_S = 25.0
MM_PER_MV = 10.0
CLIP_MV = 4.0  # traces are clipped (and marked) only beyond this
PAPER_MM = (297.0, 210.0)  # A4 landscape
GRID_MM = (6.0, 14.0, 286.0, 174.0)  # x0, y0, x1, y1 of the ECG paper area
TRACE_X0_MM = 21.0  # traces start here; calibration pulses sit in 6..21
ROW_BASELINES_MM = (154.0, 114.0, 74.0, 34.0)  # three layout rows, then the rhythm strip
CAL_MM = (8.0, 10.0, 15.0, 17.0)  # pulse: baseline to 10, up, 5 mm (200 ms) high, down, to 17
_SHADE = {"high_uncertainty": "tab:orange", "poor_quality": "tab:red", "gap": "0.55"}
_MINOR, _MAJOR = (1.0, 0.78, 0.78), (0.93, 0.45, 0.45)


def _fmt(v: Any, spec: str, unit: str = "") -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "--"
    return f"{f:{spec}}{unit}" if np.isfinite(f) else "--"


def header_lines(h: Mapping[str, Any]) -> list[str]:
    """The header's text lines from a header dict (see `report_figure`)."""
    sha = str(h.get("bundle_sha256") or "")[:12] or "--"
    sex = {"F": "female", "M": "male"}.get(str(h.get("sex")), "not given") \
        if h.get("sex") is not None else "not given"
    age = _fmt(h.get("age"), ".0f", " y") if h.get("age") is not None else "not given"
    pers = "yes" if h.get("personalized") else "no"
    return [
        "Reconstructed from Lead I \u2014 not a diagnostic ECG",
        f"Start {h.get('start') or '--'}   duration {_fmt(h.get('duration_s'), '.1f', ' s')}   "
        f"shown {_fmt(h.get('shown_from_s'), '.1f')}\u2013{_fmt(h.get('shown_to_s'), '.1f')} s"
        f"   HR {_fmt(h.get('hr_bpm'), '.0f', ' bpm')}   QRS {_fmt(h.get('qrs_ms'), '.0f', ' ms')}"
        f"   Age {age}   Sex {sex}",
        f"Bundle {h.get('bundle') or '--'} (sha256 {sha})   MC samples "
        f"{h.get('mc_samples') if h.get('mc_samples') is not None else '--'}   personalised "
        f"{pers}   ecg12 {h.get('version') or '--'}   {h.get('title') or ''}".rstrip(),
        f"{MM_PER_S:g} mm/s   {MM_PER_MV:g} mm/mV   grid 1 mm / 5 mm   calibration 1 mV \u00d7 "
        f"200 ms   clipped beyond \u00b1{CLIP_MV:g} mV",
    ]


def _grid(ax: Any) -> None:
    x0, y0, x1, y1 = GRID_MM
    xs = np.arange(x0, x1 + 0.5)
    ys = np.arange(y0, y1 + 0.5)
    for step, color, lw in ((1, _MINOR, 0.25), (5, _MAJOR, 0.6)):
        vx = xs[(xs - x0) % step == 0]
        hy = ys[(ys - y0) % step == 0]
        ax.vlines(vx, y0, y1, colors=[color], linewidths=lw, zorder=1)
        ax.hlines(hy, x0, x1, colors=[color], linewidths=lw, zorder=1)


def _spans(ax: Any, lead: str, lo: float, hi: float, flags: Sequence[Mapping[str, Any]],
           x_of: Any, base: float) -> None:
    for f in flags:
        a, b = max(lo, float(f["start_s"])), min(hi, float(f["end_s"]))
        leads = f.get("leads") or ()
        if b <= a or (leads and lead not in leads):
            continue
        kind = f.get("kind", "")
        ax.fill_between([x_of(a), x_of(b)], base - 15, base + 15, zorder=2, lw=0,
                        color=_SHADE.get(kind, "tab:purple"), alpha=0.25,
                        hatch="///" if kind == "gap" else None)


def _trace(ax: Any, x: np.ndarray, y_mv: np.ndarray, s_mv: np.ndarray, base: float) -> None:
    y = np.clip(y_mv, -CLIP_MV, CLIP_MV)
    ok = np.isfinite(s_mv) & np.isfinite(y_mv)
    if ok.any():
        lo = np.clip(y_mv - 2 * s_mv, -CLIP_MV, CLIP_MV)
        hi = np.clip(y_mv + 2 * s_mv, -CLIP_MV, CLIP_MV)
        ax.fill_between(x, base + lo * MM_PER_MV, base + hi * MM_PER_MV, where=ok, lw=0,
                        color="tab:blue", alpha=0.3, zorder=3)
    ax.plot(x, base + y * MM_PER_MV, color="k", lw=0.6, zorder=4)
    with np.errstate(invalid="ignore"):
        over, under = y_mv > CLIP_MV, y_mv < -CLIP_MV
    for sel, val, mark in ((over, CLIP_MV, "^"), (under, -CLIP_MV, "v")):
        if sel.any():
            ax.plot(x[sel], np.full(int(sel.sum()), base + val * MM_PER_MV), ls="none",
                    marker=mark, ms=3, color="tab:red", zorder=5)


def _calibration(ax: Any, base: float) -> None:
    a, b, c, d = CAL_MM
    ax.plot([a, b, b, c, c, d], [base, base, base + MM_PER_MV, base + MM_PER_MV, base, base],
            color="k", lw=0.8, zorder=4)


def draw_report(t_s: np.ndarray, leads: np.ndarray, std: np.ndarray,
                flags: Sequence[Mapping[str, Any]] = (), header: Mapping[str, Any] | None = None,
                window_s: float = 10.0, start_s: float | None = None) -> Any:
    """The report as a matplotlib Figure (caller closes it). Shows `window_s` seconds from
    `start_s` (default: the last `window_s` of the data); times in seconds, leads/std mV."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    t_s = np.asarray(t_s, dtype=float)
    leads, std = np.asarray(leads, dtype=float), np.asarray(std, dtype=float)
    if start_s is None:
        start_s = float(t_s[-1]) - window_s + (1.0 / _rate(t_s)) if len(t_s) else 0.0
        start_s = max(start_s, float(t_s[0])) if len(t_s) else 0.0
    t0, t1 = float(start_s), float(start_s) + window_s
    keep = (t_s >= t0) & (t_s < t1)
    t_s, leads, std = t_s[keep], leads[keep], std[keep]
    h = dict(header or {})
    h.setdefault("shown_from_s", t0)
    h.setdefault("shown_to_s", t1)
    seg = window_s / 4

    W, H = PAPER_MM
    fig = plt.figure(figsize=(W / 25.4, H / 25.4))
    x0, y0, x1, y1 = GRID_MM
    ax = fig.add_axes((x0 / W, y0 / H, (x1 - x0) / W, (y1 - y0) / H))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_axis_off()
    _grid(ax)

    def x_of(t: Any) -> Any:
        return TRACE_X0_MM + (np.asarray(t) - t0) * MM_PER_S

    for col, names in enumerate(LAYOUT):
        lo, hi = t0 + col * seg, t0 + (col + 1) * seg
        sel = (t_s >= lo) & (t_s < hi)
        for row, lead in enumerate(names):
            base = ROW_BASELINES_MM[row]
            i = LEAD_INDEX[lead]
            _spans(ax, lead, lo, hi, flags, x_of, base)
            _trace(ax, x_of(t_s[sel]), leads[sel, i], std[sel, i], base)
            ax.text(x_of(lo) + 1.0, base + 11.0, lead, fontsize=8, zorder=6)
            if col:
                ax.vlines(x_of(lo), base - 4, base + 4, colors="k", linewidths=0.8, zorder=4)
    base = ROW_BASELINES_MM[3]
    i = LEAD_INDEX["II"]
    _spans(ax, "II", t0, t1, flags, x_of, base)
    _trace(ax, x_of(t_s), leads[:, i], std[:, i], base)
    ax.text(x_of(t0) + 1.0, base + 11.0, "II (rhythm)", fontsize=8, zorder=6)
    for base in ROW_BASELINES_MM:
        _calibration(ax, base)

    lines = header_lines(h)
    fig.text(x0 / W, 203 / H, "ecg12 \u2014 " + lines[0], fontsize=11, weight="bold",
             va="baseline")
    for k, line in enumerate(lines[1:]):
        fig.text(x0 / W, (196 - 6 * k) / H, line, fontsize=7.5, va="baseline")
    handles = [
        Line2D([], [], color="k", lw=0.8, label="mean (mV)"),
        Patch(color="tab:blue", alpha=0.3, label="\u00b12 std"),
        Patch(color="tab:orange", alpha=0.25, label="high uncertainty"),
        Patch(color="tab:red", alpha=0.25, label="poor quality"),
        Patch(facecolor="0.55", alpha=0.25, hatch="///", label="gap / no data"),
        Line2D([], [], ls="none", marker="^", ms=4, color="tab:red",
               label=f"clipped beyond \u00b1{CLIP_MV:g} mV"),
    ]
    fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(x0 / W, 1.0 / H), ncol=6,
               fontsize=7, frameon=False)
    return fig


def _rate(t_s: np.ndarray) -> float:
    d = np.diff(t_s[:1000])
    d = d[np.isfinite(d) & (d > 0)]
    return 1.0 / float(np.median(d)) if d.size else 1.0


def report_figure(path: str | Path, t_s: np.ndarray, leads: np.ndarray, std: np.ndarray,
                  flags: Sequence[Mapping[str, Any]] = (), title: str = "",
                  window_s: float = 10.0, header: Mapping[str, Any] | None = None,
                  start_s: float | None = None, dpi: float = 200) -> Path:
    """Draw the report of (t_s (n,), leads (n,12), std (n,12)) to `path` (.png or .pdf).

    `flags`: dicts with kind, start_s, end_s (same clock as t_s) and optional leads.
    `header`: start, duration_s, hr_bpm, qrs_ms, age, sex, bundle, bundle_sha256,
    mc_samples, personalized, version (absent fields print as "--" / "not given").
    """
    import matplotlib.pyplot as plt

    h = {"title": title, **(header or {})}
    fig = draw_report(t_s, leads, std, flags, h, window_s, start_s)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
