"""Conditioning: chunk invariance, lengths, filter behaviour, resampler correctness, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from edge.conditioning import (
    ConditioningConfig,
    ConditioningError,
    StreamConditioner,
    condition,
    updown,
)

RATES = [100, 125, 128, 130, 200, 250, 256, 360, 500, 1000]
NO_IIR = ConditioningConfig(highpass_hz=0.0, lowpass_hz=0.0)  # resampler only


def _ecg_like(fs: float, seconds: float, n_ch: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(fs * seconds))) / fs
    beats = np.zeros_like(t)
    for tb in np.arange(0.3, seconds, 0.8):
        beats += np.exp(-0.5 * ((t - tb) / 0.012) ** 2)
    cols = [(k + 1) * beats + 0.5 * np.sin(2 * np.pi * 0.2 * t) + 1.5 - k
            + 0.02 * rng.standard_normal(len(t)) for k in range(n_ch)]
    return np.stack(cols, axis=1)


def _chunked(sc: StreamConditioner, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    outs, i = [], 0
    for s in sizes:
        outs.append(sc.process(x[i: i + s]))
        i += s
    outs.append(sc.process(x[i:]))
    outs.append(sc.flush(squeeze=x.ndim == 1))
    return np.concatenate(outs, axis=0)


@settings(max_examples=25, deadline=None)
@given(fs=st.sampled_from(RATES), n_ch=st.integers(1, 3),
       sizes=st.lists(st.integers(0, 700), min_size=1, max_size=12))
def test_streaming_equals_one_shot_any_chunking(fs: int, n_ch: int, sizes: list[int]) -> None:
    x = _ecg_like(fs, 6.0, n_ch)
    ref = condition(x, fs, 100)
    sc = StreamConditioner(fs, 100, n_ch)
    out = _chunked(sc, x, sizes)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, atol=1e-5)


@pytest.mark.parametrize("fs", RATES)
def test_length_and_dtype(fs: int) -> None:
    for n in (1, 7, int(fs * 3.3)):
        up, down = updown(fs, 100)
        y = condition(np.ones(n), fs, 100)
        assert y.dtype == np.float32
        assert y.shape == (math.ceil(n * up / down),)


def test_same_rate_keeps_length_and_2d_shape() -> None:
    x = _ecg_like(250, 4.0, 2)
    y = condition(x, 250)
    assert y.shape == x.shape


def test_dc_offset_does_not_ring_and_is_removed() -> None:
    y = condition(np.full(5000, 3.0), 500, 100)
    assert np.abs(y).max() < 1e-4


def _lag(a: np.ndarray, b: np.ndarray, max_lag: int = 20) -> int:
    """Lag (samples) of ``a`` behind ``b`` that maximises their correlation."""
    a, b = a - a.mean(), b - b.mean()
    lags = range(-max_lag, max_lag + 1)
    c = [float(np.dot(a[max_lag + k: len(a) - max_lag + k], b[max_lag: len(b) - max_lag]))
         for k in lags]
    return list(lags)[int(np.argmax(c))]


def test_passband_kept_and_pulse_not_delayed() -> None:
    fs = 500
    t = np.arange(fs * 20) / fs
    y = condition(np.sin(2 * np.pi * 5.0 * t), fs, 100)[-500:-300]
    assert 0.95 < np.abs(y).max() < 1.05
    for fs in (130, 500):
        t = np.arange(fs * 8) / fs
        y = condition(np.exp(-0.5 * ((t - 3.0) / 0.015) ** 2), fs, 100)
        assert np.argmax(y) == 300  # the pulse's own time, at the model rate


@pytest.mark.parametrize("fs", [130, 250, 500, 1000])
def test_lead_i_matches_zero_phase_butterworth_truth_lag_0(fs: int) -> None:
    """Same-rate output vs the input band-passed by scipy's forward-backward Butterworth."""
    x = _ecg_like(fs, 20.0, seed=fs)[:, 0]
    y = condition(x, fs, fs)
    sos = signal.butter(2, [0.5, 40.0], "bandpass", fs=fs, output="sos")
    ref = signal.sosfiltfilt(sos, x)
    s = int(2.5 * fs)
    assert np.corrcoef(y[s:-s], ref[s:-s])[0, 1] >= 0.99
    assert _lag(y[s:-s], ref[s:-s]) == 0


