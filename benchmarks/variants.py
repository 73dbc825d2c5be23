"""Quantized variants of the run: convert (cached), and their accuracy cost vs float32.

Variants are written with ``converters.convert_run`` into ``runs/bench-variants/<q>_<lstm>``
(needs ecg12[train]); a folder whose manifest exists is reused. Accuracy cost = mean Pearson
r and RMSE of the variant's MC mean against the float32 bundle's MC mean (same masks: same
seed per window) on test windows of the run's split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import REPO

CACHE = REPO / "runs" / "bench-variants"


def build_variants(run_dir: str | Path, quants: tuple[str, ...], lstm: str = "unrolled",
                   cache: Path = CACHE, progress: Any = None) -> dict[str, Path | str]:
    """``{name: bundle folder}`` per quantization, or ``{name: "failed: ..."}``."""
    from converters import convert_run

    out: dict[str, Path | str] = {}
    for q in quants:
        name, path = f"{q}/{lstm}", cache / f"{q}_{lstm}"
        if progress is not None:
            progress(f"variant {name}")
        if not (path / "manifest.json").is_file():
            try:
                convert_run(run_dir, path, quant=q, lstm=lstm)
            except Exception as exc:  # noqa: BLE001 - a failing variant is a result
                out[name] = f"failed: {str(exc)[:120]}"
                continue
        out[name] = path
    return out


def test_arrays(run_dir: str | Path, records: int) -> tuple[np.ndarray, np.ndarray] | str:
    """(lead_i (N, L), meta (N, M)) of the run's test split, or the reason it is n/a."""
    try:
        from training.config import TrainConfig
        from training.dataset import load_split_arrays

        cfg = TrainConfig.load(Path(run_dir) / "config.json")
        arr = load_split_arrays(cfg, "test", "wearable", progress=False)
    except Exception as exc:  # noqa: BLE001 - no data / no training extra: say why
        return f"n/a (test split unavailable: {str(exc)[:120]})"
    if len(arr.lead_i) == 0:
        return "n/a (test split is empty)"
    idx = np.linspace(0, len(arr.lead_i) - 1, min(records, len(arr.lead_i))).astype(int)
    return arr.lead_i[idx, :, 0], arr.meta[idx]


def mc_means(bundle_dir: str | Path, lead_i: np.ndarray, meta: np.ndarray, samples: int
             ) -> np.ndarray:
    """MC means ``(N, L, 7)`` of a bundle, masks seeded per window."""
    from edge.bundle import Bundle

    b = Bundle.load(bundle_dir, num_threads=1)
    return np.stack([b.predict_window(x, m, samples, np.random.default_rng([0, i]))[0]
                     for i, (x, m) in enumerate(zip(lead_i, meta, strict=True))])


def accuracy_cost(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Mean Pearson r (per window and lead) and RMSE (mV) of ``pred`` vs ``ref``."""
    p = pred - pred.mean(axis=1, keepdims=True)
    r_ = ref - ref.mean(axis=1, keepdims=True)
    den = np.sqrt((p * p).sum(1) * (r_ * r_).sum(1))
    r = np.where(den > 0, (p * r_).sum(1) / np.where(den > 0, den, 1.0), np.nan)
    return {"pearson_r_vs_float32": float(np.nanmean(r)),
            "rmse_mv_vs_float32": float(np.sqrt(np.mean((pred - ref) ** 2)))}


if __name__ == "__main__":
    import json
    import sys

    from converters.export import QUANTS

    run = sys.argv[1]
    bundles = build_variants(run, QUANTS)
    data = test_arrays(run, 20)
    if isinstance(data, str):
        print(data)
    else:
        ref = mc_means(bundles["float32/unrolled"], *data, 30)
        for name, path in bundles.items():
            res = (accuracy_cost(mc_means(path, *data, 30), ref) if isinstance(path, Path)
                   else path)
            print(name, json.dumps(res))
