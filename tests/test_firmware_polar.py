"""Polar H10 PMD codec (hand-made vectors from the public layout) and the fake H10."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from bleak.exc import BleakError

from firmware_bridge import PolarFrameError, decode_polar_ecg
from firmware_bridge import polar as pmd
from firmware_bridge.fake_polar import FakePolarH10
from firmware_bridge.faults import Faults

VECTOR = bytes.fromhex("00" "0807060504030201" "00" "010000" "ffffff" "ffff7f" "000080" "9cffff")


def test_decode_vector() -> None:
    ts, samples = decode_polar_ecg(VECTOR)
    assert ts == 0x0102030405060708
    assert samples.tolist() == [1, -1, 8388607, -8388608, -100]
    assert np.issubdtype(samples.dtype, np.integer)
    assert decode_polar_ecg(bytearray(VECTOR[:10])).samples_uv.size == 0


def test_encode_matches_vector_and_round_trips() -> None:
    assert pmd.encode_polar_ecg(0x0102030405060708, [1, -1, 8388607, -8388608, -100]) == VECTOR
    rng = np.random.default_rng(0)
    s = rng.integers(-2000, 2000, 73)
    frame = pmd.encode_polar_ecg(123, s)
    assert len(frame) == 10 + 73 * 3
    assert decode_polar_ecg(frame).samples_uv.tolist() == s.tolist()


@pytest.mark.parametrize(("frame", "message"), [
    (b"\x00\x01\x02", "too short"),
    (b"\x02" + VECTOR[1:], "not ECG"),
    (VECTOR[:9] + b"\x80" + VECTOR[10:], "compressed"),
    (VECTOR[:9] + b"\x01" + VECTOR[10:], "unsupported"),
    (VECTOR[:-1], "multiple of 3"),
])
def test_decode_rejects_non_ecg_frames(frame: bytes, message: str) -> None:
    with pytest.raises(PolarFrameError, match=message):
        decode_polar_ecg(frame)


def test_commands_and_responses() -> None:
    assert pmd.ecg_start_command() == bytes.fromhex("02000001820001010e00")
    assert pmd.ecg_stop_command() == b"\x03\x00"
    assert pmd.parse_settings(pmd.ecg_start_command()[2:]) == {
        pmd.PmdSetting.SAMPLE_RATE: [130], pmd.PmdSetting.RESOLUTION: [14]}
    ok = pmd.parse_control_response(bytes.fromhex("f002000000"))
    assert ok.ok and ok.op == pmd.PmdOp.START and ok.measurement_type == 0
    bad = pmd.parse_control_response(bytes.fromhex("f002000600"))
    assert not bad.ok and bad.status_name == "ALREADY_IN_STATE"
    with pytest.raises(PolarFrameError, match="0xf0"):
        pmd.parse_control_response(b"\x00\x02\x00\x00")
    with pytest.raises(PolarFrameError, match="claims 3 values"):
        pmd.parse_settings(b"\x00\x03\x82\x00")


class Client:
    """A minimal ECG source over a bleak-like client (what the edge will do)."""

    def __init__(self, dev: FakePolarH10) -> None:
        self.dev, self.frames, self.responses, self.errors = dev, [], [], []

    async def start(self) -> pmd.ControlResponse:
        await self.dev.connect()
        await self.dev.start_notify(pmd.PMD_CONTROL_UUID, self._on_cp)
        await self.dev.start_notify(pmd.PMD_DATA_UUID, self._on_data)
        await self.dev.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.ecg_start_command(), True)
        return self.responses[-1]

    def _on_cp(self, sender: object, data: bytearray) -> None:
        self.responses.append(pmd.parse_control_response(data))

    async def _on_data(self, sender: object, data: bytearray) -> None:  # async callbacks too
        try:
            self.frames.append(decode_polar_ecg(data))
        except PolarFrameError as exc:
            self.errors.append(exc)


async def _run_until(pred, timeout: float = 5.0) -> None:  # noqa: ANN001
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred() and loop.time() < end:
        await asyncio.sleep(0.001)


def test_fake_h10_streams_ecg_frames_with_drops_and_disconnect() -> None:
    async def main() -> None:
        lost = []
        sig = np.arange(1000) / 1000.0  # mV ramp -> µV == index
        dev = FakePolarH10(signal_mv=sig, speed=0, seed=4, disconnected_callback=lost.append,
                           faults=Faults(drop_prob=0.2, disconnect_after=40))
        c = Client(dev)
        assert (await c.start()).ok
        await _run_until(lambda: bool(lost))
        assert lost == [dev] and not dev.is_connected and dev.stats.disconnected
        assert len(c.frames) == dev.stats.sent == 40 - dev.stats.dropped > 20
        period = 1e9 / 130
        for f in c.frames:  # timestamp = last sample; sample value says which sample it is
            assert f.samples_uv.size == 73
            k = int(f.samples_uv[-1])
            assert np.diff(f.samples_uv).tolist() == [1] * 72 or 0 in f.samples_uv
            steps = round((f.timestamp_ns - c.frames[0].timestamp_ns) / period)
            assert (k - int(c.frames[0].samples_uv[-1])) % 1000 == steps % 1000
        with pytest.raises(BleakError, match="not connected"):
            await dev.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.ecg_stop_command())
        # reconnect: the device needs a new start command, and keeps its clock
        n_before = len(c.frames)
        assert (await c.start()).ok
        await _run_until(lambda: len(c.frames) > n_before + 3)
        assert c.frames[n_before].timestamp_ns > c.frames[n_before - 1].timestamp_ns
        await dev.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.ecg_stop_command())
        assert c.responses[-1].ok and not dev.streaming
        await dev.disconnect()

    asyncio.run(main())


def test_fake_h10_control_point_errors_and_connect_failures() -> None:
    async def main() -> None:
        dev = FakePolarH10(speed=0, connect_failures=2, seed=1)
        for _ in range(2):
            with pytest.raises(BleakError, match="aborted"):
                await dev.connect()
        await dev.connect()
        got = []
        await dev.start_notify(pmd.PMD_CONTROL_UUID, lambda s, d: got.append(
            pmd.parse_control_response(d)))
        await dev.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.ecg_start_command())
        assert got[-1].status_name == "INVALID_STATE"  # data notifications not enabled
        await dev.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.ecg_start_command(200))
        assert got[-1].status_name == "INVALID_SAMPLE_RATE"
        await dev.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.ecg_settings_command())
        assert got[-1].ok and pmd.parse_settings(got[-1].params[1:])[
            pmd.PmdSetting.SAMPLE_RATE] == [130]
        await dev.write_gatt_char(pmd.PMD_CONTROL_UUID, pmd.ecg_stop_command())
        assert got[-1].status_name == "ALREADY_IN_STATE"
        await dev.disconnect()

    asyncio.run(main())


def test_fake_h10_paced_stream_with_corruption() -> None:
    async def main() -> None:
        dev = FakePolarH10(speed=20, seed=2, faults=Faults(corrupt_prob=0.5, drift_ppm=500))
        c = Client(dev)
        await c.start()
        await _run_until(lambda: len(c.frames) + len(c.errors) >= 12)
        await dev.disconnect()
        assert dev.stats.corrupted > 0
        assert all(f.samples_uv.size == 73 for f in c.frames)

    asyncio.run(main())
