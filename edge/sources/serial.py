"""`serial:` — the ecg12 framed protocol or AD8232 one-value-per-line ASCII over a serial port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from edge.sources.base import DeviceSource
from edge.sources.errors import RateMismatch, SourceURIError
from edge.sources.frames import FrameChunker

FORMATS = ("ecg12", "ascii")
MAX_SLEW_MV_PER_S = 125.0  # plausibility limit of ASCII samples (no CRC in that format)
MAX_LOST_S = 2.0  # millis() lines: most device time lines may go missing on a live link
RECONNECT_SLACK_S = 5.0  # ... more device time than host time that may pass across a drop
# millis() lines: lines that must continue one off the count (2 would cut the shifted
# samples of the fault campaign little and lose 13 % more undamaged lines at 50 % damage)
CONFIRM_LINES = 1
TIMED_LINES = 8  # lines in a row with a millis() column that make the stream a timed one
#: millis() span over which the line rate is compared with the fs given, once per session;
#: a rate above RATE_HIGH x fs (lines cannot be gained) or below RATE_LOW x fs is refused
RATE_CHECK_MS, RATE_HIGH, RATE_LOW = 3000.0, 1.03, 0.6
RESTART_LINES = 3  # ... and one that says the device restarted (two consecutive lines with
# the same digit damaged must not restart the time line)
_RESTART = -1


class ByteTransport(Protocol):
    def open(self) -> None: ...
    def read(self, max_bytes: int = 4096) -> bytes | None: ...
    def close(self) -> None: ...


class SerialSource(DeviceSource):
    """Reads bytes in a worker thread, decodes them in the event loop, queues Chunks.

    ecg12 frames carry sequence numbers and device timestamps (-> exact gaps); plain ASCII
    has neither: lead-off lines (`!`) and garbled lines after the first sample become gaps of
    one sample each, the sample counter is the device clock; ASCII lines with the sketch's
    millis() (`T,V`) are placed by it, across reconnects too (see AsciiChunker).
    """

    def __init__(self, port: str, *, baud: int = 115200, format: str = "ecg12",
                 fs: float | None = None, queue: float = 30.0, reconnect: float = 60.0,
                 adc_bits: int = 10, vref: float = 3.3, gain: float = 1100.0,
                 transport_factory: Callable[[str, int], ByteTransport] | None = None,
                 backoff_base_s: float = 0.5) -> None:
        if format not in FORMATS:
            raise SourceURIError(f"serial: format={format!r}; use one of {', '.join(FORMATS)}")
        self._fs_given = fs is not None  # ecg12 frames carry their rate: fs= is a check
        fs = 250.0 if fs is None else fs
        if baud <= 0 or not fs > 0:
            raise SourceURIError(f"serial: need baud > 0 and fs > 0 (got {baud}, {fs})")
        if not 1 <= adc_bits <= 24 or not vref > 0 or not gain > 0:
            raise SourceURIError(f"serial: need adc_bits 1-24, vref > 0 and gain > 0 (got "
                                 f"{adc_bits}, {vref}, {gain})")
        super().__init__(queue_s=queue, reconnect_s=reconnect, backoff_base_s=backoff_base_s)
        self.uri = f"serial:{port}?baud={baud}&format={format}"
        self.port, self.baud, self.format = port, baud, format
        self.fs_hz = float(fs)
        if transport_factory is None:
            from edge.transports.serial import SerialTransport

            transport_factory = SerialTransport
        self._factory = transport_factory
        self._transport: ByteTransport | None = None
        self._adc = (adc_bits, vref, gain)
        self._decoder: Any = None
        self._first_connect = True

    @property
    def keeps_device_time(self) -> bool:  # type: ignore[override]
        """ecg12 frames and ASCII lines with millis() carry device time across reconnects;
        plain ASCII has only the host clock."""
        return self.format == "ecg12" or bool(getattr(self._decoder, "timed", False))

    async def _connect(self) -> None:
        t = self._factory(self.port, self.baud)
        await asyncio.to_thread(t.open)
        self._transport = t
        self._make_decoder(skip_partial=not self._first_connect)
        self._first_connect = False

    def _make_decoder(self, skip_partial: bool) -> None:
        """One decoder for the whole session (the device time line); told of reconnects."""
        if self._decoder is not None:
            self._decoder.reconnected()
        elif self.format == "ecg12":
            self._decoder = FrameChunker(self, nominal_fs_hz=self.fs_hz if self._fs_given
                                         else None)
        else:
            self._decoder = AsciiChunker(self, self.fs_hz, *self._adc, skip_partial=skip_partial)

    async def _pump(self) -> None:
        assert self._transport is not None
        while not self._closed:
            data = await asyncio.to_thread(self._transport.read)
            if data is None:
                self._decoder.finish(time.monotonic())
                return
            if data:
                self._decoder.feed(data, time.monotonic())

    async def _disconnect(self) -> None:
        t, self._transport = self._transport, None
        if t is not None:
            await asyncio.to_thread(t.close)


class AsciiChunker:
    """AD8232 ASCII lines -> Chunks on `source._put`; the sample count is the clock, or the
    sketch's millis() column where lines carry one (`T,V`).

    Keep one per source and call `reconnected()` after a reconnect. With millis() the device
    time line survives it: the reconnect gap is the device time that passed offline (an
    explicit gap), while millis() going back, or further than the host clock allows, is a
    device restart (its millis() started again at 0, e.g. a USB serial open resets an
    Arduino): a new segment placed by the host clock, counted in `resets`, its first chunk
    flagged `device_restarted`. Without millis() only the host clock can place the gap.
    """

    def __init__(self, source: DeviceSource, fs_hz: float, bits: int, vref: float,
                 gain: float, skip_partial: bool = False) -> None:
        from edge.sources.clock import ClockMapper
        from edge.sources.deviceclock import StepFilter
        from firmware_bridge.ascii import AdcScale

        self.source, self.fs_hz = source, fs_hz
        self.scale = AdcScale(bits, vref, gain)
        self._new_decoder(skip_partial)
        self.clock = ClockMapper()
        self._origin: float | None = None  # host time of sample index 0 of this segment:
        # fixed per segment, so host times of chunks keep the count (see `_emit`)
        # an AD8232 front end cannot step more than ~125 mV/s (R-wave upstrokes are < 100)
        self.steps = StepFilter(MAX_SLEW_MV_PER_S / fs_hz * self.scale.counts_per_mv)
        self.index = 0  # samples (incl. missing ones) since the segment start
        self.timed = False  # the lines carry millis()
        self._pre: list[tuple[float, float]] = []  # (value, millis) lines with a time
        # column before the stream counts as timed
        self._gap_n = 0
        self._started = False
        self._t0_ms: float | None = None  # millis() of sample index 0 (timed lines only)
        self._held: list[tuple[float, int, float]] = []  # timed lines (value, index,
        # millis) off the count, waiting for the next ones to confirm the first
        self._marks: list[tuple[int, int]] = []  # this feed: (value position, samples of
        # device time lost before it; RESTART: the device restarted there)
        self._arrival = 0.0  # host time of this feed
        self._placed_at: float | None = None  # host time a timed line was last placed
        self._reconnected = False
        self._restarted = False
        #: (first millis, lines, last millis) of the line-rate measurement
        self._rate: tuple[float, int, float] | None = None
        self._rate_checked = False

    def _new_decoder(self, skip_partial: bool) -> None:
        from firmware_bridge.ascii import AsciiDecoder

        self.decoder = AsciiDecoder(valid_range=(0, self.scale.full_scale),
                                    skip_first_line=skip_partial)
        self._noise_seen = 0

    def reconnected(self) -> None:
        """The link was down: the partial first line is skipped; with millis() the next
        lines are placed by device time (see the class docstring), else by the host clock
        (a new mapping; the source makes the gap from host time)."""
        self._new_decoder(skip_partial=True)
        self._started = False
        self.steps.reset()
        if self._held:  # their confirming lines were lost with the link
            self._count_corrupt(len(self._held))
            self._held = []
        self._rate = None  # lines lost with the link: measure the rate afresh
        if self.timed:
            self._reconnected = True
        else:
            self.clock.reset()
            self._origin = None
            self._gap_n = 0

    def _count_corrupt(self, n: int) -> None:
        self.source.stats.bad_frames += n
        self.source.stats.corrupt += n

    def feed(self, data: bytes, arrival_s: float) -> None:
        vals: list[float] = []
        self._marks, self._arrival = [], arrival_s
        lead_off_before = self.decoder.lead_off
        for piece in data.splitlines(keepends=True):  # line by line: noise has a position
            got = self.decoder.feed(piece)
            noise = self.decoder.noise_lines - self._noise_seen
            self._noise_seen = self.decoder.noise_lines
            if noise:
                self._count_corrupt(noise)
                # a garbled line mid-stream stood for a sample; with millis() the next
                # line's time says what is missing
                if self._started and not self.timed:
                    vals.extend([np.nan] * noise)
            if len(got):
                self._started = True
                for v, t in zip(got.tolist(), self.decoder.times_ms.tolist(), strict=True):
                    self._timed_value(v, t, vals)
        lead_off = self.decoder.lead_off > lead_off_before
        values = np.asarray(vals, dtype=np.float64)
        start = 0
        for at, lost in [*self._marks, (len(values), 0)]:
            self._emit_values(self._plausible(values[start:at]), arrival_s, lead_off)
            start = at
            if lost == _RESTART:
                self._gap_n = 0  # the host clock places the new segment
                self.clock.reset()
                self._origin = None
                self._restarted = True
            self._gap_n += max(lost, 0)
            self.index += max(lost, 0)
            if lost:
                self.steps.reset()

    def _plausible(self, values: np.ndarray) -> np.ndarray:
        """Values the step filter accepts; a damaged digit becomes a one-sample gap."""
        ok = self.steps.ok(values)
        if not ok.all():  # a damaged digit: dropped, counted, an explicit one-sample gap
            self._count_corrupt(int((~ok).sum()))
            values = values.copy()
            values[~ok] = np.nan
        return values

    def _pos(self, vals: list[float]) -> int:
        """Sample index the next value of this feed gets."""
        return self.index + len(vals) + sum(n for _, n in self._marks if n > 0)

    def _k(self, t_ms: float) -> int:
        return round(((t_ms - (self._t0_ms or 0.0)) % 2**32) * self.fs_hz / 1000.0)  # wraps

    def _timed_value(self, v: float, t_ms: float, vals: list[float]) -> None:
        """Place one value. With a millis() column, a line whose time disagrees with the
        count is held until the next CONFIRM_LINES lines: if they continue it, it is placed by
        its time (`_place_held`); if not, it is dropped as damaged (its place becomes part of
        a gap) and the lines after it are judged again. Lines without a time: the count is
        the clock."""
        if t_ms != t_ms:
            if not self.timed:
                self._release_pre(vals)
                vals.append(v)
            elif v == v:  # a value without its time in a timed stream: a damaged line
                self._count_corrupt(1)
            return  # (a bare `!` there: lead-off, placed by the next line's time)
        if not self.timed:  # the stream is timed once TIMED_LINES lines in a row say so (a
            self._pre.append((v, t_ms))  # damaged plain line can look like `T,V`: 5,2)
            if len(self._pre) < TIMED_LINES:
                return
            self.timed = True
            pre, self._pre = self._pre, []
            self._t0_ms = pre[0][1] - self._pos(vals) * 1000.0 / self.fs_hz
            for pv, pt in pre:
                self._place_timed(pv, pt, vals)
            return
        self._place_timed(v, t_ms, vals)

    def _release_pre(self, vals: list[float]) -> None:
        """Lines with a time column that did not make the stream a timed one: by count."""
        vals.extend(v for v, _ in self._pre)
        self._pre = []

    def _check_rate(self, t_ms: float) -> None:
        """Compare the lines' rate by their millis() with the fs given, over the first
        RATE_CHECK_MS of a stretch: a wrong fs would silently drop every other line as a
        repeat (fs too low) or fill gaps between them (too high)."""
        if self._rate is not None and not 0 <= t_ms - self._rate[2] <= 1000.0:
            self._rate = None  # millis() went back or jumped (a restart, damage): anew
        if self._rate is None:
            self._rate = (t_ms, 0, t_ms)
        t0, n = self._rate[0], self._rate[1] + 1
        self._rate = (t0, n, t_ms)
        span = t_ms - t0
        if span < RATE_CHECK_MS:
            return
        self._rate_checked = True
        rate = (n - 1) * 1000.0 / span
        if not RATE_LOW * self.fs_hz <= rate <= RATE_HIGH * self.fs_hz:
            uri = getattr(self.source, "uri", "serial")
            raise RateMismatch(f"{uri}: lines arrive at {rate:.4g} Hz by the "
                               f"device's millis() column, but fs={self.fs_hz:g} was given",
                               f"use fs={rate:.0f} if the device samples at that rate")

    def _place_timed(self, v: float, t_ms: float, vals: list[float]) -> None:
        """One line of a timed stream (see `_timed_value`)."""
        if not self._rate_checked:
            self._check_rate(t_ms)
        self._held.append((v, self._k(t_ms), t_ms))
        held = self._held
        while held:
            hv, hk, ht = held[0]
            hk = self._k(ht)  # (the anchor moves at a device restart)
            if hk == self._pos(vals):  # continues the count
                del held[0]
                vals.append(hv)
                self._placed_at, self._reconnected = self._arrival, False
                continue
            verdict = self._verdict(hk - self._pos(vals))
            need = RESTART_LINES if verdict == "restart" else CONFIRM_LINES
            # the lines after it, in samples from it (by time differences: a restarted
            # device's millis() may sit half a sample off the old anchor's grid)
            after = [round((t - ht) * self.fs_hz / 1000.0) for _, _, t in held[1:need + 1]]
            if after != list(range(1, 1 + len(after))):
                del held[0]  # not confirmed: its time (or the next ones') was damaged
                self._count_corrupt(1)
                continue
            if len(after) < need:
                return  # wait for the next line
            del held[0]
            self._place_held(hv, hk, ht, vals, verdict)

    def _verdict(self, ahead: int) -> str:
        """What a line `ahead` samples off the count is, if confirmed: "lost" (lines lost,
        or the link down, before it: as much device time as the host clock allows),
        "repeat" (of a recent line, on a live link) or "restart" (millis() went back or
        jumped beyond the host clock: the device restarted)."""
        since = self._arrival - (self._placed_at if self._placed_at is not None else
                                 self._arrival)
        most = (since + (RECONNECT_SLACK_S if self._reconnected else 0.0)) * self.fs_hz
        if not self._reconnected:
            most = max(most, MAX_LOST_S * self.fs_hz)
        if 0 < ahead <= most:
            return "lost"
        if -MAX_LOST_S * self.fs_hz <= ahead < 0 and not self._reconnected:
            return "repeat"
        return "restart"

    def _place_held(self, v: float, k: int, t_ms: float, vals: list[float],
                    verdict: str) -> None:
        """A confirmed line at sample `k` that is not the next one (see `_verdict`): lost
        lines -> an explicit gap of their device time; a repeat -> dropped; a restart -> a
        new segment from here."""
        pos = self._pos(vals)
        if verdict == "repeat":
            self.source.stats.duplicates += 1
            return
        if verdict == "lost":
            self._marks.append((len(vals), k - pos))
            self.source.stats.lost_samples += k - pos
        else:  # the device restarted: its millis() count starts again from here
            self._rate = None
            self._marks.append((len(vals), _RESTART))
            self._t0_ms = t_ms - pos * 1000.0 / self.fs_hz
            self.source.stats.resets += 1
        vals.append(v)
        self._placed_at, self._reconnected = self._arrival, False

    def _emit_values(self, values: np.ndarray, arrival_s: float, lead_off: bool) -> None:
        if not len(values):
            return
        self.source.stats.frames += len(values)
        self.clock.update((self.index + len(values)) / self.fs_hz, arrival_s)
        status = frozenset({"lead_off"}) if lead_off else frozenset()
        mv = self.scale.counts_to_mv(values)
        ok = np.isfinite(mv)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
        pos = 0
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            self._gap_n += int(a - pos)
            self._emit(mv[a:b], self.index + int(a), status)
            pos = int(b)
        self._gap_n += len(mv) - pos
        self.index += len(mv)

    def _emit(self, mv: np.ndarray, start_index: int, status: frozenset[str]) -> None:
        # a chunk after a gap is placed by its host time: the mapping must not move within a
        # segment (the min-latency offset snaps down after lines that waited in a buffer),
        # or every sample after the gap would shift by that much, off the grid
        if self._origin is None:
            self._origin = self.clock.to_host(0.0)
        t0 = self._origin + start_index / self.fs_hz
        gap = self._gap_n / self.fs_hz
        self._gap_n = 0
        restarted, self._restarted = self._restarted, False
        if restarted:  # the host clock places the new segment (the source's gap)
            status, gap = status | {"device_restarted"}, 0.0
        self.source._put(mv.astype(np.float32), t0, self.fs_hz, gap_s=gap, status=status,
                         new_segment=restarted)

    def finish(self, arrival_s: float) -> None:
        """End of stream: held lines were never confirmed (dropped, counted); too few lines
        to tell a timed stream are placed by count."""
        self.decoder.finish()
        self._count_corrupt(len(self._held))
        self._held = []
        vals: list[float] = []
        self._release_pre(vals)
        self._emit_values(self._plausible(np.asarray(vals, dtype=np.float64)), arrival_s, False)
