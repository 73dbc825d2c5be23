"""WFDB output (written at the end, from the CSV): `<name>` 12 leads, `<name>_std` their std.

Written here, not by wfdb-python (which imports pandas, ~75 MB, and needs the whole signal in
memory): the CSV is read back in blocks and the two records are written as WFDB format 16
(little-endian int16 frames, 1 µV per unit), the same bytes and header lines as
``wfdb.wrsamp(..., fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12)`` writes, so a
24 h session converts in constant memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.leads import LEADS
from edge.sinks.csv import BLOCK_ROWS, SinkError, csv_blocks

_GAIN = 1000.0  # ADC units per mV: 1 µV resolution, range +-32.767 mV in format 16
_NAN_16 = -32768  # WFDB's invalid sample in format 16


def _digital(sig: np.ndarray) -> np.ndarray:
    """mV -> format-16 samples, as wfdb's adc: round(x * gain + baseline), NaN -> invalid."""
    x = np.clip(sig.astype(np.float64), -32.767, 32.767)
    d = np.round(x * _GAIN + 0)
    d[np.isnan(x)] = _NAN_16
    return d.astype(np.int64)


def _fs_text(fs: float) -> str:
    """The record line's rate as wfdb writes it (an integral rate without '.0')."""
    return str(int(fs)) if round(fs, 8) == float(int(fs)) else str(fs)


def write_wfdb(csv_path: str | Path, out_dir: str | Path, name: str = "ecg12",
               fs_hz: float | None = None, comments: dict[str, str] | None = None,
               block_rows: int = BLOCK_ROWS) -> list[Path]:
    """Convert an ecg12 CSV to two WFDB records; NaN (gaps) becomes WFDB's invalid sample.
    `comments` (e.g. edge.provenance.header_fields) become `# key: value` header lines.
    Without `fs_hz` the rate is 1 / the median time step of the first block."""
    out = Path(out_dir)
    names = {name: list(LEADS), f"{name}_std": [f"std_{lead}" for lead in LEADS]}
    n = 0
    first: dict[str, np.ndarray] = {}
    sums = {rec: np.zeros(12, dtype=np.int64) for rec in names}
    fs = fs_hz
    try:
        out.mkdir(parents=True, exist_ok=True)
        with (out / f"{name}.dat").open("wb") as f_leads, \
                (out / f"{name}_std.dat").open("wb") as f_std:
            for t, leads, std in csv_blocks(csv_path, block_rows):
                if fs is None:
                    if len(t) < 2:
                        break
                    fs = 1.0 / float(np.median(np.diff(t)))
                for rec, sig, f in ((name, leads, f_leads), (f"{name}_std", std, f_std)):
                    d = _digital(sig)
                    first.setdefault(rec, d[0])
                    sums[rec] += d.sum(axis=0)
                    f.write(d.astype("<i2").tobytes())
                n += len(t)
    except OSError as exc:
        raise SinkError(f"cannot write WFDB record {out / name}: {exc.strerror or exc}") from exc
    if fs is None or n == 0:
        for rec in names:
            (out / f"{rec}.dat").unlink(missing_ok=True)
        raise SinkError(f"{csv_path}: too few rows to write WFDB (need >= 2 or fs_hz)")
    fs_text = _fs_text(float(round(float(fs), 6)))
    notes = [f"# {k}: {' '.join(str(v).split())}" for k, v in (comments or {}).items()]
    written = []
    for rec, sig_names in names.items():
        lines = [f"{rec} 12 {fs_text} {n}"] + [
            f"{rec}.dat 16 {_GAIN}(0)/mV 16 0 {int(first[rec][i])} "
            f"{int(sums[rec][i] % 65536)} 0 {sig}" for i, sig in enumerate(sig_names)]
        try:
            (out / f"{rec}.hea").write_text("\n".join(lines + notes) + "\n", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"cannot write WFDB record {out / rec}: "
                            f"{exc.strerror or exc}") from exc
        written.append(out / f"{rec}.hea")
    return written
