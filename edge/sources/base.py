"""Source base classes: an async iterator of Chunk, plus the device-source lifecycle.

A DeviceSource runs one producer task: connect -> pump (decode into Chunks, put them in a
ChunkQueue sized in seconds) -> on disconnect, back off and reconnect; the time spent away
becomes an explicit gap. Consumers just iterate.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.chunk import Chunk
from edge.sources.deviceclock import ClockCounters
from edge.sources.errors import DeviceNotFound, Disconnected, SourceError
from edge.sources.queue import ChunkQueue


@dataclass
class SourceStats(ClockCounters):
    """Counters a source keeps (cumulative over the session, across reconnects): the device
    time line's (ClockCounters: frames, lost_samples, duplicates, corrupt, resets,
    clock_steps, bad_timestamps, measured_fs_hz) and the source's own."""

    chunks: int = 0
    samples: int = 0
    gaps: int = 0
    gap_s: float = 0.0
    reconnects: int = 0
    lost_frames: int = 0
    bad_frames: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def update_clock(self, c: ClockCounters, *, duplicates: int = 0, corrupt: int = 0) -> None:
        """Copy a device time line's counters, plus the duplicates / corrupt frames the
        decoder in front of it dropped."""
        for f in dataclasses.fields(ClockCounters):
            setattr(self, f.name, getattr(c, f.name))
        self.duplicates += duplicates
        self.corrupt += corrupt
        self.measured_fs_hz = round(float(c.measured_fs_hz), 4)

    def as_dict(self) -> dict[str, Any]:
        """The per-session counters for summary.json and the live status."""
        d = dataclasses.asdict(self)
        d.update(d.pop("extra"))
        return d


class Source(abc.ABC):
    """Async iterator of Chunk. Use `async with source:` or call `aclose()` when done."""

    uri: str = ""
    #: nominal sampling rate, when known before the first chunk
    fs_hz: float | None = None

    def __init__(self) -> None:
        self.stats = SourceStats()
        self._seq = 0
        self._last_end_s: float | None = None

    def __aiter__(self) -> Source:
        return self

    @abc.abstractmethod
    async def __anext__(self) -> Chunk: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook, default: nothing to release
        """Release the device/file. Idempotent."""

    async def __aenter__(self) -> Source:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _make_chunk(self, samples_mv: np.ndarray, t0_s: float, fs_hz: float, *,
                    gap_s: float = 0.0, new_segment: bool = False,
                    status: frozenset[str] = frozenset()) -> Chunk:
        """Number a chunk and decide its gap: `gap_s` as measured by the device (sequence
        numbers, timestamps) or, for a `new_segment` (reconnect), from host time."""
        if self._last_end_s is None:
            gap = 0.0
        elif new_segment:
            gap = gap_s if gap_s > 0 else max(t0_s - self._last_end_s, 1.0 / fs_hz)
        else:
            gap = max(gap_s, 0.0)
        chunk = Chunk(samples_mv, t0_s, fs_hz, seq=self._seq, gap_before_s=gap, status=status)
        self._seq += 1
        self._last_end_s = chunk.t_end_s
        self.stats.chunks += 1
        self.stats.samples += chunk.n
        if gap > 0:
            self.stats.gaps += 1
            self.stats.gap_s += gap
        return chunk


def backoff_s(attempt: int, base_s: float = 0.5, cap_s: float = 8.0) -> float:
    """Exponential back-off: 0.5, 1, 2, 4, 8, 8, ... seconds."""
    return min(cap_s, base_s * (2 ** attempt))


class DeviceSource(Source):
    """A live device: subclasses implement `_connect`, `_pump`, `_disconnect`.

    `_pump` puts chunks with `self._put(...)` and raises Disconnected (or OSError) when the
    link drops; it returns when the device ends the stream. After a drop the source retries
    with back-off for up to `reconnect_s` seconds (0 = never), then raises Disconnected.
    """

    def __init__(self, *, queue_s: float = 30.0, reconnect_s: float = 60.0,
                 connect_attempts: int = 3, backoff_base_s: float = 0.5) -> None:
        super().__init__()
        self.queue = ChunkQueue(queue_s)
        self.reconnect_s = reconnect_s
        self.connect_attempts = connect_attempts
        self.backoff_base_s = backoff_base_s
        self._task: asyncio.Task[None] | None = None
        self._new_segment = False
        self._closed = False

    @abc.abstractmethod
    async def _connect(self) -> None: ...

    @abc.abstractmethod
    async def _pump(self) -> None: ...

    @abc.abstractmethod
    async def _disconnect(self) -> None: ...

    def _put(self, samples_mv: np.ndarray, t0_s: float, fs_hz: float, *, gap_s: float = 0.0,
             status: frozenset[str] = frozenset(), new_segment: bool = False) -> None:
        new = self._new_segment or new_segment
        self._new_segment = False
        self.queue.put(self._make_chunk(samples_mv, t0_s, fs_hz, gap_s=gap_s, new_segment=new,
                                        status=status))

    #: True when the source's device clock survives reconnects (gaps placed by device time)
    keeps_device_time = False

    def _on_new_segment(self) -> None:
        """Called after a link loss, before reconnecting (subclasses extend)."""

    async def _run(self) -> None:
        connected_once = False
        attempt = 0
        down_since: float | None = None
        try:
            while True:
                try:
                    await self._connect()
                    connected_once, attempt = True, 0
                    if down_since is not None:
                        self.stats.reconnects += 1
                        down_since = None
                    await self._pump()
                    break
                except (Disconnected, DeviceNotFound, OSError) as exc:
                    with contextlib.suppress(Exception):
                        await self._disconnect()
                    now = time.monotonic()
                    if not connected_once:
                        attempt += 1
                        if attempt >= self.connect_attempts:
                            raise _as_not_found(exc) from exc
                    else:
                        if down_since is None:
                            down_since = now
                            attempt = 0
                        if now - down_since >= self.reconnect_s:
                            raise Disconnected(
                                f"{self.uri}: lost the device and could not reconnect within "
                                f"{self.reconnect_s:g} s ({exc})") from exc
                        attempt += 1
                    if not self.keeps_device_time:  # else the device clock places the gap
                        self._new_segment = True
                    self._on_new_segment()
                    await asyncio.sleep(backoff_s(attempt - 1, self.backoff_base_s))
        except asyncio.CancelledError:
            self.queue.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer
            self.queue.close(exc)
        else:
            self.queue.close()
        finally:
            with contextlib.suppress(Exception):
                await self._disconnect()

    async def __anext__(self) -> Chunk:
        if self._task is None:
            if self._closed:
                raise StopAsyncIteration
            self._task = asyncio.create_task(self._run())
        return await self.queue.get()

    async def aclose(self) -> None:
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        elif self._task is None:
            with contextlib.suppress(Exception):
                await self._disconnect()


def _as_not_found(exc: BaseException) -> SourceError:
    if isinstance(exc, SourceError):
        return exc
    return DeviceNotFound(str(exc))
