"""Read a WFDB record into (n, 12) float32 mV in LEADS order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

from edge.leads import LEADS, canonical_lead_name

from .record import RecordRejected

_UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "v": 1e3}


def lead_order(sig_names: list[str], name: str) -> list[int]:
    """Column index of each LEADS lead in `sig_names`; rejects unknown/missing leads."""
    try:
        canon = [canonical_lead_name(s) for s in sig_names]
    except ValueError as exc:
        raise RecordRejected(name, f"leads: {exc}") from None
    missing = [lead for lead in LEADS if lead not in canon]
    if missing:
        raise RecordRejected(name, f"leads: missing {missing} (has {sig_names})")
    return [canon.index(lead) for lead in LEADS]


def read_wfdb(path: Path, *, digital_uv: bool = False) -> tuple[np.ndarray, float, list[str]]:
    """(signal_mv, fs_hz, header comments) of the record at `path` (no extension).

    `digital_uv=True` reads raw sample values and treats them as µV (LUDB, whose .hea gains
    are wrong); otherwise wfdb's physical values are scaled by each channel's units.
    """
    name = str(path)
    try:
        rec = wfdb.rdrecord(str(path), physical=not digital_uv)
    except Exception as exc:  # wfdb raises many types for bad files
        raise RecordRejected(name, f"unreadable: {type(exc).__name__}: {exc}") from None
    order = lead_order(list(rec.sig_name), name)
    if digital_uv:
        sig = rec.d_signal[:, order].astype(np.float32) * np.float32(1e-3)
    else:
        scale = []
        for j in order:
            unit = (rec.units[j] or "mV").strip().lower()
            if unit not in _UNIT_TO_MV:
                raise RecordRejected(name, f"units: channel {rec.sig_name[j]} unit {unit!r}")
            scale.append(_UNIT_TO_MV[unit])
        sig = (rec.p_signal[:, order] * np.asarray(scale)).astype(np.float32)
    return sig, float(rec.fs), list(rec.comments or [])
