"""The one-value-per-line ASCII format of common AD8232 Arduino sketches.

Each line holds one ADC reading (`analogRead`), e.g. `512\\r\\n`; the SparkFun sketch prints
`!` while a lead is off. Optionally a line starts with the sketch's `millis()` (`T,V`,
`T V` or `T<tab>V`, e.g. `Serial.print(millis()); Serial.print(','); Serial.println(v);`):
then `times_ms` holds each value's time stamp and a lost or doubled line can be found.
Noise lines (boot banners, partial or garbled lines, values out of
the ADC range) are skipped and counted, never turned into samples; `!` becomes NaN so that
the sample clock keeps its place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_NUMBER = re.compile(rb"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_TIMED = re.compile(rb"^(\d{1,10})[,;\t ]\s*(\S+)$")  # millis() then the value
MAX_LINE = 32


@dataclass(frozen=True)
class AdcScale:
    """ADC + front-end scale: counts = mid + mV * gain / 1000 / vref * 2**bits."""

    bits: int = 10
    vref_v: float = 3.3
    gain: float = 1100.0  # AD8232 heart-rate-monitor breakout total gain

    @property
    def full_scale(self) -> int:
        return (1 << self.bits) - 1

    @property
    def counts_per_mv(self) -> float:
        return self.gain / 1000.0 / self.vref_v * (1 << self.bits)

    def mv_to_counts(self, mv: np.ndarray) -> np.ndarray:
        mid = 1 << (self.bits - 1)
        c = np.rint(mid + np.asarray(mv, dtype=float) * self.counts_per_mv)
        return np.clip(c, 0, self.full_scale).astype(np.int32)

    def counts_to_mv(self, counts: np.ndarray) -> np.ndarray:
        mid = 1 << (self.bits - 1)
        return (np.asarray(counts, dtype=float) - mid) / self.counts_per_mv


def encode_ascii(values: np.ndarray | list[float], lead_off: np.ndarray | None = None) -> bytes:
    """One value per line with CRLF (as Arduino `Serial.println`); lead-off samples print `!`."""
    vals = np.asarray(values)
    off = np.zeros(vals.shape, bool) if lead_off is None else np.asarray(lead_off, bool)
    ints = np.issubdtype(vals.dtype, np.integer)
    lines = ["!" if o else (str(int(v)) if ints else repr(float(v))) for v, o in zip(vals, off,
                                                                                      strict=True)]
    return "".join(line + "\r\n" for line in lines).encode()


class AsciiDecoder:
    """Incremental decoder: `feed(bytes)` -> float64 array of the complete lines' values."""

    def __init__(self, valid_range: tuple[float, float] | None = None,
                 skip_first_line: bool = False) -> None:
        """`skip_first_line`: drop the first line (partial when attaching mid-stream)."""
        self.valid_range = valid_range
        self.samples = 0
        self.lead_off = 0
        self.noise_lines = 0
        self.times_ms = np.zeros(0)  # per value of the last feed: millis() (NaN = none)
        self._times: list[float] = []
        self._buf = bytearray()
        self._overlong = skip_first_line

    def feed(self, data: bytes | bytearray) -> np.ndarray:
        self._buf += data
        out: list[float] = []
        self._times = []
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                if len(self._buf) > MAX_LINE:
                    self._buf.clear()
                    self._overlong = True
                break
            line = bytes(self._buf[:i]).strip()
            del self._buf[:i + 1]
            if self._overlong:  # tail of a line already discarded as too long
                self._overlong = False
                self.noise_lines += 1
                continue
            self._line(line, out)
        self.times_ms = np.asarray(self._times, dtype=np.float64)
        return np.asarray(out, dtype=np.float64)

    def finish(self) -> None:
        """End of stream: a last line without its newline may be truncated; count it as noise."""
        if self._buf.strip():
            self.noise_lines += 1
        self._buf.clear()

    def _line(self, line: bytes, out: list[float]) -> None:
        if not line:
            return
        t = float("nan")
        timed = _TIMED.match(line)
        if timed:
            t, line = float(timed.group(1)), timed.group(2)
        n = len(out)
        self._value(line, out)
        if len(out) > n:
            self._times.append(t)

    def _value(self, line: bytes, out: list[float]) -> None:
        if line == b"!":
            self.lead_off += 1
            out.append(float("nan"))
            return
        if not _NUMBER.match(line):
            self.noise_lines += 1
            return
        v = float(line)
        if self.valid_range and not self.valid_range[0] <= v <= self.valid_range[1]:
            self.noise_lines += 1
            return
        self.samples += 1
        out.append(v)
