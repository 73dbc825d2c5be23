"""Reconstruct stage: one model window -> mean and calibrated std of the predicted leads.

Metadata = the caller's fields + Lead-I features for the manifest's ``derive_from_lead_i``
fields the caller did not give. The features are refreshed once per ``FEATURE_REFRESH_S`` of
window starts: every window whose start falls in the same 4 s of the segment uses those of
the first such window (with a 0.25 s hop, sixteen windows share one computation; measured on
the 507 validation records with ``training.evaluate_edge --split val``, Lead-I features
only: r 0.78459 at a 1 s refresh, 0.78457 at 2 s with an earlier bundle; with the shipped
one r 0.78467 at 2 s and 0.78466 at 4 s, coverage 0.9138 at both). A window's
metadata thus depends only on the segment's samples, never on chunking. MC masks come from
``default_rng([seed, segment, window])``, so the output does not depend on chunking either.

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


#: Lead-I features are computed once per this many seconds of window starts (see above)
FEATURE_REFRESH_S = 4.0


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
        self.refresh = max(1, int(round(FEATURE_REFRESH_S * bundle.fs_hz)))
        self._meta: tuple[tuple[int, int], np.ndarray] | None = None  # (group, encoded)

    def encoded_at(self, x_mv: np.ndarray, segment: int, start: int) -> np.ndarray:
        """Encoded ``window_metadata`` of the first window whose start lies in the same
        ``FEATURE_REFRESH_S`` group of ``segment`` as ``start`` (this one, if it is the
        first): windows arrive in order, so the group's first window is computed first."""
        key = (segment, start // self.refresh)
        if self._meta is None or self._meta[0] != key:
            self._meta = (key, encode_metadata(self.window_metadata(x_mv)))
        return self._meta[1]

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

    def run(self, x_mv: np.ndarray, segment: int, window: int, start: int
            ) -> tuple[np.ndarray, np.ndarray, float | None]:
        """(mean, std, atypicality score) of one window; ``start`` (model samples from the
        segment start) groups the Lead-I feature refresh."""
        meta = self.encoded_at(x_mv, segment, start)
        rng = np.random.default_rng([self.seed, segment, window])
        self.windows_run += 1
        with self.lock:
            return self.bundle.run_window(x_mv.astype(np.float32), meta, self.mc_samples, rng)
