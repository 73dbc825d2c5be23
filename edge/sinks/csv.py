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
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import numpy as np

from edge.errors import EdgeError
from edge.leads import LEADS

COLUMNS: tuple[str, ...] = ("t_s", *LEADS, *(f"std_{lead}" for lead in LEADS))


class SinkError(EdgeError, RuntimeError):
    """An output cannot be written (path, format, or inconsistent input)."""


_MAX_FAST = 1e7  # |x| below this: integer digits = sign + up to 3, and 4 more


def _words(texts: list[str]) -> np.ndarray:
    """Each text (at most 4 ASCII bytes) as one uint32, NUL-padded: memory order = text order
    (NUL bytes are dropped from the output)."""
    return np.frombuffer(b"".join(t.encode().ljust(4, b"\0") for t in texts),
                         dtype=np.uint32).copy()


_DIGITS = [f"{i:04d}" for i in range(10000)]
_PADDED = _words(_DIGITS)  # "0042"
#: [0, 10000): "42"; [10000, 20000): "-42" (values >= 1000 there: "1234", the minus apart)
_SIGNED = _words([str(i) for i in range(10000)]
                 + [f"-{i}" if i < 1000 else str(i) for i in range(10000)])
_POINT3 = _words([f".{i:03d}" for i in range(1000)])  # decimals "0042": 4 -> ".004"
_LAST_COMMA = _words([f"{i}," for i in range(10)])  # 2 -> "2,"
_LAST_NEWLINE = _words([f"{i}\n" for i in range(10)])  # 2 -> "2\n"
_MINUS, _NAN, _COMMA, _NEWLINE = _words(["-", "nan", ",", "\n"])


def format_rows(rows: np.ndarray) -> bytes:
    """CSV text of a 2-D array, byte for byte what ``np.savetxt(fmt="%.4f", delimiter=",")``
    (Python's ``"%.4f" % x`` per value) writes, vectorized.

    Digits come from ``rint(|x| * 1e4)``; that equals Python's correctly rounded
    (half-to-even) result unless the product lies within its rounding error of a half
    (never for float32 data: the product is exact); rows holding such values, infinities
    or values of 1e7 or more are formatted by Python."""
    a = np.asarray(rows, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"format_rows takes a 2-D array, got shape {a.shape}")
    if a.size == 0:
        return b"\n" * a.shape[0]
    r = np.abs(a) * 1e4
    nan = np.isnan(r)
    has_nan = bool(nan.any())
    if has_nan:
        r[nan] = 0.0
    ri = np.rint(r)
    with np.errstate(invalid="ignore"):  # inf - inf
        slow = (np.abs(r - ri) >= 0.5 - r * 2.3e-16) | ~(r < _MAX_FAST * 1e4)
    if not slow.any():
        return _format_fast(a, ri, nan if has_nan else None)
    parts, prev = [], 0
    for i in np.flatnonzero(slow.any(axis=1)).tolist():
        if i > prev:
            parts.append(_format_fast(a[prev:i], ri[prev:i], nan[prev:i]))
        parts.append((",".join(f"{v:.4f}" for v in a[i].tolist()) + "\n").encode())
        prev = i + 1
    if prev < len(a):
        parts.append(_format_fast(a[prev:], ri[prev:], nan[prev:]))
    return b"".join(parts)


def _format_fast(a: np.ndarray, ri: np.ndarray, nan: np.ndarray | None) -> bytes:
    """``format_rows`` of rows whose values are NaN or below ``_MAX_FAST`` and not near a
    tie; ``ri`` = rint(|a| * 1e4) (0 at NaN), ``nan`` where ``a`` is NaN (None: nowhere)."""
    ip, fp = np.divmod(ri.astype(np.int64), 10000)
    dec3, dec1 = np.divmod(fp, 10)
    sign = np.signbit(a) * 10000  # index offset of the signed texts (NaN: overwritten)
    if int(ip.max()) < 1000:  # sign and integer digits fit one word
        w = np.empty((*a.shape, 3), dtype=np.uint32)
        w[..., 0] = np.take(_SIGNED, ip + sign)
    else:  # a word before the last 4 integer digits: the minus and digits above them
        hi, lo = np.divmod(ip, 10000)
        big = hi > 0
        w = np.empty((*a.shape, 4), dtype=np.uint32)
        w[..., 0] = np.where(big, np.take(_SIGNED, hi + sign),
                             np.where((sign > 0) & (lo >= 1000), _MINUS, 0))
        w[..., 1] = np.where(big, np.take(_PADDED, lo), np.take(_SIGNED, lo + sign))
    w[..., -2] = np.take(_POINT3, dec3)
    w[..., -1] = np.take(_LAST_COMMA, dec1)
    w[:, -1, -1] = np.take(_LAST_NEWLINE, dec1[:, -1])
    if nan is not None and nan.any():
        w[nan] = 0
        w[nan, 0] = _NAN
        w[nan, -1] = _COMMA
        w[nan[:, -1], -1, -1] = _NEWLINE
    return w.tobytes().translate(None, b"\0")


