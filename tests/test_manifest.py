"""Manifest validation: a good manifest loads; each bad one is refused naming the problem."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from bundle_fixture import WINDOW, tiny_manifest

from edge.errors import BundleInvalid, BundleNotFound
from edge.manifest import SCHEMA_VERSION, load_manifest, validate_manifest


def _set(d: dict, path: str, value: object) -> dict:
    d = copy.deepcopy(d)
    keys = path.split(".")
    target = d
    for k in keys[:-1]:
        target = target[int(k)] if isinstance(target, list) else target[k]
    if value is _DEL:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return d


_DEL = object()


def test_valid_manifest_types() -> None:
    m = validate_manifest(tiny_manifest())
    assert m.schema_version == SCHEMA_VERSION
    assert m.model.window == WINDOW and m.model.fs_hz == 100.0
    assert [k.name for k in m.mc.masks] == ["mask_head"] and m.mc.scheme == "last_site"
    assert m.uncertainty.scale == (1.0,) * 7
    assert m.metadata.derive_from_lead_i == ("ventricular_rate", "qrs_count", "qrs_duration")


def test_newer_minor_version_accepted() -> None:
    assert validate_manifest(_set(tiny_manifest(), "schema_version", "1.7")).schema_version \
        == "1.7"


@pytest.mark.parametrize(("path", "value", "needle"), [
    ("schema_version", "2.0", "schema_version '2.0' is incompatible"),
    ("model.fs_hz", _DEL, "model.fs_hz: missing key"),
    ("model.fs_hz", "100", "model.fs_hz: expected int or float"),
    ("model.fs_hz", -5, "model.fs_hz: must be a positive"),
    ("model.window", 1.5, "model.window: expected int"),
    ("model.hop", 500, "model.hop: hop 500 exceeds window"),
    ("model.lead_order", ["II", "I"], "model.lead_order: expected"),
    ("model.output_units", "uV", "model.output_units"),
    ("metadata.encoding_version", 99, "metadata.encoding_version: bundle uses 99"),
    ("metadata.encoded_size", 3, "metadata.encoded_size"),
    ("metadata.derive_from_lead_i", ["age"], "cannot derive ['age']"),
    ("mc.masks.0.rate", 1.0, "mc.masks[0].rate: must be in [0, 1)"),
    ("mc.masks.0.size", 99, "files.head.inputs.mask_head.shape: expected (T, 99)"),
    ("mc.masks.0.name", "mask_zzz", "mask 'mask_zzz' is not an input"),
    ("mc.masks", [], "mc.masks: expected exactly one dropout site"),
    ("mc.default_samples", 10**9, "mc.default_samples: must be <= 10000, got 1000000000"),
    ("mc.default_samples", -1, "mc.default_samples: must be an integer >= 0"),
    ("mc.scheme", _DEL, "mc.scheme is None; the gateway implements 'last_site'"),
    ("mc.scheme", "all_sites", "re-convert it with `ecg12 convert"),
    ("files.trunk.inputs.0.shape", [1, 999, 1], "files.trunk.lead_i.shape"),
    ("files.trunk.sha256", "abc", "files.trunk.sha256: not a sha256"),
    ("files.head", _DEL, "files.head: missing key"),
    ("uncertainty.calibration.scale", [1.0] * 6, "uncertainty.calibration.scale: expected 7"),
    ("uncertainty.calibration.scale_clinical", [1.0] * 3,
     "uncertainty.calibration.scale_clinical: expected 7"),
    ("uncertainty.calibration.scale_clinical", "x",
     "uncertainty.calibration.scale_clinical: expected list"),
    ("uncertainty.calibration.method", "isotonic", "unknown method 'isotonic'"),
    ("uncertainty.flag_std_mv", [1.0] * 6 + [-1.0], "uncertainty.flag_std_mv"),
    ("quantization", "int4", "quantization: unknown 'int4'"),
    ("head_quantization", "int4", "head_quantization: unknown 'int4'"),
    ("uncertainty.flag_expected_r", 1.5, "uncertainty.flag_expected_r: must lie in (0, 1)"),
    ("uncertainty.flag_expected_r", "x", "uncertainty.flag_expected_r: expected int or float"),
    ("conditioning.highpass_hz", _DEL, "conditioning.highpass_hz: missing key"),
    ("conditioning.phase", _DEL, "conditioning.phase: is None"),
    ("conditioning.phase", "causal", "conditioning.phase: is 'causal'"),
])
def test_bad_manifest_named(path: str, value: object, needle: str) -> None:
    with pytest.raises(BundleInvalid) as err:
        validate_manifest(_set(tiny_manifest(), path, value))
    assert needle in str(err.value)


def test_files_missing_and_hash_mismatch(tmp_path: Path) -> None:
    man = tiny_manifest()
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(BundleInvalid, match=r"files.trunk.path: file not found"):
        load_manifest(tmp_path)
    (tmp_path / "trunk.tflite").write_bytes(b"x")
    (tmp_path / "head.tflite").write_bytes(b"y")
    with pytest.raises(BundleInvalid, match=r"files.trunk.sha256: mismatch"):
        load_manifest(tmp_path)
    assert load_manifest(tmp_path, check_files=False).name == "tiny"


def test_not_found_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(BundleNotFound, match="no bundle manifest"):
        load_manifest(tmp_path / "nowhere")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleInvalid, match="not readable JSON"):
        load_manifest(tmp_path)
