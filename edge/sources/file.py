"""`file:` — replay a recording (WFDB, EDF/EDF+/BDF, CSV/TSV) at real time or as fast as
possible, streamed from disk in blocks (see edge.sources.recording)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from edge.sources.errors import SourceURIError
from edge.sources.paced import PacedSource
from edge.sources.recording import Recording, _fail, finite_runs, nominal_rate, open_recording


class FileSource(PacedSource):
    """One channel of a recording; missing samples (holes, NaN) become gaps. speed 0 = no
    pacing. `conform_rate(model_fs)` reads a rate without a small ratio to the model rate as
    the nearest one that has it (within 0.01 %), and says so in `describe()`."""

    def __init__(self, path: str, *, speed: float = 0.0, lead: str | None = "I",
                 fs: float | None = None, chunk: float | None = None,
                 channel: int | None = None, units: str | None = None) -> None:
        if not speed >= 0:
            raise SourceURIError(f"file: speed={speed} must be >= 0 (0 = as fast as possible)")
        if chunk is not None and not chunk > 0:
            raise SourceURIError(f"file: chunk={chunk} must be > 0 seconds")
        self.recording: Recording = open_recording(path, lead, channel=channel, fs_hz=fs,
                                                   units=units)
        rec = self.recording
        super().__init__(rec.fs_hz, speed, chunk if chunk else (1.0 if speed == 0 else 0.2))
        self.uri = f"file:{path}?" + (f"channel={channel}" if channel is not None
                                      else f"lead={lead or 'I'}")
        self.path, self.lead = path, lead
        self.n_samples = rec.n_samples
        self.file_fs_hz = rec.fs_hz
        self._blocks: Iterator[tuple[int, np.ndarray]] | None = None
        self._queue: list[tuple[float, np.ndarray]] = []

    def conform_rate(self, model_fs_hz: float) -> float:
        """Use the nearest rate with a small ratio to `model_fs_hz`; returns the rate used."""
        try:
            fs = nominal_rate(self.file_fs_hz, model_fs_hz)
        except ValueError as exc:
            raise _fail(self.recording.path, f"rate {self.file_fs_hz:g} Hz: {exc}",
                        "resample the file") from None
        if fs != self.file_fs_hz:
            off = (fs / self.file_fs_hz - 1) * 100
            self.recording.notes.append(
                f"rate {self.file_fs_hz:.9g} Hz read as {fs:.9g} Hz ({off:+.5f} %), the "
                f"nearest rate with a small ratio to the model's {model_fs_hz:g} Hz")
        self.fs_hz = fs
        self.chunk_n = max(1, int(round(self.chunk_n * fs / self.file_fs_hz)))
        return fs

    @property
    def signal_end_s(self) -> float | None:
        """Host time just after the file's last sample (missing or not); None before the
        first chunk."""
        o = self.signal_origin_s
        return None if o is None else o + self.n_samples / self.fs_hz

    def describe(self) -> dict[str, Any]:
        """What was read (file, channel, rate, units, notes) for summary.json."""
        d = self.recording.describe()
        d["fs_used_hz"] = self.fs_hz
        return d

    def _next_segment(self) -> tuple[float, np.ndarray] | None:
        if self._blocks is None:
            self._blocks = self.recording.blocks()
        while not self._queue:
            nxt = next(self._blocks, None)
            if nxt is None:
                return None
            start, x = nxt
            self._queue = [((start + a) / self.fs_hz, x[a:b]) for a, b in finite_runs(x)]
        return self._queue.pop(0)
