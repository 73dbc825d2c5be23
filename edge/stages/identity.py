"""Identity stage: is the wearer still the enrolled one? (personalised streams only)

Per model window (the conditioned Lead I the model sees, e.g. 8 s at 100 Hz) the median beat
is compared with the enrolment's (``Personalization.template``): shape r (best over
+-``MATCH_SHIFT_S`` of alignment) and peak-to-peak amplitude ratio. A window *matches* when
r >= ``MATCH_MIN_R`` and the ratio is within exp(+-``MATCH_MAX_LOG_AMP``). An output row takes
the verdict of the window centred nearest to it among those starting at or before it (model
time; the first window for the first rows): every such window has run when the row is
emitted, so the verdicts do not depend on chunking. Rows of a mismatching window get
the generic output and std instead of the personalised ones, under a
``personalization_mismatch`` flag; a window without beats keeps the personalised output.
Thresholds measured on PTB-XL patient pairs (``training.evaluate_personalization``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.leads import LEADS
from edge.stages.flags import Flag

__all__ = ["IdentityCheck", "Verdict", "beat_template", "compare", "judge", "make_template",
           "MATCH_MIN_R", "MATCH_MAX_LOG_AMP", "TEMPLATE_FS_HZ"]

#: Rate of stored templates.
TEMPLATE_FS_HZ = 100.0
#: Median beat span around R (s).
PRE_S, POST_S = 0.25, 0.40
#: Beat shape r below which the wearer looks different (best over the alignment shifts).
#: PTB-XL pairs, 8 s windows vs the enrolment: same person 5/25/50 % 0.75/0.93/0.97,
#: another person 50/75/95 % 0.79/0.89/0.95.
MATCH_MIN_R = 0.9
#: |log| of the amplitude ratio above which the wearer looks different (0.74x .. 1.35x):
#: same person 50/75/95 % of |log| 0.09/0.14/0.28, another person 5/25/50 % 0.04/0.18/0.38.
MATCH_MAX_LOG_AMP = 0.3
#: Alignment tried between the two median beats (s).
MATCH_SHIFT_S = 0.02


@dataclass(frozen=True)
class Verdict:
    """One window's comparison; ``match`` None when it has no beats to compare."""

    match: bool | None
    r: float = float("nan")
    amp_ratio: float = float("nan")


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b) / den) if den > 0 else float("nan")


def beat_template(x_mv: np.ndarray, fs_hz: float) -> np.ndarray | None:
    """Median beat (-``PRE_S``..+``POST_S`` around R) of a conditioned single lead, resampled to
    ``TEMPLATE_FS_HZ``; None without beats."""
    from edge.features import detect_r_peaks, median_beat

    x = np.asarray(x_mv, dtype=np.float64).reshape(-1)
    if len(x) == 0 or not np.isfinite(x).all():
        return None
    peaks = detect_r_peaks(x, fs_hz)
    mb = median_beat(x[:, None], peaks, fs_hz, PRE_S, POST_S)
    if mb is None:
        return None
    beat = mb[0][:, 0]
    if fs_hz == TEMPLATE_FS_HZ:
        return beat
    tb = (np.arange(len(beat)) - mb[1]) / fs_hz
    tt = np.arange(-round(PRE_S * TEMPLATE_FS_HZ), round(POST_S * TEMPLATE_FS_HZ)) / TEMPLATE_FS_HZ
    return np.interp(tt, tb, beat)


def make_template(x_mv: np.ndarray, fs_hz: float) -> dict[str, Any]:
    """The ``Personalization.template`` of an enrolment's conditioned single lead."""
    beat = beat_template(x_mv, fs_hz)
    if beat is None:
        return {"fs_hz": TEMPLATE_FS_HZ, "beat": []}
    return {"fs_hz": TEMPLATE_FS_HZ, "beat": [round(float(v), 5) for v in beat],
            "ptp_mv": round(float(np.ptp(beat)), 5), "input": "model"}


def compare(ref: np.ndarray, beat: np.ndarray, ref_ptp: float | None = None
            ) -> tuple[float, float]:
    """(shape r at the best alignment within +-``MATCH_SHIFT_S``, amplitude ratio beat/ref)."""
    ref, beat = np.asarray(ref, dtype=np.float64), np.asarray(beat, dtype=np.float64)
    m = min(len(ref), len(beat))
    ref, beat = ref[:m], beat[:m]
    k = int(round(MATCH_SHIFT_S * TEMPLATE_FS_HZ))
    rs = [_pearson(ref[max(0, s): m + min(0, s)], beat[max(0, -s): m - max(0, s)])
          for s in range(-k, k + 1) if m - abs(s) > 2]
    rs = [r for r in rs if math.isfinite(r)]
    r = max(rs) if rs else float("nan")
    p_ref = float(np.ptp(ref)) if ref_ptp is None else float(ref_ptp)
    p_cur = float(np.ptp(beat))
    ratio = p_cur / p_ref if p_ref > 0 else float("nan")
    return r, ratio


