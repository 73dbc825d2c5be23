"""Accuracy of the product path against the true signal: the shipped bundle through the
streaming pipeline on raw test recordings, scored at the recording's own rate.

    python -m training.evaluate_edge [--bundle PATH] [--limit N] [--out FILE]
                                     [--profile lead_i|wearable|clinical] [--split test|val]

Each test record's raw Lead I goes through `edge.load_bundle(...).reconstruct` (conditioning,
TFLite trunk + MC head, stitching, output at the input rate). Its 12 output leads are scored
against the recording itself band-passed 0.5-40 Hz zero-phase (`training.truth`: scipy's
forward-backward Butterworth, independent of `edge`), per lead, per corpus and overall. Output
Lead I against the truth's Lead I (r and best lag) checks the timing. The first and last
second are left out (the truth's own forward-backward filter settles there). Also reported:
coverage of the nominal 90 % interval of the calibrated std and |error| inside and outside
the `high_uncertainty` flags.

``--profile wearable`` gives each recording the profile a wearer types in: age and sex from
the record's own header (where it has them). ``--profile clinical`` adds what ``ecg12 enroll``
would fill from a 12-lead ECG (R and T axis by ``edge.measurements12``; QRS duration stays the one
the gateway measures on Lead I, as with any profile), measured on the recording's own 12
leads: what clinical fields add on the product path (an upper bound: a real profile comes
from an earlier ECG; ``training.evaluate_personalization`` uses one).
The default (``lead_i``) gives no metadata: the gateway derives rate, QRS count and QRS
duration from Lead I itself.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "runs" / "default" / "edge_eval.json"
CLINICAL_OUT = HERE / "runs" / "default" / "edge_eval_clinical.json"
WEARABLE_OUT = HERE / "runs" / "default" / "edge_eval_wearable.json"
PROFILE_TEXT = {
    "lead_i": "none (Lead-I features only)",
    "wearable": "wearable: age and sex from the record's header (a wearer's profile)",
    "clinical": "clinical: age and sex from the header, R and T axis from the recording's own "
                "12 leads (ecg12 enroll)",
}
MAX_LAG = 25


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b) / den) if den > 0 else float("nan")


def best_lag(out: np.ndarray, ref: np.ndarray, max_lag: int = MAX_LAG) -> int:
    """Lag (samples) of ``out`` behind ``ref`` that maximises their correlation."""
    a, b = out - out.mean(), ref - ref.mean()
    n = len(a)
    lags = range(-max_lag, max_lag + 1)
    c = [float(np.dot(a[max_lag + k: n - max_lag + k], b[max_lag: n - max_lag])) for k in lags]
    return list(lags)[int(np.argmax(c))]


def clinical_profile(signal_mv: np.ndarray, fs: float) -> dict[str, float]:
    """The clinical fields of a wearer's profile from a 12-lead recording, as ``ecg12 enroll``
    fills them (``edge.profile.axes_from_12_lead``: R and T axis)."""
    from edge.profile import axes_from_12_lead

    return axes_from_12_lead(signal_mv, fs)


def wearable_profile(metadata: dict) -> dict:
    """Age and sex of a record as a wearer's profile holds them (absent ones left out)."""
    from edge.metadata import MetadataError, clean_metadata
    from training.data.record import MISSING

    out: dict = {}
    for k in ("age", "sex"):
        v = metadata.get(k, MISSING)
        if v is MISSING:
            continue
        try:
            out.update(clean_metadata({k: v}))
        except MetadataError:  # an implausible header value: the wearer would not type it
            continue
    return out


def profile_for(rec, profile: str) -> dict | None:
    """The metadata a gateway gets for ``rec`` under ``profile`` (None: Lead I only)."""
    if profile == "lead_i":
        return None
    meta = wearable_profile(rec.metadata)
    if profile == "clinical":
        meta.update(clinical_profile(rec.signal_mv, rec.fs_hz))
    return meta


def check_bundle(bundle: str | None) -> Any:
    """The loaded bundle (``edge.load_bundle``); exits with its one-line error (no
    traceback) if it cannot be loaded."""
    import edge
    from edge.errors import EdgeError

    try:
        return edge.load_bundle(bundle)
    except EdgeError as e:
        raise SystemExit(f"error: {e}") from None


def trimmed(out: Any, truth: np.ndarray, fs: float
            ) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray]:
    """(s, e, output leads, std, truth) of a reconstruction scored without its first and last
    second (the truth's filter settles there) and without samples no window covered."""
    s, e = int(fs), len(truth) - int(fs)
    got, std, tru = out.leads[s:e], out.std[s:e], truth[s:e]
    ok = np.isfinite(got).all(axis=1)
    return s, e, got[ok], std[ok], tru[ok]


