"""`ecg12 enroll`: fit a wearer's personalisation from one standard 12-lead recording.

    ecg12 enroll RECORD.hea|.csv|.edf --out wearer.json [--wearable FILE --lead NAME]

Writes a profile file that `ecg12 stream/reconstruct --profile wearer.json` reads: ``patient``
(age/sex if given, R and T axes measured from the 12-lead), ``clinical`` (12-lead
measurements: QRS duration, rate, axes) and ``personalization`` (``edge.personalize``), with
the enrolment's single-lead median beat that the streaming wearer check compares each model
window with (``edge.stages.identity``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from edge.commands import Number
from edge.leads import LEADS
from edge.manifest import MAX_MC_SAMPLES
from edge.outputs import OutPath


def read_12_lead(path: str | Path, fs_hz: float | None = None) -> tuple[np.ndarray, float]:
    """All 12 standard leads of a recording file as ``(n, 12)`` mV and its rate; each lead is
    found by name (``edge.sources.recording``), so a missing lead is a named error."""
    from edge.personalize import PersonalizationError
    from edge.sources.recording import open_recording

    cols, rates = [], []
    for lead in LEADS:
        rec = open_recording(path, lead, fs_hz=fs_hz)
        cols.append(rec.read())
        rates.append(rec.fs_hz)
    if len(set(rates)) != 1 or len({len(c) for c in cols}) != 1:
        raise PersonalizationError(f"{path}: leads differ in rate or length "
                                   f"({sorted(set(rates))} Hz)")
    return np.stack(cols, axis=1).astype(np.float64), float(rates[0])


@click.command()
@click.argument("record", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=OutPath(dir_okay=False, path_type=Path), required=True,
              help="profile file to write (JSON)")
@click.option("--wearable", type=click.Path(exists=True, dir_okay=False), default=None,
              help="the wearable's own recording, taken at the same time as RECORD")
@click.option("--lead", default=None, help="channel of --wearable (default: Lead I / its ECG)")
@click.option("--fs", type=Number(float, 0, lo_open=True), default=None,
              help="rate of RECORD (CSV without time column)")
@click.option("--wearable-fs", type=Number(float, 0, lo_open=True), default=None,
              help="rate of --wearable (CSV)")
@click.option("--age", type=Number(float, 0, 120), default=None, help="years")
@click.option("--sex", type=click.Choice(["M", "F"], case_sensitive=False), default=None)
@click.option("--bundle", default=None, help="bundle folder (default: the shipped one)")
@click.option("--mc-samples", type=click.IntRange(0, MAX_MC_SAMPLES), default=30, show_default=True)
@click.option("--quiet", is_flag=True, help="no summary on stderr")
def enroll(record: str, out: Path, wearable: str | None, lead: str | None, fs: float | None,
           wearable_fs: float | None, age: float | None, sex: str | None, bundle: str | None,
           mc_samples: int, quiet: bool) -> None:
    """Enrol a wearer from a 12-lead ECG (WFDB .hea, CSV or EDF) -> profile JSON."""
    from edge import load_bundle
    from edge.errors import EdgeError
    from edge.outputs import record_files, refuse_overwriting_inputs
    from edge.profile import axes_from_12_lead

    if wearable is None and (lead is not None or wearable_fs is not None):
        raise click.UsageError(f"{'--lead' if lead is not None else '--wearable-fs'} applies "
                               "to --wearable (the wearable's own recording), which is not given")
    refuse_overwriting_inputs(record_files(record) + (record_files(wearable) if wearable else []),
                              [out])
    try:
        ecg, fs_rec = read_12_lead(record, fs)
        w = None
        if wearable is not None:
            from edge.sources.recording import open_recording

            wrec = open_recording(wearable, lead, fs_hz=wearable_fs)
            w, wearable_fs = wrec.read().astype(np.float64), wrec.fs_hz
        bad = ~np.isfinite(ecg)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise click.ClickException(f"{record}: lead {LEADS[c]} has missing samples (first "
                                       f"at sample {int(r)}); enrol on a gap-free recording")
        metadata: dict[str, Any] = axes_from_12_lead(ecg, fs_rec)
        if age is not None:
            metadata["age"] = age
        if sex is not None:
            metadata["sex"] = sex.upper()
        model = load_bundle(bundle)
        p = model.personalize(ecg, fs_rec, w, metadata, wearable_fs=wearable_fs,
                              mc_samples=mc_samples)
        p.info["record"] = str(record)
        if wearable is not None:
            p.info["wearable"] = str(wearable)
        p.save(out)
    except EdgeError as exc:
        raise click.ClickException(" ".join(str(exc).split())) from None
    except OSError as exc:
        raise click.ClickException(f"{out}: cannot write ({exc.strerror or exc})") from None
    if not quiet:
        clin = ", ".join(f"{k} {v:g}" for k, v in p.clinical.items()) or "none measurable"
        click.echo(p.summary(), file=sys.stderr)
        click.echo(f"clinical: {clin}", file=sys.stderr)
        if wearable is None:
            click.echo("note: this profile expects a standard Lead I; a device whose lead "
                       "differs in shape or amplitude (e.g. a chest strap) will be flagged "
                       "personalization_mismatch and get the generic output: enrol it with "
                       "--wearable", file=sys.stderr)
        click.echo(f"wrote {out} (use: ecg12 reconstruct FILE --profile {out})", file=sys.stderr)