def _st_beats(fs: float, seconds: float, st_mv: float) -> tuple[np.ndarray, np.ndarray]:
    """Beat train (1 s RR): P, QRS (R at +0 s), ST segment at ``st_mv`` from J (+50 ms) into
    a T wave; returns (signal mV, R-peak times s). Built by hand, not by the code under test."""
    t = np.arange(int(round(fs * seconds))) / fs
    x = np.zeros_like(t)
    r_times = np.arange(1.0, seconds - 0.5, 1.0)
    for tr in r_times:
        u = t - tr
        x += 0.15 * np.exp(-0.5 * ((u + 0.18) / 0.025) ** 2)  # P
        x += 1.2 * np.exp(-0.5 * (u / 0.010) ** 2) - 0.2 * np.exp(-0.5 * ((u - 0.03) / 0.01) ** 2)
        st = (u > 0.05) & (u < 0.32)  # ST plateau into the T wave, smooth edges
        x += st_mv * st * np.clip((u - 0.05) / 0.02, 0, 1) * np.clip((0.32 - u) / 0.04, 0, 1)
        x += 0.35 * np.exp(-0.5 * ((u - 0.26) / 0.045) ** 2)  # T
    return x, r_times


@pytest.mark.parametrize("fs_in,fs_out", [(500, 100), (500, 500), (130, 100), (250, 250)])
def test_st_level_and_r_time_survive_conditioning(fs_in: int, fs_out: int) -> None:
    st_mv = 0.2
    x, r_times = _st_beats(fs_in, 20.0, st_mv)
    y = condition(x, fs_in, fs_out)
    for tr in r_times[3:-3]:
        j_r = int(round(tr * fs_out))
        win = y[j_r - int(0.05 * fs_out): j_r + int(0.05 * fs_out) + 1]
        assert abs(int(np.argmax(win)) - int(0.05 * fs_out)) <= 1  # R within one sample
        pr = y[int(round((tr - 0.08) * fs_out))]  # PR segment: the isoelectric reference
        st = y[int(round((tr + 0.12) * fs_out))]  # J + 70 ms, on the plateau
        truth_st = x[int(round((tr + 0.12) * fs_in))] - x[int(round((tr - 0.08) * fs_in))]
        assert abs((st - pr) - truth_st) <= 0.05


def test_causal_filters_would_fail_the_st_test() -> None:
    """The ST test above is sharp: the old causal 0.5 Hz Butterworth bends ST by > 0.05 mV."""
    fs = 500
    x, r_times = _st_beats(fs, 20.0, 0.2)
    y = signal.sosfilt(signal.butter(2, 0.5, "highpass", fs=fs, output="sos"), x)
    errs = [abs((y[int((tr + 0.12) * fs)] - y[int((tr - 0.08) * fs)])
                - (x[int((tr + 0.12) * fs)] - x[int((tr - 0.08) * fs)])) for tr in r_times[3:-3]]
    assert max(errs) > 0.05


@pytest.mark.parametrize("fs", [130, 250, 500, 1000])
def test_resampler_equals_scipy_resample_poly_aligned(fs: int) -> None:
    """Without the band-pass the output is resample_poly's, sample for sample (no delay)."""
    x = _ecg_like(fs, 8.0)[:, 0]
    y = condition(x, fs, 100, NO_IIR)
    up, down = updown(fs, 100)
    ref = signal.resample_poly(x, up, down, window=("kaiser", 5.0))
    assert len(y) == len(ref)
    np.testing.assert_allclose(y[50:-50], ref[50:-50], atol=1e-4)


def test_lookahead_is_what_streaming_holds_back() -> None:
    fs = 250
    x = _ecg_like(fs, 10.0)[:, 0]
    sc = StreamConditioner(fs, 100)
    got = len(sc.process(x))
    held = 1000 - got
    assert held == pytest.approx(sc.lookahead_s() * 100, abs=2)
    assert 1.0 <= sc.lookahead_s() <= 3.0  # a second or two: less than one model window


def test_reset_restarts() -> None:
    x = _ecg_like(360, 3.0)[:, 0]
    sc = StreamConditioner(360, 100)
    a = np.concatenate([sc.process(x), sc.flush(squeeze=True)])
    sc.process(x[:100])
    sc.reset()
    np.testing.assert_array_equal(np.concatenate([sc.process(x), sc.flush(squeeze=True)]), a)


def test_nan_named_with_position() -> None:
    sc = StreamConditioner(500, 100)
    sc.process(np.zeros(100))
    x = np.zeros(50)
    x[7] = np.nan
    x[9] = np.inf
    with pytest.raises(ConditioningError, match=r"2 non-finite.*sample 107"):
        sc.process(x)


@pytest.mark.parametrize("fs", [0, -5, float("nan"), "abc", None])
def test_bad_rate(fs: object) -> None:
    with pytest.raises(ConditioningError, match="fs_in_hz"):
        condition(np.zeros(10), fs)  # type: ignore[arg-type]


def test_unrepresentable_ratio_and_shapes() -> None:
    with pytest.raises(ConditioningError, match="nominal"):
        condition(np.zeros(100), 129.98731, 100)
    with pytest.raises(ConditioningError, match="shape"):
        condition(np.zeros((4, 2, 2)), 100)
    with pytest.raises(ConditioningError, match="channel"):
        StreamConditioner(100, 100, 2).process(np.zeros((5, 3)))
    with pytest.raises(ConditioningError, match="numeric"):
        condition(["a", "b"], 100)


