"""A tiny random-weight bundle for tests (needs TensorFlow, else the test using it is skipped;
the edge code under test does not).

``write_tiny_bundle(dir)`` converts a small edge trunk/head (window 200 at 100 Hz, hop 50,
LSTM 8) to TFLite and writes ``manifest.json``. ``tiny_manifest(...)`` gives the manifest dict
alone (no files) for schema tests. Reuse (tests/ is on sys.path under pytest):
``from bundle_fixture import write_tiny_bundle, synthetic_lead_i``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from edge.leads import DERIVED, LEADS, PREDICTED
from edge.manifest import SCHEMA_VERSION
from edge.metadata import ENCODED_SIZE, ENCODING_VERSION, FIELDS

WINDOW, HOP, FS_HZ = 200, 50, 100.0
TRUNK_CHANNELS = 16  # the tiny trunk's feature channels (BiLSTM 8 x 2)
MASKS = [{"name": "mask_head", "size": 8, "rate": 0.3}]  # the MC site: the head's last
_CACHE: dict[tuple, Path] = {}


def tiny_manifest(trunk_sha: str = "0" * 64, head_sha: str = "0" * 64,
                  scale: list[float] | None = None, flag_std_mv: list[float] | None = None,
                  head_batch: int | None = None, flag_expected_r: float | None = None,
                  atypicality: dict[str, Any] | None = None,
                  scale_clinical: list[float] | None = None) -> dict[str, Any]:
    """A valid manifest dict for the tiny bundle."""
    head_inputs = [{"name": "features", "shape": [1, WINDOW // 4, TRUNK_CHANNELS]},
                   {"name": "meta", "shape": [1, ENCODED_SIZE]}]
    head_inputs += [{"name": m["name"], "shape": [-1, m["size"]]} for m in MASKS]
    head: dict[str, Any] = {"path": "head.tflite", "sha256": head_sha, "inputs": head_inputs,
                            "outputs": [{"name": "residual", "shape": [-1, WINDOW, 7]}]}
    if head_batch:
        head["batch"] = head_batch
    return {
        "schema_version": SCHEMA_VERSION, "name": "tiny", "created": "2026-01-01T00:00:00Z",
        "model": {"fs_hz": FS_HZ, "window": WINDOW, "hop": HOP, "input_scale": 1.0,
                  "lead_order": list(LEADS), "predicted_leads": list(PREDICTED),
                  "derived_leads": list(DERIVED), "output_units": "mV"},
        "files": {
            "trunk": {"path": "trunk.tflite", "sha256": trunk_sha,
                      "inputs": [{"name": "lead_i", "shape": [1, WINDOW, 1]}],
                      "outputs": [{"name": "features", "shape": [1, WINDOW // 4, TRUNK_CHANNELS]},
                                  {"name": "skip", "shape": [1, WINDOW, 7]}]},
            "head": head,
        },
        "metadata": {"fields": list(FIELDS), "encoding_version": ENCODING_VERSION,
                     "encoded_size": ENCODED_SIZE, "derive_from_lead_i": True},
        "conditioning": {"phase": "zero", "highpass_hz": 0.5, "lowpass_hz": 40.0},
        "mc": {"default_samples": 8, "scheme": "last_site", "masks": MASKS},
        "uncertainty": {"calibration": {"method": "scale", "scale": scale or [1.0] * 7,
                                        **({"scale_clinical": scale_clinical}
                                           if scale_clinical else {})},
                        "flag_std_mv": flag_std_mv or [10.0] * 7,
                        **({"flag_expected_r": flag_expected_r} if flag_expected_r else {}),
                        **({"atypicality": atypicality} if atypicality else {})},
        "quantization": "float32",
        "provenance": {"run": "tests"}, "metrics": {},
    }


def _convert(seed: int) -> tuple[bytes, bytes]:
    import pytest

    keras = pytest.importorskip("keras", reason="building the tiny bundle needs TensorFlow")
    tf = pytest.importorskip("tensorflow", reason="building the tiny bundle needs TensorFlow")

    from training.config import ModelConfig
    from training.model import build_mc_head, build_trunk

    cfg = ModelConfig(conv_filters=8, down_filters=8, lstm_units=8, meta_units=(8,),
                      head_filters=8)
    keras.utils.set_random_seed(seed)
    trunk, head = build_trunk(cfg, WINDOW, batch=1, unroll=True), build_mc_head(cfg, WINDOW)

    # from_keras_model: outputs come out as output_0/1 (Keras order), which edge maps to
    # the manifest's output names by position -- this exercises that fallback.
    out = [tf.lite.TFLiteConverter.from_keras_model(m).convert() for m in (trunk, head)]
    return out[0], out[1]


def write_tiny_bundle(directory: Path, seed: int = 0, **manifest_kw: Any) -> Path:
    """Write trunk.tflite, head.tflite and manifest.json into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = ("models", seed)
    if key in _CACHE:
        trunk, head = (_CACHE[key] / n for n in ("trunk.tflite", "head.tflite"))
        tb, hb = trunk.read_bytes(), head.read_bytes()
    else:
        tb, hb = _convert(seed)
        _CACHE[key] = directory
    (directory / "trunk.tflite").write_bytes(tb)
    (directory / "head.tflite").write_bytes(hb)
    man = tiny_manifest(hashlib.sha256(tb).hexdigest(), hashlib.sha256(hb).hexdigest(),
                        **manifest_kw)
    (directory / "manifest.json").write_text(json.dumps(man, indent=1))
    return directory


def tiny_bundle_dir(tmp_path_factory: Any, name: str = "tiny", **manifest_kw: Any) -> Path:
    """Session-cached helper for pytest fixtures: a tiny bundle under a fresh temp folder."""
    return write_tiny_bundle(tmp_path_factory.mktemp(name), **manifest_kw)


def synthetic_lead_i(n: int, fs_hz: float, seed: int = 0, noise_mv: float = 0.01):
    """ECG-like Lead I (mV): narrow R waves at ~72 bpm, a T wave, a little noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs_hz
    phase = (t * 1.2) % 1.0
    x = 1.0 * np.exp(-((phase - 0.3) / 0.012) ** 2) + 0.25 * np.exp(-((phase - 0.6) / 0.05) ** 2)
    return (x + noise_mv * rng.standard_normal(n)).astype(np.float32)
