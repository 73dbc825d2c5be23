"""The files a run writes, and the check that none of them is one of the run's inputs."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import click

#: what a run may write into its ``--out`` folder (and remove again if it produced nothing)
OUTPUT_NAMES = ("leads.csv", "leads.meta.json", "events.ndjson", "summary.json", "report.png",
                "report.pdf", "ecg12.hea", "ecg12.dat", "ecg12_std.hea", "ecg12_std.dat")
#: a record's companion files (WFDB header + signal, CinC .hea + .mat, EDF alone)
_COMPANIONS = (".hea", ".dat", ".mat", ".atr")


def record_files(path: str | Path) -> list[Path]:
    """``path`` and, for a WFDB/CinC record, the files beside it that share its stem."""
    p = Path(path)
    files = [p]
    if p.suffix.lower() in _COMPANIONS:
        files += [p.with_suffix(s) for s in _COMPANIONS if p.with_suffix(s) != p]
    return files


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # either does not exist (or cannot be looked at): not the same file
        return False


def refuse_overwriting_inputs(inputs: Iterable[Path], outputs: Iterable[Path],
                              option: str = "--out") -> None:
    """One-line ``click.ClickException`` if an output path is (a link to) an input file,
    before anything is opened for writing."""
    ins = [p for p in inputs if p.exists()]
    for out in outputs:
        for inp in ins:
            if _same(out, inp):
                raise click.ClickException(
                    f"{out}: is the input {inp}; writing there would destroy it (choose "
                    f"another {option})")


def run_outputs(out: Path, events: str | None) -> list[Path]:
    """The paths a run with ``--out out`` and ``--events events`` may write."""
    paths = [out / name for name in OUTPUT_NAMES]
    if events not in (None, "-"):
        paths.append(Path(str(events)))
    return paths
