"""The file input layer: one channel (Lead I) of a WFDB, EDF, EDF+, BDF or CSV/TSV recording.

`open_recording` checks a file once (format, channel, rate, units, time column) and returns a
`Recording` whose `blocks()` streams the channel from disk in blocks, in mV, at the channel's
true rate, on an explicit time line: each block is (index of its first sample, samples), and
missing stretches (holes in a time column, null WFDB segments, NaN/empty cells) are skipped
indices or NaN, never packed together. Every refusal is a `RecordingInputError` (an EdgeError)
whose one-line message names the file, the field and the value.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import EdgeError
from edge.sources.errors import RecordingError

#: rates the gateway accepts for Lead I (same as edge.MIN_FS_HZ / MAX_FS_HZ)
MIN_FS_HZ, MAX_FS_HZ = 100.0, 1000.0
#: a rate without a small exact ratio to the model rate is read as the nearest one within this
RATE_TOLERANCE = 1e-4
UNITS_TO_MV = {"mv": 1.0, "uv": 1e-3, "v": 1e3}
_UNIT_ALIASES = {"mv": "mv", "millivolt": "mv", "millivolts": "mv", "uv": "uv", "µv": "uv",
                 "μv": "uv", "microvolt": "uv", "microvolts": "uv", "v": "v", "volt": "v",
                 "volts": "v"}
_UNDECLARED = {"", "nu", "none", "unknown", "?"}
_UNIT_NAMES = {"mv": "mV", "uv": "uV", "v": "V"}
_TIME_SCALES = {"t": 1.0, "t_s": 1.0, "time": 1.0, "time_s": 1.0, "times": 1.0, "seconds": 1.0,
                "sec": 1.0, "s": 1.0, "timestamp_s": 1.0, "elapsed_s": 1.0, "t_ms": 1e-3,
                "time_ms": 1e-3, "ms": 1e-3, "timestamp_ms": 1e-3, "elapsed_ms": 1e-3,
                "t_us": 1e-6, "time_us": 1e-6, "timestamp_us": 1e-6, "millis": 1e-3,
                "micros": 1e-6}
#: amplitude (99.9th percentile of |x - median|, in mV) above which a signal looks like µV
UV_LIKE_MV, V_LIKE_MV = 30.0, 0.03
#: larger than any ECG (mV) in any of the units above
MAX_ECG_MV = 200.0
BLOCK_S = 60.0
_CHECK_S = 30.0


class RecordingInputError(RecordingError, EdgeError):
    """A recording cannot be used as it is: the message names the file, field and value."""

    hint = ""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _fail(path: Path | str, what: str, hint: str = "") -> RecordingInputError:
    return RecordingInputError(f"{path}: {what}", hint=hint or None)


# ---------------------------------------------------------------------- channels and units
def _lead_key(name: str) -> str:
    k = name.strip().lower().replace(" ", "").replace("_", "").replace("-", "")
    for prefix in ("ecglead", "lead", "ecg"):
        if k.startswith(prefix) and len(k) > len(prefix):
            k = k[len(prefix):]
            break
    return k


_UNIT_SUFFIX = re.compile(r"[\s_]*[\[(]?\s*([muµμ]?v)\s*[\])]?$", re.I)


def name_unit(name: str) -> str | None:
    """The unit a channel name ends with ('ECG_uV', 'I (mV)', 'lead_i [uv]'), if any."""
    m = _UNIT_SUFFIX.search(name.strip())
    return m.group(1) if m and m.start() > 0 else None


def channel_key(name: str) -> str:
    """Name normalised for matching: case, spaces, 'lead'/'ECG' prefixes, unit suffix."""
    stem = _UNIT_SUFFIX.sub("", name.strip()) if name_unit(name) else name
    return _lead_key(stem)


def pick_channel(names: list[str], lead: str | None, channel: int | None, path: Path | str,
                 skip: tuple[int, ...] = ()) -> int:
    """Index of the channel to read: `channel` (0-based index) or the one named `lead`.

    Refuses an unknown name, an out-of-range index and a name that matches several channels.
    A single-lead file whose only channel is called "ECG" (or has no name) is Lead I.
    """
    shown = [f"{i}:{n or '(no name)'}" for i, n in enumerate(names) if i not in skip]
    listing = ", ".join(shown[:24]) + (f", ... ({len(shown)} channels)" if len(shown) > 24
                                       else "")
    if channel is not None:
        if not 0 <= channel < len(names) or channel in skip:
            raise _fail(path, f"channel index {channel} does not exist (channels: {listing})",
                        "pick one with --channel N (0-based) or --lead NAME")
        return channel
    lead = "I" if lead is None else lead
    want = channel_key(lead)
    cands = [i for i in range(len(names)) if i not in skip]
    hits = [i for i in cands if channel_key(names[i]) == want]
    if not hits and want == "i":  # a single-lead wearable file: "ECG", "ecg_mv", or unnamed
        loose = [i for i in cands if channel_key(names[i]) in {"ecg", ""}]
        hits = loose if len(loose) == 1 else []
    if len(hits) > 1:
        raise _fail(path, f"{len(hits)} channels are named like {lead!r} "
                          f"({', '.join(str(i) for i in hits)}; channels: {listing})",
                    "pick one by index with --channel N")
    if not hits:
        raise _fail(path, f"no lead {lead!r} (channels: {listing})",
                    "pick the channel with --lead NAME or --channel N (0-based)")
    return hits[0]


def unit_key(unit: str | None, path: Path | str, field_name: str) -> str | None:
    """'mv' / 'uv' / 'v' for a declared unit, None when the file does not say."""
    u = (unit or "").strip().lower().replace("\xb5", "µ")
    if u in _UNDECLARED:
        return None
    if u not in _UNIT_ALIASES:
        raise _fail(path, f"{field_name} {unit!r} is not a voltage unit (mV, uV, V)",
                    "give the units with --units mV|uV|V")
    return _UNIT_ALIASES[u]


def _amplitude_mv(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    if x.size < 10:
        return float("nan")
    return float(np.percentile(np.abs(x - np.median(x)), 99.9))


class UnitsSample:
    """The samples the units are judged on: the first ``n`` finite ones after any flat
    lead-in (a recording that starts with zeros, a constant or missing values is judged on
    its signal, not on the lead-in). Feed blocks in time order with ``add``."""

    def __init__(self, n: int) -> None:
        self.n = max(1, int(n))
        self._vals: list[np.ndarray] = []
        self._count = 0
        self._lead_in: float | None = None

    @property
    def full(self) -> bool:
        return self._count >= self.n

    def add(self, x: np.ndarray) -> None:
        if self.full:
            return
        v = np.asarray(x, dtype=np.float64)
        v = v[np.isfinite(v)]
        if not self._count and v.size:
            if self._lead_in is None:
                self._lead_in = float(v[0])
            moved = np.flatnonzero(v != self._lead_in)
            v = v[moved[0]:] if moved.size else v[:0]
        v = v[:self.n - self._count]
        if v.size:
            self._vals.append(v)
            self._count += v.size

    def values(self) -> np.ndarray:
        """What was kept; all lead-in when nothing else came (a flat recording)."""
        if not self._vals and self._lead_in is not None:
            return np.full(min(self.n, 10), self._lead_in)
        return np.concatenate(self._vals) if self._vals else np.zeros(0)


def resolve_units(first: np.ndarray, declared: str | None, forced: str | None,
                  path: Path | str, channel: str) -> tuple[str, str]:
    """(unit key, how it was decided) from the first samples (in file units)."""
    if forced is not None:
        key = unit_key(forced, path, "--units")
        if key is None:
            raise _fail(path, f"--units {forced!r} is not mV, uV or V")
        return key, "--units"
    a = _amplitude_mv(first * UNITS_TO_MV[declared or "mv"])
    if (a * 1e-3 if declared in (None, "mv") else a) > MAX_ECG_MV:  # too big even as uV
        raise _fail(path, f"channel {channel!r} reaches {a:.3g} "
                          f"{'units' if declared is None else 'mV'}: implausible for an ECG "
                          "in mV or uV", "check the channel, or force the units with --units")
    if declared is None:
        if a > UV_LIKE_MV:
            return "uv", f"amplitude ({a:.0f} units: looks like uV)"
        if 0 < a < V_LIKE_MV:
            return "v", f"amplitude ({a:.4f} units: looks like V)"
        return "mv", "assumed (amplitude looks like mV)"
    name = _UNIT_NAMES[declared]
    if a > UV_LIKE_MV:
        raise _fail(path, f"channel {channel!r} reaches {a:.0f} mV read as {name}, which looks "
                          "like uV", f"if the values are uV say so with --units uV "
                                     f"(or --units {name} to keep {name})")
    if 0 < a < V_LIKE_MV and declared != "v":
        raise _fail(path, f"channel {channel!r} reaches only {a * 1000:.1f} uV read as {name}, "
                          "which looks like V or a wrong gain",
                    f"say the units with --units V|mV|uV (or --units {name} to keep {name})")
    return declared, "file"


def check_rate(fs: Any, path: Path | str, field_name: str) -> float:
    """A sampling rate from a file or option: a finite number within the supported range."""
    try:
        f = float(fs)
    except (TypeError, ValueError):
        raise _fail(path, f"{field_name} {fs!r} is not a number") from None
    if not math.isfinite(f) or f <= 0:
        raise _fail(path, f"{field_name} {fs!r} is not a positive sampling rate",
                    "give the rate with --fs HZ")
    if not MIN_FS_HZ <= f <= MAX_FS_HZ:
        raise _fail(path, f"{field_name} {f:g} Hz is outside the supported {MIN_FS_HZ:g}-"
                          f"{MAX_FS_HZ:g} Hz", "record Lead I at 100-1000 Hz")
    return f


def nominal_rate(fs_hz: float, model_fs_hz: float, max_factor: int = 1000,
                 tolerance: float = RATE_TOLERANCE) -> float:
    """`fs_hz` itself when the model rate is a small exact ratio of it, else the nearest rate
    that is (within `tolerance`, relative); raises ValueError when there is none."""
    ratio = Fraction(model_fs_hz / fs_hz).limit_denominator(max_factor)
    up, down = ratio.numerator, ratio.denominator
    if up == 0 or up > max_factor:
        raise ValueError(f"{fs_hz:g} Hz has no rational ratio to {model_fs_hz:g} Hz with "
                         f"factors <= {max_factor}")
    nominal = model_fs_hz * down / up
    if abs(nominal / fs_hz - 1.0) <= 1e-9:
        return fs_hz
    if abs(nominal / fs_hz - 1.0) > tolerance:
        raise ValueError(f"{fs_hz:g} Hz is more than {tolerance:.2%} from any rate with a "
                         f"ratio <= {max_factor} to {model_fs_hz:g} Hz")
    return nominal


# ---------------------------------------------------------------------- the recording
Blocks = Callable[[int], Iterator[tuple[int, np.ndarray]]]


@dataclass
class Recording:
    """One channel of a recording file, checked, ready to stream (see `blocks`)."""

    path: Path
    kind: str
    channel: str
    index: int
    fs_hz: float
    fs_from: str
    n_samples: int
    unit: str
    unit_from: str
    reader: Blocks = field(repr=False)
    notes: list[str] = field(default_factory=list)
    t0_file_s: float = 0.0
    #: the first sample's time as the file gives it (a CSV time column's value in s; WFDB
    #: base date/time, EDF start date/time as ISO 8601); output t_s counts from it
    origin: float | str | None = None

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs_hz

    def blocks(self, block_n: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(first sample index on the time line, float32 mV samples; NaN = missing)."""
        n = block_n or max(1, int(BLOCK_S * self.fs_hz))
        scale = UNITS_TO_MV[self.unit]
        for start, x in self.reader(n):
            y = np.asarray(x, dtype=np.float64) * scale
            y[~np.isfinite(y)] = np.nan
            yield start, y.astype(np.float32)

    def read(self) -> np.ndarray:
        """The whole time line as one array (NaN where missing); for short files and tests."""
        out = np.full(self.n_samples, np.nan, np.float32)
        for start, x in self.blocks():
            out[start:start + len(x)] = x[:max(0, self.n_samples - start)]
        return out

    def describe(self) -> dict[str, Any]:
        """What was read, for summary.json."""
        return {"file": str(self.path), "format": self.kind, "channel": self.channel,
                "channel_index": self.index, "fs_hz": self.fs_hz, "fs_from": self.fs_from,
                "samples": self.n_samples, "duration_s": round(self.duration_s, 6),
                "units": _UNIT_NAMES[self.unit], "units_from": self.unit_from,
                "notes": list(self.notes),
                **({} if self.origin is None else {"first_sample_time": self.origin,
                                                   "t_s_from": "the first sample (t_s = 0)"})}


