"""`file:` — replay a recording (WFDB, CSV, EDF) at real time or as fast as possible."""

from __future__ import annotations

import numpy as np

from edge.sources.errors import SourceURIError
from edge.sources.paced import PacedSource
from edge.sources.recording import finite_runs, read_recording


class FileSource(PacedSource):
    """Lead `lead` of a recording; NaN stretches in the file become gaps. speed 0 = no pacing."""

    def __init__(self, path: str, *, speed: float = 0.0, lead: str = "I",
                 fs: float | None = None, chunk: float | None = None) -> None:
        if speed < 0:
            raise SourceURIError(f"file: speed={speed} must be >= 0 (0 = as fast as possible)")
        x, fs_hz = read_recording(path, lead, fs)
        super().__init__(fs_hz, speed, chunk if chunk else (1.0 if speed == 0 else 0.2))
        self.uri = f"file:{path}?lead={lead}"
        self.path, self.lead = path, lead
        self.n_samples = len(x)
        self._segments = [(a / fs_hz, x[a:b]) for a, b in finite_runs(x)]

    def _next_segment(self) -> tuple[float, np.ndarray] | None:
        return self._segments.pop(0) if self._segments else None
