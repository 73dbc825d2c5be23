"""Signal conditioning shared by training and the gateway: resampling + zero-phase band-limiting.

Pipeline (per channel): rational polyphase resampling ``fs_in -> fs_out`` with a Kaiser
windowed anti-alias FIR (the design of ``scipy.signal.resample_poly``), then, at the output
rate, a linear-phase FIR band-pass (0.5-40 Hz by default: the "monitoring" bandwidth of
IEC 60601-2-27 bedside monitors). Both FIRs are symmetric, so their only phase effect is a
pure delay, and that delay is removed exactly: **output sample j has the time and the content
of input time j / fs_out** (zero phase). No ST segment is bent and no wave is shifted, as the
AHA/ACC/HRS 2007 recommendations for ECG filtering (Kligfield et al., Circulation 2007)
require of any high-pass above 0.05 Hz: cut-offs up to 0.67 Hz are acceptable only with
linear-phase (zero-phase) filters.

The price is look-ahead: output j is final once input up to ``j / fs_out + lookahead_s()``
has arrived (about 2.3 s with the default 0.5 Hz transition band). The gateway emits its
output about one model window late anyway, so this costs no extra latency in practice.

Band-pass design: a high-pass (``highpass_hz``, -6 dB point, transition band
``highpass_width_hz`` wide) convolved with a low-pass (``lowpass_hz``, transition
``lowpass_width_hz``), each a Kaiser-window FIR sized by Kaiser's formula (``kaiserord``,
as ``scipy.signal.kaiserord``) for ``stopband_db``. The result closely matches a zero-phase
(forward-backward) 2nd-order Butterworth band-pass, which is what the scoring truth uses.

Ends: the signal before its first and after its last sample is taken as the mirror image of
the signal (``numpy.pad(mode="reflect")``), as ``scipy.signal.filtfilt`` pads; the resampler
holds the first/last sample. The start extension needs the first ``D + 1`` samples and is
built once they have arrived (or at ``flush``), so the result does not depend on chunking:
``StreamConditioner`` fed any chunking and then flushed gives the same samples as one-shot
``condition`` (up to float rounding of the convolution method).

numpy only (no scipy on the gateway: its import alone costs ~70 MB of RSS): the FIR design
(``kaiser_beta``, ``kaiserord``, ``firwin_lowpass``) follows ``scipy.signal`` formula for
formula, and ``fir_valid`` convolves directly for short blocks (streaming) and by FFT
overlap-save for long ones; tests compare all three with scipy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edge.errors import EdgeError

#: Model rate (Hz) used by default on the gateway and for training.
MODEL_FS_HZ = 100.0

#: The only phase response this code implements (stored in bundle manifests).
PHASE = "zero"


class ConditioningError(EdgeError, ValueError):
    """Unusable input or settings for conditioning (non-finite samples, bad rate, shape)."""


@dataclass(frozen=True)
class ConditioningConfig:
    """Filter settings (stored in bundle manifests under ``conditioning``).

    ``lowpass_hz`` is skipped when it is not below 0.95 * Nyquist of the output rate, and
    ``highpass_hz`` <= 0 disables the high-pass.  ``max_factor`` bounds the up/down factors.
    """

    phase: str = PHASE
    highpass_hz: float = 0.5
    highpass_width_hz: float = 0.5
    lowpass_hz: float = 40.0
    lowpass_width_hz: float = 10.0
    stopband_db: float = 40.0
    fir_half_len_per_factor: int = 10
    kaiser_beta: float = 5.0
    max_factor: int = 1000

    def __post_init__(self) -> None:
        if self.phase != PHASE:
            raise ConditioningError(
                f"conditioning.phase={self.phase!r}: only {PHASE!r} (linear-phase FIRs with "
                f"their delay removed) is implemented; a bundle made for causal filters must "
                f"be re-converted")
        for name in ("highpass_hz", "highpass_width_hz", "lowpass_hz", "lowpass_width_hz",
                     "stopband_db", "kaiser_beta"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ConditioningError(f"conditioning.{name}={v!r} must be a finite number >= 0")
        if self.highpass_hz > 0 and not 0 < self.highpass_width_hz <= 2 * self.highpass_hz:
            raise ConditioningError(
                f"conditioning.highpass_width_hz={self.highpass_width_hz!r} must be in "
                f"(0, 2 * highpass_hz]")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConditioningConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConditioningError(f"conditioning config: unknown field(s) {sorted(unknown)}")
        if "phase" not in d:
            raise ConditioningError(
                "conditioning.phase is missing: this bundle was made for the old causal "
                "filters; re-convert it with this version of ecg12")
        return cls(**d)


def _check_fs(name: str, fs: Any) -> float:
    try:
        f = float(fs)
    except (TypeError, ValueError):
        raise ConditioningError(f"{name}={fs!r} is not a number") from None
    if not math.isfinite(f) or f <= 0:
        raise ConditioningError(f"{name}={fs!r} must be a positive finite rate in Hz")
    return f


def updown(fs_in_hz: float, fs_out_hz: float, max_factor: int = 1000) -> tuple[int, int]:
    """Integer (up, down) with fs_out/fs_in == up/down; error if no small exact ratio."""
    ratio = fs_out_hz / fs_in_hz
    frac = Fraction(ratio).limit_denominator(max_factor)
    up, down = frac.numerator, frac.denominator
    if up == 0 or up > max_factor or abs(up / down - ratio) > 1e-9 * ratio:
        raise ConditioningError(
            f"resampling {fs_in_hz:g} Hz -> {fs_out_hz:g} Hz needs up/down factors above "
            f"{max_factor}; pass a nominal (rounded) input rate")
    return up, down


def kaiser_beta(atten_db: float) -> float:
    """Kaiser window beta for a stop-band attenuation (dB), as ``scipy.signal.kaiser_beta``
    (Oppenheim & Schafer, Discrete-Time Signal Processing, eq. 7.62)."""
    a = float(atten_db)
    if a > 50:
        return 0.1102 * (a - 8.7)
    if a > 21:
        return 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    return 0.0


def kaiserord(ripple_db: float, width: float) -> tuple[int, float]:
    """(taps, beta) of a Kaiser-window FIR: ``ripple_db`` attenuation, transition ``width``
    as a fraction of Nyquist; Kaiser's formula, as ``scipy.signal.kaiserord``."""
    a = abs(float(ripple_db))
    if a < 8:
        raise ConditioningError(f"stop-band attenuation {a:g} dB is too small for the "
                                "Kaiser formula (>= 8 dB)")
    taps = (a - 7.95) / 2.285 / (math.pi * width) + 1
    return int(math.ceil(taps)), kaiser_beta(a)


