"""Pull-based sources that replay a known signal (simulator, file), paced on the host clock."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from edge.chunk import Chunk
from edge.sources.base import Source


class PacedSource(Source):
    """Replays `segments` = [(start_s, samples_mv)] at `speed` x real time (0 = no waiting).

    Samples are cut into chunks of `chunk_s`; the time between segments is a gap. The
    device clock is the signal's own time axis, anchored to the host clock at the first
    chunk: t0_s = host_start + start_s + i / fs_hz.
    """

    def __init__(self, fs_hz: float, speed: float = 1.0, chunk_s: float = 0.2) -> None:
        super().__init__()
        self.fs_hz = float(fs_hz)
        self.speed = float(speed)
        self.chunk_n = max(1, int(round(chunk_s * self.fs_hz)))
        self._host_start: float | None = None
        self._pending: list[tuple[float, np.ndarray, frozenset[str]]] = []
        self._exhausted = False
        self._closed = False

    @property
    def signal_origin_s(self) -> float | None:
        """Host time of the signal's time 0 (its first sample, received or not); None before
        the first chunk."""
        return self._host_start

    def _next_segment(self) -> tuple[float, np.ndarray] | None:
        """Next (start_s, samples_mv) of the signal, or None at its end."""
        raise NotImplementedError

    def _drop(self, start_s: float, n: int) -> bool:
        """Fault hook: True to lose the chunk of `n` samples starting at `start_s`."""
        return False

    def _fill(self) -> None:
        while not self._pending and not self._exhausted:
            seg = self._next_segment()
            if seg is None:
                self._exhausted = True
                return
            start_s, x = seg
            for i in range(0, len(x), self.chunk_n):
                self._pending.append((start_s + i / self.fs_hz, x[i:i + self.chunk_n],
                                      frozenset()))

    async def __anext__(self) -> Chunk:
        while True:
            if self._closed:
                raise StopAsyncIteration
            self._fill()
            if not self._pending:
                raise StopAsyncIteration
            start_s, x, status = self._pending.pop(0)
            if self._host_start is None:
                self._host_start = time.monotonic() - start_s
            if self.speed > 0:  # emit when the chunk's last sample is due
                due = self._host_start + (start_s + len(x) / self.fs_hz) / self.speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if self._drop(start_s, len(x)):
                continue
            t0 = self._host_start + start_s
            expected = self._last_end_s
            gap = 0.0 if expected is None else max(0.0, t0 - expected)
            if gap * self.fs_hz < 0.5:
                gap = 0.0
            return self._make_chunk(x, t0, self.fs_hz, gap_s=gap, status=status)

    async def aclose(self) -> None:
        self._closed = True
