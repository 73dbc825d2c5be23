"""Report figure: the standard 3x4 clinical layout plus a lead-II rhythm strip, with
mean +- 2 std bands, flagged stretches shaded and gaps marked (matplotlib Agg, lazy)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.leads import LEAD_INDEX

LAYOUT: tuple[tuple[str, str, str], ...] = (
    ("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"), ("V4", "V5", "V6"),
)
_SHADE = {"high_uncertainty": "tab:orange", "poor_quality": "tab:red", "gap": "0.6"}


def _spans(ax: Any, lead: str, lo: float, hi: float, flags: Sequence[dict[str, Any]]) -> None:
    for f in flags:
        a, b = max(lo, f["start_s"]), min(hi, f["end_s"])
        leads = f.get("leads") or ()
        if b <= a or (leads and lead not in leads):
            continue
        kind = f.get("kind", "")
        ax.axvspan(a, b, color=_SHADE.get(kind, "tab:purple"), alpha=0.25, lw=0,
                   hatch="//" if kind == "gap" else None)


def _trace(ax: Any, t: np.ndarray, y: np.ndarray, s: np.ndarray) -> None:
    ax.plot(t, y, color="k", lw=0.7)
    ok = np.isfinite(s) & np.isfinite(y)
    if ok.any():
        ax.fill_between(t, y - 2 * s, y + 2 * s, where=ok, color="tab:blue", alpha=0.3, lw=0)


def report_figure(path: str | Path, t_s: np.ndarray, leads: np.ndarray, std: np.ndarray,
                  flags: Sequence[dict[str, Any]] = (), title: str = "",
                  window_s: float = 10.0) -> Path:
    """Plot the last `window_s` seconds of (t_s (n,), leads (n,12), std (n,12)) to `path`.

    `flags`: dicts with kind, start_s, end_s (same clock as t_s) and optional leads.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t_s = np.asarray(t_s, dtype=float)
    if len(t_s):
        keep = t_s >= t_s[-1] - window_s
        t_s, leads, std = t_s[keep], leads[keep], std[keep]
    t0 = float(t_s[0]) if len(t_s) else 0.0
    seg = window_s / 4
    fig = plt.figure(figsize=(16, 10), constrained_layout=True)
    grid = fig.add_gridspec(4, 4)
    finite = leads[np.isfinite(leads)]
    lim = float(np.clip(np.percentile(np.abs(finite), 99.5) * 1.3, 0.5, 5.0)) if finite.size \
        else 1.5
    for col, names in enumerate(LAYOUT):
        lo, hi = t0 + col * seg, t0 + (col + 1) * seg
        sel = (t_s >= lo) & (t_s < hi)
        for row, lead in enumerate(names):
            ax = fig.add_subplot(grid[row, col])
            i = LEAD_INDEX[lead]
            _trace(ax, t_s[sel], leads[sel, i], std[sel, i])
            _spans(ax, lead, lo, hi, flags)
            ax.set_xlim(lo, hi)
            ax.set_ylim(-lim, lim)
            ax.set_title(lead, loc="left", fontsize=9, pad=2)
            ax.grid(True, color="tab:red", alpha=0.15, lw=0.5)
            ax.tick_params(labelsize=7)
    ax = fig.add_subplot(grid[3, :])
    i = LEAD_INDEX["II"]
    _trace(ax, t_s, leads[:, i], std[:, i])
    _spans(ax, "II", t0, t0 + window_s, flags)
    ax.set_xlim(t0, t0 + window_s)
    ax.set_ylim(-lim, lim)
    ax.set_title("II (rhythm)", loc="left", fontsize=9, pad=2)
    ax.set_xlabel("time (s)")
    ax.grid(True, color="tab:red", alpha=0.15, lw=0.5)
    fig.suptitle(title or "ecg12 reconstruction: mean ± 2 std; orange = high uncertainty, "
                 "red = poor quality, grey = gap", fontsize=10)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
