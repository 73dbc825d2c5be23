"""The facade: edge.load_bundle(...).reconstruct(...), input errors, and no TF import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bundle_fixture import synthetic_lead_i, write_tiny_bundle

import edge

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def model(bundle_dir: Path) -> edge.ReconstructionModel:
    return edge.load_bundle(bundle_dir, num_threads=1)


def test_reconstruct(model: edge.ReconstructionModel) -> None:
    x = synthetic_lead_i(1300, 130.0)
    r = model.reconstruct(x, 130, metadata={"age": 50, "sex": "F"}, mc_samples=4, seed=3)
    assert r.leads.shape == r.std.shape == (1300, 12)
    assert r.leads.dtype == np.float32 and np.isfinite(r.leads).all()
    again = model.reconstruct(x, 130, metadata={"age": 50, "sex": "F"}, mc_samples=4, seed=3)
    np.testing.assert_array_equal(r.leads, again.leads)
    np.testing.assert_array_equal(r.std, again.std)
    other = model.reconstruct(x, 130, metadata={"age": 80, "sex": "M"}, mc_samples=4, seed=3)
    assert not np.array_equal(r.leads, other.leads)  # metadata reaches the model


def test_streaming_equals_reconstruct(model: edge.ReconstructionModel) -> None:
    x = synthetic_lead_i(800, 200.0)
    r = model.reconstruct(x, 200, mc_samples=2, seed=1)
    s = model.streaming(200, mc_samples=2, seed=1)
    blocks = []
    for i in range(0, 800, 77):
        blocks += s.push(edge.Chunk(x[i:i + 77], t0_s=i / 200, fs_hz=200))
    blocks += s.flush()
    np.testing.assert_array_equal(np.concatenate([b.leads for b in blocks]), r.leads)


@pytest.mark.parametrize(("x", "fs", "exc", "needle"), [
    (np.zeros(2000), 50, edge.InputInvalid, "outside the supported 100-1000 Hz"),
    (np.zeros(2000), 2000, edge.InputInvalid, "outside the supported"),
    (np.r_[np.zeros(500), np.nan, np.zeros(500)], 100, edge.InputInvalid,
     "non-finite value(s) (NaN/inf); first at sample 500"),
    (np.zeros((300, 2)), 100, edge.InputInvalid, "must be 1-D"),
    (np.zeros(150), 100, edge.InputTooShort, "input has 150 samples at 100 Hz"),
])
def test_bad_input(model: edge.ReconstructionModel, x: np.ndarray, fs: float, exc: type,
                   needle: str) -> None:
    with pytest.raises(exc) as err:
        model.reconstruct(x, fs)
    assert needle in str(err.value)


def test_bad_metadata(model: edge.ReconstructionModel) -> None:
    from edge.metadata import MetadataError

    with pytest.raises(MetadataError, match="age"):
        model.reconstruct(synthetic_lead_i(400, 100.0), 100, metadata={"age": 500})


def test_exports() -> None:
    assert edge.LEADS[0] == "I" and edge.Chunk is not None
    from edge.pipeline import StreamingReconstructor

    assert edge.StreamingReconstructor is StreamingReconstructor


def test_load_without_tensorflow(bundle_dir: Path) -> None:
    code = (
        "import sys\n"
        "for m in ('tensorflow', 'keras', 'training', 'converters', 'matplotlib'):\n"
        "    sys.modules[m] = None\n"
        "import numpy as np, edge\n"
        f"m = edge.load_bundle({str(bundle_dir)!r})\n"
        "r = m.reconstruct(np.sin(np.arange(400) / 7.0), 100, mc_samples=2)\n"
        "assert r.leads.shape == (400, 12), r.leads.shape\n"
        "print('OK')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "OK" in out.stdout


def test_import_is_light() -> None:
    code = ("import sys, edge\n"
            "heavy = [m for m in ('ai_edge_litert', 'scipy', 'matplotlib', 'tensorflow')"
            " if m in sys.modules]\n"
            "print(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