def judge(template: dict[str, Any], x_mv: np.ndarray, fs_hz: float) -> Verdict:
    """Verdict of a conditioned single-lead stretch against an enrolment ``template``."""
    ref = template.get("beat") or []
    if len(ref) < 8:
        return Verdict(None)
    beat = beat_template(x_mv, fs_hz)
    if beat is None:
        return Verdict(None)
    ptp = template.get("ptp_mv")
    r, ratio = compare(np.asarray(ref, dtype=np.float64), beat, ptp)
    if not math.isfinite(r):
        return Verdict(None)
    ok = r >= MATCH_MIN_R
    if ptp is not None:  # profiles written before the amplitude check: shape only
        ok = ok and math.isfinite(ratio) and ratio > 0 and \
            abs(math.log(ratio)) <= MATCH_MAX_LOG_AMP
    return Verdict(ok, r, ratio if ptp is not None else float("nan"))


def describe(verdicts: list[Verdict]) -> tuple[float, str]:
    """(lowest r, flag detail) of the mismatching windows of one run."""
    def span(v: list[float]) -> str:
        a, b = f"{min(v):.2f}", f"{max(v):.2f}"
        return a if a == b else f"{a}-{b}"

    rs = [v.r for v in verdicts]
    amps = [v.amp_ratio for v in verdicts if math.isfinite(v.amp_ratio)]
    lo = math.exp(-MATCH_MAX_LOG_AMP)
    parts = [f"median beat r {span(rs)} (match: >= {MATCH_MIN_R:g})"]
    if amps:
        parts.append(f"amplitude x{span(amps)} (match: {lo:.2f}-{1 / lo:.2f})")
    return min(rs), (f"Lead I unlike the enrolment's ({'; '.join(parts)}): another wearer, or "
                     f"the device moved? generic model used")


class IdentityCheck:
    """Window verdicts in, per-row choice between personalised and generic rows out."""

    def __init__(self, template: dict[str, Any], fs_model_hz: float, fs_in_hz: float,
                 t0_s: float, window: int = 0, hop: int = 0) -> None:
        """``window``/``hop``: the model's, in model samples (0: latest window starting at or
        before each row)."""
        self.template = dict(template or {})
        self.offset = max(0.0, (window - hop) / 2)  # row -> the start of its centred window
        self.fs_m, self.fs_in, self.t0 = float(fs_model_hz), float(fs_in_hz), float(t0_s)
        self.starts: list[int] = []  # model-rate start of each window seen
        self.verdicts: list[Verdict] = []
        self._run: tuple[int, list[Verdict]] | None = None  # open mismatch run: start row

    @property
    def active(self) -> bool:
        return len(self.template.get("beat") or []) >= 8

    def window(self, start: int, samples: np.ndarray) -> Verdict:
        """Judge one model window (``start`` = its first model-rate sample)."""
        v = judge(self.template, samples, self.fs_m) if self.active else Verdict(None)
        self.add(start, v)
        return v

    def add(self, start: int, verdict: Verdict) -> None:
        """Record the verdict of the window starting at model sample ``start``."""
        self.starts.append(int(start))
        self.verdicts.append(verdict)

    def _close(self, end_k: int) -> tuple[int, Flag]:
        assert self._run is not None
        start, vs = self._run
        self._run = None
        value, detail = describe(vs)
        return end_k, Flag("personalization_mismatch", self.t0 + start / self.fs_in,
                           self.t0 + end_k / self.fs_in, LEADS, value, MATCH_MIN_R, detail)

    def select(self, p: np.ndarray, k0: int, generic: np.ndarray, generic_std: np.ndarray,
               personal: np.ndarray, personal_std: np.ndarray, closed: bool
               ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, Flag]]]:
        """Rows ``k0 ..`` at model positions ``p``: generic where their window mismatches;
        returns (leads, std, [(end row, flag)]) with the flags of the runs that ended."""
        n = len(p)
        if self.verdicts:
            idx = np.searchsorted(np.asarray(self.starts), np.asarray(p) - self.offset,
                                  side="right") - 1
            idx = np.maximum(idx, 0)
            false = np.array([v.match is False for v in self.verdicts] + [False])
            bad = false[np.where(idx >= 0, idx, len(self.verdicts))]
        else:
            idx, bad = np.full(n, -1), np.zeros(n, dtype=bool)
        leads, std = personal.copy(), personal_std.copy()
        leads[bad], std[bad] = generic[bad], generic_std[bad]
        flags: list[tuple[int, Flag]] = []
        if self._run is not None and n and not bad[0]:  # the open run ended with the last block
            flags.append(self._close(k0))
        edges = np.flatnonzero(np.diff(np.concatenate([[False], bad, [False]]).astype(np.int8)))
        for a, b in zip(edges[::2], edges[1::2], strict=True):  # runs [a, b) of mismatch rows
            vs = [self.verdicts[i] for i in np.unique(idx[a:b])]
            if self._run is not None and a == 0:  # the open run goes on
                start, prev = self._run
                self._run = (start, prev + [v for v in vs if v is not prev[-1]])
            else:
                self._run = (k0 + a, vs)
            if b < n or closed:
                flags.append(self._close(k0 + b))
        if self._run is not None and closed:
            flags.append(self._close(k0 + n))
        if n and self.verdicts:  # windows before the last row's one are no longer needed
            keep = int(idx[-1])
            if keep:
                del self.starts[:keep], self.verdicts[:keep]
        return leads, std, flags
