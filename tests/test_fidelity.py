"""Expected fidelity (edge.fidelity) and its validation-fitted flag threshold."""

from __future__ import annotations

import numpy as np
import pytest

from edge.fidelity import expected_r


def test_expected_r_by_hand() -> None:
    """A sine of amplitude a has sd a/sqrt(2); with error std s: r = sd / sqrt(sd^2 + s^2)."""
    t = np.arange(800) / 100.0
    a = np.array([1.0, 0.2, 0.05])
    s = np.array([0.1, 0.1, 0.1])
    mean = a[None, :] * np.sin(2 * np.pi * 1.0 * t)[:, None]
    std = np.broadcast_to(s, mean.shape)
    sd = a / np.sqrt(2)
    want = np.mean(sd / np.sqrt(sd ** 2 + s ** 2))
    assert expected_r(mean, std) == pytest.approx(want, rel=1e-3)
    assert expected_r(np.zeros_like(mean), std) == 0.0  # a flat prediction: no fidelity
    assert expected_r(mean, np.zeros_like(std)) == pytest.approx(1.0)
    # an offset (baseline) changes neither the prediction's sd over time nor its fidelity
    assert expected_r(mean + np.array([0.5, -2.0, 3.0]), std) == pytest.approx(want, rel=1e-3)


def test_expected_r_matches_the_measured_r_of_a_noisy_truth() -> None:
    """truth = prediction + N(0, std): the measured Pearson r (numpy) is what it expects."""
    rng = np.random.default_rng(0)
    t = np.arange(5000) / 100.0
    mean = np.stack([np.sin(2 * np.pi * t), 0.3 * np.sin(2 * np.pi * 3 * t)], axis=1)
    std = np.full_like(mean, 0.25)
    truth = mean + rng.normal(0, 0.25, mean.shape)
    measured = np.mean([np.corrcoef(mean[:, k], truth[:, k])[0, 1] for k in range(2)])
    assert expected_r(mean, std) == pytest.approx(measured, abs=0.01)
    batch = np.stack([mean, 2 * mean])
    assert expected_r(batch, np.stack([std, std])).shape == (2,)


def test_fidelity_threshold_is_the_budget_quantile_over_good_windows() -> None:
    pytest.importorskip("scipy", reason="training.calibration needs scipy")
    from training.calibration import CalibrationError, fit_fidelity_threshold

    rng = np.random.default_rng(1)
    t = np.arange(400) / 100.0
    n = 200
    amp = rng.uniform(0.05, 1.0, (n, 1, 1))
    mean = amp * np.sin(2 * np.pi * t)[None, :, None] * np.ones((1, 1, 3))
    std = np.full(mean.shape, 0.1)
    target = mean + rng.normal(0, 0.1, mean.shape)
    thr = fit_fidelity_threshold(mean, std, target, budget=0.1)
    p, q = mean - mean.mean(1, keepdims=True), target - target.mean(1, keepdims=True)
    r = ((p * q).sum(1) / np.sqrt((p * p).sum(1) * (q * q).sum(1))).mean(1)
    good = expected_r(mean, std)[r > 0.8]
    assert thr == pytest.approx(np.quantile(good, 0.1))
    assert 0.08 <= (good < thr).mean() <= 0.12
    with pytest.raises(CalibrationError, match="budget"):
        fit_fidelity_threshold(mean, std, target, budget=1.5)
    with pytest.raises(CalibrationError, match="too few"):
        fit_fidelity_threshold(mean[:5], std[:5], target[:5])
