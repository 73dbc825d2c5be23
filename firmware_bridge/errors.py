"""Named exceptions of the firmware bridge; every message names the field and the value."""

from __future__ import annotations


class FirmwareBridgeError(ValueError):
    """Base class for all firmware_bridge errors."""


class FrameEncodeError(FirmwareBridgeError):
    """An ecg12 frame cannot be built from the given fields."""


class PolarFrameError(FirmwareBridgeError):
    """Bytes are not a (supported) Polar PMD ECG data frame or control-point response."""


class SignalSourceError(FirmwareBridgeError):
    """A signal for a virtual device cannot be loaded (file, lead, or parameters)."""


class PolarUnsupportedFrame(PolarFrameError):
    """A well-formed PMD frame of a type this decoder cannot decode (e.g. delta-compressed)."""


class PolarControlError(FirmwareBridgeError):
    """The PMD control point refused a command; `status` is the PMD response code."""

    def __init__(self, message: str, status: int = -1) -> None:
        super().__init__(message)
        self.status = status
