"""Named gateway errors. Each message says what is wrong and, where useful, what to do."""

from __future__ import annotations


class EdgeError(Exception):
    """Base class of ecg12 gateway errors; ``advice`` is a one-line hint for the user."""

    advice: str = ""

    def __init__(self, message: str, advice: str | None = None) -> None:
        if advice is not None:
            self.advice = advice
        super().__init__(f"{message} ({self.advice})" if self.advice else message)


class BundleInvalid(EdgeError, ValueError):
    """A bundle's manifest or model files are missing, malformed or incompatible."""

    advice = "re-export the bundle with `ecg12 convert` or use the shipped default bundle"


class BundleNotFound(BundleInvalid, FileNotFoundError):
    """No bundle (manifest.json) at the given path."""

    advice = "pass the folder that holds manifest.json and the .tflite files"


class RuntimeUnavailable(EdgeError, ImportError):
    """Neither ai-edge-litert nor tflite-runtime is installed."""

    advice = "pip install ai-edge-litert (or tflite-runtime on Python <= 3.11)"


class InputInvalid(EdgeError, ValueError):
    """Signal or arguments unusable: wrong shape, non-finite samples, bad rate."""


class InputTooShort(InputInvalid):
    """The signal is shorter than one model window."""

    advice = "record at least one full window (see the bundle's model.window / model.fs_hz)"
