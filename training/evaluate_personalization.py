"""Personalisation on real patients: enrol on one 12-lead record, reconstruct another.

    python -m training.evaluate_personalization [--bundle PATH] [--limit N] [--out FILE]
                                                [--no-all-pairs]

Patients: PTB-XL patients with two or more distinct 500 Hz records that pass the corpus checks
(`training.data.load_corpus`). Enrolment = the earlier record (lowest ecg_id), test = the next
one (also reported: the reverse direction). Each test record's raw Lead I goes through the
shipped bundle (`edge.load_bundle().reconstruct`), generic and with the enrolment's
`Personalization`; both are scored against the test record band-passed 0.5-40 Hz zero-phase
(`training.truth.truth_signal`), first and last second left out. Patients whose records were
in the generic model's training split are reported apart from the held-out ones (folds 9-10).

Conditions: ``<name>`` = the correction alone (`Personalization.apply` on the test record's
generic output: no wearer check); ``<name>_checked`` = the product path,
`reconstruct(..., personalization=p)`, whose per-window wearer check (`edge.stages.identity`)
puts the generic rows back where the Lead I beat does not match the enrolment's
(``mismatch_share``: share of scored rows). Enrolments: ``personal`` (the patient's other
record), ``short`` (its first model window only), ``noisy_*`` (white noise on I, II, V1-V6,
the other limb leads re-derived), ``wrong_person`` (patient k+1's enrolment on patient k).
``wrong_person_all_pairs`` (forward): every patient's profile on every other patient's test
record. Uncertainty: coverage of the nominal 90 % interval (``personal``: also with the
generic std, before recalibration). Chest amplitude: slope of predicted vs true R amplitude
over test records (`training.metrics.amplitude_fidelity`).

The wearer-check thresholds and the correction's shrink factor were chosen on these same
patients (there are no others with two records here): in-sample, stated as such.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "runs" / "default" / "personalization_eval.json"
Z90 = 1.6448536269514722
NOISE_MV = {"noisy_0.1mV": 0.1, "noisy_0.3mV": 0.3, "noisy_1mV": 1.0}
CONDS = ("personal", "short", "noisy_0.1mV", "noisy_0.3mV", "noisy_1mV", "wrong_person")
HALF_SPLIT_NOTE = (
    "not run, so not met: the issue asks for enrol-on-the-first-half / test-on-the-second-half "
    "of long records (LUDB, Chapman, CinC where >= 16 s), but every LUDB, Chapman and CinC "
    "record in ../shared/data is 10 s; 5 s halves are shorter than one 8 s model window")


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


def score(leads: np.ndarray, std: np.ndarray, truth: np.ndarray, fs: float,
          flags: list | None = None) -> dict[str, Any]:
    """r and RMSE per lead, 90 % coverage, share of rows under a personalization_mismatch
    flag; the first and last second left out."""
    s = int(fs)
    n = len(leads)
    mis = np.zeros(n, dtype=bool)
    for f in flags or []:
        if f.kind == "personalization_mismatch":
            mis[int(round(f.start_s * fs)):int(round(f.end_s * fs))] = True
    got, sd, tru, mis = leads[s:-s], std[s:-s], truth[s:-s], mis[s:-s]
    ok = np.isfinite(got).all(axis=1)
    got, sd, tru = got[ok], sd[ok], tru[ok]
    err = np.abs(got[:, 1:] - tru[:, 1:])
    return {"r": [_pearson(got[:, j], tru[:, j]) for j in range(12)],
            "rmse": [float(np.sqrt(np.mean((got[:, j] - tru[:, j]) ** 2))) for j in range(12)],
            "cover": float(np.mean(err <= Z90 * sd[:, 1:])),
            "mismatch_share": float(np.mean(mis[ok])) if ok.any() else 0.0,
            "z": err / np.maximum(sd[:, 1:], 1e-9)}


def r11(sc: dict[str, Any]) -> float:
    return float(np.nanmean(sc["r"][1:]))


def evaluate(bundle: str | None = None, limit: int | None = None, mc_samples: int = 30,
             progress: bool = True, all_pairs: bool = True) -> dict[str, Any]:
    import edge
    from edge.features import detect_r_peaks
    from edge.leads import LEADS
    from edge.personalize import STD_INFLATION
    from training.data.splits import load_splits
    from training.metrics import amplitude_fidelity, r_wave_amplitude
    from training.truth import TRUTH_TEXT, truth_signal

    t_start = time.time()
    pairs, info = patient_pairs(limit, progress)
    splits = load_splits()
    model = edge.load_bundle(bundle)
    b = model.bundle
    one_window = int(np.ceil(b.window / b.fs_hz * 500.0))
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    amp: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    profiles: list[Any] = []  # forward-direction profile of each patient (all pairs)
    tests: list[tuple[Any, Any, np.ndarray]] = []  # forward test record, generic, truth
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
            sg = score(gen.leads, gen.std, truth, fs)
            row["generic"] = sg
            enrolments = {"personal": enr.signal_mv}
            if direction == "forward":
                enrolments["short"] = enr.signal_mv[:one_window]
                enrolments["wrong_person"] = other.signal_mv
                for name, sd in NOISE_MV.items():
                    enrolments[name] = noisy(enr.signal_mv, sd, rng)
            for name, ecg in enrolments.items():
                p = model.personalize(ecg, fs, mc_samples=mc_samples)
                leads, std = p.apply(gen.leads, gen.std, fs)  # the correction alone
                sp = score(leads, std, truth, fs)
                sp["fallback"] = sorted(p.fallback)
                row[name] = sp
                chk = model.reconstruct(lead_i, fs, mc_samples=mc_samples, personalization=p)
                row[name + "_checked"] = score(chk.leads, chk.std, truth, fs, chk.flags)
                row[name + "_checked"]["fallback"] = sp["fallback"]
                if name == "personal":
                    sp["cover_before_recal"] = score(leads, gen.std, truth, fs)["cover"]
                    sp["z90_over_inflation"] = float(
                        np.quantile(sp["z"], 0.9) / Z90 * STD_INFLATION)
                    if direction == "forward":
                        profiles.append(p)
                        tests.append((tst, gen, truth))
                        peaks = detect_r_peaks(truth[:, 0], fs)
                        for j in range(6, 12):
                            amp[LEADS[j]]["true"].append(r_wave_amplitude(truth[:, j], peaks, fs))
                            amp[LEADS[j]]["generic"].append(
                                r_wave_amplitude(gen.leads[:, j], peaks, fs))
                            amp[LEADS[j]]["personal"].append(
                                r_wave_amplitude(leads[:, j], peaks, fs))
            for v in row.values():
                if isinstance(v, dict):
                    v.pop("z", None)
            rows.append(row)
        if progress:
            f = rows[-2]
            print(f"{k + 1}/{len(pairs)} {recs[0].patient_id}: generic {r11(f['generic']):.3f}"
                  f" -> personal {r11(f['personal']):.3f} (checked "
                  f"{r11(f['personal_checked']):.3f}); wrong person checked "
                  f"{r11(f['wrong_person_checked']):.3f}", flush=True)
    groups = [r["group"] for r in rows if r["direction"] == "forward"]
    cross = cross_pairs(model, profiles, tests, groups, mc_samples, progress) if all_pairs \
        else None
    out = summarise(rows, amp, info, bundle, mc_samples, TRUTH_TEXT, STD_INFLATION,
                    amplitude_fidelity, cross)
    out["seconds"] = round(time.time() - t_start, 1)
    return out


def cross_pairs(model: Any, profiles: list[Any], tests: list[tuple[Any, Any, np.ndarray]],
                groups: list[str], mc_samples: int, progress: bool) -> dict[str, Any]:
    """Every patient's profile on every other patient's (forward) test record."""
    n = len(profiles)
    gen_r = np.array([r11(score(g.leads, g.std, t, tst.fs_hz)) for tst, g, t in tests])
    d_raw = np.full((n, n), np.nan)  # [profile of a, test record of b]: r - generic r
    d_chk = np.full((n, n), np.nan)
    mis = np.full((n, n), np.nan)
    for a, p in enumerate(profiles):
        for b, (tst, gen, truth) in enumerate(tests):
            if a == b:
                continue
            fs = tst.fs_hz
            leads, std = p.apply(gen.leads, gen.std, fs)
            d_raw[a, b] = r11(score(leads, std, truth, fs)) - gen_r[b]
            chk = model.reconstruct(tst.signal_mv[:, 0], fs, mc_samples=mc_samples,
                                    personalization=p)
            sc = score(chk.leads, chk.std, truth, fs, chk.flags)
            d_chk[a, b], mis[a, b] = r11(sc) - gen_r[b], sc["mismatch_share"]
        if progress:
            print(f"all pairs: profile {a + 1}/{n}: checked delta r "
                  f"{np.nanmean(d_chk[a]):+.3f}", flush=True)
    res: dict[str, Any] = {"profiles": n, "pairs": int(np.isfinite(d_chk).sum())}
    for group in ("all", "held_out", "in_training"):
        cols = [b for b in range(n) if group == "all" or groups[b] == group]
        if not cols:
            continue
        dr, dc, m = d_raw[:, cols], d_chk[:, cols], mis[:, cols]
        ok = np.isfinite(dc)
        res[group] = {
            "test_patients": len(cols), "pairs": int(ok.sum()),
            "delta_r_unchecked": float(np.nanmean(dr)),
            "delta_r_checked": float(np.nanmean(dc)),
            "delta_r_checked_per_test_patient_worst": float(np.nanmin(np.nanmean(dc, axis=0))),
            "pairs_worse_than_generic_by_0.02": float(np.mean(dc[ok] < -0.02)),
            "rows_personalised_share": float(1.0 - np.nanmean(m)),
        }
    res["delta_r_checked_matrix"] = {
        "note": "rows: profile (enrolment) patient, columns: test patient (forward order); "
                "diagonal (same person) empty; r - generic r over 11 leads, 3 decimals",
        "values": [[None if not np.isfinite(v) else round(float(v), 3) for v in row]
                   for row in d_chk]}
    return res


def summarise(rows: list[dict], amp: dict, info: dict, bundle: str | None, mc: int,
              truth_text: str, inflation: float, amplitude_fidelity: Any,
              cross: dict[str, Any] | None = None) -> dict[str, Any]:
    from edge.leads import LEADS

    try:
        from edge.personalize import CROSS_RECORD_SHRINK
        from edge.stages.identity import MATCH_MAX_LOG_AMP, MATCH_MIN_R
        check: dict[str, Any] = {
            "match_min_r": MATCH_MIN_R, "shrink": CROSS_RECORD_SHRINK,
            "amplitude_ratio": [round(float(np.exp(-MATCH_MAX_LOG_AMP)), 3),
                                round(float(np.exp(MATCH_MAX_LOG_AMP)), 3)],
            "note": "thresholds and shrink chosen on these same patients (in-sample)"}
    except ImportError:  # an ecg12 from before the per-window check (a "before" run)
        check = {"note": "whole-recording median-beat check of that ecg12 version"}
    out: dict[str, Any] = {
        "bundle": bundle or "edge/bundles/default (shipped)", "mc_samples": mc,
        "truth": truth_text, "std_inflation": inflation,
        "protocol": "PTB-XL patients with >= 2 distinct 500 Hz records; enrol on one record, "
                    "test on another (forward = earlier -> later ecg_id); r over the 11 "
                    "reconstructed leads, first/last second left out; the enrol-on-one-half "
                    "split of long records was not run (every LUDB, Chapman and CinC record "
                    "here is 10 s)",
        "wearer_check": check,
        **info,
    }
    conds = ["generic"] + [c + s for c in CONDS for s in ("", "_checked")]
    for direction in ("forward", "reverse"):
        d = [r for r in rows if r["direction"] == direction]
        res: dict[str, Any] = {"patients": len(d)}
        for group in ("all", "held_out", "in_training"):
            g = d if group == "all" else [r for r in d if r["group"] == group]
            if not g:
                continue
            gr: dict[str, Any] = {"patients": len(g)}
            gen_r = np.array([r11(x["generic"]) for x in g])
            for c in conds:
                if c not in g[0]:
                    continue
                r = np.array([x[c]["r"] for x in g])
                rmse = np.array([x[c]["rmse"] for x in g])
                rec_r = np.nanmean(r[:, 1:], axis=1)
                cr: dict[str, Any] = {
                    "r_mean_11": float(np.nanmean(rec_r)),
                    "rmse_mv_mean_11": float(np.nanmean(rmse[:, 1:])),
                    "coverage_90": float(np.mean([x[c]["cover"] for x in g])),
                }
                if c != "generic":
                    cr["delta_r_vs_generic"] = float(np.nanmean(rec_r - gen_r))
                    cr["patients_worse_than_generic_by_0.02"] = int(np.sum(rec_r < gen_r - 0.02))
                    cr["fallback_leads"] = int(sum(len(x[c]["fallback"]) for x in g))
                if c.endswith("_checked"):
                    cr["rows_personalised_share"] = float(
                        1.0 - np.mean([x[c]["mismatch_share"] for x in g]))
                if c in ("generic", "personal", "personal_checked"):
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
    if cross is not None:
        out["wrong_person_all_pairs"] = cross
    out["long_records_half_split"] = HALF_SPLIT_NOTE
    out["per_patient"] = [
        {k: (round(r11(v), 4) if isinstance(v, dict) else v) for k, v in r.items()}
        | {"mismatch_share": {k: round(v["mismatch_share"], 3) for k, v in r.items()
                              if isinstance(v, dict) and k.endswith("_checked")}}
        for r in rows]
    out["per_patient_note"] = "r over 11 leads per condition; mismatch_share per checked one"
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--mc-samples", type=int, default=30)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-all-pairs", action="store_true",
                    help="skip every-profile-on-every-patient (n^2 reconstructions)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    res = evaluate(args.bundle, args.limit, args.mc_samples, progress=not args.quiet,
                   all_pairs=not args.no_all_pairs)
    args.out.write_text(json.dumps(res, indent=1, default=float) + "\n")
    for direction in ("forward", "reverse"):
        for group in ("all", "held_out", "in_training"):
            g = res[direction].get(group)
            if not g:
                continue
            print(f"[{direction} / {group}: {g['patients']} patients]")
            for c, v in g.items():
                if isinstance(v, dict):
                    extra = "".join(f"  {k} {v[k]:.3g}" for k in (
                        "delta_r_vs_generic", "patients_worse_than_generic_by_0.02",
                        "fallback_leads", "rows_personalised_share",
                        "coverage_90_before_recalibration", "std_inflation_for_90") if k in v)
                    print(f"  {c:22s} r {v['r_mean_11']:.3f}  RMSE {v['rmse_mv_mean_11']:.3f} "
                          f"mV  coverage {v['coverage_90']:.3f}{extra}")
    print("chest amplitude slope (forward):", {k: {a: round(b, 2) for a, b in v.items()}
                                                for k, v in res[
                                                    "chest_amplitude_slope_forward"].items()})
    cross = res.get("wrong_person_all_pairs")
    if cross:
        for group in ("all", "held_out", "in_training"):
            if group in cross:
                print(f"wrong person, all pairs / {group}:", cross[group])
    print(f"wrote {args.out} ({res['seconds']} s)")


if __name__ == "__main__":
    main()
