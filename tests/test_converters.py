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
from edge.bundle import Bundle  # noqa: E402
from edge.manifest import load_manifest  # noqa: E402
from training.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from training.model import build_model  # noqa: E402

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


def trained(run_dir: Path) -> keras.Model:
    model = build_model(TINY)
    model.load_weights(run_dir / "best.weights.h5")
    return model


def test_float32_bundle_matches_keras_and_validates(run_dir, bundle):
    man = load_manifest(bundle)  # edge's validator: schema, shapes, sha256 of each file
    assert man.quantization == "float32" and man.mc.default_samples == 30
    assert [(m.name, m.size, m.rate) for m in man.mc.masks] == [("mask_head", 8, 0.3)]
    assert man.uncertainty.scale == (1.2,) * 7
    data = synthetic(6, seed=7)
    ref = np.asarray(trained(run_dir)([data.lead_i, data.meta], training=False))
    pred = lite_predict(Bundle.load(bundle), data.lead_i, data.meta)
    assert np.abs(pred - ref).max() < 1e-4


def test_head_quantized_apart_from_the_trunk(run_dir, bundle, tmp_path):
    """``head_quant``: the trunk computes as the ``quant`` one, the head as the ``head_quant``
    one, and the manifest says so (edge reads it back)."""
    mixed = convert_run(run_dir, tmp_path / "mixed", "float32", "unrolled", head_quant="float16")
    f16 = convert_run(run_dir, tmp_path / "f16", "float16", "unrolled")
    man = load_manifest(mixed)
    assert (man.quantization, man.head_quantization) == ("float32", "float16")
    assert "float16_head" in man.name
    assert load_manifest(bundle).head_quantization == "float32"
    data = synthetic(1, seed=3)
    x, meta = data.lead_i[0, :, 0], data.meta[0]
    b_mix, b_32, b_16 = (Bundle.load(p) for p in (mixed, bundle, f16))
    masks = b_32.masks(4, np.random.default_rng(0))
    np.testing.assert_array_equal(b_mix.head_samples(x, meta, masks)[0],  # the trunk's skip
                                  b_32.head_samples(x, meta, masks)[0])
    feats = b_32._trunk(x)["features"]
    np.testing.assert_array_equal(b_mix._trunk(x)["features"], feats)
    head_in = {"features": feats, "meta": meta[None], "mask_head": masks}
    for out in ("residual_mean", "deviation"):
        np.testing.assert_array_equal(b_mix.head.run(head_in)[out], b_16.head.run(head_in)[out])
        assert not np.array_equal(b_mix.head.run(head_in)[out], b_32.head.run(head_in)[out])
    with pytest.raises(ConversionError, match="quantization 'int4'"):
        convert_run(run_dir, tmp_path / "bad", "float32", "unrolled", head_quant="int4")


