"""Bundle: LiteRT sessions matched by name, MC masks, calibration, fixed-batch head."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from bundle_fixture import WINDOW, synthetic_lead_i, write_tiny_bundle

from edge.bundle import Bundle, interpreter_class
from edge.errors import BundleInvalid, BundleNotFound, InputInvalid, RuntimeUnavailable
from edge.metadata import ENCODED_SIZE


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def bundle(bundle_dir: Path) -> Bundle:
    return Bundle.load(bundle_dir, num_threads=1)


X = synthetic_lead_i(WINDOW, 100.0)
META = np.zeros(ENCODED_SIZE, np.float32)


def test_predict_window_shapes_and_determinism(bundle: Bundle) -> None:
    m1, s1 = bundle.predict_window(X, META, 6, np.random.default_rng(5))
    m2, s2 = bundle.predict_window(X, META, 6, np.random.default_rng(5))
    m3, s3 = bundle.predict_window(X, META, 6, np.random.default_rng(6))
    assert m1.shape == s1.shape == (WINDOW, 7) and m1.dtype == np.float32
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(s1, s3)
    assert (s1 > 0).mean() > 0.9


def test_deterministic_mode(bundle: Bundle) -> None:
    m0, s0 = bundle.predict_window(X, META, 0)
    assert np.all(s0 == 0)
    mean_mc, _ = bundle.predict_window(X, META, 64, np.random.default_rng(0))
    # the MC mean is the exact expectation: the pass with a mask of ones
    np.testing.assert_allclose(mean_mc, m0, atol=1e-6)


def test_mask_of_ones_is_the_mc_expectation(bundle: Bundle) -> None:
    """The exact mean's premise, checked on the converted head itself: the average of many
    sampled masks' outputs converges to the output for a mask of ones (within 4 standard
    errors per sample), so the head is linear in the mask and masks have expectation 1."""
    T = 4000
    skip, res, _ = bundle.head_samples(X, META, bundle.masks(T, np.random.default_rng(3)))
    _, ones, _ = bundle.head_samples(X, META, bundle.masks(1, None))
    se = res.std(axis=0, ddof=1) / np.sqrt(T)
    assert (np.abs(res.mean(axis=0) - ones[0]) <= 4 * se + 1e-6).mean() > 0.999
    assert se.max() > 0  # the masks do change the output


def test_clinical_scale_for_metadata_with_an_axis(tmp_path: Path, bundle: Bundle) -> None:
    """``scale_clinical`` calibrates the std when the metadata has an R or T axis, ``scale``
    otherwise (age and sex alone are the wearable regime)."""
    from edge.metadata import encode_metadata

    clin = [1.0, 2.0, 0.5, 3.0, 1.0, 1.0, 4.0]
    b2 = Bundle.load(write_tiny_bundle(tmp_path / "clin", scale_clinical=clin))
    for md, want in (({"age": 50, "sex": "F"}, [1.0] * 7), ({"age": 50, "r_axis": 40}, clin),
                     ({"t_axis": 10}, clin)):
        meta = encode_metadata(md)
        _, s1 = bundle.predict_window(X, meta, 5, np.random.default_rng(1))
        _, s2 = b2.predict_window(X, meta, 5, np.random.default_rng(1))
        np.testing.assert_allclose(s2, s1 * np.asarray(want, np.float32), rtol=1e-5)


def test_batch_size_changes(bundle: Bundle) -> None:
    """The head batch is resized between calls with different T without stale shapes."""
    for t in (3, 7, 2):
        m, s = bundle.predict_window(X, META, t, np.random.default_rng(t))
        assert np.isfinite(m).all() and np.isfinite(s).all()


def test_calibration_scale(tmp_path: Path, bundle: Bundle) -> None:
    scale = [1.0, 2.0, 0.5, 3.0, 1.0, 1.0, 4.0]
    b2 = Bundle.load(write_tiny_bundle(tmp_path / "cal", scale=scale))
    _, s1 = bundle.predict_window(X, META, 5, np.random.default_rng(1))
    _, s2 = b2.predict_window(X, META, 5, np.random.default_rng(1))
    np.testing.assert_allclose(s2, s1 * np.asarray(scale, np.float32), rtol=1e-5)


def test_fixed_batch_head_matches(tmp_path: Path, bundle: Bundle) -> None:
    b4 = Bundle.load(write_tiny_bundle(tmp_path / "fixed", head_batch=4))
    for t in (6, 4, 1):
        a = bundle.predict_window(X, META, t, np.random.default_rng(2))
        b = b4.predict_window(X, META, t, np.random.default_rng(2))
        np.testing.assert_allclose(a[0], b[0], atol=1e-5)
        np.testing.assert_allclose(a[1], b[1], atol=1e-5)


def test_bad_inputs(bundle: Bundle) -> None:
    with pytest.raises(InputInvalid, match=r"window must have shape \(200,\)"):
        bundle.predict_window(X[:10], META, 2, np.random.default_rng(0))
    with pytest.raises(InputInvalid, match="meta vector"):
        bundle.predict_window(X, META[:3], 2, np.random.default_rng(0))
    with pytest.raises(InputInvalid, match="mc_samples"):
        bundle.predict_window(X, META, -1, np.random.default_rng(0))


def test_swapped_models_refused_by_name(tmp_path: Path, bundle_dir: Path) -> None:
    d = tmp_path / "swapped"
    shutil.copytree(bundle_dir, d)
    man = json.loads((d / "manifest.json").read_text())
    man["files"]["trunk"]["path"] = "head.tflite"
    man["files"]["trunk"]["sha256"] = hashlib.sha256((d / "head.tflite").read_bytes()).hexdigest()
    (d / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(BundleInvalid, match="trunk model has no input named 'lead_i'"):
        Bundle.load(d)


def test_corrupt_model_file(tmp_path: Path, bundle_dir: Path) -> None:
    d = tmp_path / "corrupt"
    shutil.copytree(bundle_dir, d)
    (d / "head.tflite").write_bytes(b"garbage")
    with pytest.raises(BundleInvalid, match="files.head.sha256: mismatch"):
        Bundle.load(d)


def test_default_bundle_missing_is_clear(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("edge.bundle.DEFAULT_BUNDLE", tmp_path / "none")
    with pytest.raises(BundleNotFound, match="default bundle is not installed"):
        Bundle.load()


def test_no_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    with pytest.raises(RuntimeUnavailable, match="neither ai_edge_litert nor tflite_runtime"):
        interpreter_class()
