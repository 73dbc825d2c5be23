"""`ble:ADDR` — the project's own GATT profile: ecg12 frames (firmware_bridge SPEC) sent as
notifications on ECG12_DATA_UUID; a frame may span notifications (the decoder resyncs)."""

from __future__ import annotations

from typing import Any

from edge.sources.frames import FrameChunker
from edge.sources.notify import NotifySource
from firmware_bridge.protocol import GATT_FRAME_UUID as ECG12_DATA_UUID
from firmware_bridge.protocol import GATT_SERVICE_UUID as ECG12_SERVICE_UUID

__all__ = ["ECG12_DATA_UUID", "ECG12_SERVICE_UUID", "Ecg12BleSource"]


class Ecg12BleSource(NotifySource):
    """ecg12 frames over BLE; the device time line and sequence state survive reconnects."""

    name_prefix = "ecg12"
    keeps_device_time = True

    def __init__(self, address: str, **kwargs: Any) -> None:
        super().__init__(address, **kwargs)
        self.uri = f"ble:{address}"
        self._chunker = FrameChunker(self)

    def _on_new_segment(self) -> None:
        self._chunker.reconnected()

    async def _pump(self) -> None:
        await super()._pump()
        self._chunker.finish(0.0)

    async def _start(self) -> None:
        await self.transport.start_notify(ECG12_DATA_UUID, self._on_data)

    def _decode(self, data: bytes, arrival_s: float) -> None:
        self._chunker.feed(data, arrival_s)
