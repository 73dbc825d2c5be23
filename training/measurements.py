"""12-lead measurements (rate, QRS count/duration, R and T axes) from a ground-truth ECG.

Used in training to fill the "clinical" metadata regime for corpora without machine
measurements (PTB-XL, LUDB, CinC). The code lives in `edge.measurements12` (the gateway needs
it too, for `ecg12 enroll`, and edge never imports training); this module re-exports it.
"""

from __future__ import annotations

from edge.measurements12 import GLOBAL_EDGE_FRACTION, frontal_axis, twelve_lead_measurements

__all__ = ["GLOBAL_EDGE_FRACTION", "frontal_axis", "twelve_lead_measurements"]
