"""``ecg12 bench``: latency, throughput, footprint (and variants) of the edge path.

``--quick`` (about 1 min): shipped bundle at T in 1/10/30/100, 1 thread; naive Keras at T = 30
(when TensorFlow and the run folder exist); short pipeline RTF and overhead share; device
count verified by two short real-time trials; footprint from one child process. Full:
threads 1 and 2, naive at every T, more repeats, longer device trials; ``--variants`` adds
the quantized bundles and their accuracy cost.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from benchmarks import NAIVE_NA

SAMPLES = (1, 10, 30, 100)
QUICK = {"warmup": 5, "repeats": 30, "naive_T": (30,), "eager_repeats": 1, "graph_repeats": 3,
         "pipeline_s": 40.0, "verify": True, "devices_s": 15.0, "devices_tries": 2,
         "fp_repeats": 1, "records": 0, "rounds": 8}
FULL = {"warmup": 20, "repeats": 200, "naive_T": SAMPLES, "eager_repeats": 3,
        "graph_repeats": 10, "pipeline_s": 300.0, "verify": True, "devices_s": 30.0,
        "devices_tries": 5, "fp_repeats": 3, "records": 50, "rounds": 20}
GOAL_MS_10S, GOAL_SPEEDUP, GOAL_RSS_MB = 10.0, 50.0, 150.0
GOAL_MC_RATIO, GOAL_SPEEDUP_GRAPH, GOAL_OVERHEAD = 2.0, 100.0, 0.3


def _headline(res: dict[str, Any]) -> dict[str, Any]:
    row = next(r for r in res["latency"]
               if r["variant"] == "default" and r["mc_samples"] == 30 and r["threads"] == 1)
    naive = {r["variant"]: r for r in res["naive"] if r["mc_samples"] == 30
             and r["threads"] == 1}
    eager, graph = naive.get("naive-keras-eager"), naive.get("naive-keras-graph")
    med = row["median_ms"]
    one = next(r for r in res["latency"]
               if r["variant"] == "default" and r["mc_samples"] == 1 and r["threads"] == 1)
    tp = res.get("throughput") or {"pipeline": {}, "devices": {}}
    paired = res.get("paired") if isinstance(res.get("paired"), dict) else None
    return {"pipeline_rtf": tp["pipeline"].get("rtf"),
            "pipeline_overhead_share": tp["pipeline"].get("pipeline_overhead_share"),
            "concurrent_devices": tp["devices"].get("max_devices"),
            "concurrent_devices_verified": tp["devices"].get("verified"),
            "latency_ms_median": med, "latency_ms_p95": row["p95_ms"],
            "trunk_ms_median": row["trunk_ms_median"], "head_ms_median": row["head_ms_median"],
            "window_s": row["window_s"],
            "latency_ms_scaled_to_10s_window": med * 10.0 / row["window_s"],
            "latency_ms_median_T1": one["median_ms"],
            "mc_overhead_ratio": med / one["median_ms"],
            "naive_ms_median": eager["median_ms"] if eager else None,
            "speedup_vs_naive": eager["median_ms"] / med if eager else None,
            "naive_graph_ms_median": graph["median_ms"] if graph else None,
            # interleaved rounds when measured (robust to the host drifting), else sequential
            "speedup_vs_naive_graph": paired["speedup_median"] if paired
            else (graph["median_ms"] / med if graph else None),
            "speedup_vs_naive_graph_sequential": graph["median_ms"] / med if graph else None,
            "speedup_vs_naive_graph_range": [paired["speedup_min"], paired["speedup_max"]]
            if paired else None,
            "naive_note": res.get("naive_note") or "naive = full Keras model, dropout active, "
            "called T times on one window (batch 1), eager; graph = same inside tf.function",
            "mc_samples": 30, "threads": 1}


def _goals(res: dict[str, Any]) -> list[dict[str, Any]]:
    from benchmarks.footprint import cli_goal

    d = res["default"]
    fp = res.get("footprint", {}).get("edge_process", {})
    ms = d["latency_ms_scaled_to_10s_window"]
    sp = d["speedup_vs_naive"]
    rss = fp.get("peak_rss_mb")
    return [
        {"goal": f"T=30, 1 core: < {GOAL_MS_10S:g} ms per 10 s window", "met": ms < GOAL_MS_10S,
         "value": f"{d['latency_ms_median']:.2f} ms per {d['window_s']:g} s window = "
                  f"{ms:.2f} ms per 10 s (linear scaling)"},
        {"goal": f">= {GOAL_SPEEDUP:g}x faster than naive", "met": None if sp is None
         else sp >= GOAL_SPEEDUP, "value": "n/a" if sp is None else
         f"{sp:.0f}x vs eager, {d['speedup_vs_naive_graph']:.0f}x vs tf.function graph"},
        {"goal": f"MC nearly free: T=30 / T=1 latency <= {GOAL_MC_RATIO:g}",
         "met": d["mc_overhead_ratio"] <= GOAL_MC_RATIO,
         "value": f"{d['mc_overhead_ratio']:.2f} ({d['latency_ms_median']:.2f} / "
                  f"{d['latency_ms_median_T1']:.2f} ms)"},
        {"goal": f">= {GOAL_SPEEDUP_GRAPH:g}x faster than naive Keras in tf.function",
         "met": None if d["speedup_vs_naive_graph"] is None
         else d["speedup_vs_naive_graph"] >= GOAL_SPEEDUP_GRAPH,
         "value": "n/a" if d["speedup_vs_naive_graph"] is None
         else f"{d['speedup_vs_naive_graph']:.0f}x" + (" (interleaved rounds)" if
                                                        d.get("speedup_vs_naive_graph_range")
                                                        else "")},
        {"goal": f"edge process peak RSS < {GOAL_RSS_MB:g} MB",
         "met": None if rss is None else rss < GOAL_RSS_MB,
         "value": "n/a" if rss is None else f"{rss:.0f} MB"},
        cli_goal(res.get("footprint", {}).get("cli"), GOAL_RSS_MB),
        {"goal": f"pipeline wall time outside the model <= {GOAL_OVERHEAD:.0%} (130 Hz stream)",
         "met": None if d.get("pipeline_overhead_share") is None
         else d["pipeline_overhead_share"] <= GOAL_OVERHEAD,
         "value": "n/a" if d.get("pipeline_overhead_share") is None
         else f"{d['pipeline_overhead_share']:.0%}"},
    ]


def run_bench(*, quick: bool, bundle: str | None, run: str | None, variants: bool,
              threads: tuple[int, ...], console: Console) -> dict[str, Any]:
    """Measure everything; returns the result dict (the JSON)."""
    from benchmarks import footprint, latency, throughput
    from benchmarks.machine import machine_info

    cfg = QUICK if quick else FULL
    threads = threads or ((1,) if quick else (1, 2))
    run_dir = Path(run) if run else latency.default_run(bundle)
    res: dict[str, Any] = {"command": "ecg12 bench " + shlex.join(sys.argv[2:] if
                                                                 sys.argv[1:2] == ["bench"]
                                                                 else sys.argv[1:]),
                           "quick": quick, "machine": machine_info(), "bundle": bundle
                           or "edge/bundles/default", "run": str(run_dir) if run_dir else None,
                           "latency": [], "naive": []}
    with console.status("") as status:
        for th in threads:
            status.update(f"latency: shipped bundle, {th} thread(s)")
            res["latency"] += latency.bundle_latency(bundle, SAMPLES, th, cfg["warmup"],
                                                     cfg["repeats"])
        for graph, reps in ((False, cfg["eager_repeats"]), (True, cfg["graph_repeats"])):
            status.update(f"latency: naive Keras ({'graph' if graph else 'eager'}), 1 thread")
            rows = latency.naive_latency(run_dir, cfg["naive_T"], 3, reps, graph=graph)
            if isinstance(rows, str):
                res["naive_note"] = rows
                break
            res["naive"] += rows
        if "naive_note" not in res:
            status.update("latency: naive graph vs bundle, interleaved rounds")
            res["paired"] = latency.paired_graph_speedup(bundle, run_dir, 30, cfg["rounds"])
        res["variants"] = _variants(run_dir, cfg, status.update) if variants else {}
        if not variants:
            res["variants_note"] = "not measured (add --variants; needs ecg12[train])"
        status.update("throughput: streaming pipeline, 1 core")
        one = throughput.pipeline_rtf(bundle, cfg["pipeline_s"])
        status.update("throughput: concurrent devices")
        res["throughput"] = {"pipeline": one, "devices": throughput.max_devices(
            bundle, one["rtf"], cfg["devices_s"], verify=cfg["verify"],
            tries=cfg["devices_tries"])}
        status.update("footprint: edge child process")
        res["footprint"] = footprint.footprint(bundle, 30.0, cfg["fp_repeats"],
                                               cli_hours=1.0 if quick else 24.0)
    res["default"] = _headline(res)
    res["goals"] = _goals(res)
    return res


def _variants(run_dir: Path | None, cfg: dict[str, Any], update: Any) -> dict[str, Any]:
    """Convert (cached), time at T=30 / 1 thread, size, accuracy vs float32."""
    from benchmarks import latency, variants
    from benchmarks.footprint import model_size

    if run_dir is None:
        return {"all": NAIVE_NA}
    try:
        from converters.export import QUANTS
    except ImportError:
        return {"all": NAIVE_NA}
    out: dict[str, Any] = {}
    bundles = variants.build_variants(run_dir, QUANTS, progress=update)
    update("variants: test windows")
    data = variants.test_arrays(run_dir, cfg["records"] or 10)
    ref_path = bundles.get("float32/unrolled")
    ref = (variants.mc_means(ref_path, *data, 30)
           if isinstance(ref_path, Path) and not isinstance(data, str) else None)
    for name, path in bundles.items():
        if isinstance(path, str):
            out[name] = path
            continue
        update(f"variants: {name}")
        row = latency.bundle_latency(path, (30,), 1, cfg["warmup"], cfg["repeats"], name)[0]
        acc: Any = data if isinstance(data, str) else (
            variants.accuracy_cost(variants.mc_means(path, *data, 30), ref)
            if ref is not None else "n/a (float32 variant failed)")
        out[name] = {"size_kb": model_size(path)["total_kb"], "path": str(path),
                     "latency_ms_median_T30": row["median_ms"],
                     "latency_ms_p95_T30": row["p95_ms"], "accuracy": acc}
    return out


@click.command()
@click.option("--quick", is_flag=True, help="about 1 min: default bundle, 1 thread, naive at T=30")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="write the results as JSON")
@click.option("--markdown", "md_path", type=click.Path(dir_okay=False), default=None,
              help="write the Markdown table (README section)")
@click.option("--bundle", default=None, help="bundle folder (default: the shipped one)")
@click.option("--run", default=None, help="Keras run folder for the naive baseline "
              "(default: the bundle manifest's provenance.run)")
@click.option("--variants", is_flag=True, help="also convert and measure every quantization "
              "(needs ecg12[train]; cached in runs/bench-variants/)")
@click.option("--threads", type=click.IntRange(1, 256), multiple=True,
              help="LiteRT threads (repeatable; default 1 with --quick, else 1 and 2)")
def bench(quick: bool, json_path: str | None, md_path: str | None, bundle: str | None,
          run: str | None, variants: bool, threads: tuple[int, ...]) -> None:
    """Benchmark the edge path on this machine: latency, throughput, footprint."""
    from benchmarks.report import markdown, print_report, write_json

    if run is not None and not ((Path(run) / "config.json").is_file()
                                and (Path(run) / "best.weights.h5").is_file()):
        raise click.BadParameter(f"{run}: not a Keras run folder (needs config.json and "
                                 "best.weights.h5)", param_hint="--run")
    for flag, path in (("--json", json_path), ("--markdown", md_path)):  # before the run
        parent = Path(path).parent if path else None
        if parent is not None and not (parent.is_dir() and os.access(parent, os.W_OK)):
            raise click.BadParameter(f"{path}: its folder {parent} does not exist or is not "
                                     "writable", param_hint=flag)

    console = Console() if sys.stdout.isatty() else Console(width=150)
    res = run_bench(quick=quick, bundle=bundle, run=run, variants=variants,
                    threads=threads, console=console)
    print_report(res, console)
    if json_path:
        write_json(res, json_path)
        console.print(f"wrote {json_path}")
    if md_path:
        Path(md_path).parent.mkdir(parents=True, exist_ok=True)
        Path(md_path).write_text(markdown(res))
        console.print(f"wrote {md_path}")


if __name__ == "__main__":
    bench()
