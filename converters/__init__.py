"""Keras -> TFLite conversion of the edge model into gateway bundles (workstation side).

``convert_run(run_dir, out_dir, quant, lstm, mc_samples)`` writes a bundle;
``compare_variants(run_dir, ...)`` converts every quantization x LSTM option and reports size,
latency and parity against Keras.
"""

from __future__ import annotations

from typing import Any

from converters.errors import ConversionError, RunFolderError

__all__ = ["ConversionError", "RunFolderError", "compare_variants", "convert_run"]


def __getattr__(name: str) -> Any:  # heavy modules (TensorFlow) load on first use
    if name == "convert_run":
        from converters.bundle import convert_run

        return convert_run
    if name == "compare_variants":
        from converters.compare import compare_variants

        return compare_variants
    raise AttributeError(f"module 'converters' has no attribute {name!r}")
