"""Streaming CSV of the 12 reconstructed leads and their std, one row per input sample.

CSV is the default output: each block is formatted whole and written with one system call
(whole lines only, fsync'd every few seconds and at close), so a Ctrl-C, a SIGKILL or a power
cut leaves a valid file holding everything already received, never a torn last row; NaN
marks gaps and samples without a reconstruction. Columns: `t_s` (seconds since the first
sample), the 12 leads in mV (edge.leads.LEADS order), then `std_<lead>` in mV. Missing input
intervals are written as NaN rows at the input rate, so row index <-> time stays true.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from edge.errors import EdgeError
from edge.leads import LEADS

COLUMNS: tuple[str, ...] = ("t_s", *LEADS, *(f"std_{lead}" for lead in LEADS))


class SinkError(EdgeError, RuntimeError):
    """An output cannot be written (path, format, or inconsistent input)."""


class CsvSink:
    """Append Blocks (t0_s, fs_hz, leads (n,12), std (n,12)) to `path`; fills gaps with NaN."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f: BinaryIO | None = self.path.open("wb", buffering=0)
        except OSError as exc:
            raise SinkError(f"cannot write CSV output {self.path}: {exc.strerror}") from None
        self._write((",".join(COLUMNS) + "\n").encode())
        self._synced = time.monotonic()
        self.origin_s: float | None = None
        self.fs_hz: float | None = None
        self.rows = 0
        self.nan_rows = 0
        self._next_t: float | None = None

    def write(self, block: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Write a block (after NaN rows for any gap before it); returns (t_s, leads, std)
        of the rows written."""
        if self._f is None:
            raise SinkError(f"CSV output {self.path} is already closed")
        leads = np.asarray(block.leads, dtype=np.float32)
        std = np.asarray(block.std, dtype=np.float32)
        n = leads.shape[0]
        if leads.shape != (n, 12) or std.shape != (n, 12):
            raise SinkError(f"block leads/std must be (n, 12), got {leads.shape}, {std.shape}")
        fs = float(block.fs_hz)
        if self.fs_hz is None:
            self.fs_hz, self.origin_s, self._next_t = fs, float(block.t0_s), float(block.t0_s)
        elif abs(fs - self.fs_hz) > 1e-9:
            raise SinkError(f"block fs_hz {fs} differs from the CSV's {self.fs_hz} Hz")
        missing = int(round((float(block.t0_s) - self._next_t) * fs))  # type: ignore[operator]
        t_first = float(block.t0_s)
        if missing > 0:
            t_first = self._next_t  # type: ignore[assignment]
            leads = np.concatenate([np.full((missing, 12), np.nan, np.float32), leads])
            std = np.concatenate([np.full((missing, 12), np.nan, np.float32), std])
            self.nan_rows += missing
        t = t_first - self.origin_s + np.arange(leads.shape[0]) / fs  # type: ignore[operator]
        if leads.shape[0]:
            buf = io.StringIO()
            np.savetxt(buf, np.column_stack([t, leads, std]), fmt="%.4f", delimiter=",")
            self._write(buf.getvalue().encode())
        self.rows += leads.shape[0]
        self._next_t = float(block.t0_s) + n / fs
        return t, leads, std

    def _write(self, data: bytes, sync_every_s: float = 5.0) -> None:
        """All of `data` in one write (a regular file takes it whole; the loop covers the
        rest), then fsync when the last one is `sync_every_s` old."""
        assert self._f is not None
        view = memoryview(data)
        try:
            while view:
                view = view[self._f.write(view) or 0:]
            if time.monotonic() - getattr(self, "_synced", 0.0) > sync_every_s:
                os.fsync(self._f.fileno())
                self._synced = time.monotonic()
        except OSError as exc:
            raise SinkError(f"cannot write CSV output {self.path}: {exc.strerror}") from None

    def close(self) -> None:
        f, self._f = self._f, None
        if f is not None:
            try:
                os.fsync(f.fileno())
            except OSError:
                pass
            f.close()


def read_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read an ecg12 CSV back: (t_s (n,), leads (n, 12), std (n, 12))."""
    p = Path(path)
    with p.open() as f:
        header = f.readline().strip().split(",")
    if tuple(header) != COLUMNS:
        raise SinkError(f"{p} is not an ecg12 output CSV (header {header[:3]}...)")
    raw = p.read_bytes()
    if raw and not raw.endswith(b"\n"):  # a writer killed inside a large write: drop the cut row
        raw = raw[:raw.rfind(b"\n") + 1]
    data = np.loadtxt(io.StringIO(raw.decode()), delimiter=",", skiprows=1, ndmin=2,
                      dtype=np.float64)
    if data.size == 0:
        data = np.zeros((0, len(COLUMNS)))
    return data[:, 0], data[:, 1:13].astype(np.float32), data[:, 13:25].astype(np.float32)
