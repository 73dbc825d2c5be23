"""Streaming Lead I -> 12-lead reconstruction: the composition of the stages in ``edge.stages``.

Per segment (a contiguous stretch of input), each stage one job:

1. ``condition`` — Lead I band-limited zero-phase, to the model rate (the model's input) and
   at the input rate (the output's Lead I); both aligned with input time.
2. ``quality`` — per input sample codes (lead-off, saturated, flat on the raw input, bridged
   gap): those rows are output NaN (all 12 leads) under a ``poor_quality`` (or ``gap``) flag
   of exactly their span; and a verdict per window: one with too many such samples (or flat
   after conditioning) is not used (flagged ``poor_quality``), a noisy one is reconstructed
   and flagged.
3. ``window`` — windows of ``model.window`` samples on a fixed grid (hop) from the segment
   start, plus one aligned to the segment end when it closes.
4. ``reconstruct`` — ``Bundle.run_window`` with MC masks from
   ``default_rng([seed, segment, window])``: the output does not depend on chunking.
5. ``stitch`` — weighted overlap-add of window means and variances, read at the input rate:
   output sample ``k`` is the stitched model output at model time ``k / fs_in`` (the same
   time as input sample ``k``, with its time stamp). The last window is reconstructed: there
   is no held tail.
6. ``flags`` — ``high_uncertainty`` where a predicted lead's calibrated std exceeds the
   manifest's ``flag_std_mv`` for at least ``min_flag_s``, and over a window whose expected r
   (``edge.fidelity``) is below ``uncertainty.flag_expected_r`` or, for a bundle with an
   atypicality model, whose risk (expected r and how atypical its Lead I is for the trunk,
   ``edge.atypicality``) exceeds its threshold; ``gap``; each flag is released
   with the block that completes it.

Gaps: a short one (at most ``max_bridge_s``, default 1 s: a lost BLE notification or a few
serial frames) keeps the segment going. Its exact number of missing samples is inserted on
the time axis, the model's input there is a straight line between the samples either side,
and the output rows of the gap are NaN (all 12 leads) with a ``gap`` flag: nothing is shifted
and nothing invented is output, but the window grid and filter states survive. A longer gap
ends the segment (conditioners flushed, last window run) and starts a new one.

Samples are emitted once no later window can change them: about one window plus the
conditioning look-ahead after they arrive, in blocks of at least ``min_emit_s`` (default
0.5 s; the segment's last block may be shorter), so the per-block cost (stitch read, CSV
line formatting, one write) does not scale with how finely a device chunks its stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.bundle import Bundle
from edge.chunk import Chunk
from edge.conditioning import ConditioningConfig, ConditioningError
from edge.errors import InputInvalid, InputTooShort
from edge.fidelity import expected_r
from edge.leads import LEADS, PREDICTED, assemble_12_lead, derived_std
from edge.metadata import clean_metadata
from edge.stages.buffer import Buffer
from edge.stages.condition import ConditionStage
from edge.stages.flags import Flag, FlagQueue, UncertaintyRuns
from edge.stages.identity import IdentityCheck
from edge.stages.quality import (
    FLAT,
    GAP,
    GOOD,
    LEAD_OFF,
    NOT_RECONSTRUCTED,
    SATURATED,
    FlatRuns,
    QualityConfig,
    assess,
    sample_codes,
)
from edge.stages.reconstruct import WindowModel
from edge.stages.stitch import Stitcher
from edge.stages.window import Window, WindowGrid

__all__ = ["Block", "Flag", "StreamingReconstructor"]

_EMPTY = np.zeros((0, 12), np.float32)  # the leads and std of a block without samples
#: std of III, aVR, aVL, aVF per unit std of II (``derived_std`` is linear in it; x * 0.5 and
#: x / 2 round alike, so this is bit-identical)
_DERIVED_STD = derived_std(np.ones(1, np.float32))[0]


@dataclass(frozen=True)
class Block:
    t0_s: float
    fs_hz: float
    leads: np.ndarray  # (n, 12) float32 mV
    std: np.ndarray  # (n, 12) float32 mV, NaN where not reconstructed
    flags: list[Flag]

    @property
    def n(self) -> int:
        return int(self.leads.shape[0])


class _Segment:
    """The stages' state for one contiguous stretch of input."""

    def __init__(self, rec: StreamingReconstructor, index: int, t0_s: float) -> None:
        self.index, self.t0_s = index, t0_s
        L, hop = rec.bundle.window, rec.bundle.hop
        self.cond = ConditionStage(rec.fs_in_hz, rec.bundle.fs_hz, rec.conditioning)
        self.code = Buffer(dtype=np.int8)  # per input sample: quality.GOOD .. FLAT
        self.flat = FlatRuns(rec.fs_in_hz, rec.quality)  # marks FLAT codes afterwards
        self.bad_flags = FlagQueue()  # poor_quality over rows not reconstructed (codes)
        self.last_x = 0.0  # last real input sample (mV), the left end of a bridged gap
        self.grid = WindowGrid(L, hop)
        self.xi = Buffer()  # output Lead I at the input rate
        self.stitch = Stitcher(L, len(PREDICTED))
        self.flags = FlagQueue()
        self.runs = UncertaintyRuns(PREDICTED, rec.bundle.flag_std_mv, rec.min_flag_n,
                                    rec.fs_in_hz, t0_s)
        self.drained = False
        self.n_out = 0
        pz = rec.personalization
        self.personal = pz.applier(rec.fs_in_hz) if pz is not None else None
        self.identity = (IdentityCheck(pz.template, rec.bundle.fs_hz, rec.fs_in_hz, t0_s, L, hop)
                         if pz is not None else None)  # is it still the enrolled wearer?


