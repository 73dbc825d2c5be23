"""`python -m training.ensemble RUN RUN ...`: a deep ensemble of trained runs against each run's
own MC dropout, on the test split (wearable regime).

Each member is sampled as the evaluation samples it (``training.mc.mc_predict``, T passes);
the ensemble is the equal mixture of the members' predictive distributions: mean = the mean
of the means, variance = the mean of (std² + mean²) minus mean². Every candidate (each run
alone and the ensemble) is calibrated the way training calibrates a run, on the validation
split: the corpus-robust per-lead scale and the expected-r flag threshold at
``training.train.FIDELITY_BUDGET``. Reported on the test split: mean r of the 11
reconstructed leads, record-level Spearman(std, |err|) per lead (V1-V6 and mean), 90 %
coverage, and the catch rate (records with r < 0.5 flagged) against false flags (records
with r > 0.8 flagged). Writes ``ensemble_eval.json`` (default: in the first run's folder).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from edge.fidelity import expected_r
from edge.leads import RECONSTRUCTED

console = Console(stderr=True)
CHEST = ("V1", "V2", "V3", "V4", "V5", "V6")
OUT_FILE = "ensemble_eval.json"


def mixture(means: list[np.ndarray], stds: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of an equal mixture of Gaussians given per member (same shapes)."""
    if not means or len(means) != len(stds):
        raise ValueError(f"{len(means)} means for {len(stds)} stds")
    m = np.mean(means, axis=0)
    second = np.mean([s.astype(np.float64) ** 2 + mu.astype(np.float64) ** 2
                      for mu, s in zip(means, stds, strict=True)], axis=0)
    return m, np.sqrt(np.maximum(second - m.astype(np.float64) ** 2, 0.0))


def score(val: Any, test: Any, pv: tuple[np.ndarray, np.ndarray],
          pt: tuple[np.ndarray, np.ndarray], outputs: str) -> dict[str, Any]:
    """Calibrate one candidate on validation (``pv`` = mean, std) and score it on test."""
    from training.calibration import coverage, fit_corpus_robust_scale, fit_fidelity_threshold
    from training.mc import to_12_lead
    from training.metrics import pearson_per_record, uncertainty_metrics
    from training.train import FIDELITY_BUDGET

    mv, sv = pv
    corpora = [k.split("/")[0] for k in val.keys]
    scale = fit_corpus_robust_scale(sv, np.abs(mv - val.target), corpora, nominal=0.9)
    thr = fit_fidelity_threshold(mv, sv * scale, val.target, FIDELITY_BUDGET)
    mt, st = pt
    cal = st * scale
    m12, s12 = to_12_lead(test.lead_i, mt, outputs, cal)
    r = np.nanmean(pearson_per_record(test.leads12[:, :, 1:], m12[:, :, 1:]), axis=1)
    unc = uncertainty_metrics(s12[:, :, 1:], np.abs(m12 - test.leads12)[:, :, 1:],
                              list(RECONSTRUCTED))["spearman_record"]
    flagged = expected_r(mt, cal) < thr
    bad, good = r < 0.5, r > 0.8
    return {
        "r_mean_11": float(np.nanmean(r)),
        "spearman_record": {k: float(unc[k]) for k in (*CHEST, "mean")},
        "coverage_90": float(coverage(st, np.abs(mt - test.target), scale, 0.9).mean()),
        "catch_rate": float(flagged[bad].mean()) if bad.any() else None,
        "false_flag_rate": float(flagged[good].mean()) if good.any() else None,
        "n_bad": int(bad.sum()), "n_good": int(good.sum()), "n_records": int(len(r)),
        "flag_expected_r": thr, "scale": [float(s) for s in scale],
    }


def _eval_key(cfg: Any, run: Path) -> tuple[Any, ...]:
    """What makes two runs' test arrays the same: rate, window, corpora, split, outputs."""
    split = json.loads((run / "run.json").read_text()).get("split_sha256") \
        if (run / "run.json").is_file() else None
    d = cfg.data
    return d.fs_hz, d.window_s, tuple(d.sources), d.limit_per_source, split, cfg.model.outputs


def evaluate_ensemble(runs: list[Path], mc_samples: int = 30, limit: int | None = None
                      ) -> dict[str, Any]:
    from training.config import TrainConfig
    from training.dataset import eval_arrays, prepare_corpora
    from training.evaluate import load_run
    from training.mc import mc_predict

    if len(runs) < 2:
        raise SystemExit("error: an ensemble needs at least two runs")
    first = TrainConfig.load(Path(runs[0]) / "config.json")
    for run in runs[1:]:  # before any data is prepared or model loaded
        if _eval_key(TrainConfig.load(Path(run) / "config.json"), Path(run)) != \
                _eval_key(first, Path(runs[0])):
            raise SystemExit(f"error: {run}: data, split or outputs differ from {runs[0]}")
    preps = prepare_corpora(first, limit=limit, progress=False)
    val, test = (eval_arrays(first, preps[s], "wearable") for s in ("val", "test"))
    preds: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for i, run in enumerate(runs):
        cfg, model = load_run(Path(run))
        console.print(f"[{i + 1}/{len(runs)}] MC T={mc_samples}: {run}")
        preds[str(run)] = {s: mc_predict(model, a.lead_i, a.meta, mc_samples, seed=cfg.seed)
                           for s, a in (("val", val), ("test", test))}
    out: dict[str, Any] = {"runs": [str(r) for r in runs], "mc_samples": mc_samples,
                           "regime": "wearable", "candidates": {}}
    for name, p in preds.items():
        out["candidates"][name] = score(val, test, p["val"], p["test"], first.model.outputs)
    ens = {s: mixture([p[s][0] for p in preds.values()], [p[s][1] for p in preds.values()])
           for s in ("val", "test")}
    out["candidates"]["ensemble"] = score(val, test, ens["val"], ens["test"],
                                          first.model.outputs)
    return out


def _table(res: dict[str, Any]) -> Table:
    t = Table(title=f"deep ensemble vs MC dropout (test split, wearable, T={res['mc_samples']})")
    for col in ("candidate", "r", "Spearman V1-V6 (mean of 11)", "coverage", "catch / false"):
        t.add_column(col)
    for name, c in res["candidates"].items():
        sp = c["spearman_record"]
        cf = ("-" if c["catch_rate"] is None or c["false_flag_rate"] is None
              else f"{c['catch_rate']:.2f} / {c['false_flag_rate']:.2f}")
        t.add_row(name, f"{c['r_mean_11']:.3f}",
                  f"{min(sp[k] for k in CHEST):.2f}-{max(sp[k] for k in CHEST):.2f} "
                  f"({sp['mean']:.2f})", f"{c['coverage_90']:.3f}", cf)
    return t


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--mc-samples", type=int, default=30)
    ap.add_argument("--limit", type=int, default=None, help="records per corpus (smoke runs)")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    from training.evaluate import require_trained

    require_trained(a.runs)
    res = evaluate_ensemble(a.runs, a.mc_samples, a.limit)
    out = a.out or a.runs[0] / OUT_FILE
    out.write_text(json.dumps(res, indent=2) + "\n")
    console.print(_table(res))
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
