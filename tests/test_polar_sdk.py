"""Polar H10 PMD against Polar's SDK / documents (constants written here from FIELD_FACTS.md,
not imported from the code under test), the PMD control point, and refused frame types."""

from __future__ import annotations

import asyncio

import pytest
from bleak.exc import BleakError

from edge.sources import DeviceProtocolError, open_source
from firmware_bridge import polar as pmd
from firmware_bridge.errors import PolarControlError, PolarUnsupportedFrame
from firmware_bridge.fake_polar import FakePolarH10

# Polar BLE SDK (BlePMDClient), bleakheart, polar-python: identical in all of them
SDK_SERVICE = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
SDK_CONTROL = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
SDK_DATA = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
SIG_HEART_RATE = "00002a37-0000-1000-8000-00805f9b34fb"
SDK_START_ECG = bytes.fromhex("02 00 00 01 82 00 01 01 0e 00")
SDK_VECTOR = bytes.fromhex("00 0094357700000000 00 0280ff 028000")
WRONG_OLD = "fb005c81-02e7-f387-1cad-8acba1da8ce6"  # what ecg12 used before issue 13


def test_uuids_are_polars() -> None:
    assert pmd.PMD_SERVICE_UUID == SDK_SERVICE
    assert pmd.PMD_CONTROL_UUID == SDK_CONTROL
    assert pmd.PMD_DATA_UUID == SDK_DATA
    assert pmd.HEART_RATE_MEASUREMENT_UUID == SIG_HEART_RATE


def test_sdk_vector_and_start_command() -> None:
    ts, samples = pmd.decode_polar_ecg(SDK_VECTOR)
    assert ts == 2_000_000_000 and samples.tolist() == [-32766, 32770]
    assert pmd.ecg_start_command() == SDK_START_ECG


@pytest.mark.parametrize("frame_type", [0x80, 0x81, 0x01])
def test_undecodable_frame_types_are_refused_by_name(frame_type: int) -> None:
    frame = SDK_VECTOR[:9] + bytes([frame_type]) + SDK_VECTOR[10:]
    with pytest.raises(PolarUnsupportedFrame, match="delta-compressed" if frame_type & 0x80
                       else "unsupported"):
        pmd.decode_polar_ecg(frame)


@pytest.mark.parametrize(("status", "words"), [
    (6, "already streaming"), (5, "invalid parameter"), (13, "charger"),
    (8, "invalid sample rate"), (0x7F, "unknown PMD status"),
])
def test_control_point_errors_are_named(status: int, words: str) -> None:
    reply = pmd.parse_control_response(bytes([0xF0, 0x02, 0x00, status, 0x00]))
    assert not reply.ok and words in reply.message
    with pytest.raises(PolarControlError, match=words) as info:
        reply.raise_for_status("ECG start")
    assert info.value.status == status
    assert pmd.parse_control_response(bytes.fromhex("f0 02 00 00 00")).raise_for_status().ok


def test_fake_h10_speaks_the_sdk_uuids_and_control_point() -> None:
    async def main() -> None:
        dev = FakePolarH10(speed=0)
        await dev.connect()
        got: list[pmd.ControlResponse] = []
        with pytest.raises(BleakError, match="not found"):
            await dev.start_notify(WRONG_OLD, lambda s, d: None)
        await dev.start_notify(SDK_CONTROL, lambda s, d: got.append(
            pmd.parse_control_response(d)))
        await dev.write_gatt_char(SDK_CONTROL, bytes.fromhex("01 00"))  # settings query
        assert got[-1].to_bytes() == bytes.fromhex("f0 01 00 00 00 00 01 82 00 01 01 0e 00")
        assert got[-1].settings() == {pmd.PmdSetting.SAMPLE_RATE: [130],
                                      pmd.PmdSetting.RESOLUTION: [14]}
        await dev.start_notify(SDK_DATA, lambda s, d: None)
        await dev.write_gatt_char(SDK_CONTROL, SDK_START_ECG)
        assert got[-1].ok
        await dev.write_gatt_char(SDK_CONTROL, SDK_START_ECG)
        assert "already streaming" in got[-1].message
        await dev.write_gatt_char(SDK_CONTROL, bytes.fromhex("02 00 07 01 01 00"))
        assert "invalid parameter" in got[-1].message
        await dev.disconnect()

    asyncio.run(main())


def _source(dev: FakePolarH10):
    def factory(addr, disconnected_callback=None):  # noqa: ANN001, ANN202
        dev.disconnected_callback = disconnected_callback
        return dev

    return open_source("polar:C0:FF:EE:00:10:10", client_factory=factory, backoff_base_s=0.01)


async def _drain(src) -> None:  # noqa: ANN001
    try:
        async with asyncio.timeout(10):
            async for _ in src:
                pass
    finally:
        await src.aclose()


def test_source_refuses_delta_compressed_stream_by_name() -> None:
    dev = FakePolarH10(speed=0)
    dev.frame_type = 0x80
    with pytest.raises(DeviceProtocolError, match="delta-compressed"):
        asyncio.run(_drain(_source(dev)))


def test_source_names_a_refused_start() -> None:
    class InCharger(FakePolarH10):
        def _handle_command(self, cmd: bytes) -> bytes:
            if cmd[:1] == b"\x02":
                return bytes([0xF0, 0x02, 0x00, 13, 0x00])
            return super()._handle_command(cmd)

    with pytest.raises(DeviceProtocolError, match="DEVICE_IN_CHARGER.*charger"):
        asyncio.run(_drain(_source(InCharger(speed=0))))
