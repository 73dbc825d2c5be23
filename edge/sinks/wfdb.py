"""WFDB output (written at the end, from the CSV): `<name>` 12 leads, `<name>_std` their std."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.leads import LEADS
from edge.sinks.csv import SinkError, read_csv

_GAIN = 1000.0  # ADC units per mV: 1 µV resolution, range +-32.767 mV in format 16


def write_wfdb(csv_path: str | Path, out_dir: str | Path, name: str = "ecg12",
               fs_hz: float | None = None, comments: dict[str, str] | None = None
               ) -> list[Path]:
    """Convert an ecg12 CSV to two WFDB records; NaN (gaps) becomes WFDB's invalid sample.
    `comments` (e.g. edge.provenance.header_fields) become `# key: value` header lines."""
    import wfdb

    t, leads, std = read_csv(csv_path)
    if len(t) < 2 and fs_hz is None:
        raise SinkError(f"{csv_path}: too few rows to write WFDB (need >= 2 or fs_hz)")
    fs = fs_hz if fs_hz is not None else 1.0 / float(np.median(np.diff(t)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    lines = [f"{k}: {' '.join(str(v).split())}" for k, v in (comments or {}).items()]
    for rec, sig, names in ((name, leads, list(LEADS)),
                            (f"{name}_std", std, [f"std_{lead}" for lead in LEADS])):
        x = np.clip(sig.astype(np.float64), -32.767, 32.767)
        try:
            wfdb.wrsamp(rec, fs=round(fs, 6), units=["mV"] * 12, sig_name=names, p_signal=x,
                        fmt=["16"] * 12, adc_gain=[_GAIN] * 12, baseline=[0] * 12,
                        write_dir=str(out), comments=lines or None)
        except Exception as exc:  # wfdb raises many types
            raise SinkError(f"cannot write WFDB record {out / rec}: {exc}") from exc
        written.append(out / f"{rec}.hea")
    return written
