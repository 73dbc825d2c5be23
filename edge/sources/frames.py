"""ecg12 frames (firmware_bridge.protocol) -> Chunks: seq numbers and device time -> gaps."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edge.sources.clock import ClockMapper

if TYPE_CHECKING:
    from edge.sources.base import DeviceSource

_WRAP_US = 1 << 32


def status_names(status: int) -> frozenset[str]:
    from firmware_bridge.protocol import Status

    names = {Status.LEAD_OFF: "lead_off", Status.SATURATION: "saturation",
             Status.BATTERY_LOW: "battery_low", Status.CLOCK_UNSYNCED: "clock_unsynced"}
    return frozenset(n for bit, n in names.items() if status & bit)


class FrameChunker:
    """Feeds bytes to a FrameDecoder and turns the frames into Chunks on `source._put`.

    Contiguous frames with the same status from one read become one chunk. The gap before a
    frame is measured on the device clock (timestamp - expected timestamp) when frames were
    lost by sequence number or time jumped forward; a backward jump (device reset) starts a
    new segment whose gap is measured on the host clock.
    """

    def __init__(self, source: DeviceSource, nominal_fs_hz: float | None = None) -> None:
        from firmware_bridge.protocol import FrameDecoder

        self.source = source
        self.decoder = FrameDecoder()
        self.clock = ClockMapper()
        self.nominal_fs_hz = nominal_fs_hz
        self._start_us: float | None = None  # unwrapped device time of the last frame start
        self._next_us = 0.0  # expected start of the next frame
        self._last_raw_us = 0
        self._resets = 0
        self._crc = 0

    def feed(self, data: bytes, arrival_s: float) -> None:
        self._emit(self.decoder.feed(data), arrival_s)

    def finish(self, arrival_s: float) -> None:
        self._emit(self.decoder.finish(), arrival_s)

    def _emit(self, frames: list, arrival_s: float) -> None:
        st = self.decoder.stats
        bad = st.crc_failures + st.bad_headers
        self.source.stats.bad_frames += bad - self._crc
        self._crc = bad
        run: list[np.ndarray] = []
        run_t0, run_gap, run_key = 0.0, 0.0, (0.0, frozenset[str]())
        for f in frames:
            start_us, gap_s, reset = self._place(f)
            if st.seq_resets != self._resets:
                self._resets, reset = st.seq_resets, True
            fs = float(f.fs_hz)
            key = (fs, status_names(int(f.status)))
            if run and (gap_s > 0 or reset or key != run_key):
                self._put(run, run_t0, run_gap, run_key)
                run = []
            if reset:
                self.clock.reset()
                self.source._new_segment = True
            n = len(f.samples_uv)
            self.clock.update((start_us + n * 1e6 / fs) / 1e6, arrival_s)
            if not run:
                run_t0, run_gap, run_key = self.clock.to_host(start_us / 1e6), gap_s, key
            run.append(f.samples_uv.astype(np.float32))
            self.source.stats.lost_frames += f.lost_before
        if run:
            self._put(run, run_t0, run_gap, run_key)

    def _put(self, run: list[np.ndarray], t0: float, gap_s: float,
             key: tuple[float, frozenset[str]]) -> None:
        self.source._put(np.concatenate(run) * 1e-3, t0, key[0], gap_s=gap_s, status=key[1])

    def _place(self, f) -> tuple[float, float, bool]:
        """(unwrapped device start time µs, gap_s before the frame, new_segment)."""
        sample_us = 1e6 / float(f.fs_hz)
        n = len(f.samples_uv)
        raw = int(f.timestamp_us)
        if self._start_us is None:
            start, gap_s, reset = float(raw), 0.0, False
        else:
            step = (raw - self._last_raw_us) % _WRAP_US
            start, gap_s, reset = self._start_us + step, 0.0, False
            gap_us = start - self._next_us
            if step >= _WRAP_US // 2:  # device clock went backwards: device reset
                start, reset = float(raw), True
            elif f.lost_before > 0 or gap_us > 1.5 * sample_us:
                if gap_us <= 0:  # frames lost but time unusable: estimate from frame size
                    gap_us = f.lost_before * n * sample_us
                    start = self._next_us + gap_us
                gap_s = max(gap_us, sample_us) / 1e6
            elif gap_us < -1.5 * sample_us:  # time overlaps: restart the segment
                reset = True
        self._last_raw_us = raw
        self._start_us = start
        self._next_us = start + n * sample_us
        return start, gap_s, reset
