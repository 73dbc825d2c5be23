"""Atypicality of a window's Lead I (edge.atypicality): the score against an independent
Mahalanobis distance, the fit against a known Gaussian, the flag risk's threshold, the
manifest form and its refusals, the gateway flag, and the window grid training copies."""

from __future__ import annotations

import base64
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from bundle_fixture import TRUNK_CHANNELS, synthetic_lead_i, tiny_manifest, write_tiny_bundle

from edge.atypicality import Atypicality, pool
from edge.bundle import Bundle
from edge.chunk import Chunk
from edge.errors import BundleInvalid
from edge.manifest import validate_manifest
from edge.pipeline import StreamingReconstructor
from edge.stages.window import WindowGrid
from training.calibration import CalibrationError, fit_atypicality_flag, fit_atypicality_model
from training.dataset import gateway_starts


def _model(d: int = 12, k: int = 3, seed: int = 0, **kw: float) -> Atypicality:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return Atypicality(rng.standard_normal(d), rng.uniform(0.5, 2.0, d), q[:, :k].T.copy(),
                       rng.uniform(2.0, 9.0, k), 0.7, **kw)


def test_pool_is_mean_std_and_max_abs_per_channel() -> None:
    f = np.array([[1.0, -4.0], [3.0, 2.0]])
    np.testing.assert_allclose(pool(f), [2.0, -1.0, 1.0, 3.0, 3.0, 4.0])
    g = np.tanh(np.random.default_rng(1).standard_normal((200, 128)) * 2).astype(np.float32)
    ref = g.astype(np.float64)  # trunk features (float32, in (-1, 1)) vs float64 moments
    want = np.concatenate([ref.mean(0), ref.std(0), np.abs(ref).max(0)])
    got = pool(g)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_score_is_the_mahalanobis_distance_of_the_low_rank_covariance() -> None:
    """log(y' C^-1 y) with C = V' diag(var) V + residual_var (I - V'V), inverted by numpy."""
    m = _model()
    v = m.components
    cov = v.T @ np.diag(m.variances) @ v + m.residual_var * (np.eye(12) - v.T @ v)
    rng = np.random.default_rng(1)
    for x in rng.standard_normal((5, 12)) * 3:
        y = (x - m.mean) / m.scale
        assert m.score(x) == pytest.approx(math.log(y @ np.linalg.inv(cov) @ y), rel=1e-9)


def test_fit_matches_a_known_gaussian_and_scores_an_outlier_high() -> None:
    """Fresh samples of the fitted Gaussian have mean d^2 = D (chi-square with D degrees of
    freedom); a point 8 sd out along a low-variance direction is far outside them."""
    rng = np.random.default_rng(2)
    d, k = 20, 4
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    sd = np.r_[[6.0, 5.0, 4.0, 3.0], np.ones(d - k)]
    sample = lambda n: (rng.standard_normal((n, d)) * sd) @ basis.T  # noqa: E731
    m = fit_atypicality_model(sample(20000), k)
    fresh = np.array([math.exp(m.score(x)) for x in sample(4000)])
    assert fresh.mean() == pytest.approx(d, rel=0.05)
    outlier = 8.0 * basis[:, -1]  # unit sd along it
    assert m.score(outlier) > np.log(np.quantile(fresh, 0.999))
    with pytest.raises(CalibrationError, match="0 < k < D"):
        fit_atypicality_model(sample(50), d)


def test_flag_threshold_flags_the_budget_of_good_records() -> None:
    """Two windows per record: references from the good windows (numpy by hand), threshold
    such that 10 % of the good records have a window above it."""
    rng = np.random.default_rng(3)
    n = 400
    er = rng.uniform(0.6, 0.95, 2 * n)
    sc = rng.normal(5.0, 0.6, 2 * n)
    r = np.repeat(rng.uniform(0.3, 1.0, n), 2)
    rec = np.repeat(np.arange(n), 2)
    m = fit_atypicality_flag(_model(), er, sc, r, rec, budget=0.1, weight=0.5)
    good = r > 0.8
    assert m.er_ref == pytest.approx(er[good].mean())
    assert m.score_spread == pytest.approx(sc[good].std())
    risk = (0.5 * (er[good].mean() - er) / er[good].std()
            + 0.5 * (sc - sc[good].mean()) / sc[good].std())
    flagged = (risk > m.threshold).reshape(n, 2).any(axis=1)
    good_rec = r[::2] > 0.8
    assert flagged[good_rec].mean() == pytest.approx(0.1, abs=1.5 / good_rec.sum())
    with pytest.raises(CalibrationError, match="too few"):
        fit_atypicality_flag(_model(), er[:10], sc[:10], r[:10], rec[:10])


def test_risk_by_hand() -> None:
    """Expected r 0.2 below its reference (2 spreads) and atypicality 1.0 above (2 spreads):
    risk 2 at equal weights; 2 * 0.25 + (-2) * 0.75 = -1 when the score is as far below."""
    m = _model(er_ref=0.8, er_spread=0.1, score_ref=5.0, score_spread=0.5)
    assert m.risk(0.6, 6.0) == pytest.approx(2.0)
    assert dataclasses.replace(m, weight=0.25).risk(0.6, 4.0) == pytest.approx(-1.0)


