"""Reconstruct stage: one model window -> mean and calibrated std of the predicted leads.

Metadata = the caller's fields + Lead-I features of the window for the manifest's
``derive_from_lead_i`` fields the caller did not give. MC masks come from
``default_rng([seed, segment, window])``, so the output does not depend on chunking.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.bundle import Bundle
from edge.features import lead_i_features
from edge.metadata import MetadataError, clean_metadata, encode_metadata


class WindowModel:
    def __init__(self, bundle: Bundle, metadata: dict[str, Any], mc_samples: int, seed: int
                 ) -> None:
        self.bundle = bundle
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
            ) -> tuple[np.ndarray, np.ndarray]:
        meta = encode_metadata(self.window_metadata(x_mv))
        rng = np.random.default_rng([self.seed, segment, window])
        self.windows_run += 1
        return self.bundle.predict_window(x_mv.astype(np.float32), meta, self.mc_samples, rng)