def split_records(split: str, corpus: str | None = None, limit: int | None = None,
                  progress: bool = False) -> list:
    """The deduplicated records of ``split`` ("all": every split) of every corpus, or of
    ``corpus`` alone; the first ``limit`` of them."""
    from training.data import dedupe_prefer_rate, load_corpus
    from training.data.splits import load_splits

    splits = load_splits()
    recs = []
    for name in ("ptbxl", "ludb", "chapman", "cinc2021") if corpus is None else (corpus,):
        recs += load_corpus(name, progress=progress).records
    recs = [r for r in dedupe_prefer_rate(recs)
            if (split == "all" or splits.get(r.key) == split)
            and (corpus is None or r.source == corpus)]
    return recs[:limit] if limit else recs


def evaluate_edge(bundle: str | None = None, limit: int | None = None, mc_samples: int = 30,
                  progress: bool = True, profile: str = "lead_i", split: str = "test",
                  corpus: str | None = None) -> dict:
    """The product path on the ``split`` records ("all": every split) of every corpus, or of
    ``corpus`` alone; see the module docstring."""
    import edge
    from edge.fidelity import expected_r
    from edge.leads import LEADS
    from training.truth import TRUTH_TEXT, truth_signal

    recs = split_records(split, corpus, limit, progress)
    model = edge.load_bundle(bundle)
    per_rec: list[dict] = []
    err_in, err_out, flagged_records = [], [], 0
    for rec in track(recs, description="edge path", disable=not progress):
        fs = rec.fs_hz
        meta = profile_for(rec, profile)
        out = model.reconstruct(rec.signal_mv[:, 0], fs=fs, metadata=meta,
                                mc_samples=mc_samples, seed=0)
        truth = truth_signal(rec.signal_mv, fs)
        s, e, got, std, tru = trimmed(out, truth, fs)
        r = [_pearson(got[:, j], tru[:, j]) for j in range(12)]
        per_rec.append({
            "key": rec.key, "source": rec.source, "fs_hz": fs, "r": r,
            "rmse": [float(np.sqrt(np.mean((got[:, j] - tru[:, j]) ** 2))) for j in range(12)],
            "lead_i_lag": best_lag(got[:, 0], tru[:, 0]),
            "cover": float(np.mean(np.abs(got[:, 1:] - tru[:, 1:]) <= 1.645 * std[:, 1:])),
            "flagged": any(f.kind == "high_uncertainty" for f in out.flags),
            "mean_std": float(np.nanmean(std[:, 1:])),
            "std_lead": np.mean(std, axis=0).tolist(),  # per lead (record-level Spearman)
            "abs_err_lead": np.mean(np.abs(got - tru), axis=0).tolist(),
            "expected_r": float(expected_r(got[:, 1:], std[:, 1:])),
        })
        # |error| of a lead inside its high-uncertainty flags vs outside them
        err = np.abs(out.leads[s:e] - truth[s:e])
        mask = np.zeros_like(err, dtype=bool)
        hu = [f for f in out.flags if f.kind == "high_uncertainty"]
        flagged_records += bool(hu)
        for f in hu:
            a, b = max(0, int(f.start_s * fs) - s), max(0, int(f.end_s * fs) - s)
            for lead in f.leads:
                mask[a:b, LEADS.index(lead)] = True
        fin = np.isfinite(err)
        fin[:, 0] = False
        err_in.append(err[mask & fin])
        err_out.append(err[~mask & fin])
    res = summarise(per_rec, bundle, mc_samples, flagged_records, err_in, err_out, TRUTH_TEXT)
    res["profile"] = PROFILE_TEXT[profile]
    res["split"] = split if corpus is None else f"{split} ({corpus} only)"
    res["record_keys"] = [p["key"] for p in per_rec]
    return res


def catch_rates(r_rec: np.ndarray, flagged: np.ndarray, bad: float = 0.5, good: float = 0.8
                ) -> dict:
    """Share of bad records (r < ``bad``) with a high-uncertainty flag (catch rate) against
    the share of good ones (r > ``good``) with one (false flags)."""
    lo, hi = r_rec < bad, r_rec > good
    return {"catch_rate": float(flagged[lo].mean()) if lo.any() else None,
            "records_r_below_0_5": int(lo.sum()),
            "false_flag_rate": float(flagged[hi].mean()) if hi.any() else None,
            "records_r_above_0_8": int(hi.sum())}


def _spearman(a: list, b: list) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _lead_spearman(per_rec: list[dict]) -> dict[str, float]:
    """Per reconstructed lead, Spearman over records of the mean std against the mean
    |error| (``ecg12 evaluate``'s record-level measure, here over the whole record), and the
    mean over V1-V6."""
    from edge.leads import LEADS

    sd = np.array([p["std_lead"] for p in per_rec])
    err = np.array([p["abs_err_lead"] for p in per_rec])
    out = {lead: _spearman(list(sd[:, j]), list(err[:, j]))
           for j, lead in enumerate(LEADS) if j > 0}
    out["mean_V1_V6"] = float(np.mean([out[f"V{i}"] for i in range(1, 7)]))
    return out


