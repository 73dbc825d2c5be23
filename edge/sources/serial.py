"""`serial:` — the ecg12 framed protocol or AD8232 one-value-per-line ASCII over a serial port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from edge.sources.base import DeviceSource
from edge.sources.errors import SourceURIError
from edge.sources.frames import FrameChunker

FORMATS = ("ecg12", "ascii")
MAX_SLEW_MV_PER_S = 125.0  # plausibility limit of ASCII samples (no CRC in that format)


class ByteTransport(Protocol):
    def open(self) -> None: ...
    def read(self, max_bytes: int = 4096) -> bytes | None: ...
    def close(self) -> None: ...


class SerialSource(DeviceSource):
    """Reads bytes in a worker thread, decodes them in the event loop, queues Chunks.

    ecg12 frames carry sequence numbers and device timestamps (-> exact gaps); ASCII has
    neither: lead-off lines (`!`) and garbled lines after the first sample become gaps of one
    sample each, the sample counter is the device clock.
    """

    def __init__(self, port: str, *, baud: int = 115200, format: str = "ecg12",
                 fs: float = 250.0, queue: float = 30.0, reconnect: float = 60.0,
                 adc_bits: int = 10, vref: float = 3.3, gain: float = 1100.0,
                 transport_factory: Callable[[str, int], ByteTransport] | None = None,
                 backoff_base_s: float = 0.5) -> None:
        if format not in FORMATS:
            raise SourceURIError(f"serial: format={format!r}; use one of {', '.join(FORMATS)}")
        if baud <= 0 or not fs > 0:
            raise SourceURIError(f"serial: need baud > 0 and fs > 0 (got {baud}, {fs})")
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
        """ecg12 frames carry device time across reconnects; ASCII has only the host clock."""
        return self.format == "ecg12"

    async def _connect(self) -> None:
        t = self._factory(self.port, self.baud)
        await asyncio.to_thread(t.open)
        self._transport = t
        self._make_decoder(skip_partial=not self._first_connect)
        self._first_connect = False

    def _make_decoder(self, skip_partial: bool) -> None:
        if self.format == "ecg12":  # one for the whole session: the device time line
            if self._decoder is None:
                self._decoder = FrameChunker(self, nominal_fs_hz=self.fs_hz)
            else:
                self._decoder.reconnected()
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
    sketch's millis() column where lines carry one (`T,V`)."""

    def __init__(self, source: DeviceSource, fs_hz: float, bits: int, vref: float,
                 gain: float, skip_partial: bool = False) -> None:
        from edge.sources.clock import ClockMapper
        from firmware_bridge.ascii import AdcScale, AsciiDecoder

        self.source, self.fs_hz = source, fs_hz
        self.scale = AdcScale(bits, vref, gain)
        self.decoder = AsciiDecoder(valid_range=(0, self.scale.full_scale),
                                    skip_first_line=skip_partial)
        from edge.sources.deviceclock import StepFilter

        self.clock = ClockMapper()
        # an AD8232 front end cannot step more than ~125 mV/s (R-wave upstrokes are < 100)
        self.steps = StepFilter(MAX_SLEW_MV_PER_S / fs_hz * self.scale.counts_per_mv)
        self.index = 0  # samples (incl. missing ones) since the segment start
        self._gap_n = 0
        self._noise_seen = 0
        self._started = False
        self._t0_ms: float | None = None  # millis() of sample index 0 (timed lines only)
        self._held: tuple[float, int, float] | None = None  # a timed line (value, index,
        # millis) waiting for the next one to confirm it

    def feed(self, data: bytes, arrival_s: float) -> None:
        vals: list[float] = []
        lead_off_before = self.decoder.lead_off
        for piece in data.splitlines(keepends=True):  # line by line: noise has a position
            got = self.decoder.feed(piece)
            noise = self.decoder.noise_lines - self._noise_seen
            self._noise_seen = self.decoder.noise_lines
            if self._started and noise:  # a garbled line mid-stream stood for a sample
                vals.extend([np.nan] * noise)
                self.source.stats.bad_frames += noise
                self.source.stats.corrupt += noise
            if len(got):
                self._started = True
                for v, t in zip(got.tolist(), self.decoder.times_ms.tolist(), strict=True):
                    self._timed_value(v, t, vals)
        lead_off = self.decoder.lead_off > lead_off_before
        values = np.asarray(vals, dtype=np.float64)
        ok = self.steps.ok(values)
        if not ok.all():  # a damaged digit: dropped, counted, an explicit one-sample gap
            bad = int((~ok).sum())
            self.source.stats.bad_frames += bad
            self.source.stats.corrupt += bad
            values[~ok] = np.nan
        self._emit_values(values, arrival_s, lead_off)

    def _timed_value(self, v: float, t_ms: float, vals: list[float]) -> None:
        """Place one value. With a millis() column, a line whose time disagrees with the
        count is held until the next line: if that one continues it, lines were lost (an
        explicit gap), a repeat (dropped) or, far off, a restarted millis() (re-anchored);
        if not, it is dropped as damaged (its place becomes part of a gap). Lines without a
        time: the count is the clock."""
        if t_ms != t_ms:
            self._release(vals)
            vals.append(v)
            return
        if self._t0_ms is None:
            self._t0_ms = t_ms - (self.index + len(vals)) * 1000.0 / self.fs_hz
        k = round(((t_ms - self._t0_ms) % 2**32) * self.fs_hz / 1000.0)  # millis() wraps
        held, self._held = self._held, None
        if held is not None:
            hv, hk, ht = held
            pos = self.index + len(vals)
            if k != hk + 1:  # not confirmed: its time (or the next line's) was damaged;
                self.source.stats.bad_frames += 1  # dropped, its place part of a gap
                self.source.stats.corrupt += 1
            elif pos <= hk <= pos + 2 * self.fs_hz:  # lines were lost before the held one
                vals.extend([np.nan] * (hk - pos))
                self.source.stats.lost_samples += hk - pos
                vals.append(hv)
            elif pos - 2 * self.fs_hz <= hk < pos:  # the held line repeated an earlier one
                self.source.stats.duplicates += 1
            else:  # millis() restarted (the sketch reset): the count goes on from here
                self._t0_ms = ht - pos * 1000.0 / self.fs_hz
                self.source.stats.clock_steps += 1
                vals.append(hv)
                k = pos + 1
        pos = self.index + len(vals)
        if k == pos:
            vals.append(v)
        else:
            self._held = (v, k, t_ms)

    def _release(self, vals: list[float]) -> None:
        """A held line that no next line can confirm: placed by count."""
        if self._held is not None:
            vals.append(self._held[0])
            self._held = None

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
        t0 = self.clock.to_host(start_index / self.fs_hz)
        gap = self._gap_n / self.fs_hz
        self._gap_n = 0
        self.source._put(mv.astype(np.float32), t0, self.fs_hz, gap_s=gap, status=status)

    def finish(self, arrival_s: float) -> None:
        self.decoder.finish()
        vals: list[float] = []
        self._release(vals)
        self._emit_values(np.asarray(vals, dtype=np.float64), arrival_s, False)
