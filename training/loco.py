"""Leave-one-corpus-out: train without a corpus, test on every record of it.

    python -m training.loco CONFIG [--corpus ludb --corpus chapman --corpus cinc2021]
                                   [--out training/runs/loco] [--mc-samples 30]

For each held-out corpus the config is trained on the other corpora (their train/val splits,
`training.train.train`, same epochs and calibration on the remaining validation records) into
``OUT/<corpus>``, then the run is scored on all of the held-out corpus' records (train, val and
test splits: none was seen) against the truth (`training.truth`), last 8 s window of each
record, wearable metadata, MC T samples: mean r over the 11 leads, per lead, calibrated 90 %
coverage, record-level Spearman(std, error) per lead and the catch rate (records with r < 0.5
whose calibrated std, or the window flag on any window the gateway runs on the record (the
risk of `edge.atypicality`, else expected r, `edge.fidelity`), would raise a
`high_uncertainty` flag, against those with r > 0.8).
``OUT/<corpus>/loco.json`` holds the numbers; ``OUT/summary.json`` all of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from training.config import TrainConfig

CORPORA = ("ludb", "chapman", "cinc2021")
DEFAULT_OUT = Path(__file__).resolve().parent / "runs" / "loco"


def flag_records(cal_std: np.ndarray, thr: np.ndarray, min_n: int) -> np.ndarray:
    """Per record: does any lead's calibrated std exceed its threshold for >= min_n samples
    in a row (the gateway's `high_uncertainty` rule)?  ``cal_std`` (N, L, k)."""
    above = cal_std > thr[None, None, :]
    out = np.zeros(len(cal_std), bool)
    for i in range(len(cal_std)):
        for j in range(above.shape[2]):
            col = np.concatenate([[0], above[i, :, j].astype(int), [0]])
            d = np.diff(col)
            starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
            if len(starts) and (ends - starts).max() >= min_n:
                out[i] = True
                break
    return out


def fidelity_flags(cfg: TrainConfig, model: Any, preps: list[Any], cal: dict,
                   mc_samples: int) -> np.ndarray:
    """Per record: would the gateway's window flag fire on any window it runs on it
    (``training.dataset.gateway_starts``)? The risk of ``edge.atypicality`` when ``cal``
    has one, else expected r below ``flag_expected_r``; all false without either."""
    from edge.atypicality import Atypicality
    from edge.fidelity import expected_r
    from training.calibration import record_flags
    from training.dataset import gateway_arrays
    from training.mc import mc_predict, pooled_trunk_features

    out = np.zeros(len(preps), bool)
    if cal.get("atypicality") is None and cal.get("flag_expected_r") is None:
        return out
    arr, record = gateway_arrays(cfg, preps, "wearable")
    mean, std = mc_predict(model, arr.lead_i, arr.meta, mc_samples, seed=cfg.seed)
    er = expected_r(mean, std * np.asarray(cal["scale"]))
    if cal.get("atypicality") is not None:
        atyp = Atypicality.from_dict(cal["atypicality"], "calibration.json", "atypicality")
        scores = [atyp.score(p) for p in pooled_trunk_features(model, arr.lead_i)]
        ids, flagged = record_flags(atyp, er, scores, record)
        out[ids] = flagged
    else:
        np.logical_or.at(out, record, er < float(cal["flag_expected_r"]))
    return out


def score_arrays(cfg: TrainConfig, model: Any, arr: Any, cal: dict, mc_samples: int,
                 preps: list[Any] | None = None) -> dict[str, Any]:
    """Accuracy and uncertainty of ``model`` on evaluation arrays (truth = arr.leads12);
    with the records ``preps`` the arrays were built from, the window flag over every
    window the gateway runs on them (``fidelity_flags``), else on the arrays' windows."""
    from edge.leads import RECONSTRUCTED
    from training.evaluate_edge import catch_rates
    from training.mc import mc_predict, to_12_lead
    from training.metrics import pearson_per_record, spearman

    mean, std = mc_predict(model, arr.lead_i, arr.meta, mc_samples, seed=cfg.seed)
    scale = np.asarray(cal["scale"])
    cal_std = std * scale
    mean12, std12 = to_12_lead(arr.lead_i, mean, cfg.model.outputs, cal_std)
    r = pearson_per_record(arr.leads12[:, :, 1:], mean12[:, :, 1:])  # (N, 11)
    r_rec = np.nanmean(r, axis=1)
    err = np.abs(mean - arr.target)
    cover = float(np.mean(err <= 1.645 * cal_std))
    err12 = np.abs(mean12 - arr.leads12)[:, :, 1:]
    sd12 = std12[:, :, 1:]
    sp = {lead: spearman(sd12[:, :, j].mean(axis=1), err12[:, :, j].mean(axis=1))
          for j, lead in enumerate(RECONSTRUCTED)}
    flagged = flag_records(cal_std, np.asarray(cal["flag_std_mv"]),
                           int(round(0.2 * cfg.data.fs_hz)))
    if preps is not None:
        flagged = flagged | fidelity_flags(cfg, model, preps, cal, mc_samples)
    elif cal.get("flag_expected_r") is not None:  # the gateway's fidelity flag, per window
        from edge.fidelity import expected_r

        flagged = flagged | (expected_r(mean, cal_std) < float(cal["flag_expected_r"]))
    return {
        "records": len(arr.keys), "r_mean_11": float(np.nanmean(r_rec)),
        "r_per_lead": {lead: float(np.nanmean(r[:, j])) for j, lead in enumerate(RECONSTRUCTED)},
        "coverage_90": cover,
        "spearman_record": {**sp, "mean_V1_V6": float(np.mean([sp[f"V{i}"] for i in range(1, 7)]))},
        **catch_rates(r_rec, flagged),
    }


def run_loco(config: Path, corpora: tuple[str, ...], out: Path, mc_samples: int) -> dict:
    from training.dataset import eval_arrays, prepare_corpora
    from training.evaluate import load_run
    from training.train import train

    base = TrainConfig.load(config)
    data = prepare_corpora(base)
    summary: dict[str, Any] = {"config": str(config), "mc_samples": mc_samples, "held_out": {}}
    for corpus in corpora:
        held = [p for split in ("train", "val", "test") for p in data[split]
                if p.source == corpus]
        if not held:
            raise SystemExit(f"corpus {corpus!r} has no records in the prepared data")
        rest = {s: [p for p in data[s] if p.source != corpus] for s in data}
        cfg = dataclasses.replace(base, name=f"{base.name}-without-{corpus}")
        run_dir = out / corpus
        train(cfg, run_dir, resume=True, data=rest)
        cfg, model = load_run(run_dir)
        cal = json.loads((run_dir / "calibration.json").read_text())
        res = {"all_records": score_arrays(cfg, model, eval_arrays(cfg, held, "wearable"), cal,
                                           mc_samples, held)}
        test_keys = {p.key for p in data["test"]}
        test = [p for p in held if p.key in test_keys]
        if test:
            res["test_split"] = score_arrays(cfg, model, eval_arrays(cfg, test, "wearable"),
                                             cal, mc_samples, test)
        (run_dir / "loco.json").write_text(json.dumps(res, indent=2) + "\n")
        summary["held_out"][corpus] = res
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--corpus", action="append", choices=CORPORA)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--mc-samples", type=int, default=30)
    args = ap.parse_args(argv)
    res = run_loco(args.config, tuple(args.corpus or CORPORA), args.out, args.mc_samples)
    table = Table(title=f"leave-one-corpus-out ({args.config}, T={args.mc_samples})")
    for col in ("held out", "records", "r (11 leads)", "90 % coverage", "Spearman V1-V6",
                "catch rate", "false flags"):
        table.add_column(col)
    for corpus, res_c in res["held_out"].items():
        a = res_c["all_records"]
        table.add_row(corpus, str(a["records"]), f"{a['r_mean_11']:.3f}",
                      f"{a['coverage_90']:.3f}", f"{a['spearman_record']['mean_V1_V6']:.2f}",
                      "n/a" if a["catch_rate"] is None else f"{a['catch_rate']:.2f}",
                      "n/a" if a["false_flag_rate"] is None else f"{a['false_flag_rate']:.2f}")
    Console().print(table)
    print(f"wrote {args.out / 'summary.json'}")


if __name__ == "__main__":
    main()
