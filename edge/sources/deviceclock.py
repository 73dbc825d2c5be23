"""Device clock model: one monotonic time line per source, built from the device's own clock.

`DeviceTimeline` places frames (device time of a frame's last sample, its sample count and,
where the protocol has them, the frames lost by sequence number) on one time line:

- the true sample rate (samples per device second) is estimated from the frames' time
  stamps, across gaps of a known size, with slow forgetting, and is used instead of the
  nominal rate (+- 5 % is normal for a Polar H10; within 50 ppm of nominal, or within what
  the data so far can resolve, it is taken as nominal); samples are spaced by that rate and
  the line follows the frame time stamps (as Polar's SDK spaces samples by them) through a
  phase lock that corrects only errors seen in five frames in a row (drift), so a few
  frames' jittered or damaged time stamps move nothing;
- a gap is declared only when the device time line says samples are missing by more than
  the rate uncertainty allows: jitter and drift never make gaps;
- with sequence numbers (ecg12), the numbers place every frame; a time stamp that disagrees
  with them is ignored (counted), and only `step_frames` stamps in a row that agree on a
  new offset are a device clock step;
- without (Polar PMD), a time stamp that jumps implausibly (backwards, further than the host
  clock or the frame count allows, or not a whole number of frames) is held back in a chain
  with the frames that continue it; if the old time line continues instead it was corrupt
  (dropped, counted, its samples become a gap), if the chain is confirmed it is a gap or a
  device clock restart (a new segment);
- a frame whose time stamp equals a recently delivered one is a replay: dropped, counted.

`GridResampler` turns samples at device times into samples on the nominal grid
`t0 + k / fs_hz` (4-point Lagrange; exact where a sample sits on a grid point) and never
interpolates across a gap. `TimedChunker` joins both with the host clock mapping.
The timeline survives reconnects: a reconnect gap is placed by device time.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.sources.clock import ClockMapper

_SNAP = 1e-4  # a sample within this fraction of a grid step is taken as on the grid point
SNAP_RATE = 50e-6  # a rate within 50 ppm of nominal is taken as nominal (no resampling)
_LOCK_FRAMES = 5  # the phase lock follows an error seen in this many frames in a row
_LOCK_DEADBAND = 0.02  # ... of at least this many samples
_HELD_CHAINS = 8  # chains of held frames kept at once (unnumbered frames)
_HELD_INPUTS = 16  # inputs after which a chain not continued is taken as corrupt


@dataclass
class ClockCounters:
    """Per-session counters of a device time line.

    `frames` accepted device frames; `lost_samples` samples the device time line says are
    missing; `duplicates` replayed frames dropped; `corrupt` frames/lines dropped as damaged
    or implausible; `resets` device clock/sequence restarts; `clock_steps` device clock
    steps confirmed by several frames; `bad_timestamps` single time stamps the sequence
    numbers overruled (frame kept, placed by count); `measured_fs_hz` the true rate
    (0 = unknown).
    """

    frames: int = 0
    lost_samples: int = 0
    duplicates: int = 0
    corrupt: int = 0
    resets: int = 0
    clock_steps: int = 0
    bad_timestamps: int = 0
    measured_fs_hz: float = 0.0


@dataclass(frozen=True)
class Placed:
    """A frame placed on the time line: its samples' line times (s)."""

    times_s: np.ndarray
    payload: Any
    gap: bool = False
    reset: bool = False


@dataclass
class _Pending:
    t_last: float
    n: int
    arrival: float
    payload: Any
    lost_frames: int | None = None
    ref: int = -1  # index of the sample the time stamp belongs to (-1 = the last)
    inputs: int = 0  # number of this input (frames and rejected inputs, unnumbered only)
    gap: int = 0  # samples lost just before this held frame (after the one held before it)

    def __post_init__(self) -> None:
        if self.ref < 0:
            self.ref = self.n - 1


