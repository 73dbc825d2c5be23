"""Polar H10 Polar Measurement Data (PMD): UUIDs, ECG commands, responses and data frames.

Data frame: byte 0 measurement type (0x00 ECG), bytes 1-8 timestamp (uint64 LE, ns since
2000-01-01 on the device clock, of the frame's last sample), byte 9 frame type (0x00 =
uncompressed 3-byte signed µV samples; bit 7 set = delta-compressed, not supported), then
N x 3 bytes little-endian signed samples.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from firmware_bridge.errors import PolarControlError, PolarFrameError, PolarUnsupportedFrame

#: Polar Measurement Data service and characteristics (Polar BLE SDK, BlePMDClient)
PMD_SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
#: standard Bluetooth SIG Heart Rate Measurement characteristic (also on every H10)
HEART_RATE_MEASUREMENT_UUID = "00002a37-0000-1000-8000-00805f9b34fb"

MEASUREMENT_ECG = 0x00
FRAME_TYPE_ECG_UV24 = 0x00
FRAME_TYPE_COMPRESSED = 0x80  # bit 7: delta-compressed frame (SDK-only scheme, refused)
CONTROL_RESPONSE = 0xF0
ECG_SAMPLE_RATE_HZ = 130
ECG_RESOLUTION_BITS = 14
ECG_SAMPLES_PER_FRAME = 73  # typical at the default 232-byte MTU
_HEADER_LEN = 10


class PmdOp(enum.IntEnum):
    """Control-point operation codes."""

    GET_SETTINGS = 0x01
    START = 0x02
    STOP = 0x03


class PmdSetting(enum.IntEnum):
    """Setting type codes inside start requests and settings responses."""

    SAMPLE_RATE = 0x00
    RESOLUTION = 0x01


class PmdStatus(enum.IntEnum):
    """Control-point response status codes (0 = success)."""

    SUCCESS = 0
    INVALID_OP_CODE = 1
    INVALID_MEASUREMENT_TYPE = 2
    NOT_SUPPORTED = 3
    INVALID_LENGTH = 4
    INVALID_PARAMETER = 5
    ALREADY_IN_STATE = 6
    INVALID_RESOLUTION = 7
    INVALID_SAMPLE_RATE = 8
    INVALID_RANGE = 9
    INVALID_MTU = 10
    INVALID_NUMBER_OF_CHANNELS = 11
    INVALID_STATE = 12
    DEVICE_IN_CHARGER = 13


#: what each refusal means for a user (status names follow the SDK's response codes)
STATUS_ADVICE: dict[int, str] = {
    PmdStatus.INVALID_OP_CODE: "invalid op code (the device does not know this command)",
    PmdStatus.INVALID_MEASUREMENT_TYPE: "invalid measurement type",
    PmdStatus.NOT_SUPPORTED: "measurement not supported by this device",
    PmdStatus.INVALID_LENGTH: "invalid command length",
    PmdStatus.INVALID_PARAMETER: "invalid parameter in the command",
    PmdStatus.ALREADY_IN_STATE: "already streaming (or already stopped)",
    PmdStatus.INVALID_RESOLUTION: "invalid resolution (the H10 ECG supports 14 bits)",
    PmdStatus.INVALID_SAMPLE_RATE: "invalid sample rate (the H10 ECG supports 130 Hz)",
    PmdStatus.INVALID_RANGE: "invalid range",
    PmdStatus.INVALID_MTU: "invalid MTU (the link MTU is too small for this stream)",
    PmdStatus.INVALID_NUMBER_OF_CHANNELS: "invalid number of channels",
    PmdStatus.INVALID_STATE: "invalid state (enable PMD data notifications before start)",
    PmdStatus.DEVICE_IN_CHARGER: "the device is in its charger",
}


def ecg_start_command(sample_rate_hz: int = ECG_SAMPLE_RATE_HZ,
                      resolution_bits: int = ECG_RESOLUTION_BITS) -> bytes:
    """`02 00 00 01 <rate u16> 01 01 <resolution u16>`: start ECG streaming."""
    return bytes([PmdOp.START, MEASUREMENT_ECG,
                  PmdSetting.SAMPLE_RATE, 1]) + struct.pack("<H", sample_rate_hz) + bytes(
        [PmdSetting.RESOLUTION, 1]) + struct.pack("<H", resolution_bits)


def ecg_stop_command() -> bytes:
    """`03 00`: stop ECG streaming."""
    return bytes([PmdOp.STOP, MEASUREMENT_ECG])


def ecg_settings_command() -> bytes:
    """`01 00`: ask which ECG settings the device supports."""
    return bytes([PmdOp.GET_SETTINGS, MEASUREMENT_ECG])


def parse_settings(params: bytes) -> dict[PmdSetting | int, list[int]]:
    """Parse `<type> <count> <u16 x count> ...` settings (start request or settings reply)."""
    out: dict[PmdSetting | int, list[int]] = {}
    i = 0
    while i < len(params):
        if i + 2 > len(params):
            raise PolarFrameError(f"PMD settings truncated at byte {i}: {params.hex(' ')}")
        kind, count = params[i], params[i + 1]
        end = i + 2 + 2 * count
        if end > len(params):
            raise PolarFrameError(
                f"PMD setting 0x{kind:02x} claims {count} values but only "
                f"{len(params) - i - 2} bytes follow: {params.hex(' ')}")
        values = list(struct.unpack_from(f"<{count}H", params, i + 2))
        key = PmdSetting(kind) if kind in PmdSetting._value2member_map_ else kind
        out[key] = values
        i = end
    return out


@dataclass(frozen=True)
class ControlResponse:
    """A PMD control-point response `F0 <op> <type> <status> <params...>`."""

    op: int
    measurement_type: int
    status: int
    params: bytes

    @property
    def ok(self) -> bool:
        return self.status == PmdStatus.SUCCESS

    @property
    def status_name(self) -> str:
        try:
            return PmdStatus(self.status).name
        except ValueError:
            return f"UNKNOWN_0x{self.status:02x}"

    @property
    def message(self) -> str:
        """One line naming the refusal, e.g. 'ALREADY_IN_STATE: already streaming ...'."""
        advice = STATUS_ADVICE.get(self.status, "unknown PMD status code")
        return f"{self.status_name} (status {self.status}): {advice}"

    def raise_for_status(self, what: str = "PMD command") -> ControlResponse:
        """Return self if the command succeeded, else raise PolarControlError naming why."""
        if not self.ok:
            raise PolarControlError(f"{what} refused: {self.message}", self.status)
        return self

    def settings(self) -> dict[PmdSetting | int, list[int]]:
        """Settings of a GET_SETTINGS reply (after its one 'more frames follow' byte)."""
        if self.op != PmdOp.GET_SETTINGS:
            raise PolarFrameError(f"PMD response to op 0x{self.op:02x} carries no settings")
        return parse_settings(self.params[1:])

    def to_bytes(self) -> bytes:
        return bytes([CONTROL_RESPONSE, self.op, self.measurement_type, self.status]) + bytes(
            self.params)


def parse_control_response(data: bytes | bytearray) -> ControlResponse:
    """Parse a control-point indication; raise PolarFrameError if it is not a response."""
    data = bytes(data)
    if len(data) < 4:
        raise PolarFrameError(f"PMD control response too short ({len(data)} bytes): {data.hex()}")
    if data[0] != CONTROL_RESPONSE:
        raise PolarFrameError(
            f"PMD control response must start with 0xf0, got 0x{data[0]:02x}: {data.hex()}")
    # GET_SETTINGS replies carry one reserved byte before the settings
    return ControlResponse(data[1], data[2], data[3], data[4:])


class PolarEcgFrame(NamedTuple):
    """A decoded PMD ECG data frame."""

    timestamp_ns: int
    samples_uv: np.ndarray


def decode_polar_ecg(frame: bytes | bytearray | memoryview) -> PolarEcgFrame:
    """Decode a PMD ECG data notification to (timestamp_ns, samples_uv int32 array)."""
    data = bytes(frame)
    if len(data) < _HEADER_LEN:
        raise PolarFrameError(
            f"PMD frame too short: {len(data)} bytes, need >= {_HEADER_LEN} for the header")
    if data[0] != MEASUREMENT_ECG:
        raise PolarFrameError(
            f"PMD frame measurement type is 0x{data[0]:02x}, not ECG (0x00)")
    frame_type = data[9]
    if frame_type & FRAME_TYPE_COMPRESSED:
        raise PolarUnsupportedFrame(
            f"PMD ECG frame type 0x{frame_type:02x} is delta-compressed; not supported "
            "(only type 0x00, uncompressed 3-byte µV samples)")
    if frame_type != FRAME_TYPE_ECG_UV24:
        raise PolarUnsupportedFrame(
            f"PMD ECG frame type 0x{frame_type:02x} is unsupported (only 0x00, 3-byte µV)")
    payload = data[_HEADER_LEN:]
    if len(payload) % 3:
        raise PolarFrameError(
            f"PMD ECG payload is {len(payload)} bytes, not a multiple of 3 (3-byte samples)")
    (timestamp_ns,) = struct.unpack_from("<Q", data, 1)
    raw = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
    samples = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
    samples = np.where(samples & 0x800000, samples - (1 << 24), samples).astype(np.int32)
    return PolarEcgFrame(int(timestamp_ns), samples)


def encode_polar_ecg(timestamp_ns: int, samples_uv: np.ndarray | list[int]) -> bytes:
    """Build a PMD ECG data frame (used by the fake H10 and for test vectors)."""
    arr = np.asarray(samples_uv, dtype=np.int64)
    if arr.ndim != 1:
        raise PolarFrameError(f"PMD ECG samples must be 1-D, got shape {arr.shape}")
    if arr.size and (arr.min() < -(1 << 23) or arr.max() >= 1 << 23):
        raise PolarFrameError("PMD ECG samples exceed the signed 24-bit range")
    if not 0 <= timestamp_ns < 1 << 64:
        raise PolarFrameError(f"PMD timestamp_ns={timestamp_ns} outside uint64")
    body = (arr & 0xFFFFFF).astype("<u4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return bytes([MEASUREMENT_ECG]) + struct.pack("<Q", timestamp_ns) + bytes(
        [FRAME_TYPE_ECG_UV24]) + body
