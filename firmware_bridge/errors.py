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
