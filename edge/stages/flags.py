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
        above = sd > self.thr[None, :]  # NaN (not reconstructed): False, no warning
        if not self.runs and not above.any():  # the usual block: nothing open, nothing above
            return out
        n, n_leads = above.shape
        # per lead, the on/off sequence: open run before, the block, "off" after if closed
        on = np.empty((n + 1 + closed, n_leads), dtype=bool)
        on[0] = [lead in self.runs for lead in range(n_leads)]
        on[1:n + 1] = above
        if closed:
            on[-1] = False
        leads, edges = np.nonzero((on[1:] != on[:-1]).T)  # lead by lead, in time order
        runs, self.runs = self.runs, {}
        for lead, e in zip(leads.tolist(), edges.tolist(), strict=True):
            if lead not in runs:  # a run starts at sample e of the block
                runs[lead] = (k0 + e, 0.0)
                continue
            start, peak = runs.pop(lead)  # it ends before sample e
            a = max(start - k0, 0)
            if e > a:
                peak = max(peak, float(sd[a:e, lead].max()))
            if k0 + e - start >= self.min_n:
                out.append((k0 + e, self._flag(lead, start, k0 + e, peak)))
        for lead, (start, peak) in runs.items():  # still open: keep start and peak so far
            a = max(start - k0, 0)
            self.runs[lead] = (start, max(peak, float(sd[a:, lead].max())) if n > a else peak)
        return out

    def _flag(self, lead: int, start: int, end: int, peak: float) -> Flag:
        thr = float(self.thr[lead])
        return Flag("high_uncertainty", self.t0 + start / self.fs, self.t0 + end / self.fs,
                    (self.leads[lead],), peak, thr, f"calibrated std above {thr:g} mV")


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

    def take(self, n_emitted: int, closed: bool) -> list[tuple[int, Flag]]:
        """(end, flag) of the flags whose samples are all emitted (all of them once closed)."""
        ready, keep = [], []
        for e, f in self.pending:
            (ready if closed or e < n_emitted else keep).append((e, f))
        self.pending = keep
        return ready

    def release(self, n_emitted: int, closed: bool, extra: list[tuple[int, Flag]]
                ) -> list[Flag]:
        """Flags whose samples are all emitted (all of them once closed) and ``extra``, in a
        fixed order."""
        ready = list(extra) + self.take(n_emitted, closed)
        ready.sort(key=lambda ef: (ef[0], ef[1].kind, ef[1].start_s, ef[1].leads, ef[1].detail))
        return [f for _, f in ready]
