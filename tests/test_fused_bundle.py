"""A fused-LSTM (stateful) bundle through edge.load_bundle equals Keras, window after window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_converters import TINY, make_run, synthetic

import edge
from converters import convert_run
from training.mc import predict
from training.model import build_model


@pytest.fixture(scope="module")
def fused(tmp_path_factory) -> tuple[Path, Path]:
    run = make_run(tmp_path_factory.mktemp("run") / "tiny")
    return run, convert_run(run, tmp_path_factory.mktemp("b") / "fused", "float32", "fused")


def test_fused_bundle_matches_keras_on_consecutive_windows(fused) -> None:
    run, bundle = fused
    model = build_model(TINY)
    model.load_weights(run / "best.weights.h5")
    d = synthetic(3, seed=11)
    want = predict(model, d.lead_i, d.meta)
    b = edge.load_bundle(bundle).bundle
    assert b.manifest.trunk.reset_state
    for i in range(3):  # state must not leak from one window into the next
        mean, std = b.predict_window(d.lead_i[i, :, 0], d.meta[i], 0, None)
        np.testing.assert_allclose(mean, want[i], atol=1e-4)
        assert np.all(std == 0)


def _confined_run(run: Path, dst: Path, keep: int) -> Path:
    """A copy of ``run`` whose BiLSTM input lives in ``keep`` of its channels: the other
    ``down2`` filters are zeroed, so they output leaky_relu(0) = 0 on every window."""
    import shutil

    shutil.copytree(run, dst)
    model = build_model(TINY)
    model.load_weights(run / "best.weights.h5")
    conv = model.get_layer("down2")
    k, b = conv.get_weights()
    k[..., keep:], b[keep:] = 0.0, 0.0
    conv.set_weights([k, b])
    model.save_weights(dst / "best.weights.h5")
    return dst


def test_low_rank_lstm_input_is_exact_when_the_inputs_span_that_rank(fused, tmp_path) -> None:
    """``--lstm-rank``: each BiLSTM direction reads a rank-r projection of its input. Where
    the input spans only r channels that projection loses nothing, so the whole bundle
    (fit on windows, export, runtime) must equal the Keras model; rank r - 1 must not."""
    from converters.bundle import Calib

    run = _confined_run(fused[0], tmp_path / "confined", keep=4)
    model = build_model(TINY)
    model.load_weights(run / "best.weights.h5")
    d = synthetic(6, seed=12)
    want = predict(model, d.lead_i, d.meta)
    calib = Calib(synthetic(32, seed=13).lead_i, synthetic(32, seed=13).meta)
    errs = {}
    for rank in (4, 3):
        out = convert_run(run, tmp_path / f"r{rank}", "float32", "fused", calib=calib,
                          lstm_rank=rank)
        b = edge.load_bundle(out).bundle
        info = b.manifest.provenance["lstm_input_rank"]
        got = np.stack([b.predict_window(d.lead_i[i, :, 0], d.meta[i], 0, None)[0]
                        for i in range(6)])
        errs[rank] = float(np.abs(got - want).max())
        assert info["rank"] == rank and info["fitted_on"] == "32 training windows"
    assert errs[4] < 1e-4 < errs[3]


def test_low_rank_factors_are_the_best_fit_of_that_rank(fused) -> None:
    """Eckart-Young: the factors' rank-r fit of ``x W`` is no worse than projecting ``x``
    onto its own top-r principal components; the reported unexplained share is the fit's."""
    from converters.export import lstm_input_factors

    model = build_model(TINY)
    model.load_weights(fused[0] / "best.weights.h5")
    x = np.random.default_rng(3).standard_normal((4000, 8)) @ np.diag([3, 2, 1.5, 1, .5,
                                                                       .3, .2, .1])
    f = lstm_input_factors(model, x, 3)
    bi = model.get_layer("bilstm")
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    pca = (x - x.mean(0)) @ vt[:3].T @ vt[:3] + x.mean(0)
    for name, d in (("forward", bi.forward_layer), ("backward", bi.backward_layer)):
        w, _, b = d.get_weights()
        pk, pb, kin, bias, unexplained = f[name]
        fit = (x @ pk + pb) @ kin + bias
        exact = x @ w + b
        err = np.sum((fit - exact) ** 2)
        assert err <= np.sum((pca @ w + b - exact) ** 2) + 1e-9
        assert unexplained == pytest.approx(err / np.sum((exact - exact.mean(0)) ** 2),
                                            rel=1e-6)
    from converters import ConversionError

    with pytest.raises(ConversionError, match="lstm input rank 8 must lie in 1..7"):
        lstm_input_factors(model, x, 8)
