"""Reconstruct stage: one model window -> mean and calibrated std of the predicted leads.

Metadata = the caller's fields + Lead-I features of the window for the manifest's
``derive_from_lead_i`` fields the caller did not give. MC masks come from
``default_rng([seed, segment, window])``, so the output does not depend on chunking.

One bundle may serve many reconstructors in several threads (a gateway's devices; a
session's ``flush`` on the event loop while another device's ``push`` runs in a worker):
its interpreters are not thread-safe, so each bundle's model calls are serialised by a lock.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np

from edge.bundle import Bundle
from edge.features import lead_i_features
from edge.metadata import MetadataError, clean_metadata, encode_metadata

_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(bundle: Any) -> threading.Lock:
    """The lock that serialises ``bundle``'s model calls (one per bundle object)."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(bundle)
        if lock is None:
            lock = _LOCKS[bundle] = threading.Lock()
        return lock


class WindowModel:
    def __init__(self, bundle: Bundle, metadata: dict[str, Any], mc_samples: int, seed: int
                 ) -> None:
        self.bundle = bundle
        self.lock = model_lock(bundle)
        self.metadata = metadata
        self.mc_samples = mc_samples
        self.seed = seed
        self.derive = tuple(f for f in bundle.manifest.metadata.derive_from_lead_i
                            if f not in metadata)
        self.windows_run = 0

    def window_metadata(self, x_mv: np.ndarray) -> dict[str, Any]:
        md = dict(self.metadata)
        if self.derive:
            feats = lead_i_features(x_mv, self.bundle.fs_hz)
            for name in self.derive:
                if name in feats:
                    try:
                        md.update(clean_metadata({name: feats[name]}))
                    except MetadataError:
                        pass  # implausible estimate: leave the field absent
        return md

    def run(self, x_mv: np.ndarray, segment: int, window: int
            ) -> tuple[np.ndarray, np.ndarray, float | None]:
        meta = encode_metadata(self.window_metadata(x_mv))
        rng = np.random.default_rng([self.seed, segment, window])
        self.windows_run += 1
        with self.lock:
            return self.bundle.run_window(x_mv.astype(np.float32), meta, self.mc_samples, rng)
