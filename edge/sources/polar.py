"""`polar:ADDR` (or `polar:` = first "Polar H10" found) — ECG over Polar PMD, 130 Hz, µV."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from edge.sources.clock import ClockMapper
from edge.sources.errors import DeviceProtocolError
from edge.sources.notify import NotifySource


class PolarSource(NotifySource):
    """Polar H10: PMD start after every (re)connect; frames carry no sequence number, so
    loss is found from the device timestamps (ns of each frame's last sample)."""

    name_prefix = "Polar H10"

    def __init__(self, address: str | None = None, **kwargs: Any) -> None:
        super().__init__(address, **kwargs)
        from firmware_bridge.polar import ECG_SAMPLE_RATE_HZ

        self.uri = f"polar:{address or ''}"
        self.fs_hz = float(ECG_SAMPLE_RATE_HZ)
        self.clock = ClockMapper()
        self._last_ns: int | None = None
        self._base_ns = 0
        self._ctrl: asyncio.Queue[bytes] = asyncio.Queue()

    def _on_new_segment(self) -> None:
        self.clock.reset()
        self._last_ns = None

    async def _start(self) -> None:
        from firmware_bridge.polar import (
            PMD_CONTROL_UUID,
            PMD_DATA_UUID,
            PmdStatus,
            ecg_start_command,
            parse_control_response,
        )

        self._ctrl = asyncio.Queue()
        await self.transport.start_notify(PMD_CONTROL_UUID,
                                          lambda _s, d: self._ctrl.put_nowait(bytes(d)))
        await self.transport.start_notify(PMD_DATA_UUID, self._on_data)
        await self.transport.write(PMD_CONTROL_UUID, ecg_start_command())
        try:
            async with asyncio.timeout(10.0):
                reply = parse_control_response(await self._ctrl.get())
        except TimeoutError:
            raise DeviceProtocolError(f"{self.uri}: no reply to the PMD ECG start command") \
                from None
        if not reply.ok and reply.status != PmdStatus.ALREADY_IN_STATE:
            raise DeviceProtocolError(
                f"{self.uri}: the H10 refused ECG start: {reply.status_name}",
                hint="take the strap off the charger / wet the electrodes and retry")

    def _decode(self, data: bytes, arrival_s: float) -> None:
        from firmware_bridge.errors import PolarFrameError
        from firmware_bridge.polar import decode_polar_ecg

        try:
            frame = decode_polar_ecg(data)
        except PolarFrameError:
            self.stats.bad_frames += 1
            return
        n = len(frame.samples_uv)
        if n == 0:
            return
        period_ns = 1e9 / self.fs_hz
        last_ns = frame.timestamp_ns
        gap_s = 0.0
        if self._last_ns is None:
            self._base_ns = last_ns
        else:
            gap_ns = (last_ns - (n - 1) * period_ns) - (self._last_ns + period_ns)
            if gap_ns < -1.5 * period_ns:  # device clock reset: new segment
                self._on_new_segment()
                self._base_ns = last_ns
                self._new_segment = True
            elif gap_ns > 1.5 * period_ns:
                gap_s = round(gap_ns / period_ns) / self.fs_hz
                self.stats.lost_frames += max(1, round(gap_ns / period_ns / n))
        self._last_ns = last_ns
        last_s = (last_ns - self._base_ns) / 1e9
        self.clock.update(last_s + 1.0 / self.fs_hz, arrival_s)
        t0 = self.clock.to_host(last_s - (n - 1) / self.fs_hz)
        samples = frame.samples_uv.astype(np.float32) * 1e-3
        self._put(samples, t0, self.fs_hz, gap_s=gap_s)

    async def _disconnect(self) -> None:
        from firmware_bridge.polar import PMD_CONTROL_UUID, ecg_stop_command

        if self.transport.client is not None:
            try:
                async with asyncio.timeout(2.0):
                    await self.transport.write(PMD_CONTROL_UUID, ecg_stop_command())
            except Exception:  # noqa: BLE001 - best effort before disconnecting
                pass
        await self.transport.disconnect()