def test_config_round_trip_and_unknown_field() -> None:
    cfg = ConditioningConfig(highpass_hz=0.67, lowpass_hz=35.0)
    assert ConditioningConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConditioningError, match="notch"):
        ConditioningConfig.from_dict({"notch": 50})
    with pytest.raises(ConditioningError, match="causal"):
        ConditioningConfig.from_dict({"highpass_hz": 0.5, "lowpass_hz": 40.0})
    with pytest.raises(ConditioningError, match="phase"):
        ConditioningConfig(phase="causal")


# -- the numpy FIR design and convolution vs scipy.signal (the gateway no longer imports it) --

@pytest.mark.parametrize("ripple,width", [(40, 0.01), (40, 0.2), (60, 0.05), (21, 0.1),
                                          (30, 0.37), (10, 0.3), (8, 0.5)])
def test_kaiserord_equals_scipy(ripple: float, width: float) -> None:
    from edge.conditioning import kaiser_beta, kaiserord

    n, beta = kaiserord(ripple, width)
    ref_n, ref_beta = signal.kaiserord(ripple, width)
    assert n == ref_n
    assert beta == pytest.approx(ref_beta, abs=1e-15)
    assert kaiser_beta(ripple) == pytest.approx(signal.kaiser_beta(ripple), abs=1e-15)


def test_kaiserord_refuses_tiny_attenuation() -> None:
    from edge.conditioning import kaiserord

    with pytest.raises(ConditioningError, match="too small"):
        kaiserord(7.9, 0.1)


@pytest.mark.parametrize("numtaps,cutoff,beta", [(449, 0.01, 3.395), (25, 0.8, 3.395),
                                                 (261, 0.1, 5.0), (8, 0.3, 2.0), (1, 0.5, 5.0),
                                                 (2601, 1 / 130, 5.0)])
def test_firwin_lowpass_equals_scipy(numtaps: int, cutoff: float, beta: float) -> None:
    from edge.conditioning import firwin_lowpass

    ref = signal.firwin(numtaps, cutoff, window=("kaiser", beta))
    np.testing.assert_allclose(firwin_lowpass(numtaps, cutoff, beta), ref, rtol=0, atol=1e-15)


@pytest.mark.parametrize("fs", RATES)
def test_bandpass_taps_equal_the_scipy_design(fs: int) -> None:
    """The shipped design (high-pass = delta - low-pass, convolved with a low-pass), built
    with scipy's kaiserord/firwin: the taps the bundles were converted with."""
    from edge.conditioning import bandpass_taps

    cfg = ConditioningConfig()
    nyq = fs / 2
    n, beta = signal.kaiserord(cfg.stopband_db, cfg.highpass_width_hz / nyq)
    n += 1 - n % 2
    ref = -signal.firwin(n, cfg.highpass_hz, window=("kaiser", beta), fs=fs)
    ref[n // 2] += 1.0
    if cfg.lowpass_hz < 0.95 * nyq:
        width = min(cfg.lowpass_width_hz, 2 * (nyq - cfg.lowpass_hz))
        n, beta = signal.kaiserord(cfg.stopband_db, width / nyq)
        n += 1 - n % 2
        ref = np.convolve(ref, signal.firwin(n, cfg.lowpass_hz, window=("kaiser", beta),
                                             fs=fs))
    got = bandpass_taps(fs, cfg)
    assert got is not None and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-15)


@pytest.mark.parametrize("n,taps,c", [(600, 473, 1), (4000, 473, 2), (100_000, 613, 1),
                                      (300_000, 473, 3), (473, 473, 1), (5, 3, 4)])
def test_fir_valid_equals_scipy_convolve(n: int, taps: int, c: int) -> None:
    """Both paths (direct for short blocks, FFT overlap-save for long) = scipy's 'valid'."""
    from edge.conditioning import fir_valid

    rng = np.random.default_rng(n)
    x, h = rng.standard_normal((n, c)), rng.standard_normal(taps)
    ref = signal.convolve(x, h[:, None], mode="valid")
    got = fir_valid(x, h)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-11 * np.abs(ref).max())


def test_fir_valid_shorter_than_filter_is_empty() -> None:
    from edge.conditioning import fir_valid

    assert fir_valid(np.ones((10, 2)), np.ones(11)).shape == (0, 2)


def test_conditioning_imports_no_scipy() -> None:
    import subprocess
    import sys

    code = ("import sys, numpy as np; from edge.conditioning import condition; "
            "condition(np.random.default_rng(0).standard_normal((3000, 2)), 250, 100); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
