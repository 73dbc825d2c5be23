"""Two runs compared the way the gateway uses them: every window at the gateway's hop, stitched.

    python -m training.compare_stitched RUN_A RUN_B [--regime wearable] [--hop-s S]
                                        [--split test] [--out FILE]

``ecg12 evaluate`` scores the last 8 s window of each record. The product instead runs a
window every hop and averages the overlapping outputs (``edge.stages.stitch``: the same
taper-weighted overlap-add). A model that cannot be converted to the gateway's bundle (the
U-Net) gets the same treatment here, in Keras: each run predicts (dropout off) every window
``training.dataset.gateway_starts`` gives at the hop (default: RUN_A's), the outputs are
stitched with ``edge.stages.stitch.taper``, and each record's 11 reconstructed leads are scored
by Pearson r against the scoring truth (``training.truth``, in the prepared records), first and
last second left out. Reported: mean r per run and the paired difference A - B over records
with a bootstrap CI. Writes ``RUN_A/stitched_comparison.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from training.config import TrainConfig


def stitched(cfg: TrainConfig, model: Any, preps: list[Any], regime: str
             ) -> list[np.ndarray]:
    """Per record: the stitched 12-lead output ``(n, 12)`` of ``model`` (dropout off) over
    every gateway window at ``cfg``'s hop, overlap-added by the gateway's own ``Stitcher``
    (NaN where no window ran)."""
    from edge.stages.stitch import Stitcher
    from training.dataset import gateway_arrays, gateway_starts
    from training.mc import predict, to_12_lead

    arr, record = gateway_arrays(cfg, preps, regime)
    leads, _ = to_12_lead(arr.lead_i, predict(model, arr.lead_i, arr.meta), cfg.model.outputs)
    L = cfg.window
    # gateway_arrays lists each record's windows in gateway_starts order, record by record
    starts = [s for p in preps for s in gateway_starts(len(p.leads12), L, cfg.hop)]
    stitchers = [Stitcher(L, 12) for _ in preps]
    no_std = np.zeros((L, 12), np.float32)
    for i, s, y in zip(record.tolist(), starts, leads, strict=True):
        stitchers[i].add(s, y, no_std)
    for st, p in zip(stitchers, preps, strict=True):
        st.extend_to(len(p.truth12))
    return [st.at(np.arange(len(p.truth12), dtype=np.float64), len(p.truth12))[0]
            for st, p in zip(stitchers, preps, strict=True)]


def record_r(pred: np.ndarray, truth: np.ndarray, fs: float) -> float:
    """Mean Pearson r over the 11 reconstructed leads, first and last second left out."""
    a, b = int(fs), len(truth) - int(fs)
    p, t = pred[a:b, 1:], truth[a:b, 1:].astype(np.float64)
    ok = np.isfinite(p).all(axis=1)
    p, t = p[ok], t[ok]
    pc, tc = p - p.mean(axis=0), t - t.mean(axis=0)
    den = np.sqrt((pc ** 2).sum(axis=0) * (tc ** 2).sum(axis=0))
    r = np.where(den > 0, (pc * tc).sum(axis=0) / np.where(den > 0, den, 1.0), np.nan)
    return float(np.nanmean(r))


def compare(run_a: Path, run_b: Path, regime: str = "wearable", hop_s: float | None = None,
            split: str = "test", limit: int | None = None) -> dict[str, Any]:
    from training.dataset import prepare_corpora
    from training.evaluate import load_run
    from training.metrics import bootstrap_ci, paired_difference

    loaded = {run: load_run(run) for run in (run_a, run_b)}
    hop = hop_s if hop_s is not None else loaded[run_a][0].data.hop_s  # both at one hop
    runs = {}
    for run, (cfg, model) in loaded.items():
        raw = cfg.to_dict()
        raw["data"]["hop_s"] = float(hop)
        runs[run] = (TrainConfig.from_dict(raw, source=f"{run} at hop {hop:g} s"), model)
    cfgs = [c for c, _ in runs.values()]
    if len({(c.data.fs_hz, c.window) for c in cfgs}) != 1:
        raise SystemExit("the runs differ in rate or window: not comparable window by window")
    data = prepare_corpora(cfgs[0], progress=False)
    preps = data[split][:limit] if limit else data[split]
    per: dict[str, dict[str, float]] = {}
    for run, (cfg, model) in runs.items():
        outs = stitched(cfg, model, preps, regime)
        per[str(run)] = {p.key: record_r(o, p.truth12, cfg.data.fs_hz)
                         for p, o in zip(preps, outs, strict=True)}
    a, b = (per[str(r)] for r in (run_a, run_b))
    return {"runs": [str(run_a), str(run_b)], "regime": regime, "split": split,
            "hop_s": cfgs[0].data.hop_s, "records": len(preps),
            "r_mean_11": {k: bootstrap_ci(np.array(list(v.values()))) for k, v in per.items()},
            "paired_a_minus_b": paired_difference(a, b),
            "method": "every gateway window (dropout off), stitched with the gateway's taper, "
                      "11 leads vs the scoring truth, first/last second left out"}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_a", type=Path)
    ap.add_argument("run_b", type=Path)
    ap.add_argument("--regime", choices=("none", "wearable", "clinical"), default="wearable")
    ap.add_argument("--hop-s", type=float, default=None)
    ap.add_argument("--split", choices=("val", "test"), default="test")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    res = compare(args.run_a, args.run_b, args.regime, args.hop_s, args.split, args.limit)
    out = args.out or args.run_a / "stitched_comparison.json"
    out.write_text(json.dumps(res, indent=2) + "\n")
    con = Console()
    for run, ci in res["r_mean_11"].items():
        con.print(f"{run}: r {ci['mean']:.4f} [{ci['lo']:.4f}, {ci['hi']:.4f}]")
    d = res["paired_a_minus_b"]
    con.print(f"A - B (paired, {res['records']} {res['split']} records, hop {res['hop_s']:g} s, "
              f"{res['regime']}): {d['mean']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}]")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
