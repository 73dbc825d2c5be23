"""How far the shipped uncertainty is from issue #11's targets, and what limits it.

    python -m training.uncertainty_limits [--bundle PATH] [--limit N] [--out FILE]

The product path (``edge.load_bundle(...).reconstruct``, wearable profile: age and sex) on the
validation and test records, scored against the recording zero-phase band-passed
(``training.truth``), as ``training.evaluate_edge`` does. Reported, on test:

- record-level Spearman(mean std, mean |error|) per lead (the target: >= 0.6 in V1-V6), next
  to two bounds: Spearman(the true lead's own amplitude, mean |error|), i.e. an uncertainty
  that knew the truth's amplitude, and an in-sample log-linear fit of the error on the std and
  that true amplitude. If those stay near the shipped std, no amplitude-aware rescaling of
  it can reach the target;
- the same Spearman after a record-level recalibration fitted on validation from what the
  gateway knows (log std, log predicted amplitude of the lead and of Lead I, the record's
  expected r, the share of it under ``high_uncertainty`` flags);
- the catch rate (records with 11-lead r < 0.5 that get a flag) at <= 0.1 false flags (records
  with r > 0.8) for the shipped flag and for record scores with their threshold chosen on
  validation (and, optimistically, on test itself), among them 1 / Lead I amplitude (a Lead I
  near zero leaves the frontal axis, and so the inferior leads' sign, ambiguous), and a
  logistic record classifier on all of them together, fitted on validation;
- the anatomy of the bad records the flag misses: how many fail by an inverted inferior lead
  (r < 0 in III or aVF: an electrical axis Lead I does not show, a left-axis or inferior-wall
  pattern) while the chest leads hold, their diagnosis labels, and what the same records
  give with the clinical
  profile (the R and T axis from a 12-lead ECG, ``--profile clinical`` of evaluate_edge);
- whether the trunk's features know it: a supervised probe (L2 logistic regression on the
  pooled trunk features the atypicality model uses, ``edge.atypicality.pool``) fitted on
  windows of ``--probe-train`` training records to predict an inverted III or aVF, and a
  window r < 0.5, scored by AUC on validation and test windows next to the expected r and
  the atypicality score. A probe near 0.5 means the trunk does not see it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from training.metrics import spearman

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "runs" / "default" / "uncertainty_limits.json"
CHEST = slice(6, 12)  # V1-V6 in edge.leads.LEADS order
INFERIOR = (2, 5)  # III, aVF
BAD, GOOD, FALSE_FLAGS = 0.5, 0.8, 0.1


def record_rows(bundle: str | None, split: str, limit: int | None, profile: str = "wearable",
                progress: bool = True, keys: set[str] | None = None, model: Any = None
                ) -> list[dict[str, Any]]:
    """Per record of ``split`` (or of ``keys`` alone) on the product path of ``model`` (else
    ``bundle`` loaded): r, mean std, mean |error|, true and predicted amplitude (std over
    time) per lead, the record's expected r and its share of time under ``high_uncertainty``
    flags."""
    import edge
    from edge.fidelity import expected_r
    from training.evaluate_edge import _pearson, profile_for, split_records, trimmed
    from training.truth import truth_signal

    recs = split_records(split, limit=limit, progress=progress)
    if keys is not None:
        recs = [r for r in recs if r.key in keys]
    model = model if model is not None else edge.load_bundle(bundle)
    rows = []
    for rec in track(recs, description=f"product path ({split})", disable=not progress):
        fs = rec.fs_hz
        out = model.reconstruct(rec.signal_mv[:, 0], fs=fs, metadata=profile_for(rec, profile),
                                mc_samples=30, seed=0)
        s, e, got, std, tru = trimmed(out, truth_signal(rec.signal_mv, fs), fs)
        under = np.zeros(e - s, dtype=bool)
        for f in out.flags:
            if f.kind == "high_uncertainty":
                under[max(0, int(f.start_s * fs) - s):max(0, int(f.end_s * fs) - s)] = True
        rows.append({
            "key": rec.key, "source": rec.source,
            "r": [_pearson(got[:, j], tru[:, j]) for j in range(12)],
            "std": std.mean(axis=0).tolist(), "abs_err": np.abs(got - tru).mean(axis=0).tolist(),
            "true_amp": tru.std(axis=0).tolist(), "pred_amp": got.std(axis=0).tolist(),
            "expected_r": float(expected_r(got[:, 1:], std[:, 1:])),
            "flag_share": float(under.mean()) if len(under) else 0.0,
            "flagged": bool(under.any()),
            "diagnoses": _diagnoses(rec.metadata),
        })
    return rows


def _diagnoses(metadata: dict[str, Any]) -> list[str]:
    """The record's diagnosis labels as its corpus gives them (PTB-XL SCP codes, others'
    dx list), empty where it has none."""
    codes = metadata.get("scp_codes")
    if isinstance(codes, dict):
        return sorted(str(k) for k in codes)
    dx = metadata.get("dx")
    return [str(x) for x in dx] if isinstance(dx, list | tuple) else []


def _arrays(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    out = {k: np.array([r[k] for r in rows], dtype=float)
           for k in ("r", "std", "abs_err", "true_amp", "pred_amp", "expected_r", "flag_share")}
    out["flagged"] = np.array([r["flagged"] for r in rows], dtype=bool)
    return out


def chest_spearman(score: np.ndarray, err: np.ndarray) -> float:
    """Mean over V1-V6 of Spearman(score, error) over records; ``score``, ``err`` (records,
    12 leads)."""
    return float(np.mean([spearman(score[:, j], err[:, j]) for j in range(12)[CHEST]]))


def gateway_features(a: dict[str, np.ndarray], j: int) -> np.ndarray:
    """Record features of lead ``j`` the gateway knows, plus a constant: (records, 6)."""
    eps = 1e-6
    return np.column_stack([np.log(a["std"][:, j] + eps), np.log(a["pred_amp"][:, j] + eps),
                            np.log(a["pred_amp"][:, 0] + eps), a["expected_r"],
                            a["flag_share"], np.ones(len(a["std"]))])


def fit_predict(x_fit: np.ndarray, y_fit: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Least-squares fit of ``y_fit`` on ``x_fit``, applied to ``x``."""
    w, *_ = np.linalg.lstsq(x_fit, y_fit, rcond=None)
    return x @ w


