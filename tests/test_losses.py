"""The training loss terms, checked against properties of the Pearson r and the std."""

from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")


def _loss(y_true: np.ndarray, mu: np.ndarray, **kw: float) -> np.ndarray:
    from training.model import beta_nll

    k = y_true.shape[-1]
    y_pred = np.concatenate([mu, np.full_like(mu, -3.0)], axis=-1)  # a fixed log-variance
    return np.asarray(beta_nll(k, 1.0, **kw)(y_true, y_pred))


def test_correlation_term_is_w_times_one_minus_r() -> None:
    rng = np.random.default_rng(0)
    y = rng.standard_normal((3, 200, 2)).astype(np.float32)
    base = _loss(y, y)
    # r = 1 for any positive affine copy, -1 for a negated one, 0 for an orthogonal one
    for mu, r in ((y, 1.0), (-y, -1.0)):
        extra = _loss(y, mu, correlation=0.5) - _loss(y, mu)
        np.testing.assert_allclose(extra, 0.5 * (1.0 - r), atol=1e-5)
    scaled = 3.0 * y + 1.0
    np.testing.assert_allclose(_loss(y, scaled, correlation=0.5) - _loss(y, scaled), 0.0,
                               atol=1e-5)
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False, dtype=np.float32)
    ys, yc = np.sin(t)[None, :, None], np.cos(t)[None, :, None]  # orthogonal over a period
    np.testing.assert_allclose(_loss(ys, yc, correlation=0.2) - _loss(ys, yc), 0.2, atol=1e-5)
    assert base.shape == (3, 200)


def test_amplitude_term_is_the_squared_std_gap() -> None:
    y = np.random.default_rng(1).standard_normal((2, 300, 3)).astype(np.float32)
    half = 0.5 * y
    gap = (0.5 * y.std(axis=1)) ** 2  # std(y) - std(y / 2) = std(y) / 2, per window and lead
    extra = _loss(y, half, amplitude=2.0) - _loss(y, half)
    np.testing.assert_allclose(extra, 2.0 * gap.mean(axis=-1)[:, None].repeat(300, 1),
                               rtol=1e-4)


def test_correlation_loss_config(tmp_path) -> None:
    from training.config import ConfigError, TrainConfig

    base = TrainConfig.load("training/configs/default.json")
    run = json.loads(open("training/runs/default/run.json").read())
    assert base.sha256() == run["config_sha256"]  # the new field leaves old hashes alone
    raw = json.loads(open("training/configs/default.json").read())
    raw["model"]["correlation_loss"] = 0.05
    assert TrainConfig.from_dict(raw).sha256() != base.sha256()
    raw["model"]["correlation_loss"] = -1.0
    with pytest.raises(ConfigError, match="correlation_loss"):
        TrainConfig.from_dict(raw, "cfg.json")


def test_all11_correlation_term_scores_the_derived_leads_too() -> None:
    """With ``correlation_leads="all11"`` the term is w · mean(1 − r) over the 11 leads the
    gateway outputs (III, aVR, aVL, aVF built from II and Lead I by edge.leads, the
    reference here), with Lead I riding in y_true's last channel; the NLL part and the MSE
    metric ignore that channel."""
    from edge.leads import assemble_12_lead
    from training.model import beta_nll, mean_mse

    rng = np.random.default_rng(1)
    n, L = 2, 300
    y = rng.standard_normal((n, L, 7)).astype(np.float32)
    mu = (y + 0.7 * rng.standard_normal((n, L, 7))).astype(np.float32)
    lead_i = rng.standard_normal((n, L)).astype(np.float32)
    y_pred = np.concatenate([mu, np.full_like(mu, -3.0)], axis=-1)
    y_fit = np.concatenate([y, lead_i[..., None]], axis=-1)
    got = np.asarray(beta_nll(7, 1.0, correlation=0.4, correlation_leads="all11")(y_fit, y_pred))
    plain = np.asarray(beta_nll(7, 1.0)(y, y_pred))
    for b in range(n):
        t12, p12 = assemble_12_lead(lead_i[b], y[b]), assemble_12_lead(lead_i[b], mu[b])
        r = [np.corrcoef(t12[:, j], p12[:, j])[0, 1] for j in range(1, 12)]
        np.testing.assert_allclose(got[b] - plain[b], 0.4 * (1 - np.mean(r)), atol=1e-4)
    np.testing.assert_allclose(np.asarray(mean_mse(7)(y_fit, y_pred)),
                               np.asarray(mean_mse(7)(y, y_pred)), rtol=1e-6)


