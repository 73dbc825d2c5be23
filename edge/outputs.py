"""The files a run writes, and the check that none of them is one of the run's inputs."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import click

#: what a run may write into its ``--out`` folder (and remove again if it produced nothing)
OUTPUT_NAMES = ("leads.csv", "leads.meta.json", "events.ndjson", "summary.json", "report.png",
                "report.pdf", "ecg12.hea", "ecg12.dat", "ecg12_std.hea", "ecg12_std.dat")


class OutPath(click.Path):
    """``click.Path`` that refuses an empty value (which would mean the current folder)."""

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> object:
        if isinstance(value, str) and not value.strip():
            self.fail("empty path (give a folder or file name)", param, ctx)
        return super().convert(value, param, ctx)


def refuse_events_over_outputs(out: Path, events: str | None) -> None:
    """One-line ``click.ClickException`` if ``--events`` names another of the run's own
    output files (the CSV, the summary...), which the events would corrupt or lose."""
    if events in (None, "-"):
        return
    if not str(events).strip():
        raise click.ClickException("--events: empty path (give a file name, or - for stdout)")
    ev = os.path.abspath(str(events))
    for name in OUTPUT_NAMES:
        if name != "events.ndjson" and ev == os.path.abspath(out / name):
            raise click.ClickException(f"--events {events}: is this run's own {name} in "
                                       f"{out}/; choose another file")


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


class PreviousOutputs:
    """The output files of an earlier run in the same place, moved aside while this run
    writes: a run that produces nothing puts them all back (a failed re-run never destroys
    the results it would have replaced); one that produces output keeps the earlier files it
    did not write itself (e.g. ``ecg12.hea`` of an earlier WFDB run) and drops the rest."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.moved: list[tuple[Path, Path]] = []
        for p in paths:
            if p.is_file() or p.is_symlink():
                aside = p.with_name(f".{p.name}.previous")
                try:
                    os.replace(p, aside)
                except OSError as exc:
                    self.restore()
                    raise click.ClickException(f"{p}: cannot be replaced ({exc.strerror})"
                                               ) from None
                self.moved.append((p, aside))

    def restore(self) -> None:
        """Put every moved file back (over whatever this run wrote there)."""
        for p, aside in self.moved:
            try:
                os.replace(aside, p)
            except OSError:
                pass
        self.moved = []

    def settle(self) -> None:
        """This run produced output: drop the earlier files it replaced, keep the others."""
        for p, aside in self.moved:
            try:
                if p.exists():
                    aside.unlink()
                else:
                    os.replace(aside, p)
            except OSError:
                pass
        self.moved = []
