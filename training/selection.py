"""`python -m training.selection RUN RUN ...`: the validation-split numbers a default is chosen by.

For each trained run: mean Pearson r of the 11 reconstructed leads on the validation split
(dropout off) with no, wearable and clinical metadata, and the run's best validation MSE of
the mean (``run.json``). The test split is not touched, so choosing among runs by these
numbers leaves the test numbers honest. Writes ``training/runs/selection.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)
REGIMES = ("none", "wearable", "clinical")
OUT = Path(__file__).resolve().parent / "runs" / "selection.json"


def validation_r(run: Path, limit: int | None = None,
                 prepared: dict[Any, Any] | None = None) -> dict[str, Any]:
    """Validation r per regime of one run; ``prepared`` caches the validation records per
    data config across runs (they are prepared once, not once per run and regime)."""
    from training.dataset import eval_arrays, prepare_corpora
    from training.evaluate import load_run
    from training.mc import predict, to_12_lead
    from training.metrics import pearson_per_record

    cfg, model = load_run(run)
    cache = {} if prepared is None else prepared
    if cfg.data not in cache:
        cache[cfg.data] = prepare_corpora(cfg, limit=limit, progress=False)["val"]
    out: dict[str, Any] = {}
    for regime in REGIMES:
        arr = eval_arrays(cfg, cache[cfg.data], regime)
        if not arr.keys:
            raise SystemExit(f"error: {run}: the validation split has no records")
        p12, _ = to_12_lead(arr.lead_i, predict(model, arr.lead_i, arr.meta), cfg.model.outputs)
        r = np.nanmean(pearson_per_record(arr.leads12[:, :, 1:], p12[:, :, 1:]), axis=1)
        out[regime] = float(np.nanmean(r))
        out["n_records"] = len(arr.keys)
    info = run / "run.json"
    out["best_val_mse"] = (json.loads(info.read_text()).get("best_val_loss")
                           if info.is_file() else None)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--limit", type=int, default=None, help="records per corpus (smoke runs)")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    from training.evaluate import require_trained

    require_trained(a.runs)
    res = {"split": "val", "metric": "mean Pearson r, 11 reconstructed leads, dropout off",
           "runs": {}}
    table = Table(title="validation split: r none / wearable / clinical, best val loss "
                        "(the checkpoint criterion)")
    for col in ("run", "none", "wearable", "clinical", "val loss"):
        table.add_column(col)
    prepared: dict[Any, Any] = {}
    for i, run in enumerate(a.runs):
        console.print(f"[{i + 1}/{len(a.runs)}] {run}")
        v = res["runs"][str(run)] = validation_r(run, a.limit, prepared)
        mse = "-" if v["best_val_mse"] is None else f"{v['best_val_mse']:.5f}"
        table.add_row(str(run), *(f"{v[g]:.4f}" for g in REGIMES), mse)
    a.out.write_text(json.dumps(res, indent=2) + "\n")
    console.print(table)
    console.print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
