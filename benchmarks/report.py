"""Benchmark results as a rich table (stdout), JSON and Markdown (the README section)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.machine import describe


def _f(x: Any, fmt: str = ".2f") -> str:
    return x if isinstance(x, str) else ("—" if x is None else format(x, fmt))


def latency_rows(res: dict[str, Any]) -> list[list[str]]:
    """Latency rows with the naive columns matched on T and threads."""
    naive = {(r["variant"], r["mc_samples"], r["threads"]): r
             for r in res.get("naive", []) if isinstance(r, dict)}
    note = res.get("naive_note")
    out = []
    for r in res["latency"]:
        cells = [r["variant"], str(r["mc_samples"]), str(r["threads"]), _f(r["median_ms"]),
                 _f(r["p95_ms"]), _f(r["trunk_ms_median"]), _f(r["head_ms_median"])]
        for kind in ("eager", "graph"):
            n = naive.get((f"naive-keras-{kind}", r["mc_samples"], r["threads"]))
            if n is None:
                cells += [note or "—", "—"] if kind == "eager" else ["—", "—"]
            else:
                cells += [_f(n["median_ms"], ".1f"), _f(n["median_ms"] / r["median_ms"], ".0f")
                          + "x"]
        out.append(cells)
    return out


LAT_COLS = ["variant", "T", "threads", "median ms", "p95 ms", "trunk ms", "head ms",
            "naive eager ms", "speed-up", "naive graph ms", "speed-up (graph)"]


def summary_rows(res: dict[str, Any]) -> list[tuple[str, str]]:
    """(quantity, value) rows: default headline, throughput, footprint, goals."""
    d, tp, fp = res["default"], res.get("throughput", {}), res.get("footprint", {})
    rows = [("default T=30, 1 thread: median / p95 per window",
             f"{_f(d['latency_ms_median'])} / {_f(d['latency_ms_p95'])} ms "
             f"({_f(d['window_s'], '.0f')} s window)"),
            ("speed-up vs naive Keras (eager / graph)",
             f"{_f(d['speedup_vs_naive'], '.0f')}x / {_f(d.get('speedup_vs_naive_graph'), '.0f')}x"
             if d["speedup_vs_naive"] is not None else d.get("naive_note", "n/a"))]
    if d.get("speedup_vs_naive_graph_range"):
        lo, hi = d["speedup_vs_naive_graph_range"]
        pr = res["paired"]
        rows.append(("speed-up vs the graph: interleaved rounds (the goal's figure)",
                     f"{_f(d['speedup_vs_naive_graph'], '.0f')}x median of {pr['rounds']} "
                     f"rounds (range {_f(lo, '.0f')}-{_f(hi, '.0f')}x; each round: one naive "
                     f"window, then the median of {pr['bundle_windows']} bundle windows); "
                     f"measured one after the other (table above): "
                     f"{_f(d['speedup_vs_naive_graph_sequential'], '.0f')}x"))
    if tp:
        p, dev = tp["pipeline"], tp["devices"]
        rows += [("pipeline real-time factor (1 core, 130 Hz)",
                  f"{_f(p['rtf'], '.0f')}x ({_f(p['signal_s_each'], '.0f')} s of signal)"),
                 ("pipeline wall time outside the model (same run)",
                  f"{_f(p.get('pipeline_overhead_share'), '.0%')} ("
                  + ", ".join(f"{k} {_f(v * 1000, '.0f')} ms"
                              for k, v in p.get("breakdown_s", {}).items()) + ")"),
                 ("concurrent 130 Hz devices, one process",
                  f"{dev['max_devices']} ({'verified' if dev['verified'] else 'estimate'})")]
    if fp:
        e = fp["edge_process"]
        rows += [("default bundle size", f"{_f(fp['model']['total_kb'], '.0f')} KB"),
                 ("import edge", f"{_f(fp['import_edge_s'] * 1000, '.0f')} ms"),
                 ("edge process start-up (spawn -> 30 s reconstructed)",
                  f"{_f(e['startup_s'], '.2f')} s"),
                 ("edge process peak RSS", f"{_f(e['peak_rss_mb'], '.0f')} MB (TensorFlow "
                  f"imported: {e['tensorflow_imported']}); after import/load/first window/"
                  f"pipeline import: " + " / ".join(_f(v, '.0f') for v in
                                          e['peak_rss_mb_after'].values()))]
    rows += [(f"goal: {g['goal']}", ("met" if g["met"] else "NOT met" if g["met"] is False
                                     else "unknown") + f" ({g['value']})")
             for g in res.get("goals", [])]
    return rows


def variant_rows(res: dict[str, Any]) -> list[list[str]]:
    out = []
    for name, v in res.get("variants", {}).items():
        if isinstance(v, str):
            out.append([name, v, "—", "—", "—"])
            continue
        acc = v.get("accuracy", {})
        acc = acc if isinstance(acc, dict) else {}
        out.append([name, _f(v["size_kb"], ".0f"), _f(v.get("latency_ms_median_T30")),
                    _f(acc.get("pearson_r_vs_float32"), ".4f") if acc else v.get("accuracy"),
                    _f(acc.get("rmse_mv_vs_float32"), ".4f") if acc else "—"])
    return out


VAR_COLS = ["variant", "size KB", "T=30 ms (1 thread)", "r vs float32", "RMSE mV vs float32"]


def print_report(res: dict[str, Any], console: Console | None = None) -> None:
    """Print the tables to stdout."""
    console = console or Console()
    console.print(f"[bold]Machine:[/] {describe(res['machine'])}")
    t = Table(title="Latency per window (ms), after warm-up")
    for c in LAT_COLS:
        t.add_column(c, no_wrap=c == "variant")
    for row in latency_rows(res):
        t.add_row(*row)
    console.print(t)
    if res.get("variants"):
        v = Table(title="Variants (accuracy: MC mean vs float32 bundle, test windows)")
        for c in VAR_COLS:
            v.add_column(c)
        for row in variant_rows(res):
            v.add_row(*row)
        console.print(v)
    s = Table(title="Summary")
    s.add_column("quantity")
    s.add_column("value")
    for k, val in summary_rows(res):
        s.add_row(k, val)
    console.print(s)
    if res.get("throughput"):
        console.print(f"[dim]devices: {res['throughput']['devices']['method']}[/]")


def markdown(res: dict[str, Any]) -> str:
    """The Markdown section for the README."""
    lines = [f"Measured with `{res['command']}` on **{describe(res['machine'])}**.", "",
             "| " + " | ".join(LAT_COLS) + " |", "|" + "---|" * len(LAT_COLS)]
    lines += ["| " + " | ".join(r) + " |" for r in latency_rows(res)]
    if res.get("variants"):
        lines += ["", "| " + " | ".join(VAR_COLS) + " |", "|" + "---|" * len(VAR_COLS)]
        lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in variant_rows(res)]
    lines += ["", "| quantity | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in summary_rows(res)]
    if res.get("throughput"):
        lines += ["", f"Devices: {res['throughput']['devices']['method']}."]
    return "\n".join(lines) + "\n"


def write_json(res: dict[str, Any], path: str | Path) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(res, indent=2, default=str) + "\n")


if __name__ == "__main__":
    import sys

    print_report(json.loads(Path(sys.argv[1]).read_text()))
