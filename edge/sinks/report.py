"""Write a session's clinical report (report.png, optionally report.pdf) from a Recorder.

The header comes from the recorder's provenance (summary.json's `provenance`) and the
Lead-I features of the stretch shown. `recorder.report_options` (set by the CLI) may hold
`formats` (("png",) by default; "pdf" adds report.pdf) and `at_s` (start of the 10 s shown,
seconds since the first sample; default: the last 10 s).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.sinks.csv import SinkError, read_csv_span

REPORT_FORMATS = ("png", "pdf")


def _features(t: np.ndarray, lead_i: np.ndarray, fs: float | None) -> dict[str, float]:
    """Lead-I rate and QRS duration of the stretch shown (its longest NaN-free run)."""
    from edge.features import lead_i_features

    if not fs or len(lead_i) == 0:
        return {}
    ok = np.isfinite(lead_i)
    best, start, run = (0, 0), None, 0
    for k, v in enumerate(np.append(ok, False)):
        if v and start is None:
            start = k
        elif not v and start is not None:
            if k - start > run:
                best, run = (start, k), k - start
            start = None
    if run < 5 * fs:
        return {}
    try:
        return lead_i_features(lead_i[best[0]:best[1]].astype(np.float64), fs)
    except ValueError:
        return {}


def header_from(recorder: Any, shown: dict[str, float]) -> dict[str, Any]:
    """Header fields of `edge.sinks.figure.report_figure` from a Recorder's state."""
    prov = recorder.info.get("provenance") or {}
    meta = prov.get("metadata_given") or {}
    bundle = prov.get("bundle") or {}
    fs = recorder._fs
    f = shown or recorder.features
    return {
        "title": recorder.title, "start": prov.get("start_utc"),
        "duration_s": recorder.csv.rows / fs if fs else None,
        "hr_bpm": f.get("ventricular_rate"), "qrs_ms": f.get("qrs_duration"),
        "age": meta.get("age"), "sex": meta.get("sex"),
        "bundle": bundle.get("name"), "bundle_sha256": bundle.get("manifest_sha256"),
        "mc_samples": prov.get("mc_samples"), "personalized": prov.get("personalized"),
        "version": prov.get("ecg12_version"),
    }


def write_report(recorder: Any) -> dict[str, str]:
    """Draw the report(s) into the recorder's folder; returns {"figure": png, "report_pdf":
    pdf} for the files written."""
    from edge.sinks.figure import report_figure

    opts = getattr(recorder, "report_options", None) or {}
    at_s = opts.get("at_s")
    window_s = float(recorder.window_s)
    if at_s is None:
        t, leads, std = recorder.tail()
    else:  # only the span drawn is read (a 24 h session's CSV is not loaded)
        t, leads, std, last = read_csv_span(recorder.csv.path, at_s, window_s)
        if not len(t) or last is None or at_s >= last:
            raise SinkError(f"--report-at {at_s:g} s: the recording is "
                            f"{(last or 0.0):.1f} s long")
    start = at_s if at_s is not None else (
        max(float(t[0]), float(t[-1]) - window_s + 1.0 / recorder._fs) if len(t) else 0.0)
    sel = (t >= start) & (t < start + window_s)
    shown = _features(t[sel], leads[sel, 0], recorder._fs)
    header = header_from(recorder, shown)
    flags = list(recorder.flags) + [g for g in recorder.gaps if g not in recorder.flags]
    files: dict[str, str] = {}
    for fmt in ["png", *(f for f in opts.get("formats") or () if f != "png")]:
        path = recorder.out / f"report.{fmt}"
        report_figure(path, t[sel], leads[sel], std[sel], flags, title=recorder.title,
                      window_s=window_s, header=header, start_s=start)
        files["figure" if fmt == "png" else f"report_{fmt}"] = str(path)
    return files
