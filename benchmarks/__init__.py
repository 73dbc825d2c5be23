"""Benchmarks of the edge path (issue #7): latency, throughput, footprint, accuracy cost.

``ecg12 bench`` (or ``python -m benchmarks.cli``) prints a table and writes JSON/Markdown;
each module also runs alone (``python -m benchmarks.latency`` ...). Numbers are measured on
the machine the command runs on; nothing is hard-coded.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NAIVE_NA = "n/a (needs ecg12[train] and the run folder)"
