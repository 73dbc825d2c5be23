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