def test_all11_needs_what_it_derives_from(tmp_path) -> None:
    from training.config import ConfigError, TrainConfig
    from training.dataset import fit_target

    raw = json.loads(open("training/configs/default.json").read())
    raw["model"]["correlation_leads"] = "all11"
    cfg = TrainConfig.from_dict(raw)
    raw["model"]["correlation_leads"] = "predicted"
    plain = TrainConfig.from_dict(raw)
    assert cfg.sha256() != plain.sha256()
    raw["model"].pop("correlation_leads")  # the default: older runs keep their hash
    assert TrainConfig.from_dict(raw).sha256() == plain.sha256()
    y, lead_i = np.zeros((3, 8, 7), np.float32), np.ones((3, 8), np.float32)
    assert fit_target(plain, y, lead_i) is y
    assert fit_target(cfg, y, lead_i).shape == (3, 8, 8)
    assert (fit_target(cfg, y, lead_i)[..., 7] == 1).all()
    for key, value in (("correlation_leads", "chest"), ("correlation_loss", 0.0),
                       ("outputs", "all11")):
        bad = json.loads(json.dumps(raw))
        bad["model"]["correlation_leads"] = "all11"
        bad["model"][key] = value
        with pytest.raises(ConfigError, match="correlation_leads"):
            TrainConfig.from_dict(bad, "cfg.json")


def test_selection_loss_adds_the_correlation_term_only_when_trained_with_one() -> None:
    """Best weights of a correlation-weighted run go by MSE + w·(1 − r): a later epoch with
    a slightly higher MSE but a higher r wins, as the training objective says."""
    from training.train import mean_pearson, selection_loss

    assert selection_loss(0.03, None, 0.0) == 0.03  # plain runs: MSE, as before
    early, late = selection_loss(0.0284, 0.770, 0.3), selection_loss(0.0293, 0.776, 0.3)
    assert late < early  # 0.0293 + 0.3 * 0.224 < 0.0284 + 0.3 * 0.230
    assert selection_loss(0.02, 1.0, 0.5) == 0.02
    with pytest.raises(ValueError, match="validation r"):
        selection_loss(0.02, None, 0.1)
    t = np.sin(np.linspace(0, 6, 50))[None, :, None].repeat(2, axis=2)
    p = t.copy()
    p[..., 1] = -t[..., 1]  # one lead perfect, one inverted
    assert mean_pearson(t, p) == pytest.approx(0.0)
    p[..., 1] = 0.0  # a flat prediction counts as r = 0
    assert mean_pearson(t, p) == pytest.approx(0.5)


def test_a_baseline_without_a_variance_head_gets_the_same_correlation_term() -> None:
    """The U-Net's loss with a correlation term is MSE + w · mean(1 − r), over the same 11
    leads as the default's (so "trained the same way" holds); without one it stays MSE."""
    from training.config import TrainConfig
    from training.model import build_model, mse_corr, with_derived

    rng = np.random.default_rng(2)
    y = rng.standard_normal((2, 120, 7)).astype(np.float32)
    mu = (y + rng.standard_normal((2, 120, 7))).astype(np.float32)
    lead_i = rng.standard_normal((2, 120)).astype(np.float32)
    y_fit = np.concatenate([y, lead_i[..., None]], axis=-1)
    got = np.asarray(mse_corr(7, 0.3, "all11")(y_fit, mu))
    t11, p11 = (np.asarray(with_derived(a, lead_i)) for a in (y, mu))
    r = np.array([[np.corrcoef(t11[b, :, j], p11[b, :, j])[0, 1] for j in range(11)]
                  for b in range(2)])
    want = ((y - mu) ** 2).mean(-1) + 0.3 * (1 - r.mean(-1))[:, None]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    raw = json.loads(open("training/configs/sweep/unet_cos.json").read())
    assert build_model(TrainConfig.from_dict(raw)).loss == "mse"
    raw.setdefault("model", {}).update(correlation_loss=0.3, correlation_leads="all11")
    assert build_model(TrainConfig.from_dict(raw)).loss.__name__ == "mse_corr"
