"""MC prediction, the linear baseline, and end-to-end evaluation of a tiny run folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("keras", reason="training.mc needs TensorFlow/Keras")

from edge.leads import RECONSTRUCTED  # noqa: E402
from training.baselines import BaselineError, LinearBaseline  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.mc import PredictionError, mc_predict, predict, to_12_lead  # noqa: E402

TINY = {"name": "tiny", "seed": 0, "epochs": 1, "batch_size": 8,
        "model": {"kind": "edge", "conv_filters": 4, "down_filters": 4, "lstm_units": 4,
                  "meta_units": [4, 4], "head_filters": 4},
        "data": {"limit_per_source": 12, "window_s": 4.0, "hop_s": 1.0}}


@pytest.fixture(scope="module")
def tiny():
    from training.model import build_model

    cfg = TrainConfig.from_dict(TINY)
    return cfg, build_model(cfg)


def test_mc_predict_spread_and_determinism(tiny):
    cfg, model = tiny
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, cfg.window, 1)).astype(np.float32)
    m = np.zeros((3, model.inputs[1].shape[1]), np.float32)
    mean, std = mc_predict(model, x, m, T=4, seed=1, batch=8)
    assert mean.shape == std.shape == (3, cfg.window, 7)
    assert (std > 0).mean() > 0.5  # dropout is active
    mean2, std2 = mc_predict(model, x, m, T=4, seed=1, batch=8)
    np.testing.assert_allclose(std, std2, rtol=1e-5, atol=1e-6)  # same seed, same draw
    _, std3 = mc_predict(model, x, m, T=4, seed=2, batch=8)
    assert not np.allclose(std, std3)  # another seed, another draw
    det = predict(model, x, m)  # an edge model's MC mean is exact: the deterministic pass
    np.testing.assert_allclose(mean, det, rtol=1e-4, atol=1e-5)
    with pytest.raises(PredictionError, match="T >= 2"):
        mc_predict(model, x, m, T=1)
    with pytest.raises(PredictionError, match="meta"):
        predict(model, x, m[:2])


def test_to_12_lead_derives_limb_leads():
    rng = np.random.default_rng(1)
    lead_i = rng.normal(size=(2, 10, 1)).astype(np.float32)
    out = rng.normal(size=(2, 10, 7)).astype(np.float32)
    std = np.abs(out)
    leads, s12 = to_12_lead(lead_i, out, "independent", std)
    np.testing.assert_allclose(leads[:, :, 2], out[:, :, 0] - lead_i[:, :, 0], rtol=1e-6)
    np.testing.assert_allclose(s12[:, :, 3], std[:, :, 0] / 2)  # aVR
    assert (s12[:, :, 0] == 0).all()
    leads11, _ = to_12_lead(lead_i, rng.normal(size=(2, 10, 11)), "all11")
    assert leads11.shape == (2, 10, 12)


def test_linear_baseline_recovers_fir():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 200, 1))
    y = np.empty((4, 200, 2))
    y[:, :, 0] = 2.0 * x[:, :, 0] + 0.5
    y[:, :, 1] = np.roll(x[:, :, 0], 1, axis=1)  # one-sample delay
    y[:, 0, 1] = x[:, 0, 0]  # match edge padding at the start
    base = LinearBaseline.fit(x, y, lag=2, ridge=0.0)
    np.testing.assert_allclose(base.predict(x), y, atol=1e-6)
    with pytest.raises(BaselineError, match="does not match"):
        LinearBaseline.fit(x, y[:2])


@pytest.mark.needs_data
def test_evaluate_run_end_to_end(tiny, tmp_path, data_root, monkeypatch):
    from training.evaluate import EvaluationError, compare_runs, evaluate_run

    monkeypatch.setenv("ECG12_DATA", str(data_root))
    cfg, model = tiny
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(EvaluationError, match="config.json"):
        evaluate_run(run, mc_samples=3, quick=True, progress=False)
    cfg.save(run / "config.json")
    model.save_weights(run / "best.weights.h5")
    (run / "calibration.json").write_text(json.dumps(
        {"method": "scale", "scale": [2.0] * 7, "flag_std_mv": [0.1] * 7}))
    res = evaluate_run(run, mc_samples=3, quick=True, progress=False)

    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["regimes"]) == {"none", "wearable", "clinical"}
    overall = metrics["regimes"]["wearable"]["overall"]
    assert overall["n_records"] > 0
    for seg in ("whole", "qrs", "t"):
        assert set(overall[seg]["pearson"]) == {*RECONSTRUCTED, "mean"}
        ci = overall[seg]["rmse"]["mean"]
        assert ci["lo"] <= ci["mean"] <= ci["hi"]
    assert "linear" in metrics["baselines"] and set(metrics["amplitude_fidelity"]["model"]) == {
        "V1", "V2", "V3", "V4", "V5", "V6"}
    u = metrics["uncertainty"]
    assert u["calibrated"] and u["scale"] == [2.0] * 7
    assert u["coverage_after"]["mean"] >= u["coverage_before"]["mean"]  # wider intervals
    assert set(u["spearman_sample"]) == {*RECONSTRUCTED, "mean"}
    report = (run / "report.md").read_text()
    for heading in ("## Accuracy", "## By corpus and metadata regime", "## Linear baseline",
                    "## Amplitude fidelity", "## Uncertainty", "## Figures"):
        assert heading in report
    for rel in res["figures"].values():
        assert (run / rel).is_file() and rel in report
    assert {"typical", "atypical", "calibration"} <= set(res["figures"])
    table = compare_runs([run], tmp_path / "compare.md").read_text()
    assert "linear baseline" in table and "run (edge, independent)" in table
    # per-record r (wearable) is what a paired comparison needs: it is the overall mean
    per = metrics["per_record"]["r_mean_11"]
    assert len(per) == overall["n_records"]
    assert np.nanmean(list(per.values())) == pytest.approx(
        overall["whole"]["pearson"]["mean"]["mean"], rel=1e-6)
    twin = tmp_path / "twin"
    twin.mkdir()
    twin_metrics = json.loads(json.dumps(metrics))
    twin_metrics["run"] = "twin"
    twin_metrics["per_record"]["r_mean_11"] = {k: v - 0.01 for k, v in per.items()}
    (twin / "metrics.json").write_text(json.dumps(twin_metrics))
    both = compare_runs([run, twin], tmp_path / "compare.md").read_text()
    assert f"- twin: +0.0100 [+0.0100, +0.0100] ({len(per)} records)" in both


def test_stitched_comparison_overlap_adds_every_gateway_window(data_root, monkeypatch):
    """A stand-in model that outputs 0.5 x its Lead I for every lead: stitched back, each
    record's output is exactly half its own Lead I wherever a window ran (a window put at the
    wrong start would not be), and r against that record's own truth is computed as scipy's."""
    from scipy.stats import pearsonr

    import training.mc
    from training.compare_stitched import record_r, stitched
    from training.dataset import prepare_corpora

    monkeypatch.setenv("ECG12_DATA", str(data_root))
    cfg = TrainConfig.from_dict({**TINY, "data": {**TINY["data"], "hop_s": 0.5}})
    preps = prepare_corpora(cfg, progress=False)["test"][:4]
    monkeypatch.setattr(training.mc, "predict",
                        lambda model, lead_i, meta: np.repeat(0.5 * lead_i, 7, axis=2))
    outs = stitched(cfg, None, preps, "wearable")
    for p, o in zip(preps, outs, strict=True):
        n_cov = len(p.leads12)  # the end-aligned window covers the tail
        np.testing.assert_allclose(o[:n_cov, 1], 0.5 * p.leads12[:, 0], atol=1e-5)
        np.testing.assert_allclose(o[:, 0], p.leads12[:, 0], atol=1e-5)
        a, b = int(cfg.data.fs_hz), len(p.truth12) - int(cfg.data.fs_hz)
        with np.errstate(all="ignore"):  # aVF = (II + III) / 2 is flat here: r undefined
            want = np.nanmean([pearsonr(o[a:b, j], p.truth12[a:b, j]).statistic
                               for j in range(1, 12) if np.ptp(o[a:b, j]) > 0])
        assert record_r(o, p.truth12, cfg.data.fs_hz) == pytest.approx(want, abs=1e-6)
