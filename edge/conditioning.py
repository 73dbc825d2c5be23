"""Signal conditioning shared by training and the gateway: resampling + filters, causal.

Pipeline (per channel): rational polyphase resampling ``fs_in -> fs_out`` with a Kaiser
windowed anti-alias FIR (same design as ``scipy.signal.resample_poly``), then, at the output
rate, a Butterworth high-pass (baseline wander) and a Butterworth low-pass (HF noise, mains).

Why causal (and not zero-phase): the gateway works live, where a zero-phase filter would need
the future. Training data go through this very code, for Lead I and the target leads alike,
so the model learns exactly the phase response (and delay) it meets on the device. Causal
filters with carried state are also exactly chunk-invariant: ``StreamConditioner`` fed any
chunking gives the same samples as one-shot ``condition``.

Why filter after resampling: the IIR filters then run at the model rate whatever the input
rate, so a 130 Hz strap and a 500 Hz training corpus get the *same* IIR response; only the
anti-alias FIR (linear phase, a pure delay of ``resampler_delay_s``) depends on the rate.

Start-up: the signal before its first sample is taken as constant and equal to the first
sample (the FIR history is filled with it, and the IIR states start at their steady state
``sosfilt_zi * y[0]``), so a DC offset does not ring at the start. This depends only on the
first sample, so chunk-invariance holds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from typing import Any

import numpy as np
from scipy import signal

#: Model rate (Hz) used by default on the gateway and for training.
MODEL_FS_HZ = 100.0


class ConditioningError(ValueError):
    """Unusable input or settings for conditioning (non-finite samples, bad rate, shape)."""


@dataclass(frozen=True)
class ConditioningConfig:
    """Filter settings (stored in bundle manifests under ``conditioning``).

    ``lowpass_hz`` is skipped when it is not below 0.95 * Nyquist of the output rate, and
    ``highpass_hz`` <= 0 disables the high-pass.  ``max_factor`` bounds the up/down factors.
    """

    highpass_hz: float = 0.5
    highpass_order: int = 2
    lowpass_hz: float = 40.0
    lowpass_order: int = 4
    fir_half_len_per_factor: int = 10
    kaiser_beta: float = 5.0
    max_factor: int = 1000

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConditioningConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConditioningError(f"conditioning config: unknown field(s) {sorted(unknown)}")
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
            f"{max_factor}; pass a nominal (rounded) input rate"
        )
    return up, down


class _Resampler:
    """Streaming polyphase resampler (causal FIR on the zero-stuffed signal, then decimate).

    Output j is v[j*down] where v = h * (up-stuffed x); it is produced as soon as input
    sample floor(j*down/up) has arrived, so streaming and one-shot lengths agree exactly:
    ceil(n * up / down).
    """

    def __init__(self, up: int, down: int, cfg: ConditioningConfig) -> None:
        self.up, self.down = up, down
        if up == down == 1:
            self.h_poly = np.ones((1, 1))
            self.n_taps = 1
        else:
            half = cfg.fir_half_len_per_factor * max(up, down)
            h = signal.firwin(2 * half + 1, 1.0 / max(up, down),
                              window=("kaiser", cfg.kaiser_beta)) * up
            k = -(-len(h) // up)
            hp = np.zeros(k * up)
            hp[: len(h)] = h
            # h_poly[p, m] = h[p + m*up]
            self.h_poly = hp.reshape(k, up).T.copy()
            self.n_taps = len(h)
        self.k = self.h_poly.shape[1]
        self.reset()

    def reset(self) -> None:
        self.hist: np.ndarray | None = None  # last k-1 inputs (k-1, c)
        self.n_in = 0
        self.n_out = 0

    @property
    def delay_s_times_fs_in(self) -> float:
        return (self.n_taps - 1) / 2 / self.up

    def process(self, x: np.ndarray) -> np.ndarray:
        c = x.shape[1]
        if self.hist is None:
            if len(x) == 0:
                return np.zeros((0, c))
            self.hist = np.repeat(x[:1], self.k - 1, axis=0)
        buf = np.concatenate([self.hist, x], axis=0)  # buf[i] is input n_in - (k-1) + i
        n_total = self.n_in + len(x)
        j_end = -(-n_total * self.up // self.down)  # ceil
        j = np.arange(self.n_out, j_end)
        out = np.empty((len(j), c))
        step = 4096
        for s in range(0, len(j), step):
            jj = j[s: s + step]
            n = jj * self.down // self.up
            p = jj * self.down - n * self.up
            idx = (n - self.n_in + self.k - 1)[:, None] - np.arange(self.k)[None, :]
            out[s: s + step] = np.einsum("jk,jkc->jc", self.h_poly[p], buf[idx])
        self.n_in, self.n_out = n_total, j_end
        self.hist = buf[len(buf) - (self.k - 1):] if self.k > 1 else buf[:0]
        return out


class StreamConditioner:
    """Chunk-by-chunk conditioning; concatenated outputs equal ``condition`` on the whole."""

    def __init__(self, fs_in_hz: float, fs_out_hz: float | None = None, n_channels: int = 1,
                 config: ConditioningConfig | None = None) -> None:
        self.fs_in_hz = _check_fs("fs_in_hz", fs_in_hz)
        self.fs_out_hz = _check_fs("fs_out_hz", fs_in_hz if fs_out_hz is None else fs_out_hz)
        if not isinstance(n_channels, int | np.integer) or n_channels < 1:
            raise ConditioningError(f"n_channels={n_channels!r} must be a positive integer")
        self.n_channels = int(n_channels)
        self.config = cfg = config or ConditioningConfig()
        up, down = updown(self.fs_in_hz, self.fs_out_hz, cfg.max_factor)
        self._resampler = _Resampler(up, down, cfg)
        nyq = self.fs_out_hz / 2
        sos = []
        if cfg.highpass_hz > 0:
            if cfg.highpass_hz >= 0.95 * nyq:
                raise ConditioningError(
                    f"highpass_hz={cfg.highpass_hz} is not below Nyquist ({nyq:g} Hz) of "
                    f"fs_out_hz={self.fs_out_hz:g}")
            sos.append(signal.butter(cfg.highpass_order, cfg.highpass_hz, "highpass",
                                     fs=self.fs_out_hz, output="sos"))
        if 0 < cfg.lowpass_hz < 0.95 * nyq:
            sos.append(signal.butter(cfg.lowpass_order, cfg.lowpass_hz, "lowpass",
                                     fs=self.fs_out_hz, output="sos"))
        self._sos = np.concatenate(sos) if sos else None
        self._zi_unit = signal.sosfilt_zi(self._sos) if sos else None
        self.reset()

    def reset(self) -> None:
        """Forget all state (the next chunk is treated as the start of a new signal)."""
        self._resampler.reset()
        self._zi: np.ndarray | None = None
        self._n_seen = 0

    def resampler_delay_s(self) -> float:
        """Delay (s) of the linear-phase anti-alias FIR."""
        return self._resampler.delay_s_times_fs_in / self.fs_in_hz

    def delay_s(self, at_hz: float = 10.0) -> float:
        """Total group delay (s) at ``at_hz``: FIR delay + IIR group delay at that frequency."""
        d = self.resampler_delay_s()
        if self._sos is not None:
            w = 2 * np.pi * np.array([at_hz * 0.999, at_hz * 1.001]) / self.fs_out_hz
            _, resp = signal.sosfreqz(self._sos, worN=w)
            ph = np.unwrap(np.angle(resp))
            d += -(ph[1] - ph[0]) / (w[1] - w[0]) / self.fs_out_hz
        return float(d)

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

    def process(self, chunk: Any) -> np.ndarray:
        """Condition the next chunk ((n,) or (n, c) mV); returns float32 at ``fs_out_hz``."""
        x, squeeze = self._as_2d(chunk)
        self._n_seen += len(x)
        y = self._resampler.process(x)
        if self._sos is not None and len(y):
            if self._zi is None:
                self._zi = self._zi_unit[:, :, None] * y[0][None, None, :]
            y, self._zi = signal.sosfilt(self._sos, y, axis=0, zi=self._zi)
        y = y.astype(np.float32)
        return y[:, 0] if squeeze else y


def condition(x: Any, fs_in_hz: float, fs_out_hz: float | None = None,
              config: ConditioningConfig | None = None) -> np.ndarray:
    """One-shot conditioning of ``x`` ((n,) or (n, c), mV) -> float32 at ``fs_out_hz``."""
    arr = np.asarray(x) if not isinstance(x, np.ndarray) else x
    n_ch = arr.shape[1] if arr.ndim == 2 else 1
    if arr.ndim == 2 and n_ch == 0:
        raise ConditioningError("input has 0 channels")
    return StreamConditioner(fs_in_hz, fs_out_hz, n_ch, config).process(arr)
