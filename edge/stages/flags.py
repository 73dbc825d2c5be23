"""Flag stage: ``high_uncertainty`` runs per lead, and the queue that releases every flag
(gaps, poor quality, uncertainty) once the samples it covers have been emitted."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Flag:
    kind: str  # "high_uncertainty" | "poor_quality" | "gap"
    start_s: float
    end_s: float
    leads: tuple[str, ...]
    value: float
    threshold: float
    detail: str


class UncertaintyRuns:
    """Per lead: a run of output samples whose calibrated std exceeds its threshold for at
    least ``min_n`` samples becomes a flag, whatever the block boundaries."""

    def __init__(self, leads: tuple[str, ...], threshold_mv: np.ndarray, min_n: int,
                 fs_hz: float, t0_s: float) -> None:
        self.leads, self.thr, self.min_n = leads, np.asarray(threshold_mv), int(min_n)
        self.fs, self.t0 = fs_hz, t0_s
        self.runs: dict[int, tuple[int, float]] = {}  # lead -> (start sample, max std)

    def push(self, sd: np.ndarray, k0: int, closed: bool) -> list[tuple[int, Flag]]:
        """``sd`` (n, leads) for output samples ``k0 ..``; returns (end sample, flag)."""
        out: list[tuple[int, Flag]] = []
        with np.errstate(invalid="ignore"):
            above = sd > self.thr[None, :]
        for lead in range(len(self.leads)):
            start, peak = self.runs.get(lead, (-1, 0.0))
            col = above[:, lead]
            for i in range(len(col) + (1 if closed else 0)):
                on = i < len(col) and bool(col[i])
                k = k0 + i
                if on:
                    if start < 0:
                        start, peak = k, 0.0
                    peak = max(peak, float(sd[i, lead]))
                elif start >= 0:
                    if k - start >= self.min_n:
                        thr = float(self.thr[lead])
                        out.append((k, Flag(
                            "high_uncertainty", self.t0 + start / self.fs, self.t0 + k / self.fs,
                            (self.leads[lead],), peak, thr, f"calibrated std above {thr:g} mV")))
                    start = -1
            self.runs[lead] = (start, peak)
        return out


class FlagQueue:
    """(end sample exclusive, flag) pairs, released when the output has passed their end."""

    def __init__(self) -> None:
        self.pending: list[tuple[int, Flag]] = []

    def add(self, end_k: int, flag: Flag) -> None:
        self.pending.append((end_k, flag))

    def add_merging(self, start_k: int, end_k: int, flag: Flag) -> None:
        """Add, merging into the last flag when it is of the same kind and detail and
        overlaps (consecutive poor-quality windows make one flag)."""
        if self.pending:
            e0, f0 = self.pending[-1]
            if f0.kind == flag.kind and f0.detail == flag.detail and start_k <= e0:
                self.pending[-1] = (max(e0, end_k), Flag(
                    f0.kind, f0.start_s, flag.end_s, f0.leads, max(f0.value, flag.value),
                    f0.threshold, f0.detail))
                return
        self.add(end_k, flag)

    def release(self, n_emitted: int, closed: bool, extra: list[tuple[int, Flag]]
                ) -> list[Flag]:
        """Flags whose samples are all emitted (all of them once closed), in a fixed order."""
        ready = list(extra)
        keep = []
        for e, f in self.pending:
            (ready if closed or e < n_emitted else keep).append((e, f))
        self.pending = keep
        ready.sort(key=lambda ef: (ef[0], ef[1].kind, ef[1].start_s, ef[1].leads))
        return [f for _, f in ready]
