"""Lead-I features and 12-lead measurements: synthetic truths, errors, real-data agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.conditioning import condition
from edge.features import FeatureError, detect_r_peaks, lead_i_features
from training.measurements import frontal_axis, twelve_lead_measurements


def _qrs(t: np.ndarray, width_s: float = 0.1) -> np.ndarray:
    """Biphasic-ish QRS of about width_s total duration centred at 0."""
    s = width_s / 6
    return np.exp(-0.5 * (t / s) ** 2) - 0.3 * np.exp(-0.5 * ((t - 2.2 * s) / (0.8 * s)) ** 2)


def _synthetic(fs: float, beats_s: np.ndarray, seconds: float = 10.0, sign: float = 1.0,
               amp: float = 1.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(round(seconds * fs))) / fs
    x = np.zeros_like(t)
    for b in beats_s:
        x += sign * amp * _qrs(t - b)
        x += 0.2 * amp * np.exp(-0.5 * ((t - b - 0.3) / 0.05) ** 2)  # T wave
    rng = np.random.default_rng(seed)
    return x + 0.2 * np.sin(2 * np.pi * 0.3 * t) + 0.01 * amp * rng.standard_normal(len(t))


@pytest.mark.parametrize("fs", [100, 130, 250, 500, 1000])
@pytest.mark.parametrize("sign,amp", [(1.0, 1.0), (-1.0, 0.15)])
def test_peaks_rate_count_duration_on_synthetic(fs: int, sign: float, amp: float) -> None:
    beats = np.arange(0.4, 9.8, 0.75)  # 80 bpm
    x = _synthetic(fs, beats, sign=sign, amp=amp)
    peaks = detect_r_peaks(x, fs)
    assert len(peaks) == len(beats)
    assert np.abs(peaks / fs - beats).max() <= 0.02
    f = lead_i_features(x, fs)
    assert f["ventricular_rate"] == pytest.approx(80, abs=2)
    assert f["qrs_count"] == pytest.approx(len(beats), abs=0.5)
    assert 80 <= f["qrs_duration"] <= 150  # QRS spans ~-50..+70 ms


def test_irregular_rhythm_and_missing_beat_search_back() -> None:
    rng = np.random.default_rng(3)
    beats = np.cumsum(rng.uniform(0.45, 1.1, 14)) + 0.2
    beats = beats[beats < 9.8]
    fs = 250
    x = _synthetic(fs, beats)
    x += 1.2 * _qrs(np.arange(len(x)) / fs - 5.05)  # one larger beat must not mask the others
    peaks = detect_r_peaks(x, fs)
    truth = np.sort(np.append(beats, 5.05))
    truth = truth[np.concatenate([[True], np.diff(truth) > 0.2])]
    assert len(peaks) >= len(truth) - 1


def test_flat_short_and_noise_free_cases_have_absent_fields() -> None:
    assert lead_i_features(np.zeros(5000), 500) == {}
    assert len(detect_r_peaks(np.zeros(5000), 500)) == 0
    assert lead_i_features(np.ones(100), 500) == {}
    two_beats = _synthetic(500, np.array([1.0, 2.2]), seconds=4.0)
    f = lead_i_features(two_beats, 500)
    assert f["qrs_count"] == pytest.approx(5.0)
    assert f["ventricular_rate"] == pytest.approx(50.0, abs=1)


def test_errors_are_named() -> None:
    x = np.zeros(1000)
    x[42] = np.nan
    with pytest.raises(FeatureError, match="sample 42"):
        lead_i_features(x, 500)
    with pytest.raises(FeatureError, match="fs_hz"):
        detect_r_peaks(np.zeros(1000), 10)
    with pytest.raises(FeatureError, match="shape"):
        detect_r_peaks(np.zeros((100, 2)), 500)
    with pytest.raises(FeatureError, match="12 leads"):
        twelve_lead_measurements(np.zeros((5000, 8)), 500)


def _twelve_from_dipole(fs: float, r_deg: float, t_deg: float) -> np.ndarray:
    t = np.arange(int(10 * fs)) / fs
    qrs = np.zeros_like(t)
    tw = np.zeros_like(t)
    for b in np.arange(0.5, 9.6, 0.9):
        qrs += np.exp(-0.5 * ((t - b) / 0.015) ** 2)
        tw += 0.3 * np.exp(-0.5 * ((t - b - 0.3) / 0.05) ** 2)
    r, th = math.radians(r_deg), math.radians(t_deg)
    ex = math.cos(r) * qrs + math.cos(th) * tw
    ey = math.sin(r) * qrs + math.sin(th) * tw  # frontal plane, +y = inferior
    lead_i = ex
    lead_ii = 0.5 * ex + math.sqrt(3) / 2 * ey
    lead_iii = lead_ii - lead_i
    avr, avl, avf = -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2
    v = [(k - 2.5) / 3 * qrs + tw for k in range(6)]
    return np.stack([lead_i, lead_ii, lead_iii, avr, avl, avf, *v], axis=1)


@pytest.mark.parametrize("r_deg,t_deg", [(60.0, 40.0), (-30.0, 10.0), (120.0, 150.0)])
def test_twelve_lead_axes_rate_from_dipole(r_deg: float, t_deg: float) -> None:
    m = twelve_lead_measurements(_twelve_from_dipole(500, r_deg, t_deg), 500)
    assert m["ventricular_rate"] == pytest.approx(60 / 0.9, abs=1)
    assert abs((m["r_axis"] - r_deg + 180) % 360 - 180) <= 5
    assert abs((m["t_axis"] - t_deg + 180) % 360 - 180) <= 8


def test_frontal_axis_hexaxial() -> None:
    assert frontal_axis(1.0, 0.0) == pytest.approx(0.0)
    assert frontal_axis(0.0, 1.0) == pytest.approx(90.0)
    assert frontal_axis(0.5, math.sqrt(3) / 2 * math.sin(math.radians(60)) / 1.0) == (
        pytest.approx(60.0))


@pytest.mark.needs_data
def test_agreement_with_ludb_experts(data_root) -> None:
    from training.validate_features import validate_ludb

    r = validate_ludb(data_root)
    assert r["ludb_sensitivity"] >= 0.97
    assert r["ludb_ppv"] >= 0.97
    assert r["ludb_qrs_duration_mae_ms"] <= 20


@pytest.mark.needs_data
def test_ludb_after_conditioning_to_model_rate(data_root) -> None:
    """The gateway path: condition Lead I to 100 Hz (zero phase), then detect: no shift."""
    from training.validate_features import TOL_S, ludb_records, match

    tp = fn = fp = 0
    for _rid, x, fs, ann in ludb_records(data_root, limit=40):
        y = condition(x, fs, 100)
        det = detect_r_peaks(y, 100).astype(float)
        ref = ann["peak"] / fs * 100
        lo, hi = ann["span"][0] / fs * 100, ann["span"][1] / fs * 100
        det = det[(det >= lo - 8) & (det <= hi + 8)]
        a, b, c = match(ref, det, TOL_S * 100)
        tp, fn, fp = tp + a, fn + b, fp + c
    assert tp / (tp + fn) >= 0.97
    assert tp / (tp + fp) >= 0.97


@pytest.mark.needs_data
def test_agreement_with_chapman_machine_measurements(data_root) -> None:
    from training.validate_features import validate_chapman

    r = validate_chapman(data_root)
    assert r["chapman_records"] == 35
    assert r["chapman_lead_i_ventricular_rate_mae"] <= 5
    assert r["chapman_lead_i_qrs_count_mae"] <= 1
    assert r["chapman_lead_i_qrs_duration_mae"] <= 20
    assert r["chapman_12lead_ventricular_rate_mae"] <= 5
    assert r["chapman_12lead_qrs_duration_mae"] <= 15
    assert r["chapman_12lead_r_axis_mae"] <= 25
    assert r["chapman_12lead_t_axis_mae"] <= 25
    assert r["chapman_12lead_t_axis_n"] >= 33


def test_search_back_finds_a_small_beat() -> None:
    """One beat at 45 % amplitude (envelope ~0.2 of the others: under the 0.3 threshold, over
    the search-back's 0.15) is found only by the search-back; times built by hand."""
    fs = 250.0
    t = np.arange(int(fs * 21)) / fs
    times = np.arange(1.0, 20.5, 1.0)
    x = np.zeros_like(t)
    for i, tb in enumerate(times):
        x += (0.45 if i == 10 else 1.0) * np.exp(-0.5 * ((t - tb) / 0.01) ** 2)
    got = detect_r_peaks(x, fs) / fs
    assert len(got) == len(times)
    assert np.abs(got - times).max() <= 2 / fs


# -- the numpy filters / peak finder vs scipy (the gateway no longer imports scipy) --------

_BANDS = [(5.0, 15.0), (0.5, 40.0), (0.5, 45.0), (1.0, 20.0)]


@pytest.mark.parametrize("fs", [50, 60, 100, 125, 130, 250, 360, 500, 1000])
def test_butter_bandpass_sos_equals_scipy(fs: int) -> None:
    from scipy import signal

    from edge.features import _SosFilter, butter_bandpass_sos

    for lo, hi in _BANDS:
        hi = min(hi, 0.45 * fs)
        ref = signal.butter(2, [lo, hi], "bandpass", fs=fs, output="sos")
        got = butter_bandpass_sos(lo, hi, fs)
        np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-15)
        # the start state of the forward-backward filter: sosfilt_zi's steady state
        np.testing.assert_allclose(_SosFilter(got).steady, signal.sosfilt_zi(ref).ravel(),
                                   rtol=1e-9, atol=1e-12)