class DeviceTimeline:
    """Frames -> device time line (see module docstring).

    `max_rate_error`: largest plausible deviation of the true rate from nominal;
    `tolerance_samples`: time-stamp jitter allowed, in samples; `host_slack_s` /
    `live_slack_s`: how much more device time than host time may pass between two frames
    across a reconnect / on a live link (notification buffering) for a gap to be plausible;
    `confirm_frames`: frames that must continue an unnumbered frame that restarts or jumps
    the line; `step_frames`: consecutive time stamps that must agree on a new offset against
    the sequence numbers before a clock step is followed.
    """

    def __init__(self, nominal_fs_hz: float, *, max_rate_error: float = 0.06,
                 tolerance_samples: float = 1.0, host_slack_s: float = 5.0,
                 live_slack_s: float = 2.0, confirm_frames: int = 3, step_frames: int = 5,
                 forget_frames: float = 2000.0, recent: int = 64,
                 phase_gain: float = 0.1) -> None:
        if not nominal_fs_hz > 0:
            raise ValueError(f"nominal_fs_hz must be > 0, got {nominal_fs_hz}")
        self.nominal_fs_hz = float(nominal_fs_hz)
        self.max_rate_error = max_rate_error
        self.tolerance_samples = tolerance_samples
        self.host_slack_s = host_slack_s
        self.live_slack_s = live_slack_s
        self.confirm_frames = confirm_frames
        self.step_frames = step_frames
        self.phase_gain = phase_gain
        self._forget = 1.0 - 1.0 / forget_frames
        self.counters = ClockCounters(measured_fs_hz=self.nominal_fs_hz)
        self._sum_n = 0.0
        self._sum_dt = 0.0
        self._last_t: float | None = None  # device time of the last accepted sample
        self._rate_t: float | None = None  # last time stamp in the rate sums
        self._rate_n = 0  # samples since it
        self._last_host = 0.0
        self._latency = 0.0  # smallest (arrival - line time) seen: maps line to host time
        self._last_line = 0.0
        # the line counted in whole samples from an anchor at one rate: adding a frame's
        # duration to a large time each frame lets float rounding walk the line off the
        # device's grid over millions of frames
        self._anchor, self._anchor_n, self._anchor_rate = 0.0, 0, 0.0
        self._offset = 0.0  # line time = device time + offset (changes only at clock steps)
        self._offset_before = 0.0  # the offset the last placed frame was placed under
        self._frame_n: int | None = None
        self._prev_n = 0
        self._force_reset = False
        self._recent: collections.deque[float] = collections.deque(maxlen=recent)
        # chains of frames off the line that continue each other, each waiting for
        # confirmation (unnumbered frames); several, so that a damaged frame after a good
        # one held back does not cost the good one
        self._held: list[list[_Pending]] = []
        self._step: list[float] = []  # offsets implied by the time stamps seq overruled,
        # consecutive frames that agree with each other
        self._inputs = 0  # inputs seen (frames and rejected ones), unnumbered frames
        self._line_inputs = 0  # ... when the last frame was placed
        self._hold: _Pending | None = None
        self._last: _Pending | None = None
        self._last_e: tuple[float, ...] = (0.0,) * (_LOCK_FRAMES - 1)  # phase errors of the
        # frames before (s), newest first
        self._reconnected = False

    # ------------------------------------------------------------------ estimates
    @property
    def rate_hz(self) -> float:
        """Estimated true rate (nominal until half a second of contiguous data was seen)."""
        if self._sum_n < 20 or self._sum_dt <= 0:
            return self.nominal_fs_hz
        ratio = self._sum_n / self._sum_dt / self.nominal_fs_hz
        # a crystal-timed device is exactly nominal; and the measurement must exceed its own
        # resolution (the two end stamps of the sums may be off by up to 1/4 sample each)
        if abs(ratio - 1) < max(SNAP_RATE, 0.5 / self._sum_n):
            return self.nominal_fs_hz
        return self.nominal_fs_hz * float(np.clip(ratio, 1 - self.max_rate_error,
                                                  1 + self.max_rate_error))

    @property
    def rate_uncertainty(self) -> float:
        """Relative uncertainty of `rate_hz`."""
        if self._sum_n < 20 or self._sum_dt <= 0:
            return self.max_rate_error
        return min(self.max_rate_error, 0.001 + 2 * self.tolerance_samples / self._sum_n)

    @property
    def frame_size(self) -> int | None:
        """The usual samples per frame (after two equal frames), else None."""
        return self._frame_n

    def reconnected(self) -> None:
        """The link was down: the next frame may start anywhere later on the device clock."""
        self._reconnected = True

    def force_reset(self) -> None:
        """The device said it restarted (e.g. its sequence numbers did): next frame = new
        segment."""
        self._force_reset = True

    def line_time(self, device_t_s: float) -> float:
        return device_t_s + self._offset

    def expected_device_t(self, n: int, lost_frames: int = 0, ref_index: int = -1) -> \
            float | None:
        """Device time the line expects for sample `ref_index` of the next frame (`n`
        samples, after `lost_frames` lost ones); None before any frame. It comes from the
        line, never from a time stamp the line overruled, so a source can unwrap a wrapping
        time stamp against it without one damaged stamp moving the next one."""
        ref = _Pending(0.0, n, 0.0, None, ref=ref_index)
        if self._last is not None:
            prev, t = self._last, self._line_device_t()
        elif self._hold is not None:
            prev, t = self._hold, self._hold.t_last
        else:
            return None
        return t + (lost_frames * (self._frame_n or n) + _advance(prev, ref)) / self.rate_hz

    # ------------------------------------------------------------------ placing
    def rejected(self) -> None:
        """The source dropped an input (undecodable, wrong length, implausible samples):
        a gap of whole frames after it may be explained by it."""
        self._inputs += 1

    def place(self, t_last_s: float, n: int, arrival_s: float, payload: Any = None,
              lost_frames: int | None = None, ref_index: int = -1) -> list[Placed]:
        """Place one frame whose sample `ref_index` (default: the last) was taken at device
        time `t_last_s`; returns the frames that can be delivered now (0, 1 or 2)."""
        if n <= 0:
            return []
        f = _Pending(t_last_s, n, arrival_s, payload, lost_frames, ref_index)
        if self._last is None:
            if self._hold is None:
                self._hold = f  # placed with the next frame, once the rate is known
                return []
            h, self._hold = self._hold, None
            dt = f.t_last - h.t_last
            adv = _advance(h, f)
            if abs(dt * self.nominal_fs_hz - adv) <= self.tolerance_samples + \
                    self.max_rate_error * abs(dt) * self.nominal_fs_hz and \
                    (lost_frames in (None, 0)):
                self._sum_n, self._sum_dt = float(adv), dt
            return [self._accept(h, verdict="first"),
                    *self.place(t_last_s, n, arrival_s, payload, lost_frames, ref_index)]
        if self._force_reset:
            self._force_reset = False
            self._held, self._step = [], []
            return [self._accept(f, verdict="reset")]
        if lost_frames is not None:
            return [self._place_numbered(f)]
        return self._place_unnumbered(f)

    def _miss(self, ref_t: float, prev: _Pending | None, f: _Pending) -> tuple[float, float]:
        """(samples missing between `prev` (reference sample at device time `ref_t`) and
        `f` by the time stamps, the tolerance of that number)."""
        rate = self.rate_hz
        dt = f.t_last - ref_t
        missing = dt * rate - _advance(prev, f)
        return missing, self.tolerance_samples + self.rate_uncertainty * abs(dt) * rate

    def _whole(self, missing: float, tol: float, size: int, most: int | None) -> int:
        """Frames a gap of `missing` samples is (0 unless a whole number, 1..`most`)."""
        if tol >= size / 4:
            return 0
        k = round(missing / size)
        return k if k >= 1 and (most is None or k <= most) and \
            abs(missing - k * size) <= tol else 0

    def _ahead(self, n: float, rate: float) -> float:
        """Line time `n` samples after the last placed reference sample."""
        if rate == self._anchor_rate and float(n).is_integer():
            return self._anchor + (self._anchor_n + n) / rate
        return self._last_line + n / rate

    def _line_device_t(self) -> float:
        """Device time of the last placed reference sample, as the line has it."""
        return self._last_line - self._offset

    def _place_numbered(self, f: _Pending) -> Placed:
        """Sequence numbers say how many frames are missing; the time stamp is trusted only
        where it agrees with them (then it measures the gap and the drift). One time stamp
        that disagrees is ignored (counted); `step_frames` in a row that agree are a clock
        step."""
        lost = int(f.lost_frames or 0)
        missing, tol = self._miss(self._line_device_t(), self._last, f)
        size = self._frame_n
        if lost == 0:
            agrees = abs(missing) <= tol
        elif size is not None:  # frames of one size: the loss is exactly lost * size
            agrees = abs(missing - lost * size) <= tol
        else:
            agrees = lost - tol <= missing <= lost * max(f.n, 255) + tol
        if agrees:
            self._step = []
            if lost == 0:
                return self._accept(f, "ok", missing)
            return self._accept(f, "gap", float(lost * size) if size else missing,
                                exact=size is not None)
        rate = self.rate_hz
        est = lost * (size or f.n)
        line_last = self._ahead(est + _advance(self._last, f), rate)
        implied = line_last - f.t_last  # the offset under which this time stamp is right
        # a real step moves every later time stamp alike; `step_frames` of them in a row
        # must imply the same offset (stamps damaged alike, e.g. the same bit flipped in
        # consecutive frames, must not move the clock; meanwhile the numbers place frames)
        if self._step and abs(implied - self._step[-1]) * rate <= self.tolerance_samples / 20:
            self._step.append(implied)
        else:
            self._step = [implied]
        if len(self._step) >= self.step_frames:  # confirmed: follow the device clock
            self._offset = float(np.median(self._step))  # one slightly damaged stamp of them
            # does not set it
            self.counters.clock_steps += 1
            self.counters.bad_timestamps -= len(self._step) - 1  # they were not bad after all
            self._step = []
        else:
            self.counters.bad_timestamps += 1
        f.t_last = line_last - self._offset
        return self._accept(f, "count", float(est), exact=size is not None)

    def _place_unnumbered(self, f: _Pending) -> list[Placed]:
        """No sequence numbers (Polar PMD): a frame that does not continue the line is held
        back in a chain with the frames that continue it, until enough of them say the device
        time line really moved (a gap: one more frame; a restart or a jump beyond the host
        clock: `confirm_frames` more). Several chains wait at once, so a damaged frame after
        a good one starts its own chain instead of discarding the good one. When the line
        continues instead, or another chain is confirmed, the other held frames were corrupt
        (dropped, counted; their samples become part of the next gap)."""
        rate = self.rate_hz
        if any(abs(f.t_last - r) * rate < 0.25 for r in self._recent):
            self.counters.duplicates += 1
            return []
        if any(abs(f.t_last - h.t_last) * rate < 0.25 for c in self._held for h in c):
            self.counters.duplicates += 1  # a replay of a frame held back
            return []
        self._inputs += 1
        f.inputs = self._inputs
        missing, tol = self._miss(self._line_device_t(), self._last, f)
        if abs(missing) <= tol:
            self._drop_held()
            return [self._accept(f, "ok", missing)]
        on_line = self._explains(f)
        size = self._frame_n or f.n
        fits = []  # (how far off, longest first, chain, frames lost before f, verdict)
        for i, chain in enumerate(self._held):
            c = chain[-1]
            missing, tol = self._miss(c.t_last, c, f)
            k = self._whole(missing, tol, size, self._most(c.inputs, c.arrival, f))
            kind, lost, whole = self._classify(chain[0])
            # f continues this chain: its time line is real, unless it would move the line
            # and the old line explains f too (a time stamp corrupt near the truth)
            if (abs(missing) <= tol or k) and (whole or not on_line):
                fits.append((abs(missing - k * size), -len(chain), i, k, (kind, lost, whole)))
        if fits:  # the chain f continues best (a damaged stamp near a good one fits worse)
            _, _, i, k, (kind, lost, whole) = min(fits)
            chain = self._held[i]
            f.gap = k * size
            chain.append(f)
            if len(chain) - 1 < (1 if kind == "gap" else self.confirm_frames):
                return []
            del self._held[i]
            self._drop_held()
            out = [self._accept(chain[0], kind, lost, exact=whole)]
            out += [self._accept(h, "gap" if h.gap else "ok", float(h.gap)) for h in chain[1:]]
            return out
        self._held.append([f])
        # a chain not continued for a while, or beyond the number kept, was corrupt
        keep = [c for c in self._held if f.inputs - c[-1].inputs <= _HELD_INPUTS]
        keep = keep[-_HELD_CHAINS:]
        self.counters.corrupt += sum(len(c) for c in self._held) - sum(len(c) for c in keep)
        self._held = keep
        return []

    def _drop_held(self) -> None:
        """The held frames lost to the line or to another chain: corrupt."""
        self.counters.corrupt += sum(len(c) for c in self._held)
        self._held = []

    def _most(self, inputs: int, arrival: float, f: _Pending) -> int:
        """Frames that can be missing between the input numbered `inputs` (arrived at
        `arrival`) and `f`: the inputs in between not placed with it (rejected, or in other
        chains), or the frame periods the host clock saw pass (frames lost in transit)."""
        period = (self._frame_n or f.n) / self.rate_hz
        return max(f.inputs - inputs - 1, int((f.arrival - arrival) / period + 0.5) - 1)

    def _explains(self, f: _Pending) -> bool:
        """Does the line continue to `f` (directly, or across whole frames lost since the
        last placed one)?"""
        missing, tol = self._miss(self._line_device_t(), self._last, f)
        most = self._most(self._line_inputs, self._last_host, f)
        return abs(missing) <= tol or bool(self._whole(missing, tol, self._frame_n or f.n,
                                                       most))

    def _classify(self, c: _Pending) -> tuple[str, float, bool]:
        """A frame that left the line, if confirmed: (verdict, lost samples, whether a
        whole number of frames) — a gap by device time when the host clock and the frame
        size allow it, else a restart of the device time line."""
        missing, tol = self._miss(self._line_device_t(), self._last, c)
        if missing < -tol:
            return "reset", 0.0, False
        # no frame comes from the future: its line time must not be later than its arrival
        # (less the smallest latency seen) by more than the slack
        slack = self.host_slack_s if self._reconnected else self.live_slack_s
        host_ok = self.line_time(c.t_last) - (c.arrival - self._latency) <= slack
        k = self._whole(missing, tol, self._frame_n or c.n, None)
        if host_ok and k:  # whole frames lost: exactly that many samples
            return "gap", float(k * (self._frame_n or c.n)), True
        if host_ok and self._reconnected:
            return "gap", missing, False
        return "reset", 0.0, False

    def finish(self) -> list[Placed]:
        """End of stream: the longest held chain that starts a whole number of frames after
        the line (a plain loss, which needs one more frame to confirm) is placed, as no
        later frame can come; other held frames are counted as corrupt. A first frame still
        waiting for a second is placed at the estimated rate."""
        out: list[Placed] = []
        gaps = [(len(c), i, lost) for i, c in enumerate(self._held)
                for kind, lost, whole in [self._classify(c[0])] if kind == "gap" and whole]
        if gaps:
            _, i, lost = max(gaps)
            chain = self._held.pop(i)
            self._drop_held()
            out.append(self._accept(chain[0], "gap", lost))
            out += [self._accept(h, "gap" if h.gap else "ok", float(h.gap)) for h in chain[1:]]
        self._drop_held()
        h, self._hold = self._hold, None
        return out + ([self._accept(h, verdict="first")] if h is not None else [])

    def _accept(self, f: _Pending, verdict: str, missing: float = 0.0,
                exact: bool = True) -> Placed:
        """Put `f` on the line. `exact`: a gap's `missing` is a known number of samples
        (sequence numbers or whole frames), so the rate is measured across it."""
        rate = self.rate_hz
        gap = reset = False
        stepped = self._offset != self._offset_before
        observed = self.line_time(f.t_last)
        adv = _advance(self._last, f)
        if verdict in ("ok", "gap"):  # phase-locked: follow the time stamps, smooth jitter
            lost = max(1, round(missing)) if verdict == "gap" else 0
            step = lost + adv
            predicted = self._ahead(step, rate)
            e = observed - predicted
            errs = (e, *self._last_e)
            # correct only an error seen in _LOCK_FRAMES frames in a row (drift), never a
            # few frames' outliers (jitter, damaged low bits), nor one below _LOCK_DEADBAND
            # (five stamps in a row damaged in low bits of one sign must not pull the line
            # off the device's grid)
            least = min(abs(x) for x in errs)
            same = (all(x > 0 for x in errs) or all(x < 0 for x in errs)) and \
                least * rate >= _LOCK_DEADBAND
            corr = np.sign(e) * least if same else 0.0
            line_last = predicted + self.phase_gain * corr
            moved = bool(corr)
            self._last_e = errs[:-1]
            if lost:  # the device clock says how many (whole) samples are missing
                gap = True
                self.counters.lost_samples += lost
            # the rate from time stamps on the line only, between two such: one off by up to
            # the tolerance (jitter, a damaged low bit) is skipped, never averaged in; the
            # spans run across gaps of a known size, so the sums telescope from the first
            # to the last good time stamp and a damaged one between them cancels out
            carry = self._rate_t is not None and (exact or not lost)
            if abs(e) * rate <= 0.25 + self.rate_uncertainty * adv:
                if carry:
                    span_n, span_dt = self._rate_n + lost + adv, f.t_last - self._rate_t
                    if span_dt > 0 and abs(span_n / span_dt / self.nominal_fs_hz - 1) <= \
                            self.max_rate_error:
                        self._sum_n = self._sum_n * self._forget + span_n
                        self._sum_dt = self._sum_dt * self._forget + span_dt
                        self.counters.measured_fs_hz = self.rate_hz
                self._rate_t, self._rate_n = f.t_last, 0
            elif carry:
                self._rate_n += lost + adv
            else:
                self._rate_t = None
        elif verdict == "count":  # time stamp overruled: placed by the sequence numbers
            gap = missing > 0
            step = missing + adv
            line_last = self._ahead(step, rate)
            moved = False
            self.counters.lost_samples += round(missing)
        else:  # first frame, or the device clock restarted: the line starts at device time
            reset = verdict == "reset"
            self.counters.resets += reset
            self._offset = 0.0
            self._recent.clear()
            line_last, step, moved = f.t_last, 0.0, True
        if verdict not in ("ok", "gap", "count"):  # a count frame has no time to lock to
            self._last_e = (0.0,) * (_LOCK_FRAMES - 1)
        if verdict == "count" and (exact or not missing) and not stepped:  # stamp overruled
            self._rate_n += round(missing) + adv
        elif verdict == "first":
            self._rate_t, self._rate_n = f.t_last, 0
        elif verdict not in ("ok", "gap"):  # measured again from the next good time stamp
            self._rate_t = None
        times = line_last + (np.arange(f.n, dtype=np.float64) - f.ref) / rate
        if f.n == self._prev_n:
            self._frame_n = f.n
        self._prev_n = f.n
        self._last_t, self._last_line, self._last = f.t_last, line_last, f
        if moved or rate != self._anchor_rate or not float(step).is_integer():
            self._anchor, self._anchor_n, self._anchor_rate = line_last, 0, rate
        else:
            self._anchor_n += int(step)
        self._offset_before = self._offset
        latency = f.arrival - line_last
        if reset or verdict == "first":
            self._latency = latency
        else:  # the smallest latency seen, relaxed by 1000 ppm of host time (clock drift)
            self._latency = min(self._latency + 1e-3 * max(0.0, f.arrival - self._last_host),
                                latency)
        self._last_host = f.arrival
        self._recent.append(f.t_last)
        self._reconnected = False
        self._line_inputs = self._inputs
        self.counters.frames += 1
        return Placed(times, f.payload, gap=gap, reset=reset)


