"""`ecg12 stream`, `ecg12 reconstruct`, `ecg12 demo`: source -> pipeline -> sinks.

Output folder: leads.csv (default; streamed row by row, valid after Ctrl-C, NaN for gaps),
events.ndjson, report.png, summary.json, and ecg12.hea/.dat + ecg12_std.* with --format wfdb.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import click

from edge.sinks.recorder import FORMATS, Recorder


async def run_session(source: Any, model: Any, recorder: Recorder, *,
                      metadata: dict[str, Any] | None = None, mc_samples: int | None = None,
                      seed: int = 0, duration_s: float | None = None,
                      on_update: Any = None) -> dict[str, Any]:
    """Stream `source` through `model.streaming(...)` into `recorder` until the source ends,
    `duration_s` of signal is done, or the task is cancelled (Ctrl-C). Always flushes the
    pipeline and closes every output; returns the summary."""
    rec = None
    pending: asyncio.Future[list[Any]] | None = None
    latency = 0.0
    interrupted = False
    loop = asyncio.get_running_loop()
    try:
        async for chunk in source:
            arrival = time.monotonic()
            if rec is None:
                rec = model.streaming(chunk.fs_hz, metadata, mc_samples, seed)
            recorder.on_chunk(chunk)
            pending = loop.run_in_executor(None, rec.push, chunk)
            blocks = await asyncio.shield(pending)
            pending = None
            recorder.on_blocks(blocks)
            if blocks:
                latency = time.monotonic() - arrival
            if on_update is not None:
                on_update(recorder, latency)
            if duration_s and recorder.samples_in / chunk.fs_hz >= duration_s:
                break
    except (asyncio.CancelledError, KeyboardInterrupt):
        interrupted = True
    finally:
        await _finish(source, rec, pending, recorder)
    return recorder.close(interrupted=interrupted, latency_s=latency)


async def _finish(source: Any, rec: Any, pending: Any, recorder: Recorder) -> None:
    from edge.errors import EdgeError

    try:
        await source.aclose()
    except Exception as exc:  # noqa: BLE001 - never lose the outputs over a close error
        recorder.errors.append(f"source close: {exc}")
    if pending is not None:  # a push was running when we were interrupted: keep its blocks
        recorder.on_blocks(await pending)
    if rec is not None:
        try:
            recorder.on_blocks(rec.flush())
        except EdgeError as exc:
            recorder.errors.append(str(exc))


def _status_line(recorder: Recorder, latency: float) -> str:
    f = recorder.features
    hr = f"{f['ventricular_rate']:.0f} bpm" if "ventricular_rate" in f else "-- bpm"
    qrs = f"QRS {f['qrs_duration']:.0f} ms" if "qrs_duration" in f else "QRS --"
    flags = ",".join(f"{k}:{v}" for k, v in _count(recorder.flags).items()) or "none"
    t = recorder.csv.rows / recorder._fs if recorder._fs else 0.0
    return (f"t={t:6.1f}s  HR {hr}  {qrs}  latency {latency * 1000:5.0f} ms  "
            f"chunks {recorder.chunks}  gaps {len(recorder.gaps)}  flags {flags}")


def _count(flags: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in flags:
        out[f["kind"]] = out.get(f["kind"], 0) + 1
    return out


def _load_model(bundle: str | None) -> Any:
    from edge import load_bundle
    from edge.errors import EdgeError

    try:
        return load_bundle(bundle)
    except EdgeError as exc:
        raise click.ClickException(str(exc)) from None


def run_cli(source_uri: str, *, bundle: str | None, profile: str | None, mc_samples: int | None,
            seed: int, out: Path, events: str | None, duration: float | None, fmt: str,
            quiet: bool = False, title: str = "", **overrides: Any) -> dict[str, Any]:
    """Open everything, run the session with a live status line on stderr, print a summary."""
    from rich.console import Console
    from rich.live import Live

    from edge.profile import ProfileError, load_profile
    from edge.sinks.csv import SinkError
    from edge.sources import SourceError, open_source

    try:
        metadata = load_profile(profile) if profile else None
        source = open_source(source_uri, **overrides)
        model = _load_model(bundle)
        recorder = Recorder(out, fmt=fmt, events=events, title=title or source_uri,
                            source=source_uri)
    except (SourceError, ProfileError, SinkError) as exc:
        raise click.ClickException(str(exc)) from None
    console = Console(stderr=True)
    live = Live(console=console, refresh_per_second=4, transient=False,
                auto_refresh=console.is_terminal and not quiet)
    last = [0.0]

    def update(r: Recorder, latency: float) -> None:
        now = time.monotonic()
        if console.is_terminal and not quiet and now - last[0] > 0.25:
            last[0] = now
            live.update(_status_line(r, latency))

    try:
        with live:
            summary = asyncio.run(run_session(source, model, recorder, metadata=metadata,
                                              mc_samples=mc_samples, seed=seed,
                                              duration_s=duration, on_update=update))
    except KeyboardInterrupt:  # the session already closed its outputs
        summary = recorder.close(interrupted=True)
    except SourceError as exc:
        recorder.close(error=str(exc))
        raise click.ClickException(str(exc)) from None
    if not quiet:
        console.print(_status_line(recorder, summary.get("latency_s", 0.0)))
        console.print(f"wrote {out}/ ({', '.join(Path(p).name for p in summary['files'].values())})"
                      + ("  [interrupted]" if summary.get("interrupted") else ""))
    return summary


_common = [
    click.option("--bundle", default=None, help="bundle folder (default: the shipped one)"),
    click.option("--profile", default=None, help="profile file (JSON/TOML: age, sex, axes)"),
    click.option("--mc-samples", type=int, default=None, help="MC-dropout samples T"),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--events", default=None, help="NDJSON events: '-' = stdout, or a file "
                 "(default OUT/events.ndjson)"),
    click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True,
                 help="csv streams and survives Ctrl-C; wfdb adds WFDB records at the end"),
    click.option("--quiet", is_flag=True, help="no status line"),
]


def _with_common(f: Any) -> Any:
    for opt in reversed(_common):
        f = opt(f)
    return f


@click.command()
@click.option("--source", "source_uri", default="sim:", show_default=True,
              help="sim:?seed=1&hr=70 | serial:PORT?baud=&format=ecg12|ascii&fs= | "
                   "polar:[ADDR] | ble:ADDR | file:PATH?speed=1")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="output folder (default out/stream-<time>)")
@click.option("--duration", type=float, default=None, help="stop after S seconds of signal")
@_with_common
def stream(source_uri: str, out: Path | None, **kw: Any) -> None:
    """Stream a source to 12 leads with uncertainty (Ctrl-C stops cleanly)."""
    out = out or Path("out") / time.strftime("stream-%Y%m%d-%H%M%S")
    run_cli(source_uri, out=out, **kw)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--lead", default="I", show_default=True, help="lead of FILE to use as Lead I")
@click.option("--fs", type=float, default=None, help="sampling rate (CSV without time column)")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="output folder (default out/<file name>)")
@_with_common
def reconstruct(file: str, lead: str, fs: float | None, out: Path | None, **kw: Any) -> None:
    """Reconstruct a recording (WFDB .hea, CSV or EDF) offline."""
    out = out or Path("out") / Path(file).stem
    run_cli(f"file:{file}", out=out, duration=None, speed=0.0, lead=lead, fs=fs, **kw)


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("out/demo"),
              show_default=True)
@click.option("--seconds", type=float, default=30.0, show_default=True,
              help="seconds of simulated signal")
@click.option("--speed", type=float, default=0.0, show_default=True,
              help="x real time (0 = as fast as possible)")
@_with_common
def demo(out: Path, seconds: float, speed: float, **kw: Any) -> None:
    """Main job with no hardware: simulator -> shipped bundle -> out/demo/."""
    summary = run_cli(f"sim:?seed=1&hr=70&duration={seconds:g}&speed={speed:g}", out=out,
                      duration=None, title="ecg12 demo (simulated Lead I)", **kw)
    if not kw.get("quiet"):
        click.echo(f"demo: {summary['signal_s']:.1f} s of 12-lead ECG in {summary['wall_s']:.1f}"
                   f" s; flags {summary['flags'] or 'none'}; gaps {summary['gaps']}",
                   file=sys.stderr)
