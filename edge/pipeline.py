"""Streaming Lead I -> 12-lead reconstruction: condition, gate, window, MC, stitch, flag.

Gaps: a short one (at most ``max_bridge_s``, default 1 s: a lost BLE notification or a few
serial frames) keeps the segment going. Its exact number of missing samples is inserted on
the time axis, the model's input there is a straight line between the samples either side,
and the output rows of the gap are NaN (all 12 leads) with a ``gap`` flag: nothing is shifted
and nothing invented is output, but the window grid and filter states survive, so frequent
small losses do not starve the model of full windows. A longer gap restarts everything
(conditioners, window grid, MC seeds) in a new segment.

Per segment:

1. Lead I is conditioned twice with the bundle's filters: to the model rate (for the model)
   and at the input rate (the output's Lead I).
2. Windows of ``model.window`` samples on a fixed grid (hop ``model.hop``) from the segment
   start; ``flush`` adds one window aligned to the segment end. Each window gets a quality
   verdict (``edge.stages.quality``): flat / lead-off / saturated windows are not reconstructed
   (NaN) and flagged ``poor_quality``; noisy ones are reconstructed and flagged.
3. ``Bundle.predict_window`` with ``rng = default_rng([seed, segment, window])``, so the output
   does not depend on chunking. Metadata = the caller's fields + Lead-I features of the window
   for the manifest's ``derive_from_lead_i`` fields the caller did not give.
4. Stitching: weighted overlap-add with a raised-sine taper (never zero, so segment edges are
   covered); std = sqrt(weighted mean of variances).
5. Mapping to the input rate by linear interpolation. Timing: the model-rate path has the
   anti-alias FIR's pure delay ``d`` that the input-rate path lacks (IIR filters are the same in
   both), so output sample ``k`` takes the model output at model time ``k/fs_in + d``: the
   predicted leads line up with the output Lead I. The last ``d`` seconds of a segment hold the
   last model sample. Output sample ``k`` carries the time stamp of input sample ``k``.
6. Flags: ``high_uncertainty`` where a predicted lead's calibrated std exceeds the manifest's
   ``flag_std_mv`` for at least ``min_flag_s``; ``gap`` between segments.

Samples are emitted once no later window can change them (about one window of latency).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.bundle import Bundle
from edge.chunk import Chunk
from edge.conditioning import ConditioningConfig, ConditioningError, StreamConditioner
from edge.errors import InputInvalid, InputTooShort
from edge.features import lead_i_features
from edge.leads import LEADS, PREDICTED, assemble_12_lead, derived_std
from edge.metadata import MetadataError, clean_metadata, encode_metadata
from edge.stages.quality import QualityConfig, assess, raw_bad_mask


@dataclass(frozen=True)
class Flag:
    kind: str  # "high_uncertainty" | "poor_quality" | "gap"
    start_s: float
    end_s: float
    leads: tuple[str, ...]
    value: float
    threshold: float
    detail: str


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


class _Buf:
    """Growable array indexed by absolute position; the head can be dropped."""

    def __init__(self, tail: tuple[int, ...] = (), dtype: Any = np.float64) -> None:
        self.data = np.zeros((0, *tail), dtype=dtype)
        self.base = 0

    @property
    def end(self) -> int:
        return self.base + len(self.data)

    def append(self, x: np.ndarray) -> None:
        self.data = np.concatenate([self.data, x.astype(self.data.dtype)])

    def view(self, a: int, b: int) -> np.ndarray:
        return self.data[a - self.base:b - self.base]

    def drop_before(self, i: int) -> None:
        if i - self.base > 4096:
            self.data = self.data[i - self.base:].copy()
            self.base = i


def _taper(n: int) -> np.ndarray:
    return 0.05 + np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2


class _Segment:
    """State of one contiguous stretch of input."""

    def __init__(self, rec: StreamingReconstructor, index: int, t0_s: float) -> None:
        self.index, self.t0_s = index, t0_s
        fs_in, fs_m = rec.fs_in_hz, rec.bundle.fs_hz
        self.cond_m = StreamConditioner(fs_in, fs_m, 1, rec.conditioning)
        self.same_rate = fs_in == fs_m
        self.cond_i = None if self.same_rate else StreamConditioner(fs_in, fs_in, 1,
                                                                    rec.conditioning)
        self.drained = False
        n_out = len(PREDICTED)
        self.xm, self.xi = _Buf(), _Buf()
        self.code = _Buf(dtype=np.int8)  # per input sample: 1 lead-off, 2 saturated, 3 gap
        self.last_x = 0.0  # last real input sample (mV), the left end of a bridged gap
        self.w, self.mu, self.var = _Buf(), _Buf((n_out,)), _Buf((n_out,))
        self.next_w = 0
        self.n_out = 0
        self.pending: list[tuple[int, Flag]] = []  # (end sample exclusive, flag)
        self.runs: dict[int, tuple[int, float]] = {}  # lead -> (start sample, max std)


class StreamingReconstructor:
    """Push ``Chunk``s of Lead I (mV) at ``fs_in_hz``; get ``Block``s of 12 leads back."""

    def __init__(self, bundle: Bundle, fs_in_hz: float, metadata: dict[str, Any] | None = None,
                 mc_samples: int | None = None, seed: int = 0,
                 quality: QualityConfig | None = None, min_flag_s: float = 0.2,
                 max_bridge_s: float = 1.0) -> None:
        self.bundle = bundle
        try:
            self.fs_in_hz = float(fs_in_hz)
        except (TypeError, ValueError):
            raise InputInvalid(f"fs_in_hz={fs_in_hz!r} is not a number") from None
        if not math.isfinite(self.fs_in_hz) or self.fs_in_hz <= 0:
            raise InputInvalid(f"fs_in_hz={fs_in_hz!r} must be a positive rate in Hz")
        self.metadata = clean_metadata(metadata)
        man = bundle.manifest
        self.mc_samples = man.mc.default_samples if mc_samples is None else int(mc_samples)
        if self.mc_samples < 0:
            raise InputInvalid(f"mc_samples={mc_samples!r} must be >= 0")
        self.seed = int(seed)
        try:
            self.conditioning = ConditioningConfig.from_dict(man.conditioning)
        except ConditioningError as e:
            raise InputInvalid(f"bundle {man.name}: {e}") from None
        self.quality = quality or QualityConfig()
        self.min_flag_n = max(1, int(math.ceil(min_flag_s * self.fs_in_hz)))
        if not max_bridge_s >= 0:
            raise InputInvalid(f"max_bridge_s={max_bridge_s!r} must be >= 0")
        self.max_bridge_s = float(max_bridge_s)
        self.derive = tuple(f for f in man.metadata.derive_from_lead_i if f not in self.metadata)
        self.taper = _taper(bundle.window)
        self._seg: _Segment | None = None
        self._n_segments = 0
        self._windows_run = 0

    # ------------------------------------------------------------------ public
    def push(self, chunk: Chunk) -> list[Block]:
        """Add a chunk; returns the blocks whose samples are now final."""
        x = self._check(chunk)
        blocks: list[Block] = []
        if self._seg is not None and 0 < chunk.gap_before_s <= self.max_bridge_s:
            self._bridge(self._seg, chunk.gap_before_s, x[0])
        elif self._seg is not None and chunk.gap_before_s > 0:
            seg = self._seg
            gap_start = seg.t0_s + seg.code.end / self.fs_in_hz
            blocks += self._close()
            gap = Flag("gap", gap_start, chunk.t0_s, LEADS, float(chunk.gap_before_s), 0.0,
                       f"no data for {chunk.gap_before_s:.3f} s")
            blocks.append(self._block(np.zeros((0, 12)), np.zeros((0, 12)), chunk.t0_s, [gap]))
        if self._seg is None:
            self._seg = _Segment(self, self._n_segments, chunk.t0_s)
            self._n_segments += 1
        self._feed(self._seg, x, "lead_off" in chunk.status)
        blocks.append(self._emit(self._seg, closed=False))
        return [b for b in blocks if b.n or b.flags]

    def flush(self) -> list[Block]:
        """End of signal: add the end-aligned window and emit everything left."""
        if self._seg is None:
            return []
        seg = self._seg
        L = self.bundle.window
        self._drain(seg)
        if self._windows_run == 0 and seg.xm.end < L:
            n = seg.code.end
            raise InputTooShort(
                f"input has {n} samples at {self.fs_in_hz:g} Hz ({n / self.fs_in_hz:.2f} s) = "
                f"{seg.xm.end} at the model rate; one window needs {L} samples at "
                f"{self.bundle.fs_hz:g} Hz ({L / self.bundle.fs_hz:.2f} s)")
        return [b for b in self._close() if b.n or b.flags]

    # ------------------------------------------------------------------ internals
    def _check(self, chunk: Chunk) -> np.ndarray:
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
        seg.pending.append((k0 + n, Flag(
            "gap", seg.t0_s + k0 / self.fs_in_hz, seg.t0_s + (k0 + n) / self.fs_in_hz, LEADS,
            float(gap_s), self.max_bridge_s,
            f"no data for {gap_s:.3f} s (output NaN; bridged for the model)")))

    def _feed(self, seg: _Segment, x: np.ndarray, lead_off: bool, gap: bool = False) -> None:
        q = self.quality
        if gap:
            code = np.full(len(x), 3, np.int8)
        else:
            code = raw_bad_mask(x, lead_off, q).astype(np.int8) * (1 if lead_off else 2)
            if len(x):
                seg.last_x = float(x[-1])
        seg.code.append(code)
        ym = seg.cond_m.process(x).astype(np.float64)
        self._conditioned(seg, ym, ym if seg.cond_i is None else seg.cond_i.process(x))

    def _drain(self, seg: _Segment) -> None:
        """End of a segment: the conditioners' held-back samples (zero-phase look-ahead)."""
        if seg.drained:
            return
        seg.drained = True
        ym = seg.cond_m.flush().astype(np.float64)
        self._conditioned(seg, ym[:, 0], ym[:, 0] if seg.cond_i is None
                          else seg.cond_i.flush()[:, 0])

    def _conditioned(self, seg: _Segment, ym: np.ndarray, yi: np.ndarray) -> None:
        """Append newly final conditioned samples and run the windows they complete."""
        seg.xm.append(ym)
        seg.xi.append(yi)
        n_new = len(ym)
        seg.w.append(np.zeros(n_new))
        seg.mu.append(np.zeros((n_new, len(PREDICTED))))
        seg.var.append(np.zeros((n_new, len(PREDICTED))))
        L, hop = self.bundle.window, self.bundle.hop
        while seg.next_w * hop + L <= seg.xm.end:
            self._window(seg, seg.next_w * hop, seg.next_w)
            seg.next_w += 1

    def _window(self, seg: _Segment, s: int, widx: int) -> None:
        L, fs_m, fs_in = self.bundle.window, self.bundle.fs_hz, self.fs_in_hz
        xw = seg.xm.view(s, s + L)
        j = np.arange(s, s + L)
        idx = np.clip(np.round(j / fs_m * fs_in), 0, seg.code.end - 1)
        code = seg.code.data[np.maximum(idx.astype(int) - seg.code.base, 0)]
        verdict = assess(xw, code == 1, code == 2, fs_m, self.quality)
        if verdict.problem is not None:
            t_a = s / fs_m
            t_b = (s + L) / fs_m
            end_k = int(math.ceil(t_b * fs_in))
            detail = verdict.problem + ("" if verdict.reconstruct else "; not reconstructed")
            self._add_poor(seg, int(t_a * fs_in), end_k, Flag(
                "poor_quality", seg.t0_s + t_a, seg.t0_s + t_b, LEADS, verdict.value,
                verdict.threshold, detail))
        if not verdict.reconstruct:
            return
        meta = encode_metadata(self._window_metadata(xw, fs_m))
        rng = np.random.default_rng([self.seed, seg.index, widx])
        mean, std = self.bundle.predict_window(xw.astype(np.float32), meta, self.mc_samples,
                                               rng)
        tw = self.taper
        seg.w.view(s, s + L)[:] += tw
        seg.mu.view(s, s + L)[:] += tw[:, None] * mean
        seg.var.view(s, s + L)[:] += tw[:, None] * np.square(std.astype(np.float64))
        self._windows_run += 1

    def _add_poor(self, seg: _Segment, start_k: int, end_k: int, flag: Flag) -> None:
        if seg.pending:
            e0, f0 = seg.pending[-1]
            if f0.kind == flag.kind and f0.detail == flag.detail and start_k <= e0:
                merged = Flag(f0.kind, f0.start_s, flag.end_s, f0.leads,
                              max(f0.value, flag.value), f0.threshold, f0.detail)
                seg.pending[-1] = (max(e0, end_k), merged)
                return
        seg.pending.append((end_k, flag))

    def _window_metadata(self, xw: np.ndarray, fs_m: float) -> dict[str, Any]:
        md = dict(self.metadata)
        if self.derive:
            feats = lead_i_features(xw, fs_m)
            for name in self.derive:
                if name in feats:
                    try:
                        md.update(clean_metadata({name: feats[name]}))
                    except MetadataError:
                        pass  # implausible estimate: leave the field absent
        return md

    def _close(self) -> list[Block]:
        seg, self._seg = self._seg, None
        if seg is None:
            return []
        L, hop = self.bundle.window, self.bundle.hop
        self._drain(seg)
        n_m = seg.xm.end
        last_end = (seg.next_w - 1) * hop + L if seg.next_w else 0
        if n_m >= L and last_end < n_m:
            self._window(seg, n_m - L, seg.next_w)
        out = [self._emit(seg, closed=True)]
        if n_m < L:
            out[0].flags.append(Flag(
                "poor_quality", seg.t0_s, seg.t0_s + seg.code.end / self.fs_in_hz, LEADS,
                float(n_m), float(L), "segment shorter than one window; not reconstructed"))
        return out

    def _emit(self, seg: _Segment, closed: bool) -> Block:
        fs_in, fs_m, L = self.fs_in_hz, self.bundle.fs_hz, self.bundle.window
        n_m, n_in = seg.xm.end, seg.xi.end
        k = np.arange(seg.n_out, n_in)
        p = k / fs_in * fs_m
        if closed:
            p = np.minimum(p, n_m - 1)
        else:
            final_m = n_m - L if seg.next_w else 0
            k = k[np.floor(p) + 1 < final_m]
            p = p[: len(k)]
        t0 = seg.t0_s + seg.n_out / fs_in
        if len(k) == 0 and not closed:
            return self._block(np.zeros((0, 12)), np.zeros((0, 12)), t0, [])
        j0 = np.floor(p).astype(int)
        j1 = np.minimum(j0 + 1, n_m - 1)
        frac = (p - j0)[:, None]
        mu, var = self._interp(seg, j0, j1, frac)
        lead_i = seg.xi.view(k[0], k[-1] + 1) if len(k) else np.zeros(0)
        leads = assemble_12_lead(lead_i.astype(np.float32), mu.astype(np.float32))
        sd = np.sqrt(var).astype(np.float32)
        std = np.zeros((len(k), 12), np.float32)
        std[:, 1] = sd[:, 0]
        std[:, 2:6] = derived_std(sd[:, 0])
        std[:, 6:] = sd[:, 1:]
        if len(k):
            in_gap = seg.code.data[k - seg.code.base] == 3
            leads[in_gap] = np.nan
            std[in_gap] = np.nan
            sd[in_gap] = np.nan
        std[np.isnan(leads[:, 1]), 1:] = np.nan
        flags = self._uncertainty_flags(seg, sd, closed)
        n_new = seg.n_out + len(k)
        keep = []
        for e, f in seg.pending:
            (flags if closed or e < n_new else keep).append((e, f))
        seg.pending = keep
        seg.n_out = n_new
        self._trim(seg)
        ordered = [f for _, f in sorted(flags, key=lambda ef: (ef[0], ef[1].kind,
                                                               ef[1].start_s, ef[1].leads))]
        return self._block(leads, std, t0, ordered)

    def _interp(self, seg: _Segment, j0: np.ndarray, j1: np.ndarray, frac: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """Stitched mean/variance (NaN where no window) linearly interpolated at j0 + frac."""
        b = seg.w.base
        ww = seg.w.data
        with np.errstate(invalid="ignore", divide="ignore"):
            mu_m = seg.mu.data / ww[:, None]
            var_m = seg.var.data / ww[:, None]
        mu_m[ww == 0] = np.nan
        var_m[ww == 0] = np.nan
        mu = (1 - frac) * mu_m[j0 - b] + frac * mu_m[j1 - b]
        var = (1 - frac) * var_m[j0 - b] + frac * var_m[j1 - b]
        return mu, var

    def _uncertainty_flags(self, seg: _Segment, sd: np.ndarray, closed: bool
                           ) -> list[tuple[int, Flag]]:
        thr = self.bundle.flag_std_mv
        out: list[tuple[int, Flag]] = []
        with np.errstate(invalid="ignore"):
            above = sd > thr[None, :]
        for lead in range(len(PREDICTED)):
            start, peak = seg.runs.get(lead, (-1, 0.0))
            col = above[:, lead]
            for i in range(len(col) + (1 if closed else 0)):
                on = i < len(col) and bool(col[i])
                k = seg.n_out + i
                if on:
                    if start < 0:
                        start, peak = k, 0.0
                    peak = max(peak, float(sd[i, lead]))
                elif start >= 0:
                    if k - start >= self.min_flag_n:
                        out.append((k, Flag(
                            "high_uncertainty", seg.t0_s + start / self.fs_in_hz,
                            seg.t0_s + k / self.fs_in_hz, (PREDICTED[lead],), peak,
                            float(thr[lead]), f"calibrated std above {thr[lead]:g} mV")))
                    start = -1
            seg.runs[lead] = (start, peak)
        return out

    def _trim(self, seg: _Segment) -> None:
        L, fs_m = self.bundle.window, self.bundle.fs_hz
        j = int(seg.n_out / self.fs_in_hz * fs_m) - 2
        keep_m = max(0, min(j, seg.next_w * self.bundle.hop, seg.xm.end - L))
        for buf in (seg.w, seg.mu, seg.var):
            buf.drop_before(keep_m)
        seg.xm.drop_before(keep_m)
        seg.xi.drop_before(seg.n_out)
        k_code = int(keep_m / fs_m * self.fs_in_hz) - 2
        seg.code.drop_before(max(0, k_code))

    def _block(self, leads: np.ndarray, std: np.ndarray, t0: float, flags: list[Flag]
               ) -> Block:
        return Block(t0, self.fs_in_hz, leads.astype(np.float32), std.astype(np.float32),
                     list(flags))
