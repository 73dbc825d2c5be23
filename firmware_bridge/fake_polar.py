"""A fake Polar H10 that stands in for a `bleak.BleakClient` in tests and field rehearsals.

It implements the part of BleakClient an ECG source needs (`connect`, `disconnect`,
`is_connected`, `start_notify`, `stop_notify`, `write_gatt_char`, `disconnected_callback`),
answers PMD control-point commands like the device, and once ECG is started (with PMD data
notifications enabled) sends ECG data frames of 73 samples at 130 Hz from a signal, at real
rate or `speed` times faster (0 = as fast as possible), with seeded fault injection:
loss, damage, replays, time-stamp bit flips, ADC rate error (the time stamps stay true),
disconnects with device time passing while offline, and a device clock restart.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from firmware_bridge.faults import FaultInjector, Faults, FaultStats, Pacer
from firmware_bridge.polar import (
    CONTROL_RESPONSE,
    ECG_RESOLUTION_BITS,
    ECG_SAMPLE_RATE_HZ,
    ECG_SAMPLES_PER_FRAME,
    FRAME_TYPE_ECG_UV24,
    MEASUREMENT_ECG,
    PMD_CONTROL_UUID,
    PMD_DATA_UUID,
    PmdOp,
    PmdSetting,
    PmdStatus,
    encode_polar_ecg,
    parse_settings,
)
from firmware_bridge.synth import synthetic_ecg

# 2024-01-01 00:00:00 in ns since the Polar epoch (2000-01-01)
DEFAULT_START_NS = 757_382_400 * 1_000_000_000
SETTINGS_PARAMS = bytes([0, PmdSetting.SAMPLE_RATE, 1, ECG_SAMPLE_RATE_HZ, 0,
                         PmdSetting.RESOLUTION, 1, ECG_RESOLUTION_BITS, 0])


def _bleak_error(msg: str) -> Exception:
    try:
        from bleak.exc import BleakError
    except ImportError:  # pragma: no cover - bleak is a base dependency
        return RuntimeError(msg)
    return BleakError(msg)


@dataclass(frozen=True)
class FakeCharacteristic:
    """What bleak passes as `sender` to notification callbacks (uuid + handle)."""

    uuid: str
    handle: int
    description: str = ""


_CHARS = {
    PMD_CONTROL_UUID: FakeCharacteristic(PMD_CONTROL_UUID, 0x3E, "PMD control point"),
    PMD_DATA_UUID: FakeCharacteristic(PMD_DATA_UUID, 0x41, "PMD data"),
}
NotifyCallback = Callable[[Any, bytearray], Any]


def _uuid(char: Any) -> str:
    return str(getattr(char, "uuid", char)).lower()


class FakePolarH10:
    """BleakClient look-alike for a Polar H10 streaming ECG (see module docstring).

    `connect_failures`: the first N `connect()` calls raise BleakError (transient aborts).
    `faults.disconnect_after`: drop the link once after that many frames; the client must
    reconnect and re-send the PMD start command, as with the real strap.
    """

    def __init__(self, address_or_ble_device: Any = "C0:FF:EE:00:10:10",
                 disconnected_callback: Callable[[FakePolarH10], None] | None = None, *,
                 signal_mv: np.ndarray | None = None, speed: float = 1.0,
                 faults: Faults | None = None, seed: int | None = 0,
                 samples_per_frame: int = ECG_SAMPLES_PER_FRAME,
                 start_timestamp_ns: int = DEFAULT_START_NS, connect_failures: int = 0,
                 **_bleak_kwargs: Any) -> None:
        self.address = str(getattr(address_or_ble_device, "address", address_or_ble_device))
        self.disconnected_callback = disconnected_callback
        if signal_mv is None:
            signal_mv = synthetic_ecg(300.0, ECG_SAMPLE_RATE_HZ, seed or 0)
        self._signal_uv = np.rint(np.asarray(signal_mv, float) * 1000).astype(np.int64)
        self.faults = faults or Faults()
        Pacer(speed)  # validates speed
        self.speed = speed
        self.injector = FaultInjector(self.faults, seed, timestamp_bytes=(1, 9))
        self.samples_per_frame = samples_per_frame
        self.start_timestamp_ns = start_timestamp_ns
        self._connect_failures = connect_failures
        self._connected = False
        self._notify: dict[str, NotifyCallback] = {}
        self._stream: asyncio.Task[None] | None = None
        self._disconnect_fired = False
        self._sample_index = 0  # device keeps counting across streams and reconnects
        self._clock_base = 0  # sample index at which the device clock last restarted
        self._went_down = False
        self.frame_type = FRAME_TYPE_ECG_UV24  # set 0x80 to send delta-compressed frames
        self.commands: list[bytes] = []

    @property
    def stats(self) -> FaultStats:
        return self.injector.stats

    @property
    def is_connected(self) -> bool:
        return self._connected

    @property
    def streaming(self) -> bool:
        return self._stream is not None and not self._stream.done()

    async def connect(self, **_kwargs: Any) -> bool:
        await asyncio.sleep(0)
        if self._connect_failures > 0:
            self._connect_failures -= 1
            raise _bleak_error(f"fake H10 {self.address}: connection aborted (injected)")
        self._connected = True
        return True

    async def disconnect(self) -> bool:
        await self._stop_stream()
        self._connected = False
        self._notify.clear()
        return True

    async def __aenter__(self) -> FakePolarH10:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    def _require(self, char: Any) -> str:
        if not self._connected:
            raise _bleak_error(f"fake H10 {self.address}: not connected")
        uuid = _uuid(char)
        if uuid not in _CHARS:
            raise _bleak_error(f"fake H10 {self.address}: characteristic {uuid} not found")
        return uuid

    async def start_notify(self, char: Any, callback: NotifyCallback, **_kwargs: Any) -> None:
        self._notify[self._require(char)] = callback

    async def stop_notify(self, char: Any) -> None:
        uuid = self._require(char)
        self._notify.pop(uuid, None)
        if uuid == PMD_DATA_UUID:
            await self._stop_stream()

    async def write_gatt_char(self, char: Any, data: bytes | bytearray | memoryview,
                              response: bool = True) -> None:
        uuid = self._require(char)
        if uuid != PMD_CONTROL_UUID:
            raise _bleak_error(f"fake H10: characteristic {uuid} is not writable")
        cmd = bytes(data)
        self.commands.append(cmd)
        await self._deliver(PMD_CONTROL_UUID, self._handle_command(cmd))

    def _handle_command(self, cmd: bytes) -> bytes:
        op = cmd[0] if cmd else 0
        mtype = cmd[1] if len(cmd) > 1 else 0xFF

        def reply(status: PmdStatus, params: bytes = b"\x00") -> bytes:
            return bytes([CONTROL_RESPONSE, op, mtype, status]) + params

        if op not in PmdOp._value2member_map_:
            return reply(PmdStatus.INVALID_OP_CODE)
        if len(cmd) < 2:
            return reply(PmdStatus.INVALID_LENGTH)
        if mtype != MEASUREMENT_ECG:
            return reply(PmdStatus.NOT_SUPPORTED)
        if op == PmdOp.GET_SETTINGS:
            return reply(PmdStatus.SUCCESS, SETTINGS_PARAMS)
        if op == PmdOp.STOP:
            if not self.streaming:
                return reply(PmdStatus.ALREADY_IN_STATE)
            self._stream.cancel()  # type: ignore[union-attr]
            self._stream = None
            return reply(PmdStatus.SUCCESS)
        try:
            settings = parse_settings(cmd[2:])
        except ValueError:
            return reply(PmdStatus.INVALID_LENGTH)
        if any(k not in (PmdSetting.SAMPLE_RATE, PmdSetting.RESOLUTION) for k in settings):
            return reply(PmdStatus.INVALID_PARAMETER)
        if settings.get(PmdSetting.SAMPLE_RATE, [ECG_SAMPLE_RATE_HZ]) != [ECG_SAMPLE_RATE_HZ]:
            return reply(PmdStatus.INVALID_SAMPLE_RATE)
        if settings.get(PmdSetting.RESOLUTION, [ECG_RESOLUTION_BITS]) != [ECG_RESOLUTION_BITS]:
            return reply(PmdStatus.INVALID_RESOLUTION)
        if self.streaming:
            return reply(PmdStatus.ALREADY_IN_STATE)
        if PMD_DATA_UUID not in self._notify:
            return reply(PmdStatus.INVALID_STATE)
        self._stream = asyncio.get_running_loop().create_task(self._run_stream())
        return reply(PmdStatus.SUCCESS)

    async def _deliver(self, uuid: str, data: bytes) -> None:
        cb = self._notify.get(uuid)
        if cb is None:
            return
        result = cb(_CHARS[uuid], bytearray(data))
        if inspect.isawaitable(result):
            await result

    async def _stop_stream(self) -> None:
        task, self._stream = self._stream, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    @property
    def true_rate_hz(self) -> float:
        """The ADC rate on the device's clock: 130 Hz * (1 + faults.rate_error)."""
        return ECG_SAMPLE_RATE_HZ * (1.0 + self.faults.rate_error)

    def sample_time_ns(self, index: int) -> int:
        """Device time stamp (ns) of signal sample `index` (what the strap would report)."""
        if index >= self._clock_base and self._clock_base:
            return round((index - self._clock_base) * 1e9 / self.true_rate_hz)
        return self.start_timestamp_ns + round(index * 1e9 / self.true_rate_hz)

    async def _run_stream(self) -> None:
        pacer = Pacer(self.speed, self.faults.drift_ppm)
        rate = self.true_rate_hz
        if self._went_down:  # the strap kept sampling while the link was down
            self._sample_index += round(self.faults.offline_s * rate)
            self._went_down = False
        first = self._sample_index
        n = len(self._signal_uv)
        for k in itertools.count():
            start = k * self.samples_per_frame
            index = first + start
            if (not self._disconnect_fired or self.faults.disconnect_every) and \
                    self.injector.should_disconnect():
                self._disconnect_fired = True
                await self._link_lost()
                return
            if self.injector.clock_reset_due():
                self._clock_base = index
            delay = pacer.delay((start + self.samples_per_frame) / rate)
            await asyncio.sleep(max(delay, 0.0))
            chunk = self._signal_uv[(index + np.arange(self.samples_per_frame)) % n]
            self._sample_index = index + self.samples_per_frame
            frame = bytearray(encode_polar_ecg(self.sample_time_ns(self._sample_index - 1),
                                               chunk))
            frame[9] = self.frame_type
            for out in self.injector.apply_all(bytes(frame)):
                await self._deliver(PMD_DATA_UUID, out)

    async def _link_lost(self) -> None:
        self._stream = None
        self._connected = False
        self._notify.clear()
        self.stats.disconnected = True
        self._went_down = True
        if self.disconnected_callback is not None:
            self.disconnected_callback(self)