def test_json_round_trip() -> None:
    m = _model(weight=0.3, threshold=1.25, er_ref=0.8)
    back = Atypicality.from_dict(m.to_dict())
    for name in ("mean", "scale", "components", "variances"):
        np.testing.assert_allclose(getattr(back, name), getattr(m, name), rtol=1e-6)
    assert (back.weight, back.threshold, back.er_ref) == (0.3, 1.25, 0.8)
    x = np.random.default_rng(4).standard_normal(12)
    assert back.score(x) == pytest.approx(m.score(x), rel=1e-5)


def _tiny_atyp(threshold: float, d: int = 3 * TRUNK_CHANNELS) -> dict:
    return dataclasses.replace(_model(d, 4), threshold=threshold).to_dict()


def _bad(field: str, value: object) -> dict:
    a = _tiny_atyp(1.0)
    if "." in field:
        name, key = field.split(".")
        a[name] = dict(a[name], **{key: value})
    else:
        a[field] = value
    return a


@pytest.mark.parametrize(("atyp", "needle"), [
    (_bad("components.data", "@@@"), "uncertainty.atypicality.components.data: not valid"),
    (_bad("mean.data", base64.b64encode(b"1234").decode()),
     "uncertainty.atypicality.mean.data: 4 bytes for shape [48]"),
    (_bad("variances.data", base64.b64encode(np.array([1, -1, 1, 1], "<f4").tobytes())
          .decode()), "uncertainty.atypicality.variances: must be positive"),
    (_bad("scale.data", base64.b64encode(np.full(48, np.nan, "<f4").tobytes()).decode()),
     "uncertainty.atypicality.scale.data: holds NaN"),
    (_bad("weight", 1.5), "uncertainty.atypicality.weight: must lie in [0, 1]"),
    (_bad("threshold", "high"), "uncertainty.atypicality.threshold: expected a finite number"),
    (_bad("components", [1, 2]), "uncertainty.atypicality.components: expected"),
    (_tiny_atyp(1.0, d=30), "uncertainty.atypicality.mean: 30 pooled features, but the "
                            "trunk gives 16 channels (expected 48)"),
    ("yes", "uncertainty.atypicality: expected an object"),
])
def test_bad_atypicality_in_a_manifest_is_named(atyp: object, needle: str) -> None:
    with pytest.raises(BundleInvalid) as err:
        validate_manifest(tiny_manifest(atypicality=atyp))
    assert needle in str(err.value)


def test_gateway_flags_by_risk_whatever_the_chunking(tmp_path: Path) -> None:
    """With an atypicality model the window flag is the risk's (consecutive windows merge,
    the value is the highest risk); a threshold no window reaches raises none; the expected-r
    rule of the same manifest is not used; chunking does not change the flags."""
    fs = 100.0
    x = synthetic_lead_i(int(fs * 6), fs)

    def flags(bundle: Bundle, sizes: list[int]) -> list:
        rec = StreamingReconstructor(bundle, fs, mc_samples=4)
        out, i, c = [], 0, 0
        while i < len(x):
            m = sizes[c % len(sizes)]
            out += rec.push(Chunk(x[i:i + m], t0_s=i / fs, fs_hz=fs, seq=c))
            i, c = i + m, c + 1
        out += rec.flush()
        return [f for b in out for f in b.flags if f.kind == "high_uncertainty"]

    every = Bundle.load(write_tiny_bundle(tmp_path / "every", flag_expected_r=1e-9,
                                          atypicality=_tiny_atyp(-1e6)))
    one = flags(every, [len(x)])
    assert len(one) == 1 and one[0].start_s == 0.0 and one[0].end_s == pytest.approx(6.0)
    assert one[0].detail.startswith("risk (low expected r, atypical Lead I) above")
    assert one[0].value > one[0].threshold == -1e6
    assert flags(every, [37, 5]) == one
    never = Bundle.load(write_tiny_bundle(tmp_path / "never", flag_expected_r=0.99999,
                                          atypicality=_tiny_atyp(1e6)))
    assert flags(never, [len(x)]) == []


def test_run_window_scores_the_trunk_features(tmp_path: Path) -> None:
    b = Bundle.load(write_tiny_bundle(tmp_path / "b", atypicality=_tiny_atyp(1.0)))
    x = synthetic_lead_i(b.window, b.fs_hz)
    meta = np.zeros(b.manifest.metadata.encoded_size, np.float32)
    mean, std, score = b.run_window(x, meta, 3, np.random.default_rng(0))
    feats = b.trunk.run({"lead_i": x[None, :, None]})["features"][0]
    assert score == pytest.approx(b.manifest.uncertainty.atypicality.score(pool(feats)))
    m2, s2 = b.predict_window(x, meta, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(mean, m2)
    np.testing.assert_array_equal(std, s2)


@pytest.mark.parametrize("n", [199, 200, 201, 249, 250, 251, 333, 950, 1000])
def test_training_runs_the_windows_the_gateway_runs(n: int) -> None:
    grid = WindowGrid(200, 50)
    got = [w.start for w in grid.push(np.zeros(n, np.float32))] + [w.start for w in
                                                                  grid.close()]
    assert gateway_starts(n, 200, 50) == got
