"""`ecg12 data summary`: per corpus counts, rejections, rates, metadata coverage, split sizes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from edge.metadata import FIELDS

from .loaders import CORPORA, LoadReport, load_corpus
from .record import MISSING, DataError
from .splits import SPLIT_FILE, SPLITS, load_splits


def _coverage(report: LoadReport, field: str) -> str:
    n = report.loaded
    k = sum(r.metadata.get(field, MISSING) is not MISSING for r in report.records)
    return f"{k}/{n}" if n else "-"


def build_table(reports: dict[str, LoadReport], splits: dict[str, str] | None) -> Table:
    """One column per corpus, one row per statistic."""
    table = Table(title="ECG corpora", show_lines=False)
    table.add_column("")
    for name in reports:
        table.add_column(name, justify="right")
    rows: list[tuple[str, list[str]]] = []
    rows.append(("records found", [str(r.found) for r in reports.values()]))
    rows.append(("loaded", [str(r.loaded) for r in reports.values()]))
    reasons = sorted({k for r in reports.values() for k in r.rejected_by_reason()})
    for reason in reasons:
        rows.append((f"rejected: {reason}",
                     [str(r.rejected_by_reason().get(reason, 0)) for r in reports.values()]))
    rows.append(("rates (Hz: n)", [
        ", ".join(f"{fs:g}: {n}" for fs, n in sorted(Counter(x.fs_hz for x in r.records).items()))
        for r in reports.values()]))
    rows.append(("patients", [str(len({x.patient_id for x in r.records}))
                              for r in reports.values()]))
    rows.append(("Einthoven err p50/p95/max", [
        "/".join(f"{v:.3f}" for v in np.percentile(r.einthoven_errors(), [50, 95, 100]))
        if r.loaded else "-" for r in reports.values()]))
    for field in FIELDS:
        rows.append((f"meta {field}", [_coverage(r, field) for r in reports.values()]))
    for split in SPLITS:
        if splits is None:
            break
        rows.append((f"split {split}", [
            str(sum(splits.get(x.key) == split for x in r.records)) for r in reports.values()]))
    if splits is not None:
        rows.append(("not in split file", [
            str(sum(x.key not in splits for x in r.records)) for r in reports.values()]))
    rows.append(("load time (s)", [
        f"{r.seconds:.1f}{' (cache)' if r.from_cache else ''}" for r in reports.values()]))
    for label, cells in rows:
        table.add_row(label, *cells)
    return table


def run_summary(data_root: Path | None, console: Console | None = None) -> dict[str, LoadReport]:
    """Load every corpus (with progress) and print the summary table; returns the reports."""
    console = console or Console(width=max(Console().width, 120))
    reports = {name: load_corpus(name, data_root) for name in CORPORA}
    try:
        splits = load_splits()
    except DataError as exc:
        console.print(f"[yellow]{exc}[/yellow]")
        splits = None
    console.print(build_table(reports, splits))
    console.print(f"split file: {SPLIT_FILE}")
    return reports