def test_head_runs_once_per_window_on_a_free_number_of_masks(bundle):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(bundle / "head.tflite"))
    details = {d["name"].split(":")[0].removeprefix("serving_default_"): d
               for d in interp.get_input_details()}
    assert details["features"]["shape_signature"][0] == 1  # one window, not repeated T times
    assert details["mask_head"]["shape_signature"][0] == -1
    t = 7
    interp.resize_tensor_input(details["mask_head"]["index"], [t, 8])
    interp.allocate_tensors()
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], np.ones(d["shape"], np.float32))
    interp.invoke()
    outs = {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}
    dev = next(v for v in outs.values() if v.ndim == 3 and v.shape[1] == t)
    assert dev.shape == (TINY.window // 4, t, 4 * 7)  # one deviation per mask
    assert np.array_equal(dev, np.zeros_like(dev))  # masks of ones: no deviation from the mean


def test_mc_samples_equal_the_keras_mc_model_on_the_same_masks(run_dir, bundle):
    """Same masks -> same T samples: the gateway runtime (edge.Bundle on the TFLite head) vs
    the Keras MC model (the trained layers applied to the masked hidden)."""
    data = synthetic(4, seed=11)
    stats = mc_statistics(trained(run_dir), Bundle.load(bundle), data.lead_i, data.meta,
                          samples=50, seed=3)
    assert min(stats["keras_std_mv"].values()) > 0  # the masks really do change the output
    assert stats["max_sample_abs_diff_mv"] < 1e-4
    assert stats["max_std_abs_diff_mv"] < 1e-5


@pytest.mark.parametrize("extra", [{}, {"aleatoric": True, "film": True}])
def test_window_mean_and_std_equal_the_keras_mc_model_on_the_same_masks(extra, tmp_path):
    """The product path (``predict_window``: the moments-form head's exact mean and MC
    variance, one batched matmul) against the Keras MC model (the trained output conv on
    each masked hidden) on the masks the same seed draws: mean = the mask of ones, std =
    sqrt(mean squared deviation of the T samples from it + predicted variance) x scale."""
    from dataclasses import replace

    from training.mc import EdgeMC

    cfg = replace(TINY, model=replace(TINY.model, **extra))
    run = make_run(tmp_path / "run", cfg)
    model = build_model(cfg)
    model.load_weights(run / "best.weights.h5")
    if cfg.model.film:  # a per-lead gain far from its initial 1 (3 epochs barely move it)
        gain = model.get_layer("lead_gain")
        gain.set_weights([gain.get_weights()[0], np.linspace(0.5, 2.0, 7, dtype=np.float32)])
        model.save_weights(run / "best.weights.h5")
    out = convert_run(run, tmp_path / "b", "float32", "unrolled")
    b = Bundle.load(out)
    assert b.moments
    ref = EdgeMC(model)
    data = synthetic(3, seed=5)
    T = 40
    for i in range(3):
        x, m = data.lead_i[i:i + 1], data.meta[i:i + 1]
        mean, std = b.predict_window(x[0, :, 0], m[0], T, np.random.default_rng(i))
        masks = b.masks(T, np.random.default_rng(i))  # the masks predict_window drew
        samples, var = ref.samples(x, m, masks[None])
        exact, _ = ref.samples(x, m, np.ones((1, 1, masks.shape[1]), np.float32))
        mc_var = ((samples[0] - exact[0]) ** 2).mean(0)
        want = np.sqrt(mc_var + (0 if var is None else var[0])) * 1.2  # calibration scale
        assert mc_var.max() > 1e-6  # the masks really do spread the output
        assert np.abs(mean - exact[0, 0]).max() < 1e-4
        assert np.abs(std - want).max() < 1e-4


def test_masks_change_the_head_output(bundle):
    gw = Bundle.load(bundle)
    data = synthetic(1, seed=2)
    masks = gw.masks(5, np.random.default_rng(0))
    _, res, _ = gw.head_samples(data.lead_i[0, :, 0], data.meta[0], masks)
    assert res.shape == (5, TINY.window, 7)
    assert np.abs(res - res.mean(0)).max() > 0


def test_fused_lstm_state_is_reset_between_windows(run_dir, tmp_path):
    out = convert_run(run_dir, tmp_path / "fused", "float32", "fused")
    man = json.loads((out / "manifest.json").read_text())
    assert man["files"]["trunk"]["reset_state"] is True
    data = synthetic(3, seed=4)
    ref = np.asarray(trained(run_dir)([data.lead_i, data.meta], training=False))
    pred = lite_predict(Bundle.load(out), data.lead_i, data.meta)
    assert np.abs(pred - ref).max() < 1e-4
    man["files"]["trunk"]["reset_state"] = False  # the same graph without the reset
    (out / "manifest.json").write_text(json.dumps(man))
    stale = Bundle.load(out)
    stale.predict_window(data.lead_i[0, :, 0], data.meta[0], 0)
    again = stale.predict_window(data.lead_i[1, :, 0], data.meta[1], 0)[0]
    assert np.abs(again - ref[1]).max() > 1e-3


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
        feed = {{"features": out["features"], "meta": np.zeros((1, 16), np.float32),
                "mask_head": np.ones((3, 8), np.float32)}}
        res = head(**feed)
        assert res["residual_mean"].shape == (1, {TINY.window}, 7), res["residual_mean"].shape
        assert res["deviation"].shape == ({TINY.window // 4}, 3, 28), res["deviation"].shape
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


def test_gateway_bundle_mc_matches_keras_mc_and_the_dropout_expectation(run_dir, bundle):
    """edge.Bundle's MC mean and std over T samples match training.mc.mc_predict (the path
    `ecg12 evaluate` and the calibration take); both means are Keras' deterministic
    prediction (inverted dropout: the output conv is linear in the mask, so the MC
    expectation is the mask-of-ones pass), the bundle's within its quantization error."""
    from training.mc import mc_predict

    model = trained(run_dir)
    data = synthetic(3, seed=5)
    gw = Bundle.load(bundle)
    T = 400
    k_mean, k_std = mc_predict(model, data.lead_i, data.meta, T, seed=2, aleatoric=False)
    det = np.asarray(model([data.lead_i, data.meta], training=False))
    for i in range(3):
        mean, std = gw.predict_window(data.lead_i[i, :, 0], data.meta[i], T,
                                      np.random.default_rng(i))
        std = std / 1.2  # the run's calibration scale, applied by the bundle
        assert min(float(k_std[i].mean()), float(std.mean())) > 0
        rel = abs(float(std.mean()) - float(k_std[i].mean())) / float(k_std[i].mean())
        assert rel < 0.1
        np.testing.assert_allclose(k_mean[i], det[i], rtol=1e-4, atol=1e-5)
        assert float(np.median(np.abs(mean - det[i]) / (std + 1e-9))) < 0.1


def test_loco_edge_streams_only_the_held_out_corpus(run_dir, data_root, monkeypatch) -> None:
    from training.loco_edge import score_run

    monkeypatch.setenv("ECG12_DATA", str(data_root))
    res = score_run(run_dir, "chapman", limit=2)
    assert res["records"] == 2 and set(res["r_per_corpus"]) == {"chapman"}
    assert res["split"] == "all (chapman only)" and "dynamic_int8" in res["bundle"]
    assert -1.0 <= res["r_mean_11"] <= 1.0 and 0.0 <= res["coverage_90"] <= 1.0