def recalibrated_chest_spearman(fit: dict[str, np.ndarray], test: dict[str, np.ndarray]
                                ) -> float:
    """Chest Spearman on ``test`` of a per-lead log-linear model of the record error fitted
    on ``fit`` from ``gateway_features``."""
    pred = np.zeros_like(test["abs_err"])
    for j in range(12)[CHEST]:
        pred[:, j] = fit_predict(gateway_features(fit, j), np.log(fit["abs_err"][:, j] + 1e-6),
                                 gateway_features(test, j))
    return chest_spearman(pred, test["abs_err"])


def oracle_chest_spearman(a: dict[str, np.ndarray]) -> float:
    """In-sample bound: log error fitted on log std and log true amplitude of the lead."""
    pred = np.zeros_like(a["abs_err"])
    for j in range(12)[CHEST]:
        x = np.column_stack([np.log(a["std"][:, j] + 1e-6), np.log(a["true_amp"][:, j] + 1e-6),
                             np.ones(len(pred))])
        pred[:, j] = fit_predict(x, np.log(a["abs_err"][:, j] + 1e-6), x)
    return chest_spearman(pred, a["abs_err"])


def record_r(a: dict[str, np.ndarray]) -> np.ndarray:
    return np.nanmean(a["r"][:, 1:], axis=1)


def catch_at(score_fit: np.ndarray, r_fit: np.ndarray, score: np.ndarray, r: np.ndarray,
             false_flags: float = FALSE_FLAGS) -> dict[str, float | None]:
    """Flag records whose ``score`` exceeds the (1 - ``false_flags``) quantile of the good
    (r > 0.8) fitting records' scores: catch rate of the bad (r < 0.5) records and false-flag
    rate of the good ones."""
    thr = float(np.quantile(score_fit[r_fit > GOOD], 1.0 - false_flags))
    bad, good = r < BAD, r > GOOD
    return {"threshold": thr,
            "catch_rate": float(np.mean(score[bad] > thr)) if bad.any() else None,
            "false_flag_rate": float(np.mean(score[good] > thr)) if good.any() else None}


