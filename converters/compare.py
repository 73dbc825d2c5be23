"""``compare_variants``: every quantization x LSTM option on size, speed and parity."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from converters.bundle import Calib, split_arrays, write_bundle
from converters.errors import ConversionError
from converters.export import LSTMS, QUANTS
from converters.parity import latency_ms, lite_predict, mc_statistics, parity
from converters.run import load_run
from edge.bundle import Bundle

#: a variant whose worst per-lead change in mean Pearson r is below this is "degraded"
MAX_R_DROP = 0.01


@dataclass
class Variant:
    quant: str
    lstm: str
    status: str  # "ok", "degraded: ...", "failed: ..."
    size_kb: float | None = None
    trunk_ms: float | None = None
    head_ms: float | None = None  # head + T-sample MC
    max_abs_err_mv: float | None = None
    worst_delta_r: float | None = None
    delta_r: list[float] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.quant}/{self.lstm}"

    @property
    def total_ms(self) -> float | None:
        return None if self.trunk_ms is None else self.trunk_ms + (self.head_ms or 0.0)


def _measure(run, q: str, lstm: str, work: Path, test: Any, keras_pred: np.ndarray,
             calib: Calib | None, samples: int, runs: int) -> Variant:
    try:
        bdir = write_bundle(run, work / f"{q}_{lstm}", q, lstm, samples, calib)
    except ConversionError as exc:
        return Variant(q, lstm, f"failed: {exc}")
    lite = Bundle.load(bdir, num_threads=1)
    pred = lite_predict(lite, test.lead_i, test.meta)
    par = parity(pred, keras_pred, test.target)
    trunk_ms, head_ms = latency_ms(lite, test.lead_i, test.meta, samples, runs)
    size = sum(p.stat().st_size for p in bdir.glob("*.tflite")) / 1024
    ok = np.isfinite(par.max_abs_err_mv) and par.worst_delta_r >= -MAX_R_DROP
    status = "ok" if ok else f"degraded: worst lead r change {par.worst_delta_r:+.3f}"
    return Variant(q, lstm, status, round(size, 1), round(trunk_ms, 3), round(head_ms, 3),
                   par.max_abs_err_mv, par.worst_delta_r, par.delta_r)


def recommend(variants: list[Variant]) -> Variant | None:
    """Fastest 'ok' variant; within 10 % of the fastest, the smaller file wins."""
    ok = [v for v in variants if v.status == "ok" and v.total_ms is not None]
    if not ok:
        return None
    fastest = min(v.total_ms for v in ok)
    close = [v for v in ok if v.total_ms <= 1.1 * fastest]
    return min(close, key=lambda v: (v.size_kb, v.total_ms))


def _table(variants: list[Variant], samples: int, best: Variant | None) -> Table:
    table = Table(title=f"TFLite variants (latency: median, 1 thread, head + MC T={samples})")
    for col in ("variant", "size KB", "trunk ms", "head ms", "max |err| mV", "worst Δr",
                "status"):
        table.add_column(col, no_wrap=col == "variant")
    for v in variants:
        def f(x: float | None, fmt: str) -> str:
            return "—" if x is None else format(x, fmt)
        mark = " ★" if v is best else ""
        table.add_row(v.name + mark, f(v.size_kb, ".1f"), f(v.trunk_ms, ".2f"),
                      f(v.head_ms, ".2f"), f(v.max_abs_err_mv, ".2e"),
                      f(v.worst_delta_r, "+.4f"), v.status[:80])
    return table


def markdown(report: dict[str, Any]) -> str:
    """Markdown version of a comparison report (the README's variant table)."""
    lines = [f"Variants of `{report['run']}` on {report['records']} test windows "
             f"(latency: median of {report['runs']} runs, 1 thread, head + MC, "
             f"T = {report['samples']}; parity vs the Keras float model).", "",
             "| variant | size KB | trunk ms | head ms | max abs err mV | worst Δr | status |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for v in report["variants"]:
        def f(x: float | None, fmt: str) -> str:
            return "—" if x is None else format(x, fmt)
        lines.append(f"| {v['quant']}/{v['lstm']} | {f(v['size_kb'], '.1f')} | "
                     f"{f(v['trunk_ms'], '.2f')} | {f(v['head_ms'], '.2f')} | "
                     f"{f(v['max_abs_err_mv'], '.2e')} | {f(v['worst_delta_r'], '+.4f')} | "
                     f"{v['status'].replace('|', '/')[:120]} |")
    lines += ["", f"Recommended: **{report['recommended']}** (fastest 'ok' variant; within "
              "10 % of it, the smaller file)."]
    if report.get("mc"):
        mc = report["mc"]
        lines.append(f"MC check (float32 bundle vs the Keras MC model on the same masks, T = "
                     f"{mc['samples']}, {mc['records']} windows): max |Δ sample| "
                     f"{mc['max_sample_abs_diff_mv']:.1e} mV, max |Δ std| "
                     f"{mc['max_std_abs_diff_mv']:.1e} mV.")
    return "\n".join(lines) + "\n"


def compare_variants(run_dir: str | Path, quants: tuple[str, ...] = QUANTS,
                     lstms: tuple[str, ...] = LSTMS, test: Any = None, calib: Calib | None = None,
                     samples: int = 30, runs: int = 20, records: int = 200,
                     mc_records: int = 20, mc_samples: int = 200,
                     report: str | Path | None = None, console: Console | None = None
                     ) -> dict[str, Any]:
    """Convert each variant, measure it, print a table; write ``report`` (.md + .json).

    ``test`` (lead_i, meta, target arrays) defaults to the run's test split; ``calib`` (int8
    calibration windows) to its training split.
    """
    console = console or Console()
    run = load_run(run_dir)
    if test is None:
        test = split_arrays(run, "test", limit=None)
    n = min(records, len(test.lead_i))
    test = type("Arrays", (), {"lead_i": test.lead_i[:n], "meta": test.meta[:n],
                               "target": test.target[:n]})
    if calib is None and "int8" in quants:
        train = split_arrays(run, "train", limit=None)
        calib = Calib(train.lead_i, train.meta)
    from training.mc import predict as keras_predict

    keras_pred = keras_predict(run.model, test.lead_i, test.meta)
    variants: list[Variant] = []
    mc: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory() as tmp, Progress(console=console) as bar:
        task = bar.add_task("converting", total=len(quants) * len(lstms))
        for q in quants:
            for lstm in lstms:
                bar.update(task, description=f"{q}/{lstm}")
                variants.append(_measure(run, q, lstm, Path(tmp), test, keras_pred, calib,
                                         samples, runs))
                bar.advance(task)
        ref = next((v for v in variants if v.quant == "float32" and v.status == "ok"), None)
        if ref is not None and mc_records > 0:
            bdir = Path(tmp) / f"{ref.quant}_{ref.lstm}"
            k = min(mc_records, n)
            mc = mc_statistics(run.model, Bundle.load(bdir, num_threads=1), test.lead_i[:k],
                               test.meta[:k], mc_samples)
    best = recommend(variants)
    console.print(_table(variants, samples, best))
    out = {"run": str(run.path), "records": n, "samples": samples, "runs": runs,
           "variants": [asdict(v) | {"name": v.name} for v in variants],
           "recommended": best.name if best else None, "mc": mc}
    console.print(f"recommended: [bold]{out['recommended']}[/]; "
                  f"{sum(v.status == 'ok' for v in variants)}/{len(variants)} variants ok")
    if report is not None:
        path = Path(report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".md").write_text(markdown(out))
        path.with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")
        console.print(f"report written: {path.with_suffix('.md')}, {path.with_suffix('.json')}")
    return out