def summarise(per_rec: list[dict], bundle: str | None, mc_samples: int, flagged: int,
              err_in: list[np.ndarray], err_out: list[np.ndarray], truth_text: str) -> dict:
    """Means over records: per lead, per corpus, overall (11 reconstructed leads)."""
    from edge.leads import LEADS

    r = np.array([p["r"] for p in per_rec])
    rmse = np.array([p["rmse"] for p in per_rec])
    by_src: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(per_rec):
        by_src[p["source"]].append(i)
    lags = [p["lead_i_lag"] for p in per_rec]
    cat_in = np.concatenate(err_in) if err_in else np.zeros(0)
    return {
        "bundle": bundle or "edge/bundles/default (shipped)", "records": len(per_rec),
        "mc_samples": mc_samples, "truth": truth_text,
        "r_mean_11": float(np.nanmean(r[:, 1:])),
        "rmse_mv_mean_11": float(np.nanmean(rmse[:, 1:])),
        "r_per_lead": {lead: float(np.nanmean(r[:, j])) for j, lead in enumerate(LEADS)},
        "rmse_mv_per_lead": {lead: float(np.nanmean(rmse[:, j])) for j, lead in enumerate(LEADS)},
        "r_per_corpus": {src: {"records": len(ix), "r_mean_11": float(np.nanmean(r[ix, 1:]))}
                         for src, ix in sorted(by_src.items())},
        "lead_i_r": float(np.nanmean(r[:, 0])),
        "lead_i_lag_samples": {"median": float(np.median(lags)),
                               "max_abs": int(np.max(np.abs(lags)))},
        "coverage_90": float(np.mean([p["cover"] for p in per_rec])),
        **catch_rates(np.nanmean(r[:, 1:], axis=1), np.array([p["flagged"] for p in per_rec])),
        "spearman_record_std_vs_r": _spearman([p["mean_std"] for p in per_rec],
                                              list(-np.nanmean(r[:, 1:], axis=1))),
        "spearman_record_expected_r_vs_r": _spearman([p["expected_r"] for p in per_rec],
                                                     list(np.nanmean(r[:, 1:], axis=1))),
        "spearman_record_std_vs_abs_err": _lead_spearman(per_rec),
        "records_with_high_uncertainty_flags": flagged,
        "abs_err_mv_in_high_uncertainty_flags": float(np.mean(cat_in)) if len(cat_in) else None,
        "abs_err_mv_elsewhere": float(np.mean(np.concatenate(err_out))),
        "note": "means over records of Pearson r per lead; first/last second left out",
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--mc-samples", type=int, default=30)
    ap.add_argument("--out", type=Path, default=None,
                    help=f"default {DEFAULT_OUT.name} ({WEARABLE_OUT.name}, "
                         f"{CLINICAL_OUT.name} with --profile wearable, clinical) in "
                         "training/runs/default")
    ap.add_argument("--profile", choices=tuple(PROFILE_TEXT), default="lead_i")
    ap.add_argument("--split", choices=("test", "val"), default="test",
                    help="records to score (val: for choosing settings; test: reported)")
    args = ap.parse_args(argv)
    if args.split != "test" and args.out is None:
        ap.error("--split val needs --out (the default files hold the test split)")
    check_bundle(args.bundle)
    res = evaluate_edge(args.bundle, args.limit, args.mc_samples, profile=args.profile,
                        split=args.split)
    args.out = args.out or {"clinical": CLINICAL_OUT, "wearable": WEARABLE_OUT}.get(
        args.profile, DEFAULT_OUT)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    con = Console()
    table = Table(title=f"edge path on {res['records']} {args.split} recordings "
                        f"(T={args.mc_samples}); truth: {res['truth']}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key in ("r_mean_11", "rmse_mv_mean_11", "lead_i_r", "coverage_90", "catch_rate",
                "false_flag_rate", "spearman_record_std_vs_r",
                "records_with_high_uncertainty_flags", "abs_err_mv_in_high_uncertainty_flags",
                "abs_err_mv_elsewhere"):
        table.add_row(key, "n/a" if res[key] is None else f"{res[key]:.3f}")
    lag = res["lead_i_lag_samples"]
    table.add_row("lead I best lag (median / max |lag|, samples)",
                  f"{lag['median']:g} / {lag['max_abs']}")
    for src, v in res["r_per_corpus"].items():
        table.add_row(f"r_mean_11 {src} ({v['records']})", f"{v['r_mean_11']:.3f}")
    table.add_row("r per lead", " ".join(f"{k} {v:.2f}" for k, v in res["r_per_lead"].items()))
    con.print(table)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
