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
NO_IIR = ConditioningConfig(highpass_hz=0.0, lowpass_hz=0.0)


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


def test_passband_kept_and_qrs_like_pulse_delayed_by_delay_s() -> None:
    fs = 500
    t = np.arange(fs * 20) / fs
    y = condition(np.sin(2 * np.pi * 5.0 * t), fs, 100)[-500:]
    assert 0.95 < np.abs(y).max() < 1.05
    for fs in (130, 500):
        t = np.arange(fs * 6) / fs
        sc = StreamConditioner(fs, 100)
        y = sc.process(np.exp(-0.5 * ((t - 3.0) / 0.015) ** 2))
        assert abs(np.argmax(y) / 100 - (3.0 + sc.delay_s(10.0))) <= 0.01


def test_baseline_wander_and_mains_attenuated() -> None:
    fs = 500
    t = np.arange(fs * 30) / fs
    wander = condition(np.sin(2 * np.pi * 0.05 * t), fs, 100)[1000:]
    mains = condition(np.sin(2 * np.pi * 60 * t), fs, 100)[1000:]
    assert np.abs(wander).max() < 0.05
    assert np.abs(mains).max() < 0.01


@pytest.mark.parametrize("fs", [130, 250, 500, 1000])
def test_resampler_equals_scipy_resample_poly_delayed(fs: int) -> None:
    """Without IIR filters the output is resample_poly's, shifted by the causal FIR delay."""
    x = _ecg_like(fs, 8.0)[:, 0]
    sc = StreamConditioner(fs, 100, config=NO_IIR)
    y = sc.process(x)
    up, down = updown(fs, 100)
    ref = signal.resample_poly(x, up, down, window=("kaiser", 5.0))
    lag = int(round(sc.resampler_delay_s() * 100))
    assert lag == 10
    np.testing.assert_allclose(y[lag + 50: -50], ref[50: len(y) - lag - 50], atol=1e-4)


def test_reset_restarts() -> None:
    x = _ecg_like(360, 3.0)[:, 0]
    sc = StreamConditioner(360, 100)
    a = sc.process(x)
    sc.reset()
    np.testing.assert_array_equal(sc.process(x), a)


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
