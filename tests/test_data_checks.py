"""Load-time checks and record type on synthetic signals (no data needed)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.leads import LEADS
from training.data import MISSING, Recording, RecordRejected, dedupe_prefer_rate
from training.data.checks import check_signal, einthoven_error


def _ecg(n: int = 5000, fs: float = 500.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    i = 0.5 * np.sin(2 * np.pi * 1.2 * t) + 0.05 * rng.standard_normal(n)
    ii = 0.9 * np.sin(2 * np.pi * 1.2 * t + 0.3) + 0.05 * rng.standard_normal(n)
    limb = [i, ii, ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2]
    chest = [0.3 * (k + 1) * np.sin(2 * np.pi * 1.2 * t + k) + 0.02 * rng.standard_normal(n)
             for k in range(6)]
    return np.stack(limb + chest, axis=1).astype(np.float32)


def test_consistent_signal_passes() -> None:
    x = _ecg()
    check_signal(x, 500.0, "synthetic/ok")
    assert einthoven_error(x) < 1e-5


@pytest.mark.parametrize("corrupt, reason", [
    (lambda x: x.__setitem__((slice(None), 1), x[:, 1] * 1.5), "einthoven"),
    (lambda x: x.__setitem__((100, 7), np.nan), "non-finite"),
    (lambda x: x.__setitem__((slice(None), 8), 0.0), "flat lead"),
    (lambda x: x.__setitem__((slice(None), 0), np.clip(x[:, 0], -0.3, 0.3)), "saturated lead"),
    (lambda x: x.__imul__(1000.0), "amplitude"),
])
def test_bad_signals_are_rejected_with_named_reason(corrupt, reason: str) -> None:
    x = _ecg()
    corrupt(x)
    with pytest.raises(RecordRejected) as err:
        check_signal(x, 500.0, "synthetic/bad")
    assert err.value.reason.startswith(reason)
    assert "synthetic/bad" in str(err.value)


def test_wrong_shape_rejected_by_recording() -> None:
    with pytest.raises(RecordRejected, match="shape"):
        Recording(np.zeros((100, 8)), 500.0, "r1", "p1", "test")


def test_missing_fields_are_explicit() -> None:
    rec = Recording(_ecg(), 500.0, "r1", "p1", "test", {"age": 40.0})
    assert rec.metadata["sex"] is MISSING and not MISSING
    assert rec.model_metadata() == {"age": 40.0}
    assert rec.key == "test/r1" and rec.signal_mv.dtype == np.float32
    assert rec.signal_mv.shape[1] == len(LEADS)


def test_dedupe_prefers_500_hz() -> None:
    lo = Recording(_ecg(1000, 100.0), 100.0, "00001_lr", "ptbxl/1", "ptbxl", {"ecg_id": 1})
    hi = Recording(_ecg(), 500.0, "00001_hr", "ptbxl/1", "ptbxl", {"ecg_id": 1})
    only = Recording(_ecg(1000, 100.0), 100.0, "00002_lr", "ptbxl/2", "ptbxl", {"ecg_id": 2})
    other = Recording(_ecg(), 500.0, "x", "ludb/x", "ludb")
    out = dedupe_prefer_rate([lo, hi, only, other])
    assert {r.key for r in out} == {"ptbxl/00001_hr", "ptbxl/00002_lr", "ludb/x"}


def test_implausible_measured_metadata_counts_as_absent() -> None:
    from training.dataset import plausible

    md = {"age": 61.0, "sex": "F", "qrs_duration": 340.0, "ventricular_rate": float("nan"),
          "r_axis": 30.0}
    assert plausible(md) == {"age": 61.0, "sex": "F", "r_axis": 30.0}