def record_scores(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Record scores a flag could threshold (higher = less trustworthy)."""
    return {"share under flags": a["flag_share"], "1 - expected r": 1.0 - a["expected_r"],
            "mean std (11 leads)": a["std"][:, 1:].mean(axis=1),
            "mean std / predicted amplitude": (a["std"][:, 1:] / (a["pred_amp"][:, 1:] + 1e-6)
                                               ).mean(axis=1),
            "1 / Lead I amplitude (axis ambiguity)": 1.0 / (a["pred_amp"][:, 0] + 1e-6)}


def record_features(a: dict[str, np.ndarray]) -> np.ndarray:
    """What the gateway knows of each record, for a record classifier: 1 - expected r, the
    share under flags, log mean std and log mean predicted amplitude (11 leads), log Lead I
    amplitude: (records, 5)."""
    eps = 1e-6
    return np.column_stack([1.0 - a["expected_r"], a["flag_share"],
                            np.log(a["std"][:, 1:].mean(axis=1) + eps),
                            np.log(a["pred_amp"][:, 1:].mean(axis=1) + eps),
                            np.log(a["pred_amp"][:, 0] + eps)])


def classifier_catch(fit: dict[str, np.ndarray], r_fit: np.ndarray, test: dict[str, np.ndarray],
                     r: np.ndarray, lam: float = 1.0) -> dict[str, float | None]:
    """Catch / false flags on ``test`` of an L2 logistic regression of bad (r < 0.5) against
    good (r > 0.8) records on ``record_features``, fitted on ``fit`` (standardised there), its
    threshold from ``fit`` as ``catch_at`` sets it: whether the gateway's record-level
    quantities together separate what none does alone."""
    xf, xt = record_features(fit), record_features(test)
    mu, sd = xf.mean(axis=0), xf.std(axis=0) + 1e-9
    use = (r_fit < BAD) | (r_fit > GOOD)
    w = logistic_fit((xf[use] - mu) / sd, (r_fit[use] < BAD).astype(float), lam)
    return catch_at(logistic_score(w, (xf - mu) / sd), r_fit, logistic_score(w, (xt - mu) / sd), r)


def axis_failures(a: dict[str, np.ndarray], which: np.ndarray) -> np.ndarray:
    """Of the records ``which``: an inferior lead (III or aVF) inverted (r < 0) while the
    chest leads hold (mean r >= 0.5)."""
    inv = (a["r"][:, list(INFERIOR)] < 0).any(axis=1)
    chest_ok = np.nanmean(a["r"][:, CHEST], axis=1) >= BAD
    return which & inv & chest_ok


def analyse(val: list[dict[str, Any]], test: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything in the module text but the clinical re-run, from the two splits' rows."""
    v, t = _arrays(val), _arrays(test)
    rv, rt = record_r(v), record_r(t)
    bad, good = rt < BAD, rt > GOOD
    shipped = {"catch_rate": float(t["flagged"][bad].mean()) if bad.any() else None,
               "false_flag_rate": float(t["flagged"][good].mean()) if good.any() else None}
    sv, st = record_scores(v), record_scores(t)
    missed = bad & ~t["flagged"]
    return {
        "records": {"val": len(val), "test": len(test), "test_bad": int(bad.sum()),
                    "test_good": int(good.sum())},
        "spearman_chest": {
            "shipped std": chest_spearman(t["std"], t["abs_err"]),
            "true amplitude (oracle)": chest_spearman(t["true_amp"], t["abs_err"]),
            "std + true amplitude, fitted on test (oracle)": oracle_chest_spearman(t),
            "recalibrated on val (gateway features)": recalibrated_chest_spearman(v, t),
            "predicted amplitude": chest_spearman(t["pred_amp"], t["abs_err"]),
        },
        "catch": {"shipped flag": shipped,
                  **{f"{k}, threshold from val": catch_at(sv[k], rv, st[k], rt) for k in sv},
                  "record classifier (gateway features), fitted on val":
                      classifier_catch(v, rv, t, rt),
                  **{f"{k}, threshold from test (optimistic)": catch_at(st[k], rt, st[k], rt)
                     for k in st}},
        "missed": {"keys": [r["key"] for r, m in zip(test, missed, strict=True) if m],
                   "diagnoses": {r["key"]: r.get("diagnoses", [])
                                 for r, m in zip(test, missed, strict=True) if m},
                   "count": int(missed.sum()),
                   "expected_r_mean": float(t["expected_r"][missed].mean()) if missed.any()
                   else None,
                   "expected_r_mean_good": float(t["expected_r"][good].mean()) if good.any()
                   else None,
                   "inferior_lead_inverted": int(axis_failures(t, missed).sum()),
                   "caught_inferior_lead_inverted": int(axis_failures(
                       t, bad & t["flagged"]).sum())},
    }


def clinical_of_missed(model: Any, keys: list[str], progress: bool) -> dict[str, Any]:
    """The missed records again with the clinical profile: their r (wearable -> clinical)."""
    if not keys:
        return {"records": 0}
    rows = record_rows(None, "test", None, profile="clinical", progress=progress,
                       keys=set(keys), model=model)
    a = _arrays(rows)
    rr = record_r(a)
    return {"records": len(rows), "r_mean_11": float(np.mean(rr)),
            "r_below_0_5": int(np.sum(rr < BAD)),
            "inferior_lead_inverted": int(axis_failures(a, np.ones(len(rows), bool)).sum()),
            "flagged": int(a["flagged"].sum())}


def probe_windows(bundle: Any, split: str, limit: int | None, seed: int = 0,
                  progress: bool = True) -> dict[str, np.ndarray]:
    """Three model windows (first, middle, last) per record of ``split`` (``limit``: that
    many records drawn at random): pooled trunk features, per-lead r of the gateway's window
    output (T = 10, wearable profile) against the truth at the model rate, its expected r and
    atypicality score."""
    from edge.atypicality import pool
    from edge.conditioning import condition
    from edge.fidelity import expected_r
    from edge.leads import assemble_12_lead
    from edge.metadata import encode_metadata
    from training.evaluate_edge import _pearson, split_records, wearable_profile
    from training.truth import truth_signal

    rng = np.random.default_rng(seed)
    recs = split_records(split)
    if limit is not None and limit < len(recs):
        recs = [recs[i] for i in sorted(rng.choice(len(recs), size=limit, replace=False))]
    L, fs = bundle.window, bundle.fs_hz
    feats, rs, ers, scores = [], [], [], []
    for rec in track(recs, description=f"probe windows ({split})", disable=not progress):
        x = condition(rec.signal_mv[:, 0], rec.fs_hz, fs)
        tru = truth_signal(rec.signal_mv, rec.fs_hz, fs)
        n = min(len(x), len(tru))
        if n < L:
            continue
        meta = encode_metadata(wearable_profile(rec.metadata))
        for s in sorted({0, (n - L) // 2, n - L}):
            w = x[s:s + L]
            mean, std, score = bundle.run_window(w, meta, 10, rng)
            full = assemble_12_lead(w, mean)
            feats.append(pool(bundle.trunk.run({"lead_i": (
                w * bundle.manifest.model.input_scale)[None, :, None]})["features"][0]))
            rs.append([_pearson(full[:, j].astype(float), tru[s:s + L, j]) for j in range(12)])
            ers.append(float(expected_r(mean, std)))
            scores.append(np.nan if score is None else score)
    return {"features": np.array(feats), "r": np.array(rs), "expected_r": np.array(ers),
            "score": np.array(scores)}


def logistic_fit(x: np.ndarray, y: np.ndarray, lam: float, iters: int = 100) -> np.ndarray:
    """L2-penalised logistic regression by Newton steps: weights, the intercept last (not
    penalised)."""
    xa = np.column_stack([x, np.ones(len(x))])
    pen = np.r_[np.full(x.shape[1], lam), 0.0]
    w = np.zeros(xa.shape[1])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xa @ w, -30, 30)))
        grad = xa.T @ (p - y) + pen * w
        hess = (xa * (p * (1 - p))[:, None]).T @ xa + np.diag(pen + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def logistic_score(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.column_stack([x, np.ones(len(x))]) @ w


def auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve, P(a positive scores above a negative) with ties half: the
    Mann-Whitney U of the positives over (positives x negatives), from scipy."""
    from scipy.stats import mannwhitneyu

    ok = np.isfinite(score)
    pos, neg = score[ok & positive], score[ok & ~positive]
    if not len(pos) or not len(neg):
        return None
    return float(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))


def window_targets(r: np.ndarray) -> dict[str, np.ndarray]:
    """Window failures to predict: III or aVF inverted (r < 0); 11-lead r < 0.5."""
    return {"inferior lead inverted": (r[:, list(INFERIOR)] < 0).any(axis=1),
            "window r < 0.5": np.nanmean(r[:, 1:], axis=1) < BAD}


def probe(train: dict[str, np.ndarray], evals: dict[str, dict[str, np.ndarray]],
          lam: float = 1000.0) -> dict[str, Any]:
    """AUC per target and evaluation split of the probe fitted on ``train``, of 1 - expected
    r and of the atypicality score."""
    mu, sd = train["features"].mean(axis=0), train["features"].std(axis=0) + 1e-6
    out: dict[str, Any] = {"train_windows": len(train["features"]), "l2": lam}
    for name, y in window_targets(train["r"]).items():
        w = logistic_fit((train["features"] - mu) / sd, y.astype(float), lam)
        row: dict[str, Any] = {"train_positive_share": float(y.mean())}
        for split, d in evals.items():
            yy = window_targets(d["r"])[name]
            row[split] = {"windows": len(yy), "positives": int(yy.sum()),
                          "probe": auc(logistic_score(w, (d["features"] - mu) / sd), yy),
                          "1 - expected r": auc(1.0 - d["expected_r"], yy),
                          "atypicality": auc(d["score"], yy)}
        out[name] = row
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--limit", type=int, default=None, help="records per split (a smoke run)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--probe-train", type=int, default=2500,
                    help="training records whose windows fit the probe (default 2500)")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error(f"--limit must be >= 1, got {args.limit}")
    if args.probe_train < 10:
        ap.error(f"--probe-train must be >= 10, got {args.probe_train}")
    from training.evaluate_edge import check_bundle

    model = check_bundle(args.bundle)
    val = record_rows(None, "val", args.limit, model=model)
    test = record_rows(None, "test", args.limit, model=model)
    res = analyse(val, test)
    res["missed"]["clinical_profile"] = clinical_of_missed(model, res["missed"]["keys"], True)
    b = model.bundle
    res["probe"] = probe(probe_windows(b, "train", args.probe_train),
                         {s: probe_windows(b, s, args.limit) for s in ("val", "test")})
    res["command"] = "python -m training.uncertainty_limits" + (
        f" --limit {args.limit}" if args.limit else "") + (
        f" --probe-train {args.probe_train}" if args.probe_train != 2500 else "")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    con = Console()
    tab = Table(title=f"record Spearman(score, mean |error|), V1-V6, test "
                      f"({res['records']['test']} records)")
    tab.add_column("score")
    tab.add_column("Spearman", justify="right")
    for k, val_ in res["spearman_chest"].items():
        tab.add_row(k, f"{val_:.3f}")
    con.print(tab)
    tab = Table(title=f"catch rate (r < {BAD}: {res['records']['test_bad']}) / false flags "
                      f"(r > {GOOD}: {res['records']['test_good']}), test")
    tab.add_column("flag")
    tab.add_column("catch / false flags", justify="right")
    for k, c in res["catch"].items():
        txt = "n/a" if c["catch_rate"] is None else (
            f"{c['catch_rate']:.2f} / {c['false_flag_rate']:.2f}")
        tab.add_row(k, txt)
    con.print(tab)
    m = res["missed"]
    clin = m["clinical_profile"]
    print(f"missed bad records: {m['count']}, of them {m['inferior_lead_inverted']} with III or "
          f"aVF inverted and the chest leads holding; with the clinical profile: "
          + ("-" if not clin["records"] else
             f"r {clin['r_mean_11']:.3f}, {clin['r_below_0_5']} still below {BAD}, "
             f"{clin['inferior_lead_inverted']} still inverted"))
    tab = Table(title=f"AUC for window failures ({res['probe']['train_windows']} training "
                      "windows fit the probe)")
    for c in ("target", "split", "probe (trunk features)", "1 - expected r", "atypicality"):
        tab.add_column(c)
    for name in window_targets(np.zeros((0, 12))):
        for split in ("val", "test"):
            a = res["probe"][name][split]
            tab.add_row(name, f"{split} ({a['positives']}/{a['windows']})",
                        *("n/a" if a[k] is None else f"{a[k]:.3f}"
                          for k in ("probe", "1 - expected r", "atypicality")))
    con.print(tab)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