def open_recording(path: str | Path, lead: str | None = "I", *, channel: int | None = None,
                   fs_hz: float | None = None, units: str | None = None) -> Recording:
    """Check a recording file and return the chosen channel as a streamable `Recording`.

    `fs_hz` (the --fs option) supplies the rate of a file that carries none; when the file
    has a rate too, both must agree. `units` (mV/uV/V) overrides the file's or detected units.
    """
    p = Path(path)
    if fs_hz is not None:
        fs_hz = check_rate(fs_hz, p, "--fs")
    kind = _kind(p)
    if kind == "WFDB":
        from edge.sources.formats_wfdb import open_wfdb

        return open_wfdb(p, lead, channel, fs_hz, units)
    if kind == "EDF":
        return _open_edf(p, lead, channel, fs_hz, units)
    return _open_csv(p, lead, channel, fs_hz, units)


def _kind(p: Path) -> str:
    suffix = p.suffix.lower()
    base = p.with_suffix("") if suffix in {".hea", ".dat", ".mat"} else p
    if suffix in {".hea", ".dat", ".mat", ""} and base.with_suffix(".hea").is_file():
        return "WFDB"
    if suffix == ".hea":
        raise _fail(p, "WFDB header not found")
    if not p.exists():
        raise _fail(p, "recording not found")
    if not p.is_file():
        raise _fail(p, "not a file")
    if suffix in {".edf", ".bdf", ".rec"}:
        return "EDF"
    if suffix in {".csv", ".tsv", ".txt", ".tab"}:
        return "CSV"
    if p.with_suffix(".hea").is_file():
        return "WFDB"
    with p.open("rb") as f:
        head = f.read(8)
    if head.startswith((b"0       ", b"\xffBIOSEMI")):
        return "EDF"
    raise _fail(p, f"unknown recording format {suffix!r}",
                "use WFDB (.hea), EDF/EDF+/BDF, or CSV/TSV")