def test_butter_bandpass_refuses_bad_edges() -> None:
    from edge.features import butter_bandpass_sos

    for lo, hi in [(0.0, 10.0), (20.0, 10.0), (5.0, 50.0)]:
        with pytest.raises(FeatureError, match="band-pass"):
            butter_bandpass_sos(lo, hi, 100.0)


@pytest.mark.parametrize("fs", [50, 100, 130, 1000])
@pytest.mark.parametrize("n", [16, 17, 127, 128, 129, 800, 1300, 10_000])
def test_bandpass_equals_scipy_sosfiltfilt(fs: int, n: int) -> None:
    from scipy import signal

    from edge.features import bandpass

    rng = np.random.default_rng(n + fs)
    x = rng.standard_normal((n, 3)).cumsum(axis=0) + 5.0  # drift and offset: end effects
    for lo, hi in _BANDS[:2]:
        sos = signal.butter(2, [lo, min(hi, 0.45 * fs)], "bandpass", fs=fs, output="sos")
        ref = signal.sosfiltfilt(sos, x, axis=0)
        got = bandpass(x, fs, lo, hi)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * np.abs(ref).max())
        np.testing.assert_allclose(bandpass(x[:, 1], fs, lo, hi), ref[:, 1], rtol=0,
                                   atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("fs", [50, 100, 130, 500])
@pytest.mark.parametrize("n", [16, 129, 800, 1300])
def test_feature_band_pair_equals_scipy_sosfiltfilt(fs: int, n: int) -> None:
    """The 0.5-40 and 5-15 Hz band-passes run as one bank give each filter's sosfiltfilt."""
    from scipy import signal

    from edge.features import _feature_bands

    x = np.random.default_rng(n * fs).standard_normal(n).cumsum() + 3.0
    got = _feature_bands(float(fs)).filtfilt(x)
    for row, (lo, hi) in zip(got, _BANDS[1::-1], strict=True):
        sos = signal.butter(2, [lo, min(hi, 0.45 * fs)], "bandpass", fs=fs, output="sos")
        ref = signal.sosfiltfilt(sos, x)
        np.testing.assert_allclose(row, ref, rtol=0, atol=1e-10 * np.abs(ref).max())
    with pytest.raises(FeatureError, match="too short"):
        _feature_bands(100.0).filtfilt(np.ones(15))


def test_gradient0_equals_numpy_gradient() -> None:
    from edge.features import gradient0

    rng = np.random.default_rng(5)
    for shape in [(2,), (3,), (800,), (55, 1), (55, 3)]:
        y = rng.standard_normal(shape)
        np.testing.assert_array_equal(gradient0(y), np.gradient(y, axis=0))


def test_bandpass_too_short_is_a_feature_error() -> None:
    from edge.features import bandpass

    with pytest.raises(FeatureError, match="too short"):
        bandpass(np.ones(15), 100.0, 5.0, 15.0)  # scipy: padlen 15 needs > 15 samples


@pytest.mark.parametrize("mode", ["nearest", "reflect"])
def test_moving_average_equals_uniform_filter1d(mode: str) -> None:
    from scipy import ndimage

    from edge.features import moving_average

    rng = np.random.default_rng(3)
    for n, size in [(1, 1), (5, 2), (7, 12), (100, 1), (100, 12), (1300, 16), (40, 39)]:
        x = rng.standard_normal(n) ** 2
        np.testing.assert_allclose(moving_average(x, size, mode),
                                   ndimage.uniform_filter1d(x, size, mode=mode),
                                   rtol=1e-12, atol=1e-13)


def test_find_peaks_equals_scipy_with_plateaus_and_ties() -> None:
    from scipy import signal

    from edge.features import find_peaks

    rng = np.random.default_rng(7)
    for trial in range(600):
        n = int(rng.integers(0, 300))
        x = [rng.standard_normal(n), rng.integers(0, 4, n).astype(float),  # plateaus, ties
             np.round(rng.standard_normal(n).cumsum(), 1)][trial % 3]
        distance = float(rng.choice([1, 2, 3.5, 7, 20, 50]))
        height = [None, 0.0, 1.0][trial % 3 if trial % 5 else 0]
        kw = {"distance": distance} | ({} if height is None else {"height": height})
        ref, _ = signal.find_peaks(x, **kw)
        got, heights = find_peaks(x, distance, height)
        np.testing.assert_array_equal(got, ref)
        np.testing.assert_array_equal(heights, x[ref])


def test_find_peaks_hand_cases() -> None:
    from edge.features import find_peaks

    x = np.array([0, 2, 2, 2, 0, 1, 0, 3, 3, 0, 5])  # plateau middles 2 and 7; edge not a peak
    assert find_peaks(x)[0].tolist() == [2, 5, 7]
    assert find_peaks(x, distance=3)[0].tolist() == [2, 7]  # 5 is within 3 of the higher 7
    assert find_peaks(x, height=2.5)[0].tolist() == [7]


def test_features_import_no_scipy() -> None:
    import subprocess
    import sys

    code = ("import sys, numpy as np; from edge.features import lead_i_features; "
            "t = np.arange(1000) / 100; "
            "lead_i_features(np.exp(-((t % 0.8 - 0.3) / 0.01) ** 2), 100); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
