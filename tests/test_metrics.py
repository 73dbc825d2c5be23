"""Metric functions against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import (
    MetricError,
    amplitude_fidelity,
    bootstrap_ci,
    pearson_per_record,
    r_wave_amplitude,
    rmse_per_record,
    segment_masks_from_annotations,
    segment_masks_from_peaks,
    spearman,
    spread_error_curve,
    summarize,
    uncertainty_metrics,
)


def _arr(*rows):
    return np.asarray(rows, dtype=float)[:, :, None]  # (N, L, 1)


def test_pearson_and_rmse_hand_values():
    y = _arr([1, 2, 3, 4], [1, 2, 3, 4])
    yhat = _arr([2, 4, 6, 8], [4, 3, 2, 1])
    np.testing.assert_allclose(pearson_per_record(y, yhat)[:, 0], [1.0, -1.0])
    # record 0: errors 1,2,3,4 -> sqrt(30/4); record 1: 3,1,1,3 -> sqrt(20/4)
    np.testing.assert_allclose(rmse_per_record(y, yhat)[:, 0], [np.sqrt(7.5), np.sqrt(5.0)])


def test_pearson_matches_numpy_and_mask():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(3, 50, 2))
    yhat = y + rng.normal(size=y.shape)
    r = pearson_per_record(y, yhat)
    assert r[1, 1] == pytest.approx(np.corrcoef(y[1, :, 1], yhat[1, :, 1])[0, 1])
    mask = np.zeros((3, 50), bool)
    mask[:, 10:30] = True
    rm = pearson_per_record(y, yhat, mask)
    assert rm[2, 0] == pytest.approx(np.corrcoef(y[2, 10:30, 0], yhat[2, 10:30, 0])[0, 1])
    e = rmse_per_record(y, yhat, mask)
    assert e[0, 1] == pytest.approx(np.sqrt(((y[0, 10:30, 1] - yhat[0, 10:30, 1]) ** 2).mean()))


def test_undefined_cases_are_nan_and_shape_errors_named():
    y = _arr([1, 1, 1, 1])
    assert np.isnan(pearson_per_record(y, y)[0, 0])
    assert np.isnan(rmse_per_record(y, y, np.zeros((1, 4), bool))[0, 0])
    with pytest.raises(MetricError, match="shape"):
        pearson_per_record(np.zeros((1, 4, 1)), np.zeros((1, 5, 1)))


def test_bootstrap_ci_contains_estimate_and_narrows():
    rng = np.random.default_rng(1)
    v = rng.normal(0.8, 0.1, size=200)
    ci = bootstrap_ci(v, n_boot=500)
    assert ci["lo"] < ci["mean"] < ci["hi"] and ci["mean"] == pytest.approx(v.mean())
    assert ci["hi"] - ci["lo"] == pytest.approx(2 * 1.96 * v.std() / np.sqrt(200), rel=0.25)
    assert bootstrap_ci([np.nan, 1.0, 1.0])["n"] == 2
    assert np.isnan(bootstrap_ci([np.nan])["mean"])


def test_summarize_lead_average():
    pr = np.array([[1.0, 0.0], [0.5, np.nan]])
    s = summarize(pr, ["A", "B"], n_boot=50)
    assert s["A"]["mean"] == pytest.approx(0.75)
    assert s["B"]["n"] == 1
    assert s["mean"]["mean"] == pytest.approx((0.5 + 0.5) / 2)


def test_spearman_hand_value():
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(0.8207826816681233)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_segment_masks_from_peaks_cap_at_next_beat():
    qrs, t = segment_masks_from_peaks(np.array([20, 60]), 100, 100.0)
    assert qrs[15:26].all() and not qrs[14] and not qrs[26]
    # T after beat 1: [35, 60] capped at next QRS onset (55); after beat 2: [75, 100]
    assert t[35:55].all() and not t[55] and not t[34] and t[75:100].all()


def test_segment_masks_from_annotations_rescale():
    ann = {"QRS": np.array([[100, 110, 150]]), "T": np.array([[300, 350, 400]])}
    qrs, t = segment_masks_from_annotations(ann, 100, scale=0.2, offset=5)
    assert np.flatnonzero(qrs).tolist() == list(range(15, 26))
    assert np.flatnonzero(t).tolist() == list(range(55, 76))


def test_amplitude_fidelity_detects_regression_to_mean():
    true = np.linspace(0.5, 2.5, 30)
    shrunk = 1.5 + 0.5 * (true - 1.5)
    fit = amplitude_fidelity(true, shrunk)
    assert fit["slope"] == pytest.approx(0.5) and fit["r2"] == pytest.approx(1.0)
    x = np.zeros(100)
    x[[20, 60]] = [1.0, 2.0]
    assert r_wave_amplitude(x, np.array([21, 59]), 100.0) == pytest.approx(1.5)


def test_spread_error_curve_on_calibrated_gaussian():
    rng = np.random.default_rng(2)
    std = rng.uniform(0.05, 0.5, 50000)
    err = np.abs(rng.normal(0, std))
    curve = spread_error_curve(std, err, n_bins=5)
    np.testing.assert_allclose(curve["rmse"], curve["std"], rtol=0.1)
    u = uncertainty_metrics(std.reshape(50, 1000, 1), err.reshape(50, 1000, 1), ["X"])
    assert u["spearman_sample"]["X"] > 0.3


def test_paired_difference_is_over_the_shared_records_and_tighter_than_two_cis():
    """Mean of a - b over the records both score (by hand), and when the records' own spread
    is shared by both models, the paired CI excludes 0 while the two unpaired CIs overlap."""
    from training.metrics import paired_difference

    d = paired_difference({"x": 0.8, "y": 0.6, "z": np.nan, "v": None},
                          {"x": 0.7, "y": 0.65, "w": 0.9, "z": 0.5, "v": 0.5})
    assert d["n"] == 2 and d["mean"] == pytest.approx(0.025)
    rng = np.random.default_rng(1)
    base = rng.uniform(0.3, 0.95, 300)  # records differ a lot, both models alike
    a = {f"r{i}": v + 0.01 + rng.normal(0, 0.01) for i, v in enumerate(base)}
    b = {f"r{i}": v for i, v in enumerate(base)}
    ca, cb = bootstrap_ci(list(a.values())), bootstrap_ci(list(b.values()))
    assert ca["lo"] < cb["hi"]  # unpaired: overlapping
    pd = paired_difference(a, b)
    assert pd["lo"] > 0 and pd["mean"] == pytest.approx(0.01, abs=0.003)
