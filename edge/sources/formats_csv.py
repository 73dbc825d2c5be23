"""CSV/TSV recordings for the input layer, read line by line (never whole into memory).

A file is read three times: its head (layout, time step, units), the whole file once to
check every row (column count, numbers, time column) before any output is written, then in
blocks while streaming. A time column puts every sample on a grid at the file's rate: a hole
(rows missing) becomes a gap of exactly the missing samples; a step that is not a whole
number of samples, time going backwards or repeating, or a clock that drifts off the grid is
refused with the row and value.

Rows are parsed a batch at a time by numpy's C reader (``np.loadtxt``), with the time grid
checked vectorised; a batch it cannot take (missing-value words, quotes, a bad row) goes
row by row through the same checks, so errors name the same line either way. The drift
check keeps two convex hulls of its samples, not the samples (constant memory for a 24 h
file); only a file that fails it is read a third time, to name the first row off the grid.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.sources.recording import (
    _CHECK_S,
    _TIME_SCALES,
    MAX_FS_HZ,
    MIN_FS_HZ,
    Recording,
    UnitsSample,
    _fail,
    merge_fs,
    name_unit,
    pick_channel,
    resolve_units,
    unit_key,
)

_HEAD_ROWS = 10000
_MISSING = {"", "nan", "na", "n/a", "null", "none", "-"}
#: largest deviation (in samples) of one time step from a whole number of samples
STEP_TOLERANCE = 0.25
#: a hole in the time column longer than this is not one recording (its NaN rows alone would
#: fill memory and disk): refused, naming the line
MAX_HOLE_S = 3600.0
#: largest deviation (in samples) of any row from the file's time grid
GRID_TOLERANCE = 0.5
_DRIFT_EVERY = 32
#: data lines parsed per batch
_BATCH = 8192


@dataclass
class _Layout:
    encoding: str
    delim: str | None
    names: list[str]
    header: bool
    tcol: int | None
    tscale: float
    col: int
    notes: list[str]
    decimal_comma: bool = False


def _encoding(p: Path) -> str:
    with p.open("rb") as f:
        head = f.read(65536)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" in head:
        raise _fail(p, "binary data (NUL bytes), not a text CSV",
                    "reconstruct reads WFDB, EDF/BDF, or CSV/TSV text")
    enc = "utf-8-sig" if head.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        head.decode(enc)
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            raise _fail(p, f"not UTF-8 text (byte {exc.start}: 0x{head[exc.start]:02x})",
                        "save the CSV as UTF-8") from None
    return enc


def _lines(p: Path, enc: str, blanks: bool = False) -> Iterator[tuple[int, str]]:
    """(line number, stripped content) of lines that are not blank or '#' comments; with
    ``blanks``, a blank line between two data lines is ``"nan"`` (in a file of one column
    without time, an empty cell is a blank line: a missing sample, not nothing)."""
    held: list[int] = []  # blank lines since the last data line
    seen = False
    try:
        with p.open(encoding=enc, newline="") as f:
            for no, line in enumerate(f, 1):
                s = line.strip()
                if not s:
                    if blanks and seen:
                        held.append(no)
                    continue
                if s.startswith("#"):
                    continue
                for b in held:
                    yield b, "nan"
                held, seen = [], True
                yield no, s
    except UnicodeDecodeError as exc:
        at = _undecodable_line(p, enc)
        raise _fail(p, f"not UTF-8 text ({exc.reason}" + (f" on line {at})" if at else ")"),
                    "save the CSV as UTF-8") from None


def _undecodable_line(p: Path, enc: str) -> int | None:
    """Number of the first line that is not valid ``enc`` (the decoder fails a whole
    buffer ahead, so its position does not name the line)."""
    try:
        with p.open("rb") as f:
            for no, raw in enumerate(f, 1):
                try:
                    raw.decode(enc)
                except UnicodeDecodeError:
                    return no
    except OSError:
        pass
    return None


def _split(s: str, delim: str | None) -> list[str]:
    return [v.strip().strip('"').strip() for v in (s.split(delim) if delim else s.split())]


def _num(v: str) -> float:
    if v.lower() in _MISSING:
        return math.nan
    return float(v)


def _time_scale(name: str) -> float | None:
    k = name.strip().lower()
    for a in (" [", " (", "[", "("):
        k = k.replace(a, "_")
    k = k.replace("]", "").replace(")", "").replace(" ", "_")
    return _TIME_SCALES.get(k, 1e-9 if k in {"t_ns", "time_ns", "timestamp_ns"} else None)


def _layout(p: Path, lead: str | None, channel: int | None) -> tuple[_Layout, list[list[str]]]:
    enc = _encoding(p)
    it = _lines(p, enc)
    first = next(it, None)
    if first is None:
        raise _fail(p, "empty CSV (no rows)")
    s = first[1]
    second = next(it, None)
    # ';' wins over ',' (a ';' line with commas in it has decimal commas: 0,5;1,25)
    delim = "\t" if p.suffix.lower() in {".tsv", ".tab"} or "\t" in s else (
        ";" if ";" in s else ("," if "," in s else None))
    fields = _split(s, delim)
    sample = fields if second is None else fields + _split(second[1], delim)
    dec = delim in (";", "\t") and any("," in v for v in sample)

    def fix(r: list[str]) -> list[str]:
        return [v.replace(",", ".") for v in r] if dec else r

    try:
        [_num(v) for v in fix(fields)]
        header, names = False, [""] * len(fields)
    except ValueError:
        header, names = True, fields
    head_rows = [] if header else [fix(fields)]
    for _, line in itertools.chain([second] if second else [], it):
        head_rows.append(fix(_split(line, delim)))
        if len(head_rows) >= _HEAD_ROWS:
            break
    notes: list[str] = []
    scales = [_time_scale(n) for n in names]
    tcol = next((i for i, sc in enumerate(scales) if sc is not None), None)
    tscale = scales[tcol] if tcol is not None else 1.0
    if not header and len(names) >= 2 and _looks_like_time(head_rows):
        tcol, tscale = 0, 1.0
        notes.append("no header: column 0 increases steadily and is read as time in seconds")
    if header:
        dup = {n for n in names if n and names.count(n) > 1}
        if tcol is not None and names[tcol] in dup:
            raise _fail(p, f"header names the time column {names[tcol]!r} more than once")
    skip = (tcol,) if tcol is not None else ()
    col = pick_channel(names, lead, channel, p, skip)
    if tcol is None:
        _refuse_unread_time(p, names, header, head_rows, col)
    if dec:
        notes.append("decimal commas (0,5) read as decimal points")
    return _Layout(enc, delim, names, header, tcol, tscale or 1.0, col, notes, dec), head_rows


#: column names of a time line or sample counter whose unit the name does not say
_UNKNOWN_TIME = {"timestamp", "datetime", "date_time", "date", "clock", "sample", "samples",
                 "sample_index", "sample_number", "index", "idx", "counter", "seq"}


def _refuse_unread_time(p: Path, names: list[str], header: bool, rows: list[list[str]],
                        col: int) -> None:
    """A file with a time line the reader cannot place samples by (a time column of unknown
    unit, or a steadily increasing column 0 without a header) is refused rather than read as
    evenly spaced: holes in it would be squeezed out and every later sample shifted."""
    hint = "name the time column t_s, t_ms or t_us in a header line (or remove it and give --fs)"
    if header:
        for i, n in enumerate(names):
            key = n.strip().lower().replace(" ", "_")
            if i != col and key in _UNKNOWN_TIME:
                raise _fail(p, f"column {i} {n!r} looks like a time line or sample counter, but "
                               "its unit is unknown, so holes in it cannot become gaps", hint)
        return
    if col != 0 and len(names) >= 2:
        try:
            c0 = np.array([float(r[0]) for r in rows[:1000] if r])
        except (ValueError, IndexError):
            return
        if len(c0) >= 3 and np.all(np.diff(c0) > 0):
            raise _fail(p, f"column 0 increases steadily (step {float(np.median(np.diff(c0))):g}) "
                           "like a time line or sample counter of unknown unit, so holes in it "
                           "cannot become gaps", hint)


def _looks_like_time(rows: list[list[str]]) -> bool:
    try:
        t = np.array([float(r[0]) for r in rows[:1000] if r])
    except (ValueError, IndexError):
        return False
    if len(t) < 3:
        return False
    d = np.diff(t)
    if not np.all(d > 0):
        return False
    med = float(np.median(d))
    return 1.0 / (2 * MAX_FS_HZ) <= med <= 2.0 / MIN_FS_HZ


class _Hull:
    """Upper envelope of lines y = a * f + b added in increasing slope ``a`` (monotone convex
    hull trick): ``max_at(f)`` = the largest y of all lines added, in O(hull) memory."""

    def __init__(self) -> None:
        self.a: list[float] = []
        self.b: list[float] = []

    def add(self, a: float, b: float) -> None:
        la, lb = self.a, self.b
        while len(la) >= 2 and (b - lb[-2]) * (la[-1] - la[-2]) >= (lb[-1] - lb[-2]) * (a - la[-2]):
            la.pop()
            lb.pop()
        la.append(a)
        lb.append(b)

    def max_at(self, f: float) -> float:
        return max((a * f + b for a, b in zip(self.a, self.b, strict=True)), default=-math.inf)


class _Drift:
    """The drift check's samples (grid index m at time t, every ``_DRIFT_EVERY`` rows), kept
    as the two hulls that bound ``(t - t_first) * fs - m`` over all of them for any rate."""

    def __init__(self) -> None:
        self.hi, self.lo = _Hull(), _Hull()
        self.count = 0

    def add(self, m: int, a: float) -> None:
        """A sample at grid index ``m``, ``a = t - t_first`` seconds after the first row."""
        self.hi.add(a, -m)  # max over samples of a * fs - m
        self.lo.add(a, m)  # -(min over samples of a * fs - m), evaluated at -fs
        self.count += 1

    def worst(self, fs: float) -> float:
        """The largest |(t - t_first) * fs - m| over the samples."""
        return max(self.hi.max_at(fs), self.lo.max_at(-fs), 0.0)


class _Walk:
    """Turn rows into (grid index, value); checks columns, numbers and the time grid.

    Every ``_DRIFT_EVERY``-th row's (grid index, time, line) is a drift sample: kept in
    ``drift`` (hulls), or handed to ``probe`` when one is set."""

    def __init__(self, p: Path, lay: _Layout, dt: float | None, drift: bool = True) -> None:
        self.p, self.lay, self.dt = p, lay, dt
        self.ncols = len(lay.names)
        self.rows = 0
        self.m = -1
        self.t_first = self.t_prev = math.nan
        self.drift = _Drift() if drift else None
        self.probe: Callable[[int, float, int], None] | None = None

    def _sample(self, m: int, t: float, no: int) -> None:
        if self.probe is not None:
            self.probe(m, t, no)
        elif self.drift is not None:
            self.drift.add(m, t - self.t_first)

    def _cell(self, r: list[str], i: int, no: int) -> float:
        try:
            return _num(r[i])
        except ValueError:
            col = self.lay.names[i] or f"column {i}"
            raise _fail(self.p, f"line {no}, {col!r}: {r[i]!r} is not a number") from None

    def row(self, no: int, r: list[str]) -> tuple[int, float]:
        lay = self.lay
        if len(r) != self.ncols:
            raise _fail(self.p, f"line {no} has {len(r)} values; the "
                                f"{'header' if lay.header else 'first row'} has {self.ncols}")
        x = self._cell(r, lay.col, no)
        self.rows += 1
        if lay.tcol is None or self.dt is None:
            self.m += 1
            return self.m, x
        t = self._cell(r, lay.tcol, no) * lay.tscale
        tname = lay.names[lay.tcol] or "column 0"
        if not math.isfinite(t):
            raise _fail(self.p, f"line {no}, time column {tname!r}: {r[lay.tcol]!r} is not a "
                                "finite time")
        if self.m < 0:
            self.t_first, self.m = t, 0
        else:
            step = (t - self.t_prev) / self.dt
            k = round(step)
            if k < 1:
                raise _fail(self.p, f"line {no}, time column {tname!r}: {r[lay.tcol]!r} "
                                    f"{'repeats' if t == self.t_prev else 'goes back'} "
                                    f"(previous {self.t_prev / lay.tscale:g})",
                            "sort the rows by time and drop duplicates")
            if abs(step - k) > STEP_TOLERANCE:
                raise _fail(self.p, f"line {no}, time column {tname!r}: step "
                                    f"{(t - self.t_prev) / lay.tscale:g} is {step:.2f} samples "
                                    f"at {1 / self.dt:.6g} Hz: not uniform",
                            "resample the file to a uniform rate")
            if (k - 1) * self.dt > MAX_HOLE_S:
                raise _fail(self.p, f"line {no}, time column {tname!r}: jumps "
                                    f"{(t - self.t_prev) / lay.tscale:g} from the previous row "
                                    f"({(k - 1) * self.dt:.0f} s without data, over "
                                    f"{MAX_HOLE_S:.0f} s)", "split the file at that line")
            self.m += k
        if self.rows % _DRIFT_EVERY == 1:
            self._sample(self.m, t, no)
        self.t_prev = t
        return self.m, x

    def rows_of(self, batch: list[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray]:
        """Grid indices (int64) and values (float64) of a batch of (line number, line):
        ``row`` for each line, vectorised when numpy's reader takes the whole batch."""
        fast = self._fast(batch)
        if fast is not None:
            return fast
        ms, xs = [], []
        for no, line in batch:
            m, x = self.row(no, _split(line, self.lay.delim))
            ms.append(m)
            xs.append(x)
        return np.array(ms, dtype=np.int64), np.array(xs, dtype=np.float64)

    def _fast(self, batch: list[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray] | None:
        """``rows_of`` for a batch of plain numbers on a clean time grid; None (state
        untouched) for anything else, which ``row`` then checks and names."""
        lay = self.lay
        if self.probe is not None or not batch:
            return None
        try:
            vals = np.loadtxt([line for _, line in batch], delimiter=lay.delim, comments=None,
                              ndmin=2, dtype=np.float64)
        except ValueError:
            return None
        if vals.shape != (len(batch), self.ncols):
            return None
        n = len(batch)
        x = vals[:, lay.col]
        if lay.tcol is None or self.dt is None:
            m = self.m + 1 + np.arange(n, dtype=np.int64)
            self.m += n
            self.rows += n
            return m, x
        t = vals[:, lay.tcol] * lay.tscale
        if not np.isfinite(t).all():
            return None
        first = self.m < 0
        prev = np.concatenate([[t[0] if first else self.t_prev], t[:-1]])
        step = (t - prev) / self.dt
        k = np.round(step)  # half to even, as round()
        chk = slice(1 if first else 0, None)
        if (k[chk] < 1).any() or (np.abs(step - k)[chk] > STEP_TOLERANCE).any() or (
                (k[chk] - 1) * self.dt > MAX_HOLE_S).any():
            return None
        if first:
            k[0] = 0.0
            self.t_first = float(t[0])
        m = (0 if first else self.m) + np.cumsum(k).astype(np.int64)
        for i in np.flatnonzero((self.rows + 1 + np.arange(n)) % _DRIFT_EVERY == 1).tolist():
            self._sample(int(m[i]), float(t[i]), batch[i][0])
        self.rows += n
        self.m, self.t_prev = int(m[-1]), float(t[-1])
        return m, x


def _head_dt(p: Path, lay: _Layout, rows: list[list[str]]) -> float | None:
    """Time step from the head rows: median step, refined by a fit over whole steps."""
    if lay.tcol is None:
        return None
    try:
        t = np.array([_num(r[lay.tcol]) for r in rows if len(r) > lay.tcol]) * lay.tscale
    except ValueError:
        return 1.0  # the full check names the bad cell
    d = np.diff(t[np.isfinite(t)])
    d = d[d > 0]
    if d.size == 0:
        if len(t) < 2:
            raise _fail(p, "one data row: the time column gives no rate")
        return 1.0  # the full check names the repeat / step
    med = float(np.median(d))
    k = np.maximum(1, np.round(d / med))
    return float(d.sum() / k.sum())


def open_csv(p: Path, lead: str | None, channel: int | None, fs_opt: float | None,
             units: str | None) -> Recording:
    """Check a CSV/TSV recording (every row) and return its chosen column."""
    lay, head = _layout(p, lead, channel)
    if not head:
        raise _fail(p, "no data rows (header only)")
    dt = _head_dt(p, lay, head)
    walk = _Walk(p, lay, dt)
    n_check = int(_CHECK_S / dt) if dt else int(_CHECK_S * (fs_opt or MAX_FS_HZ))
    sample = UnitsSample(n_check)
    for batch in _batches(_data_lines(p, lay)):
        m, x = walk.rows_of(batch)
        sample.add(x)
    n_samples = walk.m + 1
    tname = lay.names[lay.tcol] or "column 0" if lay.tcol is not None else ""
    if lay.tcol is not None and n_samples > 1:
        span = walk.t_prev - walk.t_first
        fs_time = _snap(walk.m / span)
        label = f"time column {tname!r}"
        if not MIN_FS_HZ <= fs_time <= MAX_FS_HZ:
            raise _fail(p, f"{label} gives {fs_time:.6g} Hz, outside the supported "
                           f"{MIN_FS_HZ:g}-{MAX_FS_HZ:g} Hz",
                        "check the time unit (s; name it t_ms for ms) or record at 100-1000 Hz")
        assert walk.drift is not None
        if walk.drift.worst(fs_time) > GRID_TOLERANCE:
            t_first = walk.t_first

            def probe(m: int, t: float, no: int) -> None:
                dev = (t - t_first) * fs_time - m
                if abs(dev) > GRID_TOLERANCE:
                    raise _fail(p, f"line {no}, {label}: {t / lay.tscale:g} is {dev:+.2f} "
                                   f"samples off the file's {fs_time:.6g} Hz grid: not uniform",
                                "resample the file to a uniform rate")

            again = _Walk(p, lay, dt, drift=False)  # name the first row off the grid
            again.probe = probe
            for batch in _batches(_data_lines(p, lay)):
                again.rows_of(batch)
        fs, fs_from = merge_fs(fs_time, fs_opt, p, label)
    else:
        fs, fs_from = merge_fs(None, fs_opt, p, "sampling rate (no time column)")
    name = lay.names[lay.col]
    declared = unit_key(name_unit(name), p, f"column {name!r} unit") if name else None
    first = sample.values()
    unit, unit_from = resolve_units(first, declared, units, p, name or f"column {lay.col}")
    if unit_from == "file":
        unit_from = "column name"
    kind = "TSV" if lay.delim == "\t" else "CSV"

    def reader(block_n: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first grid index, values): runs of consecutive samples, cut every block_n."""
        w = _Walk(p, lay, dt, drift=False)
        start, parts, size = 0, [], 0
        for batch in _batches(_data_lines(p, lay)):
            m, x = w.rows_of(batch)
            cuts = (np.flatnonzero(np.diff(m) != 1) + 1).tolist()
            for a, b in zip([0, *cuts], [*cuts, len(m)], strict=True):
                if size and int(m[a]) != start + size:  # a hole: the run ends
                    yield start, np.concatenate(parts)
                    parts, size = [], 0
                if not size:
                    start = int(m[a])
                while a < b:
                    if size >= block_n:
                        yield start, np.concatenate(parts)
                        start, parts, size = start + size, [], 0
                    take = min(b - a, block_n - size)
                    parts.append(x[a: a + take])
                    size += take
                    a += take
        if size:
            yield start, np.concatenate(parts)

    col = f"column {lay.col}" + (f" ({name!r})" if name else "")
    notes = lay.notes + [f"Lead I from {col}"]
    if lay.tcol is not None:
        notes.append(f"time line from {tname!r}: {n_samples - walk.rows} missing samples "
                     "(holes) become gaps")
    rec = Recording(p, kind, name or f"column {lay.col}", lay.col, fs,
                    "time column" if fs_from.startswith("time column") else fs_from, n_samples,
                    unit, unit_from, reader, notes)
    if lay.tcol is not None:
        rec.t0_file_s = walk.t_first
        rec.origin = float(walk.t_first)
    return rec


def _batches(lines: Iterator[tuple[int, str]], n: int | None = None
             ) -> Iterator[list[tuple[int, str]]]:
    """Lists of ``n`` (default ``_BATCH``) consecutive items."""
    n = n or _BATCH
    batch: list[tuple[int, str]] = []
    for item in lines:
        batch.append(item)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def _data_lines(p: Path, lay: _Layout) -> Iterator[tuple[int, str]]:
    it = _lines(p, lay.encoding, blanks=len(lay.names) == 1 and lay.tcol is None)
    if lay.header:
        next(it, None)
    if lay.decimal_comma:
        return ((no, line.replace(",", ".")) for no, line in it)
    return it


def _snap(fs: float) -> float:
    """A rate measured from a time column, rounded to 1 mHz when that is within 1e-6."""
    r = round(fs, 3)
    return r if abs(r / fs - 1) < 1e-6 else fs
