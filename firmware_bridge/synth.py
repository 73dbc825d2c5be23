"""Synthetic single-lead ECG that looks like a real one (not a sine wave).

Each beat is a McSharry-style sum of Gaussians (P, Q, R, S, T) placed at RR intervals that
carry heart-rate variability (respiratory sinus arrhythmia, Mayer waves, random jitter);
the QT interval scales with sqrt(RR) (Bazett). Baseline wander, white noise and optional
mains interference are added. Seeded: the same arguments give the same signal.
"""

from __future__ import annotations

import numpy as np

from firmware_bridge.errors import SignalSourceError

# (amplitude mV, centre s relative to R for RR = 1 s, width s); centre of T scales with sqrt(RR)
_WAVES = (
    (0.12, -0.20, 0.025),  # P
    (-0.10, -0.035, 0.010),  # Q
    (1.10, 0.0, 0.011),  # R
    (-0.25, 0.035, 0.011),  # S
    (0.30, 0.28, 0.055),  # T
)


def rr_intervals(duration_s: float, heart_rate_bpm: float, hrv: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Beat times (s) covering [0, duration_s] with RSA (0.25 Hz) and Mayer (0.1 Hz) waves."""
    mean_rr = 60.0 / heart_rate_bpm
    times = [float(rng.uniform(0.1, 0.1 + mean_rr))]
    phase = rng.uniform(0, 2 * np.pi, size=2)
    while times[-1] < duration_s + 1.0:
        t = times[-1]
        mod = 0.6 * np.sin(2 * np.pi * 0.25 * t + phase[0]) + 0.4 * np.sin(
            2 * np.pi * 0.1 * t + phase[1])
        rr = mean_rr * (1.0 + hrv * (mod + 0.5 * rng.standard_normal()))
        times.append(t + float(np.clip(rr, 0.3, 2.0)))
    return np.asarray(times)


def synthetic_ecg(duration_s: float, fs_hz: float, seed: int = 0, *,
                  heart_rate_bpm: float = 70.0, hrv: float = 0.05, noise_mv: float = 0.02,
                  baseline_mv: float = 0.1, mains_mv: float = 0.0,
                  mains_hz: float = 50.0) -> np.ndarray:
    """Lead-I-like ECG in mV, shape (round(duration_s * fs_hz),), float64."""
    if not duration_s > 0 or not fs_hz > 0:
        raise SignalSourceError(
            f"synthetic_ecg needs duration_s > 0 and fs_hz > 0, got {duration_s}, {fs_hz}")
    if not 20 <= heart_rate_bpm <= 250:
        raise SignalSourceError(f"synthetic_ecg heart_rate_bpm={heart_rate_bpm} not in 20..250")
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * fs_hz))
    t = np.arange(n) / fs_hz
    x = np.zeros(n)
    beats = rr_intervals(duration_s, heart_rate_bpm, hrv, rng)
    rrs = np.diff(beats)
    half = int(0.7 * fs_hz)
    for r_time, rr in zip(beats[:-1], rrs, strict=True):
        centre = int(round(r_time * fs_hz))
        lo, hi = max(0, centre - half), min(n, centre + half)
        if lo >= hi:
            continue
        tt = t[lo:hi] - r_time
        amp_jitter = 1.0 + 0.03 * rng.standard_normal()
        for amp, mu, width in _WAVES:
            mu_b = mu * np.sqrt(rr) if mu > 0.1 else mu
            x[lo:hi] += amp * amp_jitter * np.exp(-0.5 * ((tt - mu_b) / width) ** 2)
    ph = rng.uniform(0, 2 * np.pi, size=2)
    x += baseline_mv * (np.sin(2 * np.pi * 0.22 * t + ph[0]) + 0.5 * np.sin(
        2 * np.pi * 0.05 * t + ph[1]))
    if mains_mv:
        x += mains_mv * np.sin(2 * np.pi * mains_hz * t)
    if noise_mv:
        x += noise_mv * rng.standard_normal(n)
    return x
