"""ecg12 gateway: single-lead (Lead I) ECG -> 12-lead ECG with a TFLite bundle.

>>> import edge
>>> model = edge.load_bundle()            # or edge.load_bundle("path/to/bundle")
>>> rec = model.reconstruct(lead_i_mv, fs=130, metadata={"age": 54, "sex": "F"})
>>> rec.leads.shape, rec.std.shape        # (n, 12) at the input rate, mV

Importing ``edge`` is light: LiteRT and the pipeline load on first use. The gateway path
imports numpy and LiteRT only (no scipy, pandas or matplotlib; the report's matplotlib
loads when a report is drawn, wfdb when a WFDB record is read).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.chunk import Chunk
from edge.errors import (
    BundleInvalid,
    BundleNotFound,
    EdgeError,
    InputInvalid,
    InputTooShort,
    RuntimeUnavailable,
)
from edge.leads import LEADS
from edge.manifest import MAX_MC_SAMPLES

if TYPE_CHECKING:
    from edge.bundle import Bundle
    from edge.personalize import Personalization
    from edge.pipeline import Flag, StreamingReconstructor

__all__ = [
    "LEADS", "Chunk", "StreamingReconstructor", "load_bundle", "ReconstructionModel",
    "Reconstruction", "EdgeError", "BundleInvalid", "BundleNotFound", "InputInvalid",
    "InputTooShort", "RuntimeUnavailable", "MIN_FS_HZ", "MAX_FS_HZ",
]

MIN_FS_HZ, MAX_FS_HZ = 100.0, 1000.0
MAX_SEED = 2**32 - 1


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    """An integer option within [lo, hi], or InputInvalid naming it and its value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if not (isinstance(value, (float, np.floating)) and float(value).is_integer()):
            raise InputInvalid(f"{name}={value!r} must be an integer in {lo}..{hi}")
    v = int(value)
    if not lo <= v <= hi:
        raise InputInvalid(f"{name}={value!r} must be an integer in {lo}..{hi}")
    return v


def __getattr__(name: str) -> Any:
    if name in ("StreamingReconstructor", "Block", "Flag"):
        from edge import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'edge' has no attribute {name!r}")


@dataclass(frozen=True)
class Reconstruction:
    """12 leads and their std, ``(n, 12)`` float32 mV at the input rate, plus flags."""

    leads: np.ndarray
    std: np.ndarray
    flags: list[Flag]
    fs_hz: float


class ReconstructionModel:
    """A loaded bundle with a one-call ``reconstruct``."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle

    @property
    def manifest(self) -> Any:
        return self.bundle.manifest

    def streaming(self, fs_hz: float, metadata: dict[str, Any] | None = None,
                  mc_samples: int | None = None, seed: int = 0,
                  personalization: Personalization | None = None) -> StreamingReconstructor:
        """A ``StreamingReconstructor`` on this bundle (``seed`` 0..2**32-1, ``mc_samples``
        0..10000 or None for the bundle's default), personalised with ``personalization``
        (whose enrolment metadata is used when ``metadata`` is None)."""
        from edge.pipeline import StreamingReconstructor

        seed = _check_int("seed", seed, 0, MAX_SEED)
        if mc_samples is not None:
            mc_samples = _check_int("mc_samples", mc_samples, 0, MAX_MC_SAMPLES)
        if metadata is None and personalization is not None:
            metadata = personalization.metadata or None
        return StreamingReconstructor(self.bundle, fs_hz, metadata, mc_samples, seed,
                                      personalization=personalization)

    def personalize(self, ecg_mv: Any, fs: float, wearable_lead_i: Any = None,
                    metadata: dict[str, Any] | None = None, *, wearable_fs: float | None = None,
                    mc_samples: int = 30, seed: int = 0) -> Personalization:
        """Enrol a wearer from a standard 12-lead ECG ``(n, 12)`` mV at ``fs`` (I, II, III,
        aVR, aVL, aVF, V1-V6; at least one model window), optionally with the wearable's
        simultaneous single lead (at ``wearable_fs``, default ``fs``). See ``edge.personalize``.
        """
        from edge.personalize import personalize

        return personalize(self, ecg_mv, fs, wearable_lead_i, metadata,
                           wearable_fs=wearable_fs, mc_samples=mc_samples, seed=seed)

    def reconstruct(self, lead_i: Any, fs: float, metadata: dict[str, Any] | None = None,
                    mc_samples: int = 30, seed: int = 0,
                    personalization: Personalization | None = None) -> Reconstruction:
        """Lead I ``(n,)`` mV at ``fs`` (100-1000 Hz) -> ``Reconstruction`` at ``fs``
        (personalised with ``personalization`` from ``personalize``)."""
        try:
            fs = float(fs)
        except (TypeError, ValueError):
            raise InputInvalid(f"fs={fs!r} is not a number") from None
        if not (math.isfinite(fs) and MIN_FS_HZ <= fs <= MAX_FS_HZ):
            raise InputInvalid(f"fs={fs!r} Hz outside the supported {MIN_FS_HZ:g}-"
                               f"{MAX_FS_HZ:g} Hz")
        try:
            x = np.asarray(lead_i, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise InputInvalid(f"lead_i is not numeric: {e}") from None
        if x.ndim == 2 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 1:
            raise InputInvalid(f"lead_i must be 1-D (n,) in mV, got shape {x.shape}")
        bad = ~np.isfinite(x)
        if bad.any():
            raise InputInvalid(f"lead_i has {int(bad.sum())} non-finite value(s) (NaN/inf); "
                               f"first at sample {int(np.argmax(bad))}")
        from edge.conditioning import ConditioningError

        rec = self.streaming(fs, metadata, mc_samples, seed, personalization)
        try:
            blocks = rec.push(Chunk(x.astype(np.float32), t0_s=0.0, fs_hz=fs)) + rec.flush()
        except ConditioningError as exc:  # e.g. a rate without a small ratio to the model's
            raise InputInvalid(f"fs={fs:g} Hz: {exc}") from None
        leads = np.concatenate([b.leads for b in blocks]) if blocks else np.zeros((0, 12))
        std = np.concatenate([b.std for b in blocks]) if blocks else np.zeros((0, 12))
        flags = [f for b in blocks for f in b.flags]
        return Reconstruction(leads.astype(np.float32), std.astype(np.float32), flags, fs)


def load_bundle(path: str | Path | None = None,
                num_threads: int | None = None) -> ReconstructionModel:
    """Load a bundle folder (default: the shipped ``edge/bundles/default``)."""
    from edge.bundle import Bundle

    return ReconstructionModel(Bundle.load(path, num_threads=num_threads))
