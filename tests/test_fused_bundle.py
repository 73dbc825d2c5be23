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
