"""Personalisation on real patients: enrol on one 12-lead record, reconstruct another.

    python -m training.evaluate_personalization [--bundle PATH] [--limit N] [--out FILE]

Patients: PTB-XL patients with two or more distinct 500 Hz records that pass the corpus checks
(`training.data.load_corpus`). Enrolment = the earlier record (lowest ecg_id), test = the next
one (also reported: the reverse direction). Each test record's raw Lead I goes through the
shipped bundle (`edge.load_bundle().reconstruct`), generic and with the enrolment's
`Personalization`; both are scored against the test record band-passed 0.5-40 Hz zero-phase
(`training.truth.truth_signal`), first and last second left out. Patients whose records were
in the generic model's training split are reported apart from the held-out ones (folds 9-10).

Robustness (forward direction): a short enrolment (the first model window only), noisy
enrolments (white noise on I, II, V1-V6; the other limb leads re-derived), and a wrong-person
enrolment (patient k enrolled, patient k+1 tested). Personalised outputs are computed as
`Personalization.apply` on the generic output of the test record, which equals
`reconstruct(..., personalization=p)` on one segment (tests/test_personalize.py).
Uncertainty: coverage of the nominal 90 % interval, generic, personalised with the generic std
(before recalibration) and with the recalibrated std. ``*_checked``: what
`reconstruct` returns, i.e. the generic output where the median-beat check
(`edge.personalize.mismatch_flag`) rejects the enrolment. Chest amplitude: slope of predicted vs
true R amplitude over test records (`training.metrics.amplitude_fidelity`).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "runs" / "default" / "personalization_eval.json"
Z90 = 1.6448536269514722
NOISE_MV = {"noisy_0.1mV": 0.1, "noisy_0.3mV": 0.3, "noisy_1mV": 1.0}


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b) / den) if den > 0 else float("nan")


def patient_pairs(limit: int | None = None, progress: bool = False) -> tuple[list[list[Any]], dict]:
    """[[enrol record, test record, ...], ...] per PTB-XL patient with >= 2 500 Hz records."""
    from training.data import load_corpus

    rep = load_corpus("ptbxl", progress=progress)
    by: dict[str, list[Any]] = defaultdict(list)
    for r in rep.records:
        if r.fs_hz == 500.0:
            by[r.patient_id].append(r)
    pairs = [sorted(v, key=lambda r: r.metadata["ecg_id"]) for _, v in sorted(by.items())
             if len(v) >= 2]
    rejected = [name for name, _ in rep.rejected if name.endswith("_hr")]
    return (pairs[:limit] if limit else pairs), {"rejected_500hz_records": rejected}


def noisy(x: np.ndarray, sd_mv: float, rng: np.random.Generator) -> np.ndarray:
    """White noise on the independent leads (I, II, V1-V6); III, aVR, aVL, aVF re-derived
    from the noisy I and II, as an ECG machine derives them."""
    y = np.asarray(x, dtype=np.float64) + rng.normal(0, sd_mv, x.shape)
    i, ii = y[:, 0], y[:, 1]
    y[:, 2], y[:, 3], y[:, 4], y[:, 5] = ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2
    return y


def score(out: Any, truth: np.ndarray, fs: float) -> dict[str, Any]:
    s = int(fs)
    got, std, tru = out.leads[s:-s], out.std[s:-s], truth[s:-s]
    ok = np.isfinite(got).all(axis=1)
    got, std, tru = got[ok], std[ok], tru[ok]
    err = np.abs(got[:, 1:] - tru[:, 1:])
    return {"r": [_pearson(got[:, j], tru[:, j]) for j in range(12)],
            "rmse": [float(np.sqrt(np.mean((got[:, j] - tru[:, j]) ** 2))) for j in range(12)],
            "cover": float(np.mean(err <= Z90 * std[:, 1:])),
            "z": err / np.maximum(std[:, 1:], 1e-9)}


def evaluate(bundle: str | None = None, limit: int | None = None, mc_samples: int = 30,
             progress: bool = True) -> dict[str, Any]:
    import edge
    from edge.features import detect_r_peaks
    from edge.leads import LEADS
    from edge.personalize import MATCH_MIN_R, STD_INFLATION, template_match
    from training.data.splits import load_splits
    from training.metrics import amplitude_fidelity, r_wave_amplitude
    from training.truth import TRUTH_TEXT, truth_signal

    pairs, info = patient_pairs(limit, progress)
    splits = load_splits()
    model = edge.load_bundle(bundle)
    b = model.bundle
    one_window = int(np.ceil(b.window / b.fs_hz * 500.0))
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    amp: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for k, recs in enumerate(pairs):
        other = pairs[(k + 1) % len(pairs)][0]
        for direction, (enr, tst) in (("forward", (recs[0], recs[1])),
                                      ("reverse", (recs[1], recs[0]))):
            fs = tst.fs_hz
            truth = truth_signal(tst.signal_mv, fs)
            lead_i = tst.signal_mv[:, 0]
            gen = model.reconstruct(lead_i, fs, mc_samples=mc_samples)
            row: dict[str, Any] = {
                "patient": recs[0].patient_id, "direction": direction,
                "enrol": enr.key, "test": tst.key,
                "group": "held_out" if all(splits.get(r.key) in ("val", "test")
                                           for r in recs[:2]) else "in_training",
            }
            sg = score(gen, truth, fs)
            row["generic"] = {k2: v for k2, v in sg.items() if k2 != "z"}
            enrolments = {"personal": enr.signal_mv}
            if direction == "forward":
                enrolments["short"] = enr.signal_mv[:one_window]
                enrolments["wrong_person"] = other.signal_mv
                for name, sd in NOISE_MV.items():
                    enrolments[name] = noisy(enr.signal_mv, sd, rng)
            for name, ecg in enrolments.items():
                p = model.personalize(ecg, fs, mc_samples=mc_samples)
                # = model.reconstruct(..., personalization=p) on one segment (tested)
                leads, std = p.apply(gen.leads, gen.std, fs)
                out = type(gen)(leads, std, gen.flags, fs)
                sp = score(out, truth, fs)
                row[name] = {"r": sp["r"], "rmse": sp["rmse"], "cover": sp["cover"],
                             "fallback": sorted(p.fallback), "match": template_match(
                                 p, lead_i, fs)}
                if row[name]["match"] is not None and row[name]["match"] < MATCH_MIN_R:
                    row[name + "_checked"] = dict(row["generic"], fallback=[], match=None)
                else:
                    row[name + "_checked"] = {k2: v for k2, v in row[name].items()}
                if name == "personal":
                    before = type(out)(out.leads, gen.std, out.flags, fs)
                    row[name]["cover_before_recal"] = score(before, truth, fs)["cover"]
                    row[name]["z90_over_inflation"] = float(
                        np.quantile(sp["z"], 0.9) / Z90 * STD_INFLATION)
                    if direction == "forward":
                        peaks = detect_r_peaks(truth[:, 0], fs)
                        for j in range(6, 12):
                            amp[LEADS[j]]["true"].append(r_wave_amplitude(truth[:, j], peaks, fs))
                            amp[LEADS[j]]["generic"].append(
                                r_wave_amplitude(gen.leads[:, j], peaks, fs))
                            amp[LEADS[j]]["personal"].append(
                                r_wave_amplitude(out.leads[:, j], peaks, fs))
            rows.append(row)
        if progress:
            f = rows[-2]
            print(f"{k + 1}/{len(pairs)} {recs[0].patient_id}: generic "
                  f"{np.nanmean(f['generic']['r'][1:]):.3f} -> personal "
                  f"{np.nanmean(f['personal']['r'][1:]):.3f}", flush=True)
    return summarise(rows, amp, info, bundle, mc_samples, TRUTH_TEXT, STD_INFLATION,
                     amplitude_fidelity)


def _mean_r(rows: list[dict], cond: str) -> float:
    return float(np.nanmean([np.nanmean(r[cond]["r"][1:]) for r in rows]))


def summarise(rows: list[dict], amp: dict, info: dict, bundle: str | None, mc: int,
              truth_text: str, inflation: float, amplitude_fidelity: Any) -> dict[str, Any]:
    from edge.leads import LEADS

    out: dict[str, Any] = {
        "bundle": bundle or "edge/bundles/default (shipped)", "mc_samples": mc,
        "truth": truth_text, "std_inflation": inflation,
        "protocol": "PTB-XL patients with >= 2 distinct 500 Hz records; enrol on one record, "
                    "test on another (forward = earlier -> later ecg_id); r over the 11 "
                    "reconstructed leads, first/last second left out",
        **info,
    }
    conds = [c for c in ("generic", "personal", "short", "noisy_0.1mV", "noisy_0.3mV",
                         "noisy_1mV", "wrong_person", "personal_checked",
                         "wrong_person_checked")]
    for direction in ("forward", "reverse"):
        d = [r for r in rows if r["direction"] == direction]
        res: dict[str, Any] = {"patients": len(d)}
        for group in ("all", "held_out", "in_training"):
            g = d if group == "all" else [r for r in d if r["group"] == group]
            if not g:
                continue
            gr: dict[str, Any] = {"patients": len(g)}
            for c in conds:
                if c not in g[0]:
                    continue
                r = np.array([x[c]["r"] for x in g])
                rmse = np.array([x[c]["rmse"] for x in g])
                rec_r = np.nanmean(r[:, 1:], axis=1)
                gen_r = np.array([np.nanmean(x["generic"]["r"][1:]) for x in g])
                cr: dict[str, Any] = {
                    "r_mean_11": float(np.nanmean(rec_r)),
                    "rmse_mv_mean_11": float(np.nanmean(rmse[:, 1:])),
                    "coverage_90": float(np.mean([x[c]["cover"] for x in g])),
                }
                if c != "generic":
                    cr["delta_r_vs_generic"] = float(np.nanmean(rec_r - gen_r))
                    cr["patients_worse_than_generic_by_0.02"] = int(np.sum(rec_r < gen_r - 0.02))
                    cr["fallback_leads"] = int(sum(len(x[c]["fallback"]) for x in g))
                    m = [x[c]["match"] for x in g if x[c]["match"] is not None]
                    cr["template_match_r_median"] = float(np.median(m)) if m else None
                if c in ("generic", "personal"):
                    cr["r_per_lead"] = {LEADS[j]: float(np.nanmean(r[:, j])) for j in range(1, 12)}
                    cr["rmse_mv_per_lead"] = {LEADS[j]: float(np.nanmean(rmse[:, j]))
                                              for j in range(1, 12)}
                if c == "personal":
                    cr["coverage_90_before_recalibration"] = float(
                        np.mean([x[c]["cover_before_recal"] for x in g]))
                    cr["std_inflation_for_90"] = float(
                        np.median([x[c]["z90_over_inflation"] for x in g]))
                gr[c] = cr
            res[group] = gr
        out[direction] = res
    out["chest_amplitude_slope_forward"] = {
        lead: {k: amplitude_fidelity(v["true"], v[k])["slope"] for k in ("generic", "personal")}
        for lead, v in amp.items()}
    same = [r["personal"]["match"] for r in rows if r["personal"]["match"] is not None]
    wrong = [r["wrong_person"]["match"] for r in rows
             if "wrong_person" in r and r["wrong_person"]["match"] is not None]
    out["template_match"] = {
        "same_person": np.percentile(same, [5, 25, 50]).tolist() if same else None,
        "wrong_person": np.percentile(wrong, [50, 75, 95]).tolist() if wrong else None,
        "note": "r of enrolment vs test Lead I median beat; percentiles (same: 5/25/50, "
                "wrong: 50/75/95)"}
    out["long_records_half_split"] = (
        "not run: every LUDB, Chapman and CinC record in ../shared/data is 10 s (< 16 s)")
    out["per_patient"] = [{k: v for k, v in r.items()} for r in rows]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--mc-samples", type=int, default=30)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    res = evaluate(args.bundle, args.limit, args.mc_samples, progress=not args.quiet)
    args.out.write_text(json.dumps(res, indent=1, default=float) + "\n")
    for direction in ("forward", "reverse"):
        for group in ("all", "held_out", "in_training"):
            g = res[direction].get(group)
            if not g:
                continue
            print(f"[{direction} / {group}: {g['patients']} patients]")
            for c, v in g.items():
                if isinstance(v, dict):
                    extra = "".join(f"  {k} {v[k]}" for k in (
                        "delta_r_vs_generic", "patients_worse_than_generic_by_0.02",
                        "fallback_leads", "coverage_90_before_recalibration",
                        "std_inflation_for_90") if k in v)
                    print(f"  {c:13s} r {v['r_mean_11']:.3f}  RMSE {v['rmse_mv_mean_11']:.3f} "
                          f"mV  coverage {v['coverage_90']:.3f}{extra}")
    print("chest amplitude slope (forward):", {k: {a: round(b, 2) for a, b in v.items()}
                                                for k, v in res[
                                                    "chest_amplitude_slope_forward"].items()})
    print("template match:", res["template_match"])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
