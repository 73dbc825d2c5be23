"""ecg12 frames (firmware_bridge.protocol) -> Chunks on the device time line.

Sequence numbers say whether frames were lost, replayed or the device restarted; the µs time
stamps (unwrapped) say how much time the loss took; `deviceclock.TimedChunker` estimates the
true rate, resamples to the nominal rate and keeps all of it across reconnects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from edge.sources.deviceclock import ClockCounters, TimedChunker
from edge.sources.errors import RateMismatch

if TYPE_CHECKING:
    from edge.sources.base import DeviceSource

_WRAP_US = 1 << 32


def status_names(status: int) -> frozenset[str]:
    from firmware_bridge.protocol import Status

    names = {Status.LEAD_OFF: "lead_off", Status.SATURATION: "saturation",
             Status.BATTERY_LOW: "battery_low", Status.CLOCK_UNSYNCED: "clock_unsynced"}
    return frozenset(n for bit, n in names.items() if status & bit)


class FrameChunker:
    """Feeds bytes to a FrameDecoder and the frames to a TimedChunker that calls
    `source._put`. Keep one per source for its whole life (call `reconnected()` after a
    reconnect), so the device time line, sequence numbers and rate estimate carry over.
    ``nominal_fs_hz``: a rate the user gave; frames at another rate are refused
    (``RateMismatch``) rather than read at theirs behind the user's back."""

    def __init__(self, source: DeviceSource, nominal_fs_hz: float | None = None,
                 **timeline_kw: Any) -> None:
        from firmware_bridge.protocol import FrameDecoder

        self.source = source
        self.decoder = FrameDecoder()
        self.nominal_fs_hz = nominal_fs_hz
        self._kw = timeline_kw
        self.timed: TimedChunker | None = None
        self._unwrapped_us = 0
        self._bad = 0
        self._new_next = False

    @property
    def counters(self) -> ClockCounters:
        return self.timed.counters if self.timed else ClockCounters()

    def reconnected(self) -> None:
        """The link was down: drop a half-received frame, keep the time line."""
        self.decoder.drop_partial()
        if self.timed is not None:
            self.timed.timeline.reconnected()

    def feed(self, data: bytes, arrival_s: float) -> None:
        self._emit(self.decoder.feed(data), arrival_s)

    def finish(self, arrival_s: float) -> None:
        self._emit(self.decoder.finish(), arrival_s)
        if self.timed is not None:
            self.timed.flush()

    def _put(self, samples_uv: np.ndarray, t0: float, fs: float, *, gap_s: float,
             status: frozenset[str], new_segment: bool) -> None:
        new_segment, self._new_next = new_segment or self._new_next, False
        self.source._put((samples_uv * 1e-3).astype(np.float32), t0, fs, gap_s=gap_s,
                         status=status, new_segment=new_segment)

    def _unwrap(self, f: Any) -> int:
        """The 32-bit µs time stamp as the device time nearest to where the time line expects
        this frame. The reference is the line, not the previous raw stamp: a damaged stamp
        (bit 31 flipped: half a wrap either way) would otherwise move every later frame by
        2**32 µs."""
        assert self.timed is not None
        exp = self.timed.timeline.expected_device_t(len(f.samples_uv), f.lost_before, 0)
        base = self._unwrapped_us if exp is None else round(exp * 1e6)
        d = (int(f.timestamp_us) - base) % _WRAP_US
        return base + (d - _WRAP_US if d >= _WRAP_US // 2 else d)

    def _emit(self, frames: list, arrival_s: float) -> None:
        st = self.decoder.stats
        bad = st.crc_failures + st.bad_headers + st.implausible
        stats = self.source.stats
        stats.bad_frames += bad - self._bad
        self._bad = bad
        for f in frames:
            fs = float(f.fs_hz)
            if self.nominal_fs_hz is not None and abs(fs - self.nominal_fs_hz) > 1e-6 * fs:
                raise RateMismatch(f"{getattr(self.source, 'uri', 'device')}: its frames say "
                                   f"{fs:g} Hz but fs={self.nominal_fs_hz:g} was given",
                                   "leave fs= out (ecg12 frames carry their rate) or give "
                                   "the device's rate")
            restart = f.restart
            if self.timed is None or fs != self.timed.fs_hz:
                if self.timed is not None:
                    self.timed.flush()
                    self._new_next = True
                self.timed = TimedChunker(self._put, fs, **self._kw)
                self._unwrapped_us = int(f.timestamp_us)
            elif restart:
                self.timed.timeline.force_reset()
                self._unwrapped_us = int(f.timestamp_us)
            else:
                self._unwrapped_us = self._unwrap(f)
            self.timed.add(self._unwrapped_us / 1e6, f.samples_uv.astype(np.float64),
                           arrival_s, lost_frames=f.lost_before, ref_index=0,
                           status=status_names(int(f.status)))
            stats.lost_frames += f.lost_before
        self.source.stats.update_clock(self.counters, duplicates=st.duplicates,
                                       corrupt=self._bad)