def _advance(prev: _Pending | None, f: _Pending) -> int:
    """Samples from the previous frame's reference sample to this frame's (none lost)."""
    if prev is None:
        return f.n
    return (prev.n - 1 - prev.ref) + 1 + f.ref


@dataclass
class GridRun:
    """Output of the resampler: grid samples from index `k0` (segment-relative)."""

    k0: int
    values: np.ndarray
    gap_samples: int = 0
    new_segment: bool = False
    payloads: list[Any] = field(default_factory=list)


class GridResampler:
    """Samples at line times -> the nominal grid `t0 + k / fs_hz` of the segment.

    Output lags input by up to two samples (cubic interpolation needs one sample after);
    `flush()` at a gap, a reset or the end emits the rest of the run.
    """

    def __init__(self, fs_hz: float) -> None:
        self.fs_hz = float(fs_hz)
        self.t0: float | None = None
        self.next_k = 0
        self._t = np.zeros(0)
        self._x = np.zeros(0)
        self._pending_gap = 0
        self._pending_new = False
        self._payloads: list[Any] = []

    def grid_time(self, k: int) -> float:
        return (self.t0 or 0.0) + k / self.fs_hz

    def push(self, times_s: np.ndarray, values: np.ndarray, *, gap: bool = False,
             reset: bool = False, payload: Any = None) -> list[GridRun]:
        out: list[GridRun] = []
        if reset or self.t0 is None:
            out += self.flush()
            self._pending_new = self.t0 is not None
            self.t0, self.next_k = float(times_s[0]), 0
        elif gap or not len(self._t):
            out += self.flush()
            k1 = int(np.ceil((times_s[0] - self.t0) * self.fs_hz - _SNAP))
            if k1 > self.next_k:
                self._pending_gap += k1 - self.next_k
                self.next_k = k1
        self._t = np.concatenate([self._t, np.asarray(times_s, np.float64)])
        self._x = np.concatenate([self._x, np.asarray(values, np.float64)])
        self._payloads.append(payload)
        run = self._emit(final=False)
        return out + ([run] if run is not None else [])

    def flush(self) -> list[GridRun]:
        run = self._emit(final=True)
        self._t, self._x = np.zeros(0), np.zeros(0)
        return [run] if run is not None else []

    def _emit(self, final: bool) -> GridRun | None:
        T, X = self._t, self._x
        L = len(T)
        if L == 0 or self.t0 is None:
            return None
        eps = _SNAP / self.fs_hz
        k_last = int(np.floor((T[-1] + eps - self.t0) * self.fs_hz))
        ks = np.arange(self.next_k, k_last + 1)
        tq = self.t0 + ks / self.fs_hz
        j = np.clip(np.searchsorted(T, tq + eps, side="right") - 1, 0, L - 1)
        off = np.abs(tq - T[j]) > eps
        if not final:  # a grid point off the samples needs one sample after it: wait
            late = off & (tq > (T[-2] - eps if L >= 2 else -np.inf))
            if late.any():
                stop = int(np.argmax(late))
                ks, tq, j, off = ks[:stop], tq[:stop], j[:stop], off[:stop]
        if len(ks) == 0:
            return None
        y = X[j].copy()
        if L >= 2 and off.any():
            jl = np.clip(j, 0, L - 2)
            cubic = off & (jl >= 1) & (jl + 2 <= L - 1)
            lin = off & ~cubic
            if lin.any():
                a, b = jl[lin], jl[lin] + 1
                w = (tq[lin] - T[a]) / (T[b] - T[a])
                y[lin] = X[a] + w * (X[b] - X[a])
            if cubic.any():
                idx = jl[cubic][:, None] + np.arange(-1, 3)[None, :]
                y[cubic] = _lagrange(tq[cubic], T[idx], X[idx])
        self.next_k = int(ks[-1]) + 1
        keep_from = max(0, int(np.searchsorted(T, self.grid_time(self.next_k) + eps,
                                               side="right")) - 2)
        self._t, self._x = T[keep_from:], X[keep_from:]
        run = GridRun(int(ks[0]), y, self._pending_gap, self._pending_new, self._payloads)
        self._pending_gap, self._pending_new, self._payloads = 0, False, []
        return run


