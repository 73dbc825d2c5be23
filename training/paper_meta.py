"""One-hot binned metadata encoding of the reference paper (Hirata et al., Sensors 2026).

Fields: ventricular rate, QRS duration, R axis, T axis, QRS count. Each is binned into fixed
bins plus one 'missing' bin, then one-hot encoded and concatenated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edge.metadata import clean_metadata

#: bin edges per field (values below the first edge fall in bin 0, above the last in the last)
PAPER_BINS: dict[str, tuple[float, ...]] = {
    "ventricular_rate": (50, 60, 70, 80, 90, 100, 120, 150),
    "qrs_duration": (80, 90, 100, 110, 120, 140),
    "r_axis": (-90, -30, 0, 30, 60, 90, 120),
    "t_axis": (-90, -30, 0, 30, 60, 90, 120),
    "qrs_count": (8, 10, 12, 14, 16, 20, 25),
}
#: size of the encoded vector: per field, len(edges)+1 bins plus one missing bin
PAPER_META_SIZE = sum(len(e) + 2 for e in PAPER_BINS.values())


def encode_paper_metadata(metadata: Mapping[str, Any] | None) -> np.ndarray:
    md = clean_metadata({k: v for k, v in (metadata or {}).items()})
    parts = []
    for key, edges in PAPER_BINS.items():
        onehot = np.zeros(len(edges) + 2, dtype=np.float32)
        if key in md:
            v = float(md[key])
            if key.endswith("axis"):
                v = (v + 180.0) % 360.0 - 180.0
            onehot[int(np.searchsorted(edges, v, side="right"))] = 1.0
        else:
            onehot[-1] = 1.0
        parts.append(onehot)
    return np.concatenate(parts)