def firwin_lowpass(numtaps: int, cutoff: float, beta: float) -> np.ndarray:
    """Windowed-sinc low-pass FIR with unity gain at DC; ``cutoff`` is a fraction of Nyquist
    (0 < cutoff < 1). As ``scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta))``."""
    if not 0 < cutoff < 1:
        raise ConditioningError(f"FIR cut-off {cutoff!r} must be within (0, 1) x Nyquist")
    m = np.arange(numtaps, dtype=np.float64) - 0.5 * (numtaps - 1)
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(numtaps, beta)
    return h / h.sum()


#: up to this many multiply-adds (output samples x taps) ``fir_valid`` convolves directly
_DIRECT_MAX_WORK = 1 << 20


def fir_valid(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """'valid' convolution of every column of ``x`` (n, c) with ``h`` (L,): (n - L + 1, c),
    ``y[j] = sum_m h[m] x[j + L - 1 - m]`` (as ``scipy.signal.convolve(x, h[:, None],
    "valid")``). Direct for short blocks, FFT overlap-save in bounded batches for long."""
    n, c = x.shape
    taps = len(h)
    n_y = n - taps + 1
    if n_y <= 0:
        return np.zeros((0, c))
    if n_y * taps <= _DIRECT_MAX_WORK:
        out = np.empty((n_y, c))
        for j in range(c):
            out[:, j] = np.convolve(x[:, j], h, mode="valid")
        return out
    nfft = 1 << max(12, (4 * taps - 1).bit_length())
    step = nfft - taps + 1
    hf = np.fft.rfft(h, nfft)
    n_seg = -(-n_y // step)
    group = max(1, (1 << 19) // (nfft * c))  # frames per batch: a few MB at a time
    out = np.empty((n_y, c))
    for g0 in range(0, n_seg, group):
        g = min(group, n_seg - g0)
        a = g0 * step
        need = (g - 1) * step + nfft
        seg = x[a: a + need]
        if len(seg) < need:
            seg = np.concatenate([seg, np.zeros((need - len(seg), c))])
        frames = sliding_window_view(seg, nfft, axis=0)[::step]  # (g, c, nfft)
        y = np.fft.irfft(np.fft.rfft(frames, axis=-1) * hf, nfft, axis=-1)[..., taps - 1:]
        y = y.transpose(0, 2, 1).reshape(-1, c)
        m = min(len(y), n_y - a)
        out[a: a + m] = y[:m]
    return out


def bandpass_taps(fs_hz: float, cfg: ConditioningConfig) -> np.ndarray | None:
    """The symmetric (odd-length) band-pass FIR at ``fs_hz``; None when both edges are off."""
    nyq = fs_hz / 2
    h = np.ones(1)
    used = False
    if cfg.highpass_hz > 0:
        if cfg.highpass_hz >= 0.95 * nyq:
            raise ConditioningError(
                f"highpass_hz={cfg.highpass_hz} is not below Nyquist ({nyq:g} Hz) of "
                f"fs_out_hz={fs_hz:g}")
        n, beta = kaiserord(cfg.stopband_db, cfg.highpass_width_hz / nyq)
        n += 1 - n % 2  # odd: a type-I high-pass
        # delta minus a unity-DC low-pass: exactly zero gain at DC (a constant offset is
        # removed completely, not to the stop-band level)
        h = -firwin_lowpass(n, cfg.highpass_hz / nyq, beta)
        h[n // 2] += 1.0
        used = True
    if 0 < cfg.lowpass_hz < 0.95 * nyq:
        width = min(cfg.lowpass_width_hz, 2 * (nyq - cfg.lowpass_hz))
        n, beta = kaiserord(cfg.stopband_db, width / nyq)
        n += 1 - n % 2
        h = np.convolve(h, firwin_lowpass(n, cfg.lowpass_hz / nyq, beta))
        used = True
    return h if used else None


def _reflect(x: np.ndarray, n: int, side: str) -> np.ndarray:
    """``n`` samples mirroring ``x`` beyond its start (side 'start') or end ('end')."""
    mode = "reflect" if len(x) > 1 else "edge"
    if side == "start":
        return np.pad(x, ((n, 0), (0, 0)), mode=mode)[:n]
    return np.pad(x, ((0, n), (0, 0)), mode=mode)[len(x):]


class _ZeroPhaseFIR:
    """Streaming symmetric FIR with its delay removed: y[j] = sum_m h[m] x[j + D - m]."""

    def __init__(self, h: np.ndarray) -> None:
        self.h = h
        self.D = (len(h) - 1) // 2
        self.reset()

    def reset(self) -> None:
        self.head: list[np.ndarray] = []  # raw samples until the start extension is built
        self.buf: np.ndarray | None = None  # extended samples from ext index n_out on
        self.n_in = 0
        self.n_out = 0

    def _start(self) -> None:
        raw = np.concatenate(self.head)
        self.head = []
        self.buf = np.concatenate([_reflect(raw[: self.D + 1], self.D, "start"), raw])

    def _run(self) -> np.ndarray:
        assert self.buf is not None
        n_y = len(self.buf) - 2 * self.D
        if n_y <= 0:
            return np.zeros((0, self.buf.shape[1]))
        y = fir_valid(self.buf, self.h)
        self.buf = self.buf[n_y:]
        self.n_out += n_y
        return y

    def final_after(self, n_in: int) -> int:
        """Outputs ``process`` has returned, in total, once ``n_in`` inputs went in."""
        return n_in - self.D if n_in > self.D else 0

    def inputs_for(self, n_out: int) -> int:
        """The fewest inputs after which ``final_after`` reaches ``n_out``."""
        return n_out + self.D if n_out > 0 else 0

    def process(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros((0, x.shape[1]))
        self.n_in += len(x)
        if self.buf is None:
            self.head.append(x)
            if self.n_in < self.D + 1:
                return np.zeros((0, x.shape[1]))
            self._start()
        else:
            self.buf = np.concatenate([self.buf, x])
        return self._run()

    def flush(self, n_channels: int) -> np.ndarray:
        if self.buf is None:
            if not self.head:
                return np.zeros((0, n_channels))
            self._start()
        assert self.buf is not None
        real = self.buf[-min(self.n_in, self.D + 1):]
        self.buf = np.concatenate([self.buf, _reflect(real, self.D, "end")])
        y = self._run()
        self.buf = None
        return y


class _Resampler:
    """Streaming polyphase resampler, delay removed: output j is at input time j*down/up.

    Output j is v[j*down + half] where v = h * (up-stuffed x) and half = (len(h) - 1) / 2, as
    in ``scipy.signal.resample_poly``; the input is held at its first sample before the
    start and at its last after ``flush``. Total length: ceil(n * up / down).
    """

    def __init__(self, up: int, down: int, cfg: ConditioningConfig) -> None:
        self.up, self.down = up, down
        half = cfg.fir_half_len_per_factor * max(up, down)
        h = firwin_lowpass(2 * half + 1, 1.0 / max(up, down), cfg.kaiser_beta) * up
        self.half = half
        k = -(-len(h) // up)
        hp = np.zeros(k * up)
        hp[: len(h)] = h
        self.h_poly = hp.reshape(k, up).T.copy()  # h_poly[p, m] = h[p + m*up]
        self.k = k
        self.reset()

    def reset(self) -> None:
        self.hist: np.ndarray | None = None  # last k-1 inputs (k-1, c)
        self.n_in = 0
        self.n_out = 0
        self.n_real = 0

    @property
    def lookahead_in(self) -> int:
        """Input samples needed beyond an output sample's own time."""
        return -(-self.half // self.up) + 1

    def _produce(self, x: np.ndarray, j_end: int) -> np.ndarray:
        c = x.shape[1]
        assert self.hist is not None
        buf = np.concatenate([self.hist, x], axis=0)  # buf[i] is input n_in - (k-1) + i
        n_total = self.n_in + len(x)
        j = np.arange(self.n_out, max(self.n_out, j_end))
        out = np.empty((len(j), c))
        step = 4096
        for s in range(0, len(j), step):
            q = j[s: s + step] * self.down + self.half
            n = q // self.up
            p = q - n * self.up
            idx = (n - self.n_in + self.k - 1)[:, None] - np.arange(self.k)[None, :]
            out[s: s + step] = np.einsum("jk,jkc->jc", self.h_poly[p], buf[idx])
        self.n_in, self.n_out = n_total, self.n_out + len(j)
        self.hist = buf[len(buf) - (self.k - 1):] if self.k > 1 else buf[:0]
        return out

    def _j_final(self) -> int:
        return -(-self.n_real * self.up // self.down)

    def final_after(self, n_in: int) -> int:
        """Outputs ``process`` has returned, in total, once ``n_in`` inputs went in."""
        if n_in <= 0:
            return 0
        j_end = min((n_in * self.up - 1 - self.half) // self.down + 1,
                    -(-n_in * self.up // self.down))
        return max(0, j_end)

    def inputs_for(self, n_out: int) -> int:
        """The fewest inputs after which ``final_after`` reaches ``n_out``."""
        if n_out <= 0:
            return 0
        up, down = self.up, self.down
        by_lookahead = -(-((n_out - 1) * down + 1 + self.half) // up)
        by_length = (n_out - 1) * down // up + 1
        return max(by_lookahead, by_length, 1)

    def process(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros((0, x.shape[1]))
        if self.hist is None:
            self.hist = np.repeat(x[:1], self.k - 1, axis=0)
        self.n_real += len(x)
        n_total = self.n_in + len(x)
        j_end = min((n_total * self.up - 1 - self.half) // self.down + 1, self._j_final())
        return self._produce(x, j_end)

    def flush(self, n_channels: int) -> np.ndarray:
        if self.hist is None:
            return np.zeros((0, n_channels))
        pad = np.repeat(self.hist[-1:], self.lookahead_in + 1, axis=0)
        y = self._produce(pad, self._j_final())
        self.hist = None
        return y


class StreamConditioner:
    """Chunk-by-chunk conditioning; ``process`` returns the samples that are final, ``flush``
    the rest. Concatenated, they equal ``condition`` on the whole signal."""

    def __init__(self, fs_in_hz: float, fs_out_hz: float | None = None, n_channels: int = 1,
                 config: ConditioningConfig | None = None) -> None:
        self.fs_in_hz = _check_fs("fs_in_hz", fs_in_hz)
        self.fs_out_hz = _check_fs("fs_out_hz", fs_in_hz if fs_out_hz is None else fs_out_hz)
        if not isinstance(n_channels, int | np.integer) or n_channels < 1:
            raise ConditioningError(f"n_channels={n_channels!r} must be a positive integer")
        self.n_channels = int(n_channels)
        self.config = cfg = config or ConditioningConfig()
        up, down = updown(self.fs_in_hz, self.fs_out_hz, cfg.max_factor)
        self._resampler = None if up == down == 1 else _Resampler(up, down, cfg)
        h = bandpass_taps(self.fs_out_hz, cfg)
        self._fir = None if h is None else _ZeroPhaseFIR(h)
        self.reset()

    def reset(self) -> None:
        """Forget all state (the next chunk is treated as the start of a new signal)."""
        if self._resampler is not None:
            self._resampler.reset()
        if self._fir is not None:
            self._fir.reset()
        self._n_seen = 0
        self.n_out = 0

    def lookahead_s(self) -> float:
        """How much later input an output sample needs before it is final (s)."""
        s = 0.0
        if self._resampler is not None:
            s += (self._resampler.lookahead_in + 1) / self.fs_in_hz
        if self._fir is not None:
            s += self._fir.D / self.fs_out_hz
        return s

    def final_after(self, n_in: int) -> int:
        """Samples ``process`` has returned, in total, once ``n_in`` input samples of the
        current signal went in (no flush): a pure function of the count, not of chunking."""
        m = n_in if self._resampler is None else self._resampler.final_after(n_in)
        return m if self._fir is None else self._fir.final_after(m)

    def inputs_for(self, n_out: int) -> int:
        """The fewest input samples after which ``final_after`` reaches ``n_out``."""
        m = n_out if self._fir is None else self._fir.inputs_for(n_out)
        return m if self._resampler is None else self._resampler.inputs_for(m)

    def _as_2d(self, chunk: Any) -> tuple[np.ndarray, bool]:
        try:
            x = np.asarray(chunk, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ConditioningError(f"input is not numeric: {e}") from None
        squeeze = x.ndim == 1
        if squeeze:
            x = x[:, None]
        if x.ndim != 2:
            raise ConditioningError(f"input must be (n,) or (n, c); got shape {x.shape}")
        if x.shape[1] != self.n_channels:
            raise ConditioningError(
                f"input has {x.shape[1]} channel(s), conditioner expects {self.n_channels}")
        bad = ~np.isfinite(x)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise ConditioningError(
                f"input has {int(bad.sum())} non-finite value(s) (NaN/inf); first at sample "
                f"{self._n_seen + int(r)} (channel {int(c)})")
        return x, squeeze

    def _out(self, y: np.ndarray, squeeze: bool) -> np.ndarray:
        self.n_out += len(y)
        y = y.astype(np.float32)
        return y[:, 0] if squeeze else y

    def process(self, chunk: Any) -> np.ndarray:
        """Condition the next chunk ((n,) or (n, c) mV); returns the newly final samples,
        float32 at ``fs_out_hz`` (sample j of the whole output is at input time j/fs_out)."""
        x, squeeze = self._as_2d(chunk)
        self._n_seen += len(x)
        y = x if self._resampler is None else self._resampler.process(x)
        if self._fir is not None:
            y = self._fir.process(y)
        return self._out(y, squeeze)

    def flush(self, squeeze: bool = False) -> np.ndarray:
        """End of signal: the samples still held back (the signal is mirrored past its end).
        Afterwards the conditioner starts a new signal."""
        c = self.n_channels
        y = np.zeros((0, c))
        if self._resampler is not None:
            y = self._resampler.flush(c)
        if self._fir is not None:
            y = np.concatenate([self._fir.process(y), self._fir.flush(c)])
        out = self._out(y, squeeze and c == 1)
        self.reset()
        return out


def condition(x: Any, fs_in_hz: float, fs_out_hz: float | None = None,
              config: ConditioningConfig | None = None) -> np.ndarray:
    """One-shot zero-phase conditioning of ``x`` ((n,) or (n, c), mV) -> float32 at
    ``fs_out_hz``, ceil(n * fs_out / fs_in) samples aligned with the input."""
    arr = np.asarray(x) if not isinstance(x, np.ndarray) else x
    n_ch = arr.shape[1] if arr.ndim == 2 else 1
    if arr.ndim == 2 and n_ch == 0:
        raise ConditioningError("input has 0 channels")
    sc = StreamConditioner(fs_in_hz, fs_out_hz, n_ch, config)
    head = sc.process(arr)
    tail = sc.flush(squeeze=head.ndim == 1)
    return np.concatenate([head, tail])
