"""`polar:ADDR` (or `polar:` = first "Polar H10" found) — ECG over Polar PMD, 130 Hz, µV.

PMD frames carry no sequence number and no CRC: loss is found from the device time stamps
(ns of each frame's last sample) on a device time line that survives reconnects, the true
rate (130 Hz +- 5 %) is estimated and resampled to 130 Hz, and frames whose content a real
ECG cannot have (wrong length, impossible steps, implausible time stamps) are dropped and
counted as corrupt, the loss becoming an explicit gap.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from edge.sources.deviceclock import TimedChunker
from edge.sources.errors import DeviceProtocolError
from edge.sources.notify import NotifySource

#: plausibility limits of H10 ECG samples (µV): largest magnitude, largest sample-to-sample
#: step at 130 Hz (10 mV in 7.7 ms is far beyond any ECG, electrode motion included)
MAX_ABS_UV = 100_000
MAX_STEP_UV = 10_000
_UNSUPPORTED_LIMIT = 3  # consecutive undecodable frame types before the session is refused


def implausible_uv(samples_uv: np.ndarray, max_abs_uv: float = MAX_ABS_UV,
                   max_step_uv: float = MAX_STEP_UV) -> str:
    """Why these ECG samples cannot come from a body ('' if they can)."""
    if len(samples_uv) and np.abs(samples_uv).max() > max_abs_uv:
        return f"a sample beyond +-{max_abs_uv / 1000:g} mV"
    if len(samples_uv) > 1 and np.abs(np.diff(samples_uv)).max() > max_step_uv:
        return f"a step beyond {max_step_uv / 1000:g} mV between samples"
    return ""


class PolarSource(NotifySource):
    """Polar H10: settings query and PMD start after every (re)connect (see module doc)."""

    name_prefix = "Polar H10"
    keeps_device_time = True

    def __init__(self, address: str | None = None, **kwargs: Any) -> None:
        super().__init__(address, **kwargs)
        from firmware_bridge.polar import ECG_SAMPLE_RATE_HZ

        self.uri = f"polar:{address or ''}"
        self.fs_hz = float(ECG_SAMPLE_RATE_HZ)
        self.timed = TimedChunker(self._put_uv, self.fs_hz)
        self._ctrl: asyncio.Queue[bytes] = asyncio.Queue()
        self._unsupported = 0
        self._origin_ns: int | None = None  # first time stamp: the line counts from it
        self.settings: dict[Any, list[int]] = {}

    def _put_uv(self, samples_uv: np.ndarray, t0: float, fs: float, **kw: Any) -> None:
        self._put((samples_uv * 1e-3).astype(np.float32), t0, fs, **kw)

    def _on_new_segment(self) -> None:
        self.timed.timeline.reconnected()

    async def _command(self, cmd: bytes, what: str) -> Any:
        from firmware_bridge.polar import PMD_CONTROL_UUID, parse_control_response

        await self.transport.write(PMD_CONTROL_UUID, cmd)
        try:
            async with asyncio.timeout(10.0):
                while True:
                    reply = parse_control_response(await self._ctrl.get())
                    if reply.op == cmd[0]:
                        return reply
        except TimeoutError:
            raise DeviceProtocolError(f"{self.uri}: no reply to the PMD {what} command") \
                from None

    async def _start(self) -> None:
        from firmware_bridge.polar import (
            ECG_RESOLUTION_BITS,
            ECG_SAMPLE_RATE_HZ,
            PMD_CONTROL_UUID,
            PMD_DATA_UUID,
            PmdSetting,
            PmdStatus,
            ecg_settings_command,
            ecg_start_command,
        )

        self._ctrl = asyncio.Queue()
        await self.transport.start_notify(PMD_CONTROL_UUID,
                                          lambda _s, d: self._ctrl.put_nowait(bytes(d)))
        await self.transport.start_notify(PMD_DATA_UUID, self._on_data)
        hint = "take the strap off the charger / wet the electrodes and retry"
        reply = await self._command(ecg_settings_command(), "ECG settings")
        if not reply.ok:
            raise DeviceProtocolError(f"{self.uri}: ECG settings query refused: "
                                      f"{reply.message}", hint=hint)
        self.settings = reply.settings()
        rates = self.settings.get(PmdSetting.SAMPLE_RATE, [])
        bits = self.settings.get(PmdSetting.RESOLUTION, [])
        if ECG_SAMPLE_RATE_HZ not in rates or ECG_RESOLUTION_BITS not in bits:
            raise DeviceProtocolError(
                f"{self.uri}: the device offers ECG at {rates} Hz / {bits} bits, not "
                f"{ECG_SAMPLE_RATE_HZ} Hz / {ECG_RESOLUTION_BITS} bits",
                hint="is this a Polar H10? (other Polar devices stream ECG differently)")
        reply = await self._command(ecg_start_command(), "ECG start")
        if reply.status == PmdStatus.ALREADY_IN_STATE:
            self.stats.extra["already_streaming"] = self.stats.extra.get(
                "already_streaming", 0) + 1
        elif not reply.ok:
            raise DeviceProtocolError(f"{self.uri}: the H10 refused ECG start: "
                                      f"{reply.message}", hint=hint)

    def _decode(self, data: bytes, arrival_s: float) -> None:
        from firmware_bridge.errors import PolarFrameError, PolarUnsupportedFrame
        from firmware_bridge.polar import decode_polar_ecg

        try:
            frame = decode_polar_ecg(data)
        except PolarUnsupportedFrame as exc:
            self._corrupt()
            self.timed.timeline.rejected()
            self._unsupported += 1
            if self._unsupported >= _UNSUPPORTED_LIMIT:
                raise DeviceProtocolError(
                    f"{self.uri}: {exc}",
                    hint="ecg12 needs uncompressed ECG (frame type 0); update the H10 "
                         "firmware or report the frame type") from None
            return
        except PolarFrameError:
            self._corrupt()
            self.timed.timeline.rejected()
            return
        self._unsupported = 0
        x = frame.samples_uv
        size = self.timed.timeline.frame_size
        if len(x) == 0 or (size is not None and len(x) != size) or implausible_uv(x):
            self._corrupt()
            self.timed.timeline.rejected()
            return
        # seconds since the first frame, from the integer ns: an H10 stamp counts from 2000,
        # and as a float of ~7.6e8 s its rounding (~1e-7 s per step) walks the line off the
        # device's grid
        if self._origin_ns is None:
            self._origin_ns = frame.timestamp_ns
        self.timed.add((frame.timestamp_ns - self._origin_ns) / 1e9, x.astype(np.float64),
                       arrival_s)
        self._sync_stats()

    def _corrupt(self) -> None:
        self.stats.bad_frames += 1
        self._sync_stats()

    def _sync_stats(self) -> None:
        c = self.timed.counters
        self.stats.update_clock(c, corrupt=self.stats.bad_frames)
        self.stats.lost_frames = round(c.lost_samples / (self.timed.timeline.frame_size or 73))

    def feed(self, data: bytes, arrival_s: float) -> None:
        """One PMD data notification (what `_pump` does with each; the campaign calls it)."""
        self._decode(data, arrival_s)

    def finish(self) -> None:
        """End of the session: deliver what the time line still holds."""
        self.timed.flush()
        self._sync_stats()

    async def _pump(self) -> None:
        await super()._pump()  # returns only at the end of the session: deliver the rest
        self.finish()

    async def _disconnect(self) -> None:
        from firmware_bridge.polar import PMD_CONTROL_UUID, ecg_stop_command

        if self.transport.client is not None:
            try:
                async with asyncio.timeout(2.0):
                    await self.transport.write(PMD_CONTROL_UUID, ecg_stop_command())
            except Exception:  # noqa: BLE001 - best effort before disconnecting
                pass
        await self.transport.disconnect()
