"""Accuracy of the product path: the shipped bundle through the streaming pipeline on raw
test recordings, scored at the recording's own rate.

    python -m training.evaluate_edge [--bundle PATH] [--limit N] [--out FILE]

Each test record's raw Lead I (500 Hz) goes through `edge.load_bundle(...).reconstruct`
(conditioning, TFLite trunk + MC head, stitching, mapping back to the input rate). The 11
reconstructed leads are scored against the truth two ways: conditioned at the input rate
(what a user compares with), and band-limited to the model rate (conditioned to 100 Hz, then
upsampled with a polyphase filter and aligned), which isolates the reconstruction from the
model's 100 Hz bandwidth. The first and last second are left out (filter start, end window).
Also reported: coverage of the nominal 90 % interval of the calibrated std.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "runs" / "default" / "edge_eval.json"


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([np.corrcoef(a[:, j], b[:, j])[0, 1] for j in range(1, 12)]))


def evaluate_edge(bundle: str | None = None, limit: int | None = None, mc_samples: int = 30,
                  progress: bool = True) -> dict:
    from scipy.signal import resample_poly

    import edge
    from edge.conditioning import StreamConditioner, condition
    from edge.leads import LEADS
    from training.data import dedupe_prefer_rate, load_corpus
    from training.data.splits import load_splits

    splits = load_splits()
    recs = []
    for name in ("ptbxl", "ludb", "chapman", "cinc2021"):
        recs += load_corpus(name, progress=progress).records
    recs = [r for r in dedupe_prefer_rate(recs) if splits.get(r.key) == "test"
            and r.fs_hz % 100 == 0]
    recs = recs[:limit] if limit else recs
    model = edge.load_bundle(bundle)
    r_full, r_band, rmse, cover = [], [], [], []
    err_in, err_out, flagged_records = [], [], 0
    for rec in track(recs, description="edge path", disable=not progress):
        fs = rec.fs_hz
        out = model.reconstruct(rec.signal_mv[:, 0], fs=fs, mc_samples=mc_samples, seed=0)
        full = condition(rec.signal_mv, fs, fs)
        up = int(fs // 100)
        band = condition(rec.signal_mv, fs, 100.0)
        if up > 1:
            band = resample_poly(band, up, 1, axis=0)
        shift = int(round(StreamConditioner(fs, 100.0).resampler_delay_s() * fs))
        band = band[shift:shift + len(out.leads)]
        s, e = int(fs), min(len(band), len(out.leads)) - int(fs)
        got, std = out.leads[s:e], out.std[s:e]
        r_full.append(_r(got, full[s:e]))
        r_band.append(_r(got, band[s:e]))
        rmse.append(float(np.sqrt(np.mean((got[:, 1:] - band[s:e, 1:]) ** 2))))
        cover.append(float(np.mean(np.abs(got[:, 1:] - band[s:e, 1:]) <= 1.645 * std[:, 1:])))
        # |error| of a lead inside its high-uncertainty flags vs outside them
        err = np.abs(out.leads - np.vstack([band, np.zeros((max(0, len(out.leads) - len(band)),
                                                            12))])[:len(out.leads)])
        mask = np.zeros_like(err, dtype=bool)
        hu = [f for f in out.flags if f.kind == "high_uncertainty"]
        flagged_records += bool(hu)
        for f in hu:
            a, b = int(f.start_s * fs), int(f.end_s * fs)
            for lead in f.leads:
                mask[a:b, LEADS.index(lead)] = True
        mask[:s], mask[e:] = False, False
        keep = np.zeros_like(mask)
        keep[s:e, 1:] = True
        err_in.append(err[mask & keep])
        err_out.append(err[~mask & keep])
    return {
        "bundle": bundle or "edge/bundles/default (shipped)", "records": len(recs),
        "mc_samples": mc_samples,
        "r_vs_band_limited_truth": float(np.mean(r_band)),
        "r_vs_full_rate_truth": float(np.mean(r_full)),
        "rmse_mv_vs_band_limited_truth": float(np.mean(rmse)),
        "coverage_90_vs_band_limited_truth": float(np.mean(cover)),
        "records_with_high_uncertainty_flags": flagged_records,
        "abs_err_mv_in_high_uncertainty_flags": float(np.mean(np.concatenate(err_in)))
        if any(len(x) for x in err_in) else None,
        "abs_err_mv_elsewhere": float(np.mean(np.concatenate(err_out))),
        "note": "mean over records of the 11-lead mean Pearson r; first/last second left out",
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--mc-samples", type=int, default=30)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    res = evaluate_edge(args.bundle, args.limit, args.mc_samples)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    table = Table(title=f"edge path on {res['records']} test recordings (T={args.mc_samples})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key in ("r_vs_band_limited_truth", "r_vs_full_rate_truth",
                "rmse_mv_vs_band_limited_truth", "coverage_90_vs_band_limited_truth",
                "records_with_high_uncertainty_flags", "abs_err_mv_in_high_uncertainty_flags",
                "abs_err_mv_elsewhere"):
        table.add_row(key, "n/a" if res[key] is None else f"{res[key]:.3f}")
    Console().print(table)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
