"""The unit of data between a source and the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Chunk:
    """Consecutive samples from a device.

    samples: (n, c) float32 in mV (c = 1 for Lead I), time-major.
    t0_s: time of the first sample on the host's monotonic clock (seconds), mapped from the
      device clock where the device has one.
    fs_hz: sampling rate of these samples.
    seq: running chunk number assigned by the source (0, 1, 2, ...).
    gap_before_s: duration of missing data immediately before this chunk (0.0 = contiguous
      with the previous chunk). A gap is never filled or shifted: the pipeline restarts
      its state and the sinks mark the interval as missing.
    status: device status flags seen in this chunk (e.g. {"lead_off"}).
    """

    samples: np.ndarray
    t0_s: float
    fs_hz: float
    seq: int = 0
    gap_before_s: float = 0.0
    status: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        s = np.asarray(self.samples, dtype=np.float32)
        if s.ndim == 1:
            s = s[:, None]
        if s.ndim != 2:
            raise ValueError(f"Chunk samples must be (n, c), got shape {s.shape}")
        if not self.fs_hz > 0:
            raise ValueError(f"Chunk fs_hz must be > 0, got {self.fs_hz}")
        if self.gap_before_s < 0:
            raise ValueError(f"Chunk gap_before_s must be >= 0, got {self.gap_before_s}")
        object.__setattr__(self, "samples", s)

    @property
    def n(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n / self.fs_hz

    @property
    def t_end_s(self) -> float:
        return self.t0_s + self.duration_s
