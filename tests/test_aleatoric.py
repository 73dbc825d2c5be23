"""Heteroscedastic (aleatoric) head: training loss, Keras MC, conversion, edge bundle."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from test_converters import TINY, make_run, synthetic

import edge
from converters import convert_run
from edge.errors import BundleInvalid
from edge.manifest import validate_manifest
from training.config import TrainConfig
from training.mc import mc_predict, n_model_outputs, predict
from training.model import build_model, is_aleatoric

ALEA = dataclasses.replace(TINY, name="tiny-alea",
                           model=dataclasses.replace(TINY.model, aleatoric=True))


@pytest.fixture(scope="module")
def alea_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("run") / "alea", ALEA)


def test_model_outputs_mean_and_log_variance(alea_run: Path) -> None:
    cfg = TrainConfig.load(alea_run / "config.json")
    model = build_model(cfg)
    model.load_weights(alea_run / "best.weights.h5")
    assert is_aleatoric(model) and n_model_outputs(model) == 7
    assert model.output_shape[-1] == 14
    d = synthetic(6, seed=3)
    det = predict(model, d.lead_i, d.meta)
    assert det.shape == (6, cfg.window, 7)
    _, total = mc_predict(model, d.lead_i, d.meta, 8, seed=0)
    _, spread = mc_predict(model, d.lead_i, d.meta, 8, seed=0, aleatoric=False)
    assert np.all(total >= spread - 1e-6) and float((total - spread).mean()) > 0
    scores = model.evaluate([d.lead_i, d.meta], d.target, verbose=0, return_dict=True)
    assert np.isfinite(scores["loss"]) and "mse" in scores


def test_bundle_carries_log_var_and_edge_adds_it(alea_run: Path, tmp_path: Path) -> None:
    bundle = convert_run(alea_run, tmp_path / "b", "float32", "unrolled")
    man = json.loads((bundle / "manifest.json").read_text())
    assert man["uncertainty"]["aleatoric"] is True
    assert "log_var" in [o["name"] for o in man["files"]["head"]["outputs"]]
    model = edge.load_bundle(bundle)
    x = synthetic(1, seed=5).lead_i[0, :, 0]
    rng = np.random.default_rng(0)
    mean, std = model.bundle.predict_window(x, np.zeros(16, np.float32), 0, None)
    assert np.all(std > 0)  # deterministic mode still reports the predicted variance
    mean_mc, std_mc = model.bundle.predict_window(x, np.zeros(16, np.float32), 16, rng)
    assert np.all(std_mc >= std * 0.5) and mean_mc.shape == mean.shape

    bad = json.loads(json.dumps(man))
    bad["files"]["head"]["outputs"] = [o for o in bad["files"]["head"]["outputs"]
                                       if o["name"] != "log_var"]
    with pytest.raises(BundleInvalid, match="log_var"):
        validate_manifest(bad, None)


def test_aleatoric_flag_must_be_boolean(alea_run: Path, tmp_path: Path) -> None:
    bundle = convert_run(alea_run, tmp_path / "b", "float32", "unrolled")
    man = json.loads((bundle / "manifest.json").read_text())
    man["uncertainty"]["aleatoric"] = "yes"
    with pytest.raises(BundleInvalid, match=r"uncertainty\.aleatoric.*'yes'"):
        validate_manifest(man, None)
