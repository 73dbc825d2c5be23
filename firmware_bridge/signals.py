"""Signals for virtual devices: synthetic, or Lead I of a WFDB recording (looped or not)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from firmware_bridge.errors import SignalSourceError
from firmware_bridge.synth import synthetic_ecg

_UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "v": 1e3}


def load_wfdb_lead(path: str | Path, lead: str = "I") -> tuple[np.ndarray, float]:
    """Read one lead (name matched case-insensitively) of a WFDB record, in mV."""
    import wfdb

    p = Path(path)
    base = p.with_suffix("") if p.suffix == ".hea" else p
    if not base.with_suffix(".hea").is_file():
        raise SignalSourceError(f"WFDB header not found: {base.with_suffix('.hea')}")
    try:
        header = wfdb.rdheader(str(base))
        names = [n.lower() for n in header.sig_name]
        if lead.lower() not in names:
            raise SignalSourceError(
                f"{base.with_suffix('.hea')}: no lead {lead!r} (leads: {header.sig_name})")
        ch = names.index(lead.lower())
        rec = wfdb.rdrecord(str(base), channels=[ch])
    except SignalSourceError:
        raise
    except Exception as exc:  # wfdb raises many types for bad files
        raise SignalSourceError(f"cannot read WFDB record {base}: {exc}") from exc
    unit = (rec.units[0] if rec.units else "mV").strip().lower()
    if unit not in _UNIT_TO_MV:
        raise SignalSourceError(f"{base}: lead {lead} has unknown units {rec.units[0]!r}")
    x = rec.p_signal[:, 0].astype(np.float64) * _UNIT_TO_MV[unit]
    if not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise SignalSourceError(f"{base}: lead {lead} has {bad} NaN/inf samples")
    return x, float(rec.fs)


def load_signal(spec: str, fs_hz: float = 250.0, duration_s: float = 300.0, seed: int = 0,
                lead: str = "I") -> tuple[np.ndarray, float]:
    """`"synthetic"` or a path to a `.hea` file -> (signal_mv, fs_hz)."""
    if spec == "synthetic":
        return synthetic_ecg(duration_s, fs_hz, seed), float(fs_hz)
    return load_wfdb_lead(spec, lead)