def merge_fs(file_fs: float | None, option_fs: float | None, path: Path, field_name: str
             ) -> tuple[float, str]:
    """The rate to use: the file's, or --fs where the file has none; they must agree."""
    if file_fs is None:
        if option_fs is None:
            raise _fail(path, f"{field_name} is missing: the file gives no sampling rate",
                        "give it with --fs HZ")
        return option_fs, "--fs"
    if option_fs is not None and abs(option_fs / file_fs - 1) > RATE_TOLERANCE:
        raise _fail(path, f"--fs {option_fs:g} contradicts {field_name} {file_fs:g} Hz",
                    "drop --fs (it is for files that carry no rate)")
    return file_fs, field_name


# ---------------------------------------------------------------------- EDF / EDF+ / BDF
@contextlib.contextmanager
def _c_stdout_silenced() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null meanwhile: edflib (under pyedflib) printf()s its
    reasons for refusing a file ("filesize ... != ...") to stdout, where they would land in
    ``--events -``'s NDJSON. Only around opening, before any output exists."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real fd 1 (embedded, captured): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _open_edf(p: Path, lead: str | None, channel: int | None, fs_opt: float | None,
              units: str | None) -> Recording:
    import pyedflib

    with p.open("rb") as f:
        head = f.read(256)
    bdf = head.startswith(b"\xffBIOSEMI")
    reserved = head[192:236].decode("ascii", "replace").strip()
    kind = ("BDF" if bdf else "EDF") + ("+" if reserved[:4] in {"EDF+", "BDF+"} else "")
    if reserved[:5] in {"EDF+D", "BDF+D"}:
        raise _fail(p, f"header field 'reserved' {reserved[:5]!r}: discontinuous EDF+D/BDF+D "
                       "is not supported", "convert it to EDF+C (continuous) first")
    try:
        with _c_stdout_silenced(), pyedflib.EdfReader(str(p)) as edf:
            labels = [str(s).strip() for s in edf.getSignalLabels()]
            if not labels:
                raise _fail(p, "no signals (only annotations)")
            ch = pick_channel(labels, lead, channel, p)
            fs_file = float(edf.getSampleFrequency(ch))
            n = int(edf.getNSamples()[ch])
            dim = edf.getPhysicalDimension(ch)
            first = edf.readSignal(ch, 0, min(n, max(1, int(_CHECK_S * max(fs_file, 1.0)))))
            try:
                origin: str | None = edf.getStartdatetime().isoformat()
            except Exception:  # noqa: BLE001 - a start date pyedflib cannot parse: unknown
                origin = None
    except RecordingInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyedflib raises OSError and others
        raise _fail(p, f"cannot read {kind} file ({_one_line(exc)})") from None
    label = f"signal {labels[ch]!r} sample rate"
    fs, fs_from = merge_fs(check_rate(fs_file, p, label) if fs_file else None, fs_opt, p, label)
    if n == 0:
        raise _fail(p, f"signal {labels[ch]!r} has no samples")
    declared = unit_key(dim, p, f"signal {labels[ch]!r} physical dimension")
    unit, unit_from = resolve_units(first, declared, units, p, labels[ch])

    def reader(block_n: int) -> Iterator[tuple[int, np.ndarray]]:
        with pyedflib.EdfReader(str(p)) as edf:
            for start in range(0, n, block_n):
                yield start, edf.readSignal(ch, start, min(block_n, n - start))

    rec = Recording(p, kind, labels[ch], ch, fs, "header" if fs_from == label else fs_from, n,
                    unit, unit_from, reader)
    rec.origin = origin
    return rec


# ---------------------------------------------------------------------- CSV / TSV
def _open_csv(p: Path, lead: str | None, channel: int | None, fs_opt: float | None,
              units: str | None) -> Recording:
    from edge.sources.formats_csv import open_csv

    return open_csv(p, lead, channel, fs_opt, units)


# ---------------------------------------------------------------------- compatibility
def read_recording(path: str | Path, lead: str = "I",
                   fs_hz: float | None = None) -> tuple[np.ndarray, float]:
    """(samples_mv float32 (n,), fs_hz) of the whole file; NaN marks missing samples."""
    rec = open_recording(path, lead, fs_hz=fs_hz)
    return rec.read(), rec.fs_hz


def finite_runs(x: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index ranges of the finite (non-NaN) stretches of `x`."""
    ok = np.isfinite(x).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok, [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
