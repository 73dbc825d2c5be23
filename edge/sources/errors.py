"""Named source errors; each carries a user-facing hint."""

from __future__ import annotations

from edge.errors import EdgeError


class SourceError(EdgeError):
    """Base class of source errors. `hint` says what the user can do about it."""

    hint = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{msg} (hint: {self.hint})" if self.hint else msg


class SourceURIError(SourceError, ValueError):
    """A --source URI cannot be parsed or has a bad option."""

    hint = ("use sim:?seed=1, serial:/dev/ttyUSB0?baud=115200&format=ecg12, polar:ADDR, "
            "ble:ADDR or file:rec.hea")


class DeviceNotFound(SourceError):
    """No device answered at the given address/port (or none found by scanning)."""

    hint = "check the device is powered, in range / plugged in, and not held by another program"


class Disconnected(SourceError):
    """The device went away and could not be reconnected within the allowed time."""

    hint = "move closer / re-seat the cable; the output marks the interval as a gap"


class DeviceProtocolError(SourceError):
    """The device answered but refused a command or sent something unusable."""

    hint = "check the firmware speaks the expected protocol (format=ecg12|ascii)"


class RecordingError(SourceError, ValueError):
    """A recording file for replay cannot be read (format, lead, sampling rate)."""

    hint = "WFDB (.hea), EDF/BDF or CSV/TSV; pick the channel with --lead NAME or --channel N"


class RateMismatch(SourceError):
    """The device's own clock shows a sampling rate far from the one given."""

    hint = "give the rate the device samples at (the sketch's or device's setting)"