def _lagrange(tq: np.ndarray, t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Vectorised 4-point Lagrange interpolation at `tq` through rows of (t, x)."""
    out = np.zeros_like(tq)
    for i in range(4):
        w = np.ones_like(tq)
        for k in range(4):
            if k != i:
                w *= (tq - t[:, k]) / (t[:, i] - t[:, k])
        out += w * x[:, i]
    return out


Put = Callable[..., None]


class TimedChunker:
    """Device frames -> time line -> nominal grid -> `put(samples, t0_host, fs, gap_s=,
    status=, new_segment=)`; one per source, kept across reconnects.

    Host time of grid point k is `origin + k / fs_hz`, with `origin` fixed when a device time
    line (segment) starts: consumers place a chunk after a gap by its `t0_host` (the gap is
    `t0_host` - end of the previous chunk), so a host mapping that moved between two chunks of
    one time line (the min-latency offset snapping down once the first frames that waited in
    a buffer are past, or creeping up) would shift every later sample by that much, off the
    grid. The mapper still follows the arrivals (latency, drift); it places only the start of
    a segment.
    """

    def __init__(self, put: Put, nominal_fs_hz: float, **timeline_kw: Any) -> None:
        self.put = put
        self.timeline = DeviceTimeline(nominal_fs_hz, **timeline_kw)
        self.grid = GridResampler(nominal_fs_hz)
        self.mapper = ClockMapper()
        self.fs_hz = float(nominal_fs_hz)
        self._last_arrival = 0.0
        self._origin: float | None = None  # host time of grid point 0 of this segment

    @property
    def counters(self) -> ClockCounters:
        return self.timeline.counters

    def add(self, t_ref_s: float, samples: np.ndarray, arrival_s: float, *,
            lost_frames: int | None = None, status: frozenset[str] = frozenset(),
            ref_index: int = -1) -> None:
        """One decoded frame: device time of its sample `ref_index` (default: the last),
        its samples (any unit)."""
        self._last_arrival = arrival_s
        for p in self.timeline.place(t_ref_s, len(samples), arrival_s, (samples, status),
                                     lost_frames, ref_index):
            self._place(p, arrival_s)

    def _place(self, p: Placed, arrival_s: float) -> None:
        if p.reset:
            self.mapper.reset()
        self.mapper.update(p.times_s[-1] + 1.0 / self.fs_hz, arrival_s)
        x, st = p.payload
        self._deliver(self.grid.push(p.times_s, x, gap=p.gap, reset=p.reset, payload=st))

    def flush(self) -> None:
        """End of stream (or of this device's time line): deliver everything held."""
        for p in self.timeline.finish():
            self._place(p, self._last_arrival)
        self._deliver(self.grid.flush())

    def _deliver(self, runs: list[GridRun]) -> None:
        for r in runs:
            if self._origin is None or r.new_segment:  # a device time line starts
                if self.mapper.offset_s is None:
                    continue
                self._origin = self.mapper.to_host(self.grid.grid_time(0))
            status = frozenset().union(*[s for s in r.payloads if s]) if r.payloads else \
                frozenset()
            t0 = self._origin + r.k0 / self.fs_hz
            self.put(r.values, t0, self.fs_hz, gap_s=r.gap_samples / self.fs_hz,
                     status=status, new_segment=r.new_segment)


class StepFilter:
    """Plausibility of samples where the protocol has no CRC: a sample further than
    `max_step` (per sample interval) from the last accepted one is rejected, unless
    `confirm` such samples in a row agree with each other (a real change of level)."""

    def __init__(self, max_step: float, confirm: int = 3) -> None:
        self.max_step = float(max_step)
        self.confirm = confirm
        self.rejected = 0
        self._ref: float | None = None
        self._since = 1
        self._pending: list[float] = []

    def reset(self) -> None:
        self._ref, self._since, self._pending = None, 1, []

    def ok(self, values: np.ndarray) -> np.ndarray:
        """Mask of accepted samples (NaN samples stay NaN and break the reference)."""
        mask = np.ones(len(values), bool)
        for i, v in enumerate(values.tolist()):
            if v != v:  # NaN: no reference across it
                self.reset()
                continue
            if self._ref is None or abs(v - self._ref) <= self.max_step * self._since:
                self._ref, self._since, self._pending = v, 1, []
                continue
            self._pending.append(v)
            self._since += 1
            p = self._pending
            if len(p) >= self.confirm and max(p) - min(p) <= self.max_step * len(p):
                self._ref, self._since, self._pending = v, 1, []
                continue
            mask[i] = False
            self.rejected += 1
        return mask
