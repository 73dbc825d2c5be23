"""Scale calibration of MC-dropout spread reaches nominal coverage; bad input is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.calibration import (
    CalibrationError,
    calibration_dict,
    coverage,
    fit_flag_thresholds,
    fit_scale_calibration,
    load_calibration,
    save_calibration,
    z_value,
)


def _synthetic(n: int = 20000, true_scale=(0.5, 1.0, 2.0), seed: int = 0):
    """Gaussian errors whose true sd is ``true_scale`` x the predicted std."""
    rng = np.random.default_rng(seed)
    std = rng.uniform(0.02, 0.2, size=(n, len(true_scale)))
    err = rng.normal(0.0, 1.0, size=std.shape) * std * np.asarray(true_scale)
    return std, np.abs(err)


def test_z_value_for_90_percent():
    assert z_value(0.9) == pytest.approx(1.6449, abs=1e-3)


def test_scale_recovers_true_miscalibration_and_nominal_coverage():
    std, err = _synthetic()
    scale = fit_scale_calibration(std, err, nominal=0.9)
    np.testing.assert_allclose(scale, [0.5, 1.0, 2.0], rtol=0.05)
    before = coverage(std, err, 1.0, 0.9)
    after = coverage(std, err, scale, 0.9)
    assert before[0] > 0.99 and before[2] < 0.65  # over- and under-confident leads
    np.testing.assert_allclose(after, 0.9, atol=0.005)
    # a fresh draw from the same process is covered at nominal too (generalises)
    std2, err2 = _synthetic(seed=1)
    np.testing.assert_allclose(coverage(std2, err2, scale, 0.9), 0.9, atol=0.02)


def test_works_on_window_shaped_arrays():
    std, err = _synthetic(n=6000)
    scale = fit_scale_calibration(std.reshape(3, 2000, 3), err.reshape(3, 2000, 3))
    np.testing.assert_allclose(scale, fit_scale_calibration(std, err))


def test_flag_thresholds_are_quantiles_of_calibrated_std():
    std = np.tile(np.arange(1, 101, dtype=float)[:, None], (1, 2))
    thr = fit_flag_thresholds(std, scale=[1.0, 2.0], quantile=0.95)
    q = np.quantile(std[:, 0], 0.95)
    np.testing.assert_allclose(thr, [q, 2 * q])


def test_roundtrip_and_validation(tmp_path):
    std, err = _synthetic(n=2000, true_scale=(1.0,) * 7)
    cal = calibration_dict(std, err)
    assert cal["method"] == "scale" and len(cal["scale"]) == 7 and len(cal["flag_std_mv"]) == 7
    save_calibration(cal, tmp_path)
    assert load_calibration(tmp_path)["scale"] == cal["scale"]
    assert load_calibration(tmp_path / "nowhere") is None
    (tmp_path / "calibration.json").write_text(json.dumps({"method": "scale", "scale": [1.0]}))
    with pytest.raises(CalibrationError, match="scale"):
        load_calibration(tmp_path)


@pytest.mark.parametrize("std, err, match", [
    (np.ones((4, 2)), np.ones((4, 3)), "shape"),
    (np.ones((4, 2)), np.full((4, 2), np.nan), "non-finite"),
    (-np.ones((4, 2)), np.ones((4, 2)), "negative"),
    (np.ones((0, 2)), np.ones((0, 2)), "no samples"),
])
def test_bad_input_is_named(std, err, match):
    with pytest.raises(CalibrationError, match=match):
        fit_scale_calibration(std, err)


def test_bad_nominal():
    with pytest.raises(CalibrationError, match="nominal"):
        fit_scale_calibration(np.ones((3, 1)), np.ones((3, 1)), nominal=1.5)


def test_balanced_quantile_weights_each_corpus_equally() -> None:
    from training.calibration import balanced_quantile

    # corpus A: 1000 records with ratios 0.001 .. 1.0; corpus B: 10 records, 2.0 .. 2.9.
    # Equal weight: A holds the first half of the mass, each B record 5 %, so the 0.88
    # quantile is B's 8th value (0.5 + 8 * 0.05 = 0.90 >= 0.88 > 0.85) and the 0.4 quantile
    # A's 800th; pooled, both would lie inside A.
    v = np.concatenate([np.arange(1, 1001) / 1000.0, 2.0 + np.arange(10) / 10])[:, None, None]
    g = ["A"] * 1000 + ["B"] * 10
    np.testing.assert_allclose(balanced_quantile(v, g, 0.88), [2.7])
    np.testing.assert_allclose(balanced_quantile(v, g, 0.4), [0.8])
    assert np.quantile(v[:, 0, 0], 0.88) < 1.0


def test_corpus_robust_scale_lies_between_pooled_and_balanced() -> None:
    from training.calibration import balanced_quantile, fit_corpus_robust_scale, z_value

    rng = np.random.default_rng(3)
    std = np.ones((60, 50, 2))
    err = np.abs(rng.normal(size=(60, 50, 2)))
    err[50:] *= 3.0  # a small corpus that errs more than its std says
    groups = ["big"] * 50 + ["small"] * 10
    pooled = fit_scale_calibration(std, err)
    balanced = balanced_quantile(err / std, groups, 0.9) / z_value(0.9)
    robust = fit_corpus_robust_scale(std, err, groups)
    np.testing.assert_allclose(robust, np.sqrt(pooled * balanced))
    assert (pooled < robust).all() and (robust < balanced).all()
    # one corpus only: the pooled fit
    np.testing.assert_allclose(fit_corpus_robust_scale(std, err, ["big"] * 60), pooled)
