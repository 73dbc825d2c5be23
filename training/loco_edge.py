"""Leave-one-corpus-out on the product path: each held-out run converted and streamed.

    python -m training.loco_edge [--out training/runs/loco] [--corpus ludb ...] [--limit N]

``python -m training.loco`` scores each run in Keras on the last 8 s window of every
held-out record. Here each finished run ``OUT/<corpus>`` is converted as the shipped bundle is
(``converters.bundle.convert_run``: dynamic-range int8 trunk with the fused LSTM, float16
moments-form head, T = 30) into a temporary
bundle, and every record of the held-out corpus goes through ``edge.load_bundle(...)
.reconstruct`` as in ``training.evaluate_edge`` (wearable profile; truth = the recording
band-passed zero-phase by scipy; first and last second left out): r over the 11 leads,
90 % coverage, the window flag's catch rate over every window the gateway runs.
Writes ``OUT/<corpus>/edge_eval.json`` and ``OUT/edge_summary.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from training.loco import CORPORA, DEFAULT_OUT

#: as the shipped bundle is converted (README: the convert command)
QUANT, HEAD_QUANT, LSTM, LSTM_RANK, T = "dynamic_int8", "float16", "fused", 24, 30


def score_run(run_dir: Path, corpus: str, limit: int | None = None) -> dict[str, Any]:
    """The product path of the run ``run_dir`` on every record of ``corpus``."""
    if not (run_dir / "calibration.json").is_file():
        raise SystemExit(f"{run_dir}: no calibration.json (run python -m training.loco first)")
    from converters.bundle import convert_run
    from training.config import TrainConfig
    from training.evaluate_edge import evaluate_edge

    inputs = TrainConfig.load(run_dir / "config.json").model.down_filters
    rank = LSTM_RANK if inputs > LSTM_RANK else None  # a smaller BiLSTM input stays exact
    with tempfile.TemporaryDirectory() as tmp:
        bundle = convert_run(run_dir, Path(tmp) / "bundle", QUANT, LSTM, T,
                             head_quant=HEAD_QUANT, lstm_rank=rank)
        res = evaluate_edge(str(bundle), limit, T, progress=False, profile="wearable",
                            split="all", corpus=corpus)
    res["bundle"] = (f"{run_dir} converted ({QUANT}, {HEAD_QUANT} head, {LSTM} LSTM, "
                     f"LSTM input rank {rank or inputs}, T={T})")
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--corpus", action="append", choices=CORPORA)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args(argv)
    summary: dict[str, Any] = {"held_out": {}}
    for corpus in args.corpus or CORPORA:
        Console().print(f"{corpus}: converting {args.out / corpus} and streaming its records")
        res = score_run(args.out / corpus, corpus, args.limit)
        (args.out / corpus / "edge_eval.json").write_text(json.dumps(res, indent=2) + "\n")
        summary["held_out"][corpus] = res
    (args.out / "edge_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    table = Table(title=f"leave-one-corpus-out, product path ({args.out}, T={T}, wearable)")
    for col in ("held out", "records", "r (11 leads)", "90 % coverage", "catch rate",
                "false flags"):
        table.add_column(col)
    for corpus, a in summary["held_out"].items():
        table.add_row(corpus, str(a["records"]), f"{a['r_mean_11']:.3f}",
                      f"{a['coverage_90']:.3f}",
                      "n/a" if a["catch_rate"] is None else
                      f"{a['catch_rate']:.2f} ({a['records_r_below_0_5']})",
                      "n/a" if a["false_flag_rate"] is None else f"{a['false_flag_rate']:.2f}")
    Console().print(table)
    print(f"wrote {args.out / 'edge_summary.json'}")


if __name__ == "__main__":
    main()
