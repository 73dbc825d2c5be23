"""Training-time Lead-I metadata measured per window (data.window_features), as the gateway
measures it on its own window, instead of once per record."""

from __future__ import annotations

import numpy as np
import pytest

from edge.features import lead_i_features
from edge.metadata import clean_metadata, encode_metadata
from firmware_bridge.synth import synthetic_ecg
from training.config import TrainConfig
from training.dataset import Prepared, training_batch_arrays


def _record(hr: float, seed: int) -> Prepared:
    lead_i = synthetic_ecg(10.0, 100.0, seed, heart_rate_bpm=hr).astype(np.float32)
    leads = np.zeros((len(lead_i), 12), np.float32)
    leads[:, 0] = lead_i
    stale = {"age": 50, "sex": "M", "ventricular_rate": 40.0, "qrs_count": 7.0,
             "qrs_duration": 150.0}  # not what this Lead I shows: a per-record value
    return Prepared(f"r{seed}", "ptbxl", leads, leads.copy(), {"wearable": stale}, "SR")


def _cfg(window_features: bool) -> TrainConfig:
    return TrainConfig.from_dict({"regime": "wearable", "data": {
        "meta_mask_prob": 0.0, "window_features": window_features}})


@pytest.mark.parametrize("hr", [72.0, 110.0])
def test_window_features_are_what_the_gateway_would_measure_on_that_window(hr: float) -> None:
    preps = [_record(hr, 1), _record(hr, 2)]
    x, meta, _ = training_batch_arrays(_cfg(True), preps, np.random.default_rng(0))
    for i in range(len(preps)):
        feats = clean_metadata(lead_i_features(x[i, :, 0].astype(np.float64), 100.0))
        assert feats["ventricular_rate"] == pytest.approx(hr, rel=0.08)  # the synth's rate
        want = encode_metadata({"age": 50, "sex": "M", **feats})
        np.testing.assert_allclose(meta[i], want, rtol=1e-6)
    # off (older runs): the record's stored value, whatever the window shows
    _, old, _ = training_batch_arrays(_cfg(False), preps, np.random.default_rng(0))
    np.testing.assert_allclose(old[0], encode_metadata(preps[0].meta["wearable"]), rtol=1e-6)


def test_the_option_keeps_older_configs_hashes() -> None:
    assert _cfg(False).sha256() == TrainConfig.from_dict(
        {"regime": "wearable", "data": {"meta_mask_prob": 0.0}}).sha256()
    assert _cfg(True).sha256() != _cfg(False).sha256()
