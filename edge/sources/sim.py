"""`sim:` — a built-in virtual Lead-I device (seeded synthetic ECG), with fault injection."""

from __future__ import annotations

import numpy as np

from edge.sources.errors import SourceURIError
from edge.sources.paced import PacedSource

_BLOCK_S = 60.0
#: the most of its chunks a simulated link may lose
MAX_DROP = 0.9


class SimSource(PacedSource):
    """Synthetic ECG from firmware_bridge.synth, `duration_s` long (0 = endless).

    Chunks are `chunk` s long (at most one 60 s block). Faults: `drop` = probability
    (0..0.9) that a chunk is lost (-> gap); `flat` = (start_s, end_s)
    during which the signal is flat (electrode off, no status bit: quality must catch it).
    """

    def __init__(self, *, seed: int = 1, hr: float = 70.0, duration: float = 0.0,
                 speed: float = 1.0, fs: float = 250.0, chunk: float = 0.2, drop: float = 0.0,
                 flat: tuple[float, float] | None = None, noise: float = 0.02) -> None:
        if not 20 <= hr <= 250:
            raise SourceURIError(f"sim: hr={hr} must be within 20..250 bpm")
        if duration < 0 or speed < 0 or not fs > 0 or not chunk > 0:
            raise SourceURIError(
                f"sim: need duration >= 0, speed >= 0, fs > 0, chunk > 0 "
                f"(got duration={duration}, speed={speed}, fs={fs}, chunk={chunk})")
        if not chunk <= _BLOCK_S:  # a chunk is cut from one block of the signal
            raise SourceURIError(f"sim: chunk={chunk:g} s must be at most {_BLOCK_S:g} s")
        if not 0 <= drop <= MAX_DROP:  # more: a stream that (nearly) never delivers a chunk
            raise SourceURIError(f"sim: drop={drop:g} must be a probability within "
                                 f"0..{MAX_DROP:g}")
        super().__init__(fs, speed, chunk)
        self.uri = f"sim:?seed={seed}&hr={hr:g}&duration={duration:g}&fs={fs:g}"
        self.seed, self.hr, self.duration_s, self.noise = seed, hr, duration, noise
        self.drop_prob, self.flat = drop, flat
        self._rng = np.random.default_rng([seed, 1])
        self._block = 0

    def _next_segment(self) -> tuple[float, np.ndarray] | None:
        from firmware_bridge.synth import synthetic_ecg

        start = self._block * _BLOCK_S
        if self.duration_s and start >= self.duration_s:
            return None
        length = _BLOCK_S if not self.duration_s else min(_BLOCK_S, self.duration_s - start)
        x = synthetic_ecg(length, self.fs_hz, seed=self.seed + 7919 * self._block,
                          heart_rate_bpm=self.hr, noise_mv=self.noise).astype(np.float32)
        if self.flat is not None:
            t = start + np.arange(len(x)) / self.fs_hz
            x[(t >= self.flat[0]) & (t < self.flat[1])] = 0.0
        self._block += 1
        return start, x

    def _drop(self, start_s: float, n: int) -> bool:
        return bool(self.drop_prob) and bool(self._rng.random() < self.drop_prob)
