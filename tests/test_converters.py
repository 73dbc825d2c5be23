"""converters: tiny trained model -> bundle; parity, MC statistics, manifest, TF-free loading."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="converters tests need TensorFlow/Keras")

from converters import ConversionError, RunFolderError, compare_variants, convert_run  # noqa: E402
from converters.bundle import Calib  # noqa: E402
from converters.parity import lite_predict, mc_statistics  # noqa: E402
from converters.runtime import LiteMC  # noqa: E402
from edge.manifest import load_manifest  # noqa: E402
from training.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from training.model import build_model, sample_masks  # noqa: E402

TINY = TrainConfig(
    name="tiny", epochs=1, batch_size=16,
    model=ModelConfig(conv_filters=8, down_filters=8, lstm_units=8, meta_units=(8, 4),
                      head_filters=8),
    data=DataConfig(window_s=2.0),  # 200 samples at 100 Hz
)


def synthetic(n: int, seed: int) -> SimpleNamespace:
    """Lead I-like signal and 7 target leads that are filtered, scaled copies of it."""
    rng = np.random.default_rng(seed)
    t = np.arange(TINY.window) / TINY.data.fs_hz
    rate = rng.uniform(0.8, 1.6, (n, 1))
    phase = rng.uniform(0, 1, (n, 1))
    beat = np.exp(-((((t[None] * rate + phase) % 1.0) - 0.5) ** 2) / 0.002)
    lead_i = (beat + 0.05 * rng.standard_normal(beat.shape)).astype(np.float32)
    gains = np.array([1.5, -0.6, 0.3, 0.9, 1.4, 1.2, 0.8])
    target = np.stack([g * np.roll(beat, k, axis=1) for k, g in enumerate(gains)], -1)
    meta = np.zeros((n, 16), np.float32)
    meta[:, 2], meta[:, 9] = (rate[:, 0] * 60 - 75) / 25, 1.0
    return SimpleNamespace(lead_i=lead_i[..., None], meta=meta,
                           target=target.astype(np.float32))


def make_run(path: Path, cfg: TrainConfig = TINY) -> Path:
    """A run folder as training.train writes it (config, weights, run.json, calibration)."""
    keras.utils.set_random_seed(0)
    data = synthetic(64, seed=1)
    model = build_model(cfg)
    model.fit([data.lead_i, data.meta], data.target, epochs=3, batch_size=16, verbose=0)
    path.mkdir(parents=True, exist_ok=True)
    cfg.save(path / "config.json")
    model.save_weights(path / "best.weights.h5")
    (path / "run.json").write_text(json.dumps({
        "config_sha256": cfg.sha256(), "split_sha256": "0" * 64, "epochs_run": 3,
        "best_val_loss": 0.1}))
    (path / "calibration.json").write_text(json.dumps({
        "method": "scale", "scale": [1.2] * 7, "flag_std_mv": [0.3] * 7}))
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("run") / "tiny")


@pytest.fixture(scope="module")
def bundle(run_dir, tmp_path_factory) -> Path:
    return convert_run(run_dir, tmp_path_factory.mktemp("bundle"), "float32", "unrolled")


def load_lite(bundle: Path) -> LiteMC:
    man = json.loads((bundle / "manifest.json").read_text())
    return LiteMC(bundle / "trunk.tflite", bundle / "head.tflite",
                  reset_state=man["files"]["trunk"]["reset_state"])


def test_float32_bundle_matches_keras_and_validates(run_dir, bundle):
    man = load_manifest(bundle)  # edge's validator: schema, shapes, sha256 of each file
    assert man.quantization == "float32" and man.mc.default_samples == 30
    assert [m.name for m in man.mc.masks] == ["mask_lstm", "mask_meta1", "mask_meta2",
                                              "mask_head"]
    assert man.uncertainty.scale == (1.2,) * 7
    model = build_model(TINY)
    model.load_weights(run_dir / "best.weights.h5")
    data = synthetic(6, seed=7)
    ref = np.asarray(model([data.lead_i, data.meta], training=False))
    pred = lite_predict(load_lite(bundle), data.lead_i, data.meta, TINY.model)
    assert np.abs(pred - ref).max() < 1e-4


def test_head_batch_is_resizable(bundle):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(bundle / "head.tflite"))
    details = {d["name"]: d for d in interp.get_input_details()}
    assert all(d["shape_signature"][0] == -1 for d in details.values())
    t = 7
    for d in details.values():
        interp.resize_tensor_input(d["index"], [t, *d["shape"][1:]])
    interp.allocate_tensors()
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], np.ones(d["shape"], np.float32))
    interp.invoke()
    out = interp.get_tensor(interp.get_output_details()[0]["index"])
    assert out.shape == (t, TINY.window, 7)
    assert np.allclose(out, out[0])  # same inputs in every row -> same residual


def test_mc_statistics_match_keras_training_mode_dropout(run_dir, bundle):
    model = build_model(TINY)
    model.load_weights(run_dir / "best.weights.h5")
    data = synthetic(4, seed=11)
    stats = mc_statistics(model, load_lite(bundle), data.lead_i, data.meta, TINY.model,
                          samples=200, seed=3)
    assert min(stats["keras_std_mv"].values()) > 0  # dropout really is active
    assert stats["max_std_rel_diff"] < 0.10
    assert stats["mean_z_median"] < 2.0  # mean difference at the level of sampling noise


def test_masks_change_the_head_output(bundle):
    lite = load_lite(bundle)
    data = synthetic(1, seed=2)
    feats, _ = lite.trunk(data.lead_i[0])
    res = lite.head(feats, data.meta[0], sample_masks(TINY.model, 5, np.random.default_rng(0)))
    assert res.shape == (5, TINY.window, 7)
    assert np.abs(res - res.mean(0)).max() > 0


def test_fused_lstm_state_is_reset_between_windows(run_dir, tmp_path):
    out = convert_run(run_dir, tmp_path / "fused", "float32", "fused")
    man = json.loads((out / "manifest.json").read_text())
    assert man["files"]["trunk"]["reset_state"] is True
    model = build_model(TINY)
    model.load_weights(run_dir / "best.weights.h5")
    data = synthetic(3, seed=4)
    ref = np.asarray(model([data.lead_i, data.meta], training=False))
    pred = lite_predict(load_lite(out), data.lead_i, data.meta, TINY.model)
    assert np.abs(pred - ref).max() < 1e-4
    stale = LiteMC(out / "trunk.tflite", out / "head.tflite", reset_state=False)
    stale.trunk(data.lead_i[0])
    assert np.abs(stale.predict(data.lead_i[1], data.meta[1], TINY.model) - ref[1]).max() > 1e-3


def test_bundle_loads_where_tensorflow_cannot_be_imported(bundle):
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        sys.modules["tensorflow"] = None  # any "import tensorflow" now raises ImportError
        try:
            import tensorflow  # noqa: F401
            raise SystemExit("tensorflow still importable")
        except ImportError:
            pass
        from ai_edge_litert.interpreter import Interpreter
        trunk = Interpreter(model_path={str(bundle / "trunk.tflite")!r}).get_signature_runner()
        head = Interpreter(model_path={str(bundle / "head.tflite")!r}).get_signature_runner()
        out = trunk(lead_i=np.zeros((1, {TINY.window}, 1), np.float32))
        feed = {{d: np.ones((3, *v["shape"][1:]), np.float32)
                for d, v in head.get_input_details().items()}}
        feed["features"] = np.repeat(out["features"], 3, axis=0)
        res = head(**feed)["residual"]
        assert res.shape == (3, {TINY.window}, 7), res.shape
        assert "tensorflow" not in [m for m in sys.modules if sys.modules[m] is not None]
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def test_compare_variants_reports_each_variant(run_dir, tmp_path):
    test = synthetic(6, seed=9)
    rep = synthetic(16, seed=10)
    calib = Calib(rep.lead_i, rep.meta)
    out = compare_variants(run_dir, quants=("float32", "int8"), lstms=("while",), test=test,
                           calib=calib, samples=4, runs=2, mc_records=0,
                           report=tmp_path / "variants.md")
    rows = {v["name"]: v for v in out["variants"]}
    assert set(rows) == {"float32/while", "int8/while"}
    assert rows["float32/while"]["status"] == "ok"
    assert rows["float32/while"]["max_abs_err_mv"] < 1e-4
    assert rows["int8/while"]["status"].startswith("failed: ")  # reported, not hidden
    assert rows["int8/while"]["size_kb"] is None
    assert out["recommended"] in rows
    md = (tmp_path / "variants.md").read_text()
    assert "| float32/while |" in md and "| int8/while |" in md
    assert json.loads((tmp_path / "variants.json").read_text())["recommended"]


def test_bad_inputs_raise_named_errors(run_dir, tmp_path):
    with pytest.raises(RunFolderError, match="lacks"):
        convert_run(tmp_path, tmp_path / "b")
    with pytest.raises(ConversionError, match="quantization"):
        convert_run(run_dir, tmp_path / "b", quant="int4")
    with pytest.raises(ConversionError, match="LSTM"):
        convert_run(run_dir, tmp_path / "b", lstm="scan")
    paper = tmp_path / "paper"
    paper.mkdir()
    for name in ("run.json", "calibration.json", "best.weights.h5"):
        (paper / name).write_bytes((run_dir / name).read_bytes())
    TrainConfig(model=ModelConfig(kind="paper")).save(paper / "config.json")
    with pytest.raises(RunFolderError, match="only 'edge'"):
        convert_run(paper, tmp_path / "b")


def test_gateway_bundle_mc_matches_keras_training_mode_dropout(run_dir, bundle):
    """edge.Bundle itself (the gateway runtime, not converters' LiteMC): its MC mean and std
    over T samples match Keras' own dropout (training=True) on the float model."""
    from edge.bundle import Bundle
    from training.mc import mc_predict

    model = build_model(TINY)
    model.load_weights(run_dir / "best.weights.h5")
    data = synthetic(3, seed=5)
    gw = Bundle.load(bundle)
    T = 400
    k_mean, k_std = mc_predict(model, data.lead_i, data.meta, T, seed=2, aleatoric=False)
    for i in range(3):
        mean, std = gw.predict_window(data.lead_i[i, :, 0], data.meta[i], T,
                                      np.random.default_rng(i))
        std = std / 1.2  # the run's calibration scale, applied by the bundle
        assert min(float(k_std[i].mean()), float(std.mean())) > 0
        rel = abs(float(std.mean()) - float(k_std[i].mean())) / float(k_std[i].mean())
        assert rel < 0.1
        # means agree to within a few standard errors of a T-sample MC mean
        se = np.sqrt(k_std[i] ** 2 / T + std ** 2 / T)
        assert float(np.median(np.abs(mean - k_mean[i]) / se)) < 2.0
