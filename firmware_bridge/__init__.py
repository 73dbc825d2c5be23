"""Device side of ecg12: the ecg12 frame protocol, Polar H10 PMD and AD8232 ASCII codecs,
reference firmware, and virtual devices (pty serial, fake BLE Polar H10) with faults."""

from firmware_bridge.errors import (
    FirmwareBridgeError,
    FrameEncodeError,
    PolarFrameError,
    SignalSourceError,
)
from firmware_bridge.polar import PolarEcgFrame, decode_polar_ecg, encode_polar_ecg
from firmware_bridge.protocol import (
    Frame,
    FrameDecoder,
    FrameEncoder,
    SampleFormat,
    Status,
    encode_frame,
)

__all__ = [
    "FirmwareBridgeError",
    "Frame",
    "FrameDecoder",
    "FrameEncodeError",
    "FrameEncoder",
    "PolarEcgFrame",
    "PolarFrameError",
    "SampleFormat",
    "SignalSourceError",
    "Status",
    "decode_polar_ecg",
    "encode_frame",
    "encode_polar_ecg",
]