class StreamingReconstructor:
    """Push ``Chunk``s of Lead I (mV) at ``fs_in_hz``; get ``Block``s of 12 leads back."""

    def __init__(self, bundle: Bundle, fs_in_hz: float, metadata: dict[str, Any] | None = None,
                 mc_samples: int | None = None, seed: int = 0,
                 quality: QualityConfig | None = None, min_flag_s: float = 0.2,
                 max_bridge_s: float = 1.0, personalization: Any = None,
                 min_emit_s: float = 0.5) -> None:
        self.bundle = bundle
        self.personalization = personalization  # edge.personalize.Personalization or None
        try:
            self.fs_in_hz = float(fs_in_hz)
        except (TypeError, ValueError):
            raise InputInvalid(f"fs_in_hz={fs_in_hz!r} is not a number") from None
        if not math.isfinite(self.fs_in_hz) or self.fs_in_hz <= 0:
            raise InputInvalid(f"fs_in_hz={fs_in_hz!r} must be a positive rate in Hz")
        man = bundle.manifest
        mc = man.mc.default_samples if mc_samples is None else int(mc_samples)
        if mc < 0:
            raise InputInvalid(f"mc_samples={mc_samples!r} must be >= 0")
        try:
            self.conditioning = ConditioningConfig.from_dict(man.conditioning)
        except ConditioningError as e:
            raise InputInvalid(f"bundle {man.name}: {e}") from None
        self.quality = quality or QualityConfig()
        self._check_flat_reach(bundle.fs_hz)
        self.min_flag_n = max(1, int(math.ceil(min_flag_s * self.fs_in_hz)))
        if not max_bridge_s >= 0:
            raise InputInvalid(f"max_bridge_s={max_bridge_s!r} must be >= 0")
        self.max_bridge_s = float(max_bridge_s)
        if not min_emit_s >= 0:
            raise InputInvalid(f"min_emit_s={min_emit_s!r} must be >= 0")
        #: a block waits for this many final samples (all of them once the segment closes)
        self.min_emit_n = max(1, int(round(min_emit_s * self.fs_in_hz)))
        self.model = WindowModel(bundle, clean_metadata(metadata), mc, int(seed))
        self._seg: _Segment | None = None
        self._n_segments = 0

    def _check_flat_reach(self, fs_model_hz: float) -> None:
        """Flat runs are marked up to ``FlatRuns.reach`` samples back; streaming equals
        offline only while the conditioning look-ahead holds every row back longer."""
        reach_s = FlatRuns(self.fs_in_hz, self.quality).reach / self.fs_in_hz
        lead_s = ConditionStage(self.fs_in_hz, fs_model_hz, self.conditioning).lookahead_s
        if reach_s >= lead_s:
            raise InputInvalid(
                f"quality min_flat_s={self.quality.min_flat_s:g} s with flat_block_s="
                f"{self.quality.flat_block_s:g} s marks flat samples {reach_s:.2f} s back, "
                f"beyond the conditioning look-ahead ({lead_s:.2f} s): rows would be emitted "
                "before they are known to be flat; use a shorter min_flat_s")

    @property
    def mc_samples(self) -> int:
        return self.model.mc_samples

    @property
    def metadata(self) -> dict[str, Any]:
        return self.model.metadata

    # ------------------------------------------------------------------ public
    def push(self, chunk: Chunk) -> list[Block]:
        """Add a chunk; returns the blocks whose samples are now final."""
        return self._push(chunk, self.check(chunk))

    def _push(self, chunk: Chunk, x: np.ndarray) -> list[Block]:
        """``push`` of a checked chunk whose Lead I is ``x`` (float64 mV)."""
        blocks: list[Block] = []
        if self._seg is not None and 0 < chunk.gap_before_s <= self.max_bridge_s:
            self._bridge(self._seg, chunk.gap_before_s, x[0])
        elif self._seg is not None and chunk.gap_before_s > 0:
            seg = self._seg
            gap_start = seg.t0_s + seg.code.end / self.fs_in_hz
            blocks += self._close()
            gap = Flag("gap", gap_start, chunk.t0_s, LEADS, float(chunk.gap_before_s), 0.0,
                       f"no data for {chunk.gap_before_s:.3f} s")
            blocks.append(self._block(_EMPTY, _EMPTY, chunk.t0_s, [gap]))
        if self._seg is None:
            self._seg = _Segment(self, self._n_segments, chunk.t0_s)
            self._n_segments += 1
        self._feed(self._seg, x, "lead_off" in chunk.status)
        blocks.append(self._emit(self._seg))
        return [b for b in blocks if b.n or b.flags]

    def push_many(self, chunks: list[Chunk]) -> list[Block]:
        """``push`` each chunk in order, contiguous runs (no gap before, same status) joined
        into one: the same output as pushing them one by one, for less work per chunk."""
        blocks: list[Block] = []
        i = 0
        while i < len(chunks):
            first = chunks[i]
            xs = [self.check(first)]
            j = i + 1
            while (j < len(chunks) and chunks[j].gap_before_s == 0
                   and chunks[j].status == first.status):
                xs.append(self.check(chunks[j]))
                j += 1
            blocks += self._push(first, xs[0] if len(xs) == 1 else np.concatenate(xs))
            i = j
        return blocks

    def quiet_samples(self) -> tuple[int, int, int]:
        """How many more contiguous input samples ``push`` would take (1) without completing
        a window or a block (it would return nothing), (2) without running the model and (3)
        running the model at most once: a session may hold (1) back and push them together,
        with the same output at the same time, push a batch within (2) without a worker
        thread, and one within (3) on the event loop too (one window, a few ms; the thread
        hand-off costs a tenth of that). (0, 0, 0) when unknown."""
        seg = self._seg
        if seg is None or seg.grid.closed:
            return 0, 0, 0
        n = seg.code.end
        to_model = seg.cond.to_model
        at_input = seg.cond.at_input or to_model
        L, fs_in, fs_m = self.bundle.window, self.fs_in_hz, self.bundle.fs_hz
        need_m = seg.grid.next_start() + L  # model samples that complete the next window
        k_min = seg.n_out + self.min_emit_n - 1  # the last sample of the next block

        # the fewest input samples (in the segment) at which each event happens
        n_window = to_model.inputs_for(need_m)
        n_two = to_model.inputs_for(need_m + self.bundle.hop)  # ... the window after it
        if seg.grid.next_index == 0:  # no block before the first window
            return n_window - n - 1, n_window - n - 1, n_two - n - 1
        # a block: k_min is conditioned at the input rate, and final_before (n_m - L) passes
        # floor(k_min at the model rate) + 1 (see _emit)
        c = math.floor(k_min / fs_in * fs_m)
        n_block = max(at_input.inputs_for(k_min + 1), to_model.inputs_for(c + L + 2))
        return min(n_window, n_block) - n - 1, n_window - n - 1, n_two - n - 1

    def flush(self) -> list[Block]:
        """End of signal: release the conditioning look-ahead, run the end-aligned window and
        emit everything left."""
        if self._seg is None:
            return []
        seg = self._seg
        L = self.bundle.window
        self._drain(seg)
        if self.model.windows_run == 0 and seg.grid.n < L:
            n = seg.code.end
            what = ("input has" if self._n_segments <= 1 else
                    f"no stretch between gaps is long enough for one window ({self._n_segments}"
                    " stretches); the last has")
            raise InputTooShort(
                f"{what} {n} samples at {self.fs_in_hz:g} Hz ({n / self.fs_in_hz:.2f} s) = "
                f"{seg.grid.n} at the model rate; one window needs {L} samples at "
                f"{self.bundle.fs_hz:g} Hz ({L / self.bundle.fs_hz:.2f} s)")
        return [b for b in self._close() if b.n or b.flags]

    # ------------------------------------------------------------------ internals
    def check(self, chunk: Chunk) -> np.ndarray:
        """Lead I of ``chunk`` as float64 mV; ``InputInvalid`` if it cannot be pushed."""
        if not isinstance(chunk, Chunk):
            raise InputInvalid(f"push() takes a Chunk, got {type(chunk).__name__}")
        if abs(chunk.fs_hz - self.fs_in_hz) > 1e-9 * self.fs_in_hz:
            raise InputInvalid(f"chunk {chunk.seq}: fs_hz={chunk.fs_hz:g} differs from the "
                               f"reconstructor's fs_in_hz={self.fs_in_hz:g}")
        if chunk.samples.shape[1] != 1:
            raise InputInvalid(f"chunk {chunk.seq}: expected 1 channel (Lead I), got "
                               f"{chunk.samples.shape[1]}")
        x = chunk.samples[:, 0].astype(np.float64)
        bad = ~np.isfinite(x)
        if bad.any():
            raise InputInvalid(f"chunk {chunk.seq}: {int(bad.sum())} non-finite sample(s) "
                               f"(NaN/inf), first at index {int(np.argmax(bad))}")
        return x

    def _bridge(self, seg: _Segment, gap_s: float, next_x: float) -> None:
        """Insert a short gap's samples: line between its neighbours as model input, NaN out."""
        n = int(round(gap_s * self.fs_in_hz))
        if n <= 0:
            return
        k0 = seg.code.end
        fill = np.linspace(seg.last_x, next_x, n + 2)[1:-1]
        self._feed(seg, fill, False, gap=True)
        seg.flags.add(k0 + n, Flag(
            "gap", seg.t0_s + k0 / self.fs_in_hz, seg.t0_s + (k0 + n) / self.fs_in_hz, LEADS,
            float(gap_s), self.max_bridge_s,
            f"no data for {gap_s:.3f} s (output NaN; bridged for the model)"))

    def _feed(self, seg: _Segment, x: np.ndarray, lead_off: bool, gap: bool = False) -> None:
        if gap:
            seg.code.append(np.full(len(x), GAP, np.int8))
        else:
            seg.code.append(sample_codes(x, lead_off, self.quality))
            if len(x):
                seg.last_x = float(x[-1])
        self._mark_flat(seg, seg.flat.push(x))
        # a sample at or past the saturation level is not reconstructed; clipped, it does not
        # ring through the conditioning filter into seconds of its neighbours
        sat = self.quality.saturation_mv
        self._conditioned(seg, *seg.cond.push(np.clip(x, -sat, sat)))

    @staticmethod
    def _mark_flat(seg: _Segment, ranges: list[tuple[int, int]]) -> None:
        """Code the samples of newly found flat runs FLAT (where they were GOOD)."""
        for a, b in ranges:
            c = seg.code.view(max(a, seg.code.base), b)
            c[c == GOOD] = FLAT

    def _drain(self, seg: _Segment) -> None:
        """End of a segment: the conditioners' held-back samples (zero-phase look-ahead)."""
        if not seg.drained:
            seg.drained = True
            self._mark_flat(seg, seg.flat.close())
            self._conditioned(seg, *seg.cond.flush())

    def _conditioned(self, seg: _Segment, ym: np.ndarray, yi: np.ndarray) -> None:
        """Newly final conditioned samples: run the windows they complete."""
        seg.xi.append(yi)
        windows = seg.grid.push(ym)
        seg.stitch.extend_to(seg.grid.n)
        for w in windows:
            self._window(seg, w)

    def _window(self, seg: _Segment, w: Window) -> None:
        L, fs_m, fs_in = self.bundle.window, self.bundle.fs_hz, self.fs_in_hz
        if seg.identity is not None:
            seg.identity.window(w.start, w.samples)
        j = np.arange(w.start, w.start + L)
        idx = np.clip(np.round(j / fs_m * fs_in), 0, seg.code.end - 1).astype(int)
        code = seg.code.at(np.maximum(idx, seg.code.base))
        verdict = assess(w.samples, (code == LEAD_OFF) | (code == FLAT), code == SATURATED,
                         fs_m, self.quality)
        if verdict.problem is not None:
            t_a, t_b = w.start / fs_m, (w.start + L) / fs_m
            # a window not used: its good samples may still come from the windows around it
            detail = verdict.problem + ("" if verdict.reconstruct else "; window not used")
            seg.flags.add_merging(int(t_a * fs_in), int(math.ceil(t_b * fs_in)), Flag(
                "poor_quality", seg.t0_s + t_a, seg.t0_s + t_b, LEADS, verdict.value,
                verdict.threshold, detail))
        if verdict.reconstruct:
            mean, std, score = self.model.run(w.samples, seg.index, w.index, w.start)
            seg.stitch.add(w.start, mean, std)
            u = self.bundle.manifest.uncertainty
            flag = None
            if u.atypicality is not None and score is not None:  # risk: expected r + atypical
                a = u.atypicality
                risk = a.risk(float(expected_r(mean, std)), score)
                if risk > a.threshold:
                    flag = (risk, a.threshold, "risk (low expected r, atypical Lead I) above "
                            f"{a.threshold:.2f}")
            elif u.flag_expected_r is not None:  # the window's uncertainty implies a low r
                er, thr = float(expected_r(mean, std)), u.flag_expected_r
                if er < thr:
                    flag = (er, thr, "expected r (from the window's calibrated std) below "
                            f"{thr:.2f}")
            if flag is not None:
                t_a, t_b = w.start / fs_m, (w.start + L) / fs_m
                seg.flags.add_merging(int(t_a * fs_in), int(math.ceil(t_b * fs_in)), Flag(
                    "high_uncertainty", seg.t0_s + t_a, seg.t0_s + t_b, LEADS[1:], *flag))

    def _close(self) -> list[Block]:
        seg, self._seg = self._seg, None
        if seg is None:
            return []
        self._drain(seg)
        for w in seg.grid.close():
            self._window(seg, w)
        out = [self._emit(seg)]
        L, n_m = self.bundle.window, seg.grid.n
        if n_m < L:
            out[0].flags.append(Flag(
                "poor_quality", seg.t0_s, seg.t0_s + seg.code.end / self.fs_in_hz, LEADS,
                float(n_m), float(L), "segment shorter than one window; not reconstructed"))
        return out

    def _emit(self, seg: _Segment) -> Block:
        """Output samples that no later window can change, at the input rate."""
        fs_in, fs_m = self.fs_in_hz, self.bundle.fs_hz
        closed = seg.grid.closed
        n_m = seg.grid.n
        t0 = seg.t0_s + seg.n_out / fs_in
        final = seg.grid.final_before()
        k_min = seg.n_out + self.min_emit_n - 1  # the last sample of the smallest block
        if not closed and (k_min >= seg.xi.end or not math.floor(
                min(k_min / fs_in * fs_m, max(n_m - 1, 0))) + 1 < final):
            # fewer than min_emit_n final samples (the test below is monotone in k)
            return self._block(_EMPTY, _EMPTY, t0, [])
        k = np.arange(seg.n_out, seg.xi.end)
        p = np.minimum(k / fs_in * fs_m, max(n_m - 1, 0))
        if not closed:  # final: floor(p) + 1 < final, i.e. p < final - 1 (p is sorted)
            n_final = int(np.searchsorted(p, final - 1, side="left"))
            k, p = k[:n_final], p[:n_final]
        if n_m:
            mu, var = seg.stitch.at(p, n_m)
        else:
            mu = var = np.full((len(k), len(PREDICTED)), np.nan)
        lead_i = seg.xi.view(k[0], k[-1] + 1) if len(k) else np.zeros(0)
        leads = assemble_12_lead(lead_i.astype(np.float32), mu.astype(np.float32))
        sd = np.sqrt(var).astype(np.float32)
        std = np.empty((len(k), 12), np.float32)
        std[:, 0] = 0.0
        std[:, 1] = sd[:, 0]
        std[:, 2:6] = sd[:, :1] * _DERIVED_STD
        std[:, 6:] = sd[:, 1:]
        codes = seg.code.at(k) if len(k) else np.zeros(0, np.int8)
        bad = codes != GOOD
        if bad.any():  # gaps, lead-off, saturated, flat: nothing to reconstruct from
            leads[bad] = np.nan
            std[bad] = np.nan
            sd[bad] = np.nan
            self._bad_rows(seg, int(k[0]), codes)
        unset = np.isnan(leads[:, 1])
        if unset.any():
            std[unset, 1:] = np.nan
        if seg.personal is not None:  # the wearer's correction (causal: chunking-invariant)
            pl, ps = seg.personal.push(leads, std)
            leads, std, found = seg.identity.select(p, seg.n_out, leads, std, pl, ps, closed)
            for end_k, f in found:  # generic rows where the window's wearer does not match
                seg.flags.add(end_k, f)
        unc = seg.runs.push(sd, seg.n_out, closed)
        seg.n_out += len(k)
        flags = seg.flags.release(seg.n_out, closed, unc + seg.bad_flags.take(seg.n_out, closed))
        self._trim(seg)
        return self._block(leads, std, t0, flags)

    def _bad_rows(self, seg: _Segment, k0: int, codes: np.ndarray) -> None:
        """``poor_quality`` over each run of rows not reconstructed for a reason of the input
        (a bridged gap has its own flag), merged across blocks."""
        fs = self.fs_in_hz
        for code in (LEAD_OFF, SATURATED, FLAT):
            on = np.concatenate([[False], codes == code, [False]])
            edges = np.flatnonzero(on[1:] != on[:-1])
            for a, b in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
                seg.bad_flags.add_merging(k0 + a, k0 + b, Flag(
                    "poor_quality", seg.t0_s + (k0 + a) / fs, seg.t0_s + (k0 + b) / fs, LEADS,
                    1.0, 0.0, NOT_RECONSTRUCTED[code]))

    def _trim(self, seg: _Segment) -> None:
        """Drop what no later output or window can need."""
        L, fs_m = self.bundle.window, self.bundle.fs_hz
        j = int(seg.n_out / self.fs_in_hz * fs_m) - 2
        keep_m = max(0, min(j, seg.grid.next_start(), seg.grid.n - L))
        seg.stitch.drop_before(keep_m)
        seg.grid.drop_before(keep_m)
        seg.xi.drop_before(seg.n_out)
        seg.code.drop_before(max(0, int(keep_m / fs_m * self.fs_in_hz) - 2))

    def _block(self, leads: np.ndarray, std: np.ndarray, t0: float, flags: list[Flag]
               ) -> Block:
        return Block(t0, self.fs_in_hz, leads.astype(np.float32, copy=False),
                     std.astype(np.float32, copy=False), list(flags))
