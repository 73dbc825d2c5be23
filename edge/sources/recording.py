"""Read Lead I (or another lead) of a recording: WFDB (.hea), CSV or EDF, in mV."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from edge.sources.errors import RecordingError

_UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nu": 1.0, "": 1.0}
_TIME_COLUMNS = {"t", "t_s", "time", "time_s", "seconds", "timestamp_s"}


def _lead_key(name: str) -> str:
    k = name.strip().lower().replace(" ", "").replace("_", "").replace("-", "")
    for prefix in ("ecglead", "lead", "ecg"):
        if k.startswith(prefix) and len(k) > len(prefix):
            k = k[len(prefix):]
            break
    return k


def _pick(names: list[str], lead: str, path: Path) -> int:
    want = _lead_key(lead)
    keys = [_lead_key(n) for n in names]
    if want in keys:
        return keys.index(want)
    if want == "i":  # a single-lead wearable file often calls its only channel "ECG"
        ecg = [i for i, n in enumerate(names) if n.strip().lower() in {"ecg", "ecg_mv", "ecg_uv"}]
        if len(ecg) == 1:
            return ecg[0]
    raise RecordingError(f"{path}: no lead {lead!r} (channels: {', '.join(names)})")


def _unit_scale(unit: str, path: Path, lead: str) -> float:
    u = unit.strip().lower()
    if u not in _UNIT_TO_MV:
        raise RecordingError(f"{path}: lead {lead} has unknown units {unit!r} (mV, uV or V)")
    return _UNIT_TO_MV[u]


def read_recording(path: str | Path, lead: str = "I",
                   fs_hz: float | None = None) -> tuple[np.ndarray, float]:
    """(samples_mv float32 (n,), fs_hz). NaN marks missing samples (they become gaps)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in {".hea", ".dat", ""} or (suffix not in {".csv", ".edf", ".txt"}
                                          and p.with_suffix(".hea").is_file()):
        return _read_wfdb(p, lead)
    if not p.is_file():
        raise RecordingError(f"recording not found: {p}")
    if suffix in {".csv", ".txt"}:
        return _read_csv(p, lead, fs_hz)
    if suffix == ".edf":
        return _read_edf(p, lead)
    raise RecordingError(f"{p}: unknown recording format {suffix!r}")


def _read_wfdb(p: Path, lead: str) -> tuple[np.ndarray, float]:
    import wfdb

    base = p.with_suffix("") if p.suffix.lower() in {".hea", ".dat"} else p
    if not base.with_suffix(".hea").is_file():
        raise RecordingError(f"WFDB header not found: {base.with_suffix('.hea')}")
    try:
        header = wfdb.rdheader(str(base))
        ch = _pick(list(header.sig_name), lead, base)
        rec = wfdb.rdrecord(str(base), channels=[ch])
    except RecordingError:
        raise
    except Exception as exc:  # wfdb raises many types for bad files
        raise RecordingError(f"cannot read WFDB record {base}: {exc}") from exc
    scale = _unit_scale(rec.units[0] if rec.units else "mV", base, lead)
    return (rec.p_signal[:, 0] * scale).astype(np.float32), float(rec.fs)


def _read_csv(p: Path, lead: str, fs_hz: float | None) -> tuple[np.ndarray, float]:
    with p.open(newline="") as f:
        rows = [r for r in csv.reader(line for line in f if not line.startswith("#")) if r]
    if not rows:
        raise RecordingError(f"{p}: empty CSV")
    try:
        float(rows[0][0])
        header = [f"col{i}" for i in range(len(rows[0]))]
        if len(header) == 1:
            header = ["I"]
    except ValueError:
        header, rows = [h.strip() for h in rows[0]], rows[1:]
    try:
        data = np.array([[float(v) if v.strip() else np.nan for v in r] for r in rows])
    except ValueError as exc:
        raise RecordingError(f"{p}: non-numeric value in CSV ({exc})") from None
    if data.ndim != 2 or data.shape[1] != len(header) or len(data) < 2:
        raise RecordingError(f"{p}: CSV rows must all have {len(header)} values, >= 2 rows")
    names = [h.lower() for h in header]
    tcol = next((i for i, n in enumerate(names) if n in _TIME_COLUMNS), None)
    if fs_hz is None:
        if tcol is None:
            raise RecordingError(f"{p}: no time column ({', '.join(sorted(_TIME_COLUMNS))}); "
                                 "give the sampling rate with ?fs=HZ")
        dt = np.nanmedian(np.diff(data[:, tcol]))
        if not dt > 0:
            raise RecordingError(f"{p}: time column {header[tcol]!r} is not increasing")
        fs_hz = 1.0 / dt
    cols = [h for i, h in enumerate(header) if i != tcol]
    ch = header.index(cols[_pick(cols, lead, p)])
    unit = "uv" if header[ch].lower().endswith(("_uv", "(uv)", "_µv")) else "mv"
    return (data[:, ch] * _UNIT_TO_MV[unit]).astype(np.float32), float(fs_hz)


def _read_edf(p: Path, lead: str) -> tuple[np.ndarray, float]:
    import pyedflib

    try:
        with pyedflib.EdfReader(str(p)) as edf:
            labels = list(edf.getSignalLabels())
            ch = _pick(labels, lead, p)
            x = edf.readSignal(ch)
            fs = float(edf.getSampleFrequency(ch))
            unit = edf.getPhysicalDimension(ch)
    except RecordingError:
        raise
    except Exception as exc:
        raise RecordingError(f"cannot read EDF file {p}: {exc}") from exc
    return (x * _unit_scale(unit, p, lead)).astype(np.float32), fs


def finite_runs(x: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index ranges of the finite (non-NaN) stretches of `x`."""
    ok = np.isfinite(x).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok, [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
