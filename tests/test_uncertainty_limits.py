"""training.uncertainty_limits: its measures by hand, and on real records the product path's
own numbers (the same r as training.evaluate_edge)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from training import uncertainty_limits as ul


def _rows(n: int, seed: int, err_of) -> dict[str, np.ndarray]:
    """``n`` synthetic records: std, amplitudes and r drawn at random, error ``err_of(a)``."""
    rng = np.random.default_rng(seed)
    a = {"std": rng.uniform(0.02, 0.2, (n, 12)), "pred_amp": rng.uniform(0.05, 1.0, (n, 12)),
         "true_amp": rng.uniform(0.05, 1.0, (n, 12)), "expected_r": rng.uniform(0.5, 0.95, n),
         "flag_share": rng.uniform(0, 1, n), "r": rng.uniform(-0.2, 1.0, (n, 12)),
         "flagged": (rng.random(n) < 0.3).astype(float)}
    a["abs_err"] = err_of(a)
    return a


def test_chest_spearman_reads_v1_to_v6_only() -> None:
    score = np.tile(np.arange(20.0)[:, None], (1, 12))
    err = score.copy()
    err[:, :6] = -err[:, :6]  # limb leads reversed: not part of the chest mean
    assert ul.chest_spearman(score, err) == pytest.approx(1.0)
    err[:, 6:] = -err[:, 6:]
    assert ul.chest_spearman(score, err) == pytest.approx(-1.0)


def test_catch_at_uses_the_good_fitting_records_quantile() -> None:
    # fitting: ten good records scored 0..9 -> 0.9 quantile 8.1 (numpy's linear method);
    # the bad and middling fitting records do not move it
    fit_score = np.concatenate([np.arange(10.0), [100.0, 50.0]])
    fit_r = np.concatenate([np.full(10, 0.9), [0.2, 0.7]])
    score = np.array([9.0, 5.0, 1.0, 8.5, 7.0])
    r = np.array([0.3, 0.4, 0.9, 0.95, 0.6])  # two bad, two good, one neither
    c = ul.catch_at(fit_score, fit_r, score, r)
    assert c == {"threshold": pytest.approx(8.1), "catch_rate": 0.5, "false_flag_rate": 0.5}


def test_recalibration_learns_a_relation_the_raw_std_gets_backwards() -> None:
    def err(a):  # error grows with the predicted amplitude and shrinks with the std
        return a["pred_amp"] ** 2 / a["std"]

    fit, test = _rows(300, 0, err), _rows(300, 1, err)
    assert ul.chest_spearman(test["std"], test["abs_err"]) < 0
    assert ul.recalibrated_chest_spearman(fit, test) == pytest.approx(1.0, abs=1e-6)


def test_oracle_bound_is_perfect_when_the_error_is_the_true_amplitude() -> None:
    a = _rows(100, 2, lambda a: a["true_amp"] * 0.1)
    assert ul.oracle_chest_spearman(a) == pytest.approx(1.0)
    assert ul.chest_spearman(a["true_amp"], a["abs_err"]) == pytest.approx(1.0)


def test_axis_failures_by_hand() -> None:
    r = np.full((4, 12), 0.9)
    r[0, 2] = -0.3  # III inverted, chest fine: an axis failure
    r[1, 5] = -0.1  # aVF inverted, chest fine: one too
    r[2, 2], r[2, 6:] = -0.5, 0.2  # III inverted but the chest fails too: not
    a = {"r": r}
    assert ul.axis_failures(a, np.ones(4, bool)).tolist() == [True, True, False, False]
    assert ul.axis_failures(a, np.array([False, True, True, True])).tolist() == [
        False, True, False, False]


@pytest.mark.parametrize(("argv", "named"), [
    (["--limit", "0"], "--limit must be >= 1, got 0"),
    (["--probe-train", "3"], "--probe-train must be >= 10, got 3"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv: list[str], named: str) -> None:
    res = subprocess.run([sys.executable, "-m", "training.uncertainty_limits", *argv],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert named in res.stderr.strip().splitlines()[-1]


@pytest.mark.needs_data
def test_rows_are_the_product_path_scored_like_evaluate_edge(data_root) -> None:
    from training.evaluate_edge import evaluate_edge

    rows = ul.record_rows(None, "test", 4, progress=False)
    ref = evaluate_edge(limit=4, mc_samples=30, progress=False, profile="wearable")
    assert [r["key"] for r in rows] == ref["record_keys"]
    got = np.nanmean([r["r"][1:] for r in rows])
    assert got == pytest.approx(ref["r_mean_11"], abs=1e-9)
    for r in rows:
        assert r["flagged"] == (r["flag_share"] > 0)
        assert 0.0 <= r["flag_share"] <= 1.0 and np.all(np.array(r["std"][1:]) > 0)


def test_auc_by_hand() -> None:
    pos = np.array([True, True, False, False])
    # pairs: 3>1, 3>2, 2>1, 2=2 (half) -> 3.5 / 4
    assert ul.auc(np.array([3.0, 2.0, 1.0, 2.0]), pos) == pytest.approx(0.875)
    assert ul.auc(np.array([np.nan, 2.0, 1.0, 2.0]), pos) == pytest.approx(0.75)  # NaN out
    assert ul.auc(np.array([1.0, 2.0]), np.array([True, True])) is None


def test_logistic_fit_recovers_known_weights() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20000, 2))
    p = 1 / (1 + np.exp(-(2.0 * x[:, 0] - 1.0 * x[:, 1] + 0.5)))
    y = (rng.random(20000) < p).astype(float)
    w = ul.logistic_fit(x, y, lam=1e-3)
    np.testing.assert_allclose(w, [2.0, -1.0, 0.5], atol=0.1)
    assert np.abs(ul.logistic_fit(x, y, lam=1e6)[:2]).max() < 0.01  # penalised to ~0


def test_window_targets_by_hand() -> None:
    r = np.full((3, 12), 0.9)
    r[0, 5] = -0.2  # aVF inverted, the rest fine
    r[1, 1:] = 0.3  # everything poor, nothing inverted
    t = ul.window_targets(r)
    assert t["inferior lead inverted"].tolist() == [True, False, False]
    assert t["window r < 0.5"].tolist() == [False, True, False]


def test_probe_finds_a_failure_its_features_carry_and_not_one_they_do_not() -> None:
    rng = np.random.default_rng(4)

    def windows(n: int) -> dict[str, np.ndarray]:
        f = rng.normal(size=(n, 5))
        r = np.full((n, 12), 0.9)
        r[rng.random(n) < 0.2, 1:] = 0.2  # poor windows at random
        r[f[:, 0] > 1.0, 2] = -0.5  # III inverted exactly when feature 0 is high
        return {"features": f, "r": r, "expected_r": rng.uniform(0.5, 1, n),
                "score": rng.normal(size=n)}

    res = ul.probe(windows(3000), {"test": windows(1000)}, lam=1.0)
    assert res["inferior lead inverted"]["test"]["probe"] > 0.98
    assert abs(res["window r < 0.5"]["test"]["probe"] - 0.5) < 0.06
    assert abs(res["inferior lead inverted"]["test"]["atypicality"] - 0.5) < 0.08


@pytest.mark.parametrize("module", ["training.uncertainty_limits", "training.evaluate_edge"])
def test_a_missing_bundle_is_one_line_and_exit_1(module: str, tmp_path) -> None:
    res = subprocess.run([sys.executable, "-m", module, "--bundle", str(tmp_path / "nope")],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no bundle manifest at ") and "nope" in last, res.stderr


def test_record_classifier_separates_what_no_single_score_does() -> None:
    def rows(seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        a = _rows(600, seed, lambda a: a["std"])
        # bad where a low expected r and a small Lead I amplitude come together
        z = (1.0 - a["expected_r"]) / 0.45 - np.log(a["pred_amp"][:, 0]) / 3.0
        return a, np.where(z > np.quantile(z, 0.8), 0.3, 0.9)

    (fit, r_fit), (test, r) = rows(10), rows(11)
    c = ul.classifier_catch(fit, r_fit, test, r)
    assert c["catch_rate"] > 0.9 and c["false_flag_rate"] < 0.2
    single = ul.record_scores(test)
    fit_single = ul.record_scores(fit)
    for k in ("1 - expected r", "1 / Lead I amplitude (axis ambiguity)"):
        assert ul.catch_at(fit_single[k], r_fit, single[k], r)["catch_rate"] < 0.8