class _NanBlock:
    """Rows with no reconstruction (``CsvSink.pad_to``)."""

    def __init__(self, t0_s: float, fs_hz: float, nan: np.ndarray) -> None:
        self.t0_s, self.fs_hz, self.leads, self.std = t0_s, fs_hz, nan, nan


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
        #: rows with reconstructed leads (II finite), not gap or too-short stretches
        self.reconstructed_rows = 0
        self._next_t: float | None = None

    def start_at(self, t_s: float, fs_hz: float) -> None:
        """Put the first row at ``t_s`` (the signal's start: rows before the first block are
        NaN) instead of at the first block. Only before anything is written."""
        if self.fs_hz is None:
            self.fs_hz, self.origin_s, self._next_t = float(fs_hz), float(t_s), float(t_s)

    def pad_to(self, t_s: float) -> int:
        """NaN rows from the last row written up to ``t_s`` (the signal's end); returns how
        many."""
        if self.fs_hz is None or self._next_t is None:
            return 0
        n = int(round((t_s - self._next_t) * self.fs_hz))
        if n <= 0:
            return 0
        nan = np.full((n, 12), np.nan, np.float32)
        t0 = self._next_t
        self.write(_NanBlock(t0, self.fs_hz, nan))
        self.nan_rows += n
        return n

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
            rows = np.empty((leads.shape[0], 1 + 2 * 12))
            rows[:, 0], rows[:, 1:13], rows[:, 13:] = t, leads, std
            self._write(format_rows(rows))
        self.rows += leads.shape[0]
        self.reconstructed_rows += int(np.count_nonzero(np.isfinite(leads[:, 1])))
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


def _header_checked(f: TextIO, p: Path) -> None:
    """Read the header line of an open ecg12 CSV; SinkError if it is not ours."""
    header = f.readline().strip().split(",")
    if tuple(header) != COLUMNS:
        raise SinkError(f"{p} is not an ecg12 output CSV (header {header[:3]}...)")


BLOCK_ROWS = 8192  # rows per block when a CSV is read back in constant memory


def csv_blocks(csv_path: str | Path, block_rows: int = BLOCK_ROWS
               ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """An ecg12 CSV read back ``block_rows`` rows at a time: (t_s, leads (n, 12) float32, std
    (n, 12) float32), as ``read_csv`` reads it whole (a cut last row, left by
    a writer killed inside a write, is dropped)."""
    p = Path(csv_path)
    with p.open() as f:
        _header_checked(f, p)
        lines: list[str] = []
        for line in f:
            if not line.endswith("\n"):
                break  # the cut last row
            lines.append(line)
            if len(lines) >= block_rows:
                yield _parse(lines, p)
                lines = []
        if lines:
            yield _parse(lines, p)


def _parse(lines: list[str], p: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        data = np.loadtxt(lines, delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise SinkError(f"{p}: unreadable row ({' '.join(str(exc).split())})") from None
    if data.shape[1] != len(COLUMNS):
        raise SinkError(f"{p}: rows have {data.shape[1]} values, not {len(COLUMNS)}")
    return data[:, 0], data[:, 1:13].astype(np.float32), data[:, 13:25].astype(np.float32)


def read_csv_span(path: str | Path, start_s: float, length_s: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None]:
    """The rows of an ecg12 CSV with ``start_s <= t < start_s + length_s``, read line by line
    and stopping after the span (a 24 h file is not loaded to draw 10 s of it): (t_s, leads,
    std, t of the last row read, None for no rows). A cut last row is dropped."""
    p = Path(path)
    end = start_s + length_s
    keep: list[str] = []
    last: float | None = None
    with p.open() as f:
        _header_checked(f, p)
        for line in f:
            if not line.endswith("\n"):
                break  # the cut last row
            try:
                last = float(line[:line.index(",")])
            except ValueError:
                raise SinkError(f"{p}: unreadable row {line[:40]!r}") from None
            if last >= end:
                break
            if last >= start_s:
                keep.append(line)
    if not keep:
        z = np.zeros((0, 12), np.float32)
        return np.zeros(0), z, z.copy(), last
    return (*_parse(keep, p), last)


def read_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read an ecg12 CSV back: (t_s (n,), leads (n, 12), std (n, 12))."""
    p = Path(path)
    with p.open() as f:
        _header_checked(f, p)
    raw = p.read_bytes()
    if raw and not raw.endswith(b"\n"):  # a writer killed inside a large write: drop the cut row
        raw = raw[:raw.rfind(b"\n") + 1]
    data = np.loadtxt(io.StringIO(raw.decode()), delimiter=",", skiprows=1, ndmin=2,
                      dtype=np.float64)
    if data.size == 0:
        data = np.zeros((0, len(COLUMNS)))
    return data[:, 0], data[:, 1:13].astype(np.float32), data[:, 13:25].astype(np.float32)
