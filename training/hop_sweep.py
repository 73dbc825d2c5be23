"""How the gateway's hop between windows trades accuracy for model time, on validation.

    python -m training.hop_sweep [--hops 200,100,50,25] [--split val] [--limit N]

Denser windows average more overlapping reconstructions per output sample (the stitcher's
taper-weighted overlap-add). For each hop (model samples) the shipped bundle is copied with
that hop and run through the product path (``training.evaluate_edge``, wearable profile) on
the validation records; the flag threshold stays the shipped one (fitted at the shipped hop),
so only r and coverage are compared. The model's time grows with windows per second (one
T = 30 window costs what ``ecg12 bench`` reports, whatever the hop). Writes
``training/runs/default/hop_sweep.json`` and prints a table; ``ecg12 calibrate RUN --hop-s``
then sets the chosen hop on the run (and refits its flag there).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from training.evaluate_edge import evaluate_edge

HERE = Path(__file__).resolve().parent
BUNDLE = HERE.parent / "edge" / "bundles" / "default"
OUT = HERE / "runs" / "default" / "hop_sweep.json"


def with_hop(src: Path, hop: int, dst: Path) -> Path:
    """A copy of the bundle ``src`` whose manifest says ``hop``."""
    shutil.copytree(src, dst)
    man = json.loads((dst / "manifest.json").read_text())
    man["model"]["hop"] = int(hop)
    (dst / "manifest.json").write_text(json.dumps(man, indent=2) + "\n")
    return dst


def sweep(hops: list[int], split: str = "val", limit: int | None = None,
          bundle: Path = BUNDLE) -> dict:
    shipped = json.loads((bundle / "manifest.json").read_text())["model"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for hop in hops:
            path = with_hop(bundle, hop, Path(tmp) / f"hop{hop}")
            res = evaluate_edge(str(path), limit, 30, progress=False, profile="wearable",
                                split=split)
            per_s = shipped["fs_hz"] / hop
            rows.append({"hop": hop, "hop_s": hop / shipped["fs_hz"], "records": res["records"],
                         "r_mean_11": res["r_mean_11"], "coverage_90": res["coverage_90"],
                         "windows_per_s": per_s, "model_time_vs_2s_hop": per_s * 2.0})
            Console().print(f"hop {hop}: r {res['r_mean_11']:.4f}, coverage "
                            f"{res['coverage_90']:.3f}")
    return {"split": split, "profile": "wearable", "shipped_hop": shipped["hop"],
            "note": "flag threshold fixed (the shipped one): r and coverage only",
            "rows": rows}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hops", default="200,100,50,25",
                    help="comma-separated hops in model samples")
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    try:
        hops = [int(h) for h in args.hops.split(",")]
    except ValueError:
        ap.error(f"--hops {args.hops!r}: not comma-separated whole numbers")
    if not hops or min(hops) < 1:
        ap.error(f"--hops {args.hops!r}: each hop must be >= 1 sample")
    res = sweep(hops, args.split, args.limit)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    table = Table(title=f"gateway hop on {res['rows'][0]['records']} {args.split} records "
                        "(wearable profile)")
    for col in ("hop (s)", "r (11 leads)", "coverage 90 %", "windows / s",
                "model time vs 2 s hop"):
        table.add_column(col, justify="right")
    for r in res["rows"]:
        table.add_row(f"{r['hop_s']:g}", f"{r['r_mean_11']:.4f}", f"{r['coverage_90']:.3f}",
                      f"{r['windows_per_s']:g}", f"{r['model_time_vs_2s_hop']:g}x")
    Console().print(table)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
