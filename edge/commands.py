"""`ecg12 stream`, `ecg12 reconstruct`, `ecg12 demo`: source -> pipeline -> sinks.

Output folder: leads.csv (default; streamed row by row, valid after Ctrl-C, NaN for gaps),
events.ndjson, report.png, summary.json, and ecg12.hea/.dat + ecg12_std.* with --format wfdb.

The rule for every command: a run that produced no reconstruction exits non-zero with one
line naming the problem and leaves no output files behind; a run stopped by Ctrl-C (SIGINT)
or SIGTERM flushes, writes summary.json with `interrupted: true` and the report, and exits 0.
Every option is checked when the command line is parsed.

Memory (issue #16: the gateway CLI stays under 150 MB peak RSS): pushes run on one worker
thread, with glibc's malloc held to one arena (`limit_malloc_arenas`; per-thread arenas cost
~20 MB here), and the model is dropped and its memory handed back to the system before the
report (which imports matplotlib) is drawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import math
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click

from edge.batch import ChunkBatcher, push_batch
from edge.errors import EdgeError, InputInvalid, InputTooShort
from edge.fieldkit import build_taps, stream_options
from edge.manifest import MAX_MC_SAMPLES
from edge.outputs import (
    OUTPUT_NAMES,
    OutPath,
    PreviousOutputs,
    record_files,
    refuse_events_over_outputs,
    refuse_overwriting_inputs,
    run_outputs,
)
from edge.sinks.recorder import FORMATS, Recorder

MIN_FS_HZ, MAX_FS_HZ = 100.0, 1000.0  # = edge.MIN_FS_HZ, edge.MAX_FS_HZ
#: the session hands the event loop a turn at least this often (signals, taps, the live view)
YIELD_EVERY_S = 0.05


class Number(click.ParamType):
    """A finite int/float option within a range (click's ranges let nan and inf through)."""

    def __init__(self, kind: type = float, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False) -> None:
        self.kind, self.lo, self.hi, self.lo_open = kind, lo, hi, lo_open
        self.name = "integer" if kind is int else "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        try:
            v = self.kind(float(value)) if self.kind is float else self.kind(str(value).strip())
        except (TypeError, ValueError, OverflowError):
            self.fail(f"{value!r} is not {'an integer' if self.kind is int else 'a number'}",
                      param, ctx)
        if isinstance(v, float) and not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            self.fail(f"{value!r} must be {'>' if self.lo_open else '>='} {self._bound(self.lo)}"
                      + (f" and <= {self._bound(self.hi)}" if self.hi is not None else ""),
                      param, ctx)
        if self.hi is not None and v > self.hi:
            self.fail(f"{value!r} must be <= {self._bound(self.hi)}", param, ctx)
        return v

    def _bound(self, b: float) -> str:
        return str(int(b)) if self.kind is int else f"{b:g}"


def _not_empty(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An option naming a file: given, it is not empty (which would silently mean none)."""
    if value is not None and not value.strip():
        raise click.BadParameter("empty path (leave the option out for none)", ctx, param)
    return value


def limit_malloc_arenas(n: int = 1) -> bool:
    """Cap glibc's malloc arenas (M_ARENA_MAX) for this process: each thread that allocates
    (the push worker, LiteRT's) otherwise gets its own arena, ~20 MB of extra RSS here.
    False where it cannot be set (not glibc)."""
    try:
        import ctypes

        return bool(ctypes.CDLL(None).mallopt(-8, int(n)))  # M_ARENA_MAX = -8
    except (OSError, AttributeError, TypeError):
        return False


def hand_back_memory() -> None:
    """Collect garbage and return freed heap pages to the system (glibc ``malloc_trim``)."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


async def run_session(source: Any, model: Any, recorder: Recorder, *,
                      metadata: dict[str, Any] | None = None, mc_samples: int | None = None,
                      seed: int = 0, duration_s: float | None = None,
                      on_update: Any = None, personalization: Any = None,
                      release: Callable[[], None] | None = None) -> dict[str, Any]:
    """Stream `source` through `model.streaming(...)` into `recorder` until the source ends,
    `duration_s` of signal is done (on the signal's time line from its first sample: gaps
    count, and the chunk that crosses the end is cut there, so the output spans it), or
    the task is cancelled (Ctrl-C). Always flushes the pipeline and closes every output;
    returns the summary. `release()`, when given, is
    called after the flush and before the outputs are closed (the report drawn): it should
    drop the caller's references to `model` so that its memory can be handed back."""
    rec = None
    pending: asyncio.Future[list[Any]] | None = None
    latency = 0.0
    interrupted = False
    loop = asyncio.get_running_loop()
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecg12-push")
    batcher = ChunkBatcher()
    yielded = time.monotonic()
    span_s = 0.0  # signal time since its start (else the first chunk), gaps included
    exhausted = False  # the source ended (not the duration, not Ctrl-C)
    origin: float | None = None  # host time of the signal's start, where it has one
    try:
        async for chunk in source:
            arrival = time.monotonic()
            if rec is None:
                origin = getattr(source, "signal_origin_s", None)
                if origin is not None:  # a file or simulator: its time line starts there
                    recorder.signal_starts_at(origin)
                    span_s = max(0.0, chunk.t0_s - origin)  # samples lost before the first
            if duration_s:  # on the signal's time line: a gap counts as the time it lasts
                t_start = span_s + (chunk.gap_before_s if recorder.chunks else 0.0)
                if t_start >= duration_s - 0.5 / chunk.fs_hz:  # a gap reaches the end
                    break
                keep = int(round((duration_s - t_start) * chunk.fs_hz))
                if keep < chunk.n:  # the chunk that crosses the end: cut at the end
                    chunk = dataclasses.replace(chunk, samples=chunk.samples[:keep])
                span_s = t_start + chunk.n / chunk.fs_hz
            if rec is None:
                check_stream_rate(chunk.fs_hz, getattr(source, "uri", "source"))
                rec = model.streaming(chunk.fs_hz, metadata, mc_samples, seed,
                                      personalization=personalization)
            recorder.on_chunk(chunk)
            rec.check(chunk)  # a bad chunk fails here, whether or not it is held
            batch = batcher.add(chunk)  # held while it cannot change the output
            if batch:
                if batcher.heavy:  # more than one model window: off the event loop
                    pending = loop.run_in_executor(worker, push_batch, rec, batch)
                    blocks, quiet = await asyncio.shield(pending)
                    pending = None
                else:  # at most one window and a block: no thread hand-off
                    blocks, quiet = push_batch(rec, batch)
                batcher.pushed(quiet)
                recorder.on_blocks(blocks)
                if blocks:
                    latency = time.monotonic() - arrival
            if on_update is not None:
                on_update(recorder, latency)
            if duration_s and span_s >= duration_s - 0.5 / chunk.fs_hz:
                break
            if arrival - yielded >= YIELD_EVERY_S:
                # a source that never waits (sim/file at speed 0) and batches pushed on the
                # loop never suspend this task: without this, a signal's callback (and the
                # cancel it sends) would wait for the end of the stream
                await asyncio.sleep(0)
                yielded = time.monotonic()
        else:
            exhausted = True
    except (asyncio.CancelledError, KeyboardInterrupt):
        interrupted = True
    finally:
        await _finish(source, rec, pending, recorder, batcher.drain())
        end = getattr(source, "signal_end_s", None)
        if exhausted and end is not None and origin is not None:
            # missing samples at the end of a file: NaN rows and a gap up to its last row
            recorder.signal_ends_at(min(end, origin + duration_s) if duration_s else end)
        worker.shutdown(wait=False)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0)  # a signal that came during the flush: seen before closing
    rec = model = pending = None  # the model's memory goes back before the report is drawn
    if release is not None:
        release()
        hand_back_memory()
    stats = getattr(source, "stats", None)  # per-session device counters (frames, lost, ...)
    counters = {"device": stats.as_dict()} if hasattr(stats, "as_dict") else {}
    return recorder.close(interrupted=interrupted, latency_s=latency, **counters)


def check_stream_rate(fs_hz: float, what: str, model_fs_hz: float | None = None) -> None:
    """Refuse a rate outside 100-1000 Hz or (given the model rate) without a small ratio."""
    if not (math.isfinite(fs_hz) and MIN_FS_HZ <= fs_hz <= MAX_FS_HZ):
        raise InputInvalid(f"{what}: sampling rate {fs_hz:g} Hz is outside the supported "
                           f"{MIN_FS_HZ:g}-{MAX_FS_HZ:g} Hz")
    if model_fs_hz is not None:
        from edge.conditioning import ConditioningError, updown

        try:
            updown(fs_hz, model_fs_hz)
        except ConditioningError as exc:
            raise InputInvalid(f"{what}: sampling rate {fs_hz:g} Hz: {exc}") from None


async def _finish(source: Any, rec: Any, pending: Any, recorder: Recorder,
                  held: list[Any]) -> None:
    from edge.conditioning import ConditioningError

    try:
        await source.aclose()
    except Exception as exc:  # noqa: BLE001 - never lose the outputs over a close error
        recorder.errors.append(f"source close: {exc}")
    if pending is not None:  # a push was running when we were interrupted: keep its blocks
        recorder.on_blocks((await pending)[0])
    if rec is not None:
        try:
            if held:  # chunks the batcher held back: pushed before the end
                recorder.on_blocks(rec.push_many(held))
            recorder.on_blocks(rec.flush())
        except (EdgeError, ConditioningError) as exc:
            recorder.errors.append(str(exc))


def _status_line(recorder: Recorder, latency: float) -> str:
    f = recorder.features
    hr = f"{f['ventricular_rate']:.0f} bpm" if "ventricular_rate" in f else "-- bpm"
    qrs = f"QRS {f['qrs_duration']:.0f} ms" if "qrs_duration" in f else "QRS --"
    beats = (f"beats {f['qrs_count']:.0f}/10s window" if "qrs_count" in f
             else "beats --/10s window")
    flags = ",".join(f"{k}:{v}" for k, v in _count(recorder.flags).items()) or "none"
    t = recorder.csv.rows / recorder._fs if recorder._fs else 0.0
    return (f"t={t:6.1f}s  HR {hr}  {qrs}  {beats}  latency {latency * 1000:5.0f} ms  "
            f"chunks {recorder.chunks}  gaps {len(recorder.gaps)}  flags {flags}")


def _count(flags: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in flags:
        out[f["kind"]] = out.get(f["kind"], 0) + 1
    return out


def _load_model(bundle: str | None) -> Any:
    from edge import load_bundle

    return load_bundle(bundle)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _check_length(source: Any, model: Any) -> None:
    """Refuse, before any output exists, a file or simulation shorter than one window."""
    fs_m, window = float(model.bundle.fs_hz), int(model.bundle.window)
    need = window / fs_m
    rec = getattr(source, "recording", None)
    if rec is not None:
        n = rec.n_samples
        if n / source.fs_hz < need:
            raise InputTooShort(f"{rec.path}: channel {rec.channel!r} lasts "
                                f"{n / source.fs_hz:g} s ({n} samples at {source.fs_hz:g} Hz)"
                                f"; one window of the model needs {need:g} s "
                                f"({int(math.ceil(need * source.fs_hz - 1e-9))} samples)")
        return
    duration = getattr(source, "duration_s", None)
    if duration and duration < need:
        raise InputTooShort(f"{source.uri}: {duration:g} s of signal; one window of the model "
                            f"needs {need:.2f} s")


def _check_report_at(source: Any, report_at: float | None, duration: float | None) -> None:
    """Refuse, before the run, a ``--report-at`` at or past the end of a signal whose length
    is known up front (a file, a simulation with a duration, ``--duration``)."""
    if report_at is None:
        return
    rec = getattr(source, "recording", None)
    lengths = [rec.n_samples / float(source.fs_hz)] if rec is not None else []
    lengths += [v for v in (getattr(source, "duration_s", None), duration) if v]
    if lengths and report_at >= min(lengths):
        what = f"{rec.path} lasts" if rec is not None and min(lengths) == lengths[0] else \
            "the run lasts"
        raise InputInvalid(f"--report-at {report_at:g} s: {what} {min(lengths):g} s; the "
                           "report's 10 s must start within it")


async def _run_with_signals(kw: dict[str, Any]) -> dict[str, Any]:
    """`run_session(**kw)` with SIGINT (Ctrl-C) and SIGTERM handled on the event loop: the
    first one stops the run (flush, close every output, `interrupted: true`); a second one
    means "stop now": the report (the slow part of closing) is skipped, but what was
    reconstructed is still flushed and written. Later ones are ignored (SIGKILL is the hard
    stop). A SIGINT that this process ignores (a background job) stays ignored.
    `kw` is not copied: `kw["release"]` may drop `kw["model"]`."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    recorder = kw["recorder"]
    caught: list[str] = []

    def stop(name: str) -> None:
        caught.append(name)
        if len(caught) == 1 and task is not None:
            recorder.info["signal"] = name
            task.cancel()
        elif len(caught) == 2:
            recorder.figure = False
            recorder.info["stopped_now"] = f"second signal ({name}): report skipped"

    sigs = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, None):
        # replaces asyncio.run's own handler, whose second Ctrl-C raises KeyboardInterrupt
        # wherever the code is (the flush included: all the output lost)
        sigs.append(signal.SIGINT)
    installed = []
    for sig in sigs:
        try:
            loop.add_signal_handler(sig, stop, sig.name)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    try:
        return await run_session(**kw)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _cleanup(recorder: Recorder, created: bool) -> None:
    """Remove the outputs of a run that produced nothing (no half-written folder)."""
    for name in OUTPUT_NAMES:
        try:
            (recorder.out / name).unlink(missing_ok=True)
        except OSError:
            pass
    if created:
        try:
            recorder.out.rmdir()
        except OSError:
            pass


def run_cli(source_uri: str, *, bundle: str | None, profile: str | None, mc_samples: int | None,
            seed: int, out: Path, events: str | None, duration: float | None, fmt: str,
            quiet: bool = False, status_every: float = 10.0, title: str = "",
            report: str = "png",
            report_at: float | None = None, taps: Any = None,
            **overrides: Any) -> dict[str, Any]:
    """Open and check everything, run the session with a live status line on stderr, print a
    summary. Raises click.ClickException (one line) when the run produced no reconstruction
    or ended on an error. `taps(source)` -> live outputs (edge.sinks.tap) for the session."""
    from rich.console import Console
    from rich.live import Live

    from edge.conditioning import ConditioningError
    from edge.personalize import load_personalization
    from edge.profile import load_profile
    from edge.sources import SourceError, open_source

    limit_malloc_arenas()
    inputs = [Path(profile)] if profile else []  # checked before any output is truncated
    if source_uri.startswith("file:"):
        inputs += record_files(source_uri[len("file:"):].partition("?")[0].strip())
    refuse_overwriting_inputs(inputs, run_outputs(out, events), "--out or --events")
    refuse_events_over_outputs(out, events)
    previous: PreviousOutputs | None = None  # an earlier run's files, moved aside
    recorder: Recorder | None = None
    try:
        try:
            metadata = load_profile(profile) if profile else None
            personalization = load_personalization(profile) if profile else None
            source = open_source(source_uri, **overrides)
            model = _load_model(bundle)
            if hasattr(source, "conform_rate"):
                source.conform_rate(float(model.bundle.fs_hz))
            if source.fs_hz is not None:
                check_stream_rate(float(source.fs_hz), getattr(source, "uri", source_uri),
                                  float(model.bundle.fs_hz))
            _check_length(source, model)
            _check_report_at(source, report_at, duration)
            model.streaming(float(source.fs_hz or model.bundle.fs_hz), metadata, mc_samples, seed)
            created = not out.exists()
            previous = PreviousOutputs(run_outputs(out, events))
            recorder = Recorder(out, fmt=fmt, events=events, title=title or source_uri,
                                source=source_uri)
            recorder.report_options = {"formats": (report,), "at_s": report_at}
            from edge.provenance import run_provenance

            recorder.info["provenance"] = run_provenance(
                model, mc_samples=mc_samples, seed=seed, metadata=metadata, profile=profile,
                personalization=personalization, source=source_uri)
            live = list(taps(source)) if taps is not None else []
        except (EdgeError, SourceError, ConditioningError) as exc:
            raise click.ClickException(_one_line(exc)) from None
        if hasattr(source, "describe"):
            recorder.info["input"] = source.describe()
        console = Console(stderr=True)
        status = Live(console=console, refresh_per_second=4, transient=False,
                      auto_refresh=console.is_terminal and not quiet)
        last = [0.0]
        # not on a terminal (a service, a pipe, a log): a plain line every `status_every` s, on
        # stdout unless the events go there
        log = None if quiet or not status_every or sys.stdout.isatty() else (
            sys.stderr if events == "-" else sys.stdout)
        logged = [time.monotonic()]

        def update(r: Recorder, latency: float) -> None:
            now = time.monotonic()
            if console.is_terminal and not quiet and now - last[0] > 0.25:
                last[0] = now
                status.update(_status_line(r, latency))
            if log is not None and now - logged[0] >= status_every:
                logged[0] = now
                print(_status_line(r, latency), file=log, flush=True)

        error: str | None = None
        session: dict[str, Any] = {
            "source": source, "model": model, "recorder": recorder, "metadata": metadata,
            "mc_samples": mc_samples, "seed": seed, "duration_s": duration, "on_update": update,
            "personalization": personalization}
        session["release"] = lambda: session.pop("model", None)
        del model  # from here on only `session` holds it (dropped before the report)
        try:
            from edge.sinks.tap import run_with_taps

            with status:
                summary = asyncio.run(run_with_taps(live, recorder, _run_with_signals(session)))
        except KeyboardInterrupt:  # the session already closed its outputs
            summary = recorder.close(interrupted=True)
        except (EdgeError, SourceError, ConditioningError, OSError) as exc:
            error = _one_line(exc)
            summary = recorder.close(error=error)
        if summary["rows_out"] == 0 or summary["rows_reconstructed"] == 0:
            _cleanup(recorder, created)
            reason = error or "; ".join(summary.get("errors") or []) or (
                "interrupted before the first reconstruction" if summary.get("interrupted")
                else "no samples received" if not summary["samples_in"]
                else f"Lead I was poor (flat, saturated or off) over all "
                     f"{summary['signal_s']:.1f} s received: no stretch could be "
                     "reconstructed" if summary["flags"].get("poor_quality")
                else f"no stretch of the {summary['signal_s']:.1f} s received could be "
                     "reconstructed")
            raise click.ClickException(f"no reconstruction: {_one_line(Exception(reason))}")
        if not quiet:
            console.print(_status_line(recorder, summary.get("latency_s", 0.0)))
            names = ", ".join(Path(p).name for p in summary["files"].values())
            console.print(f"wrote {out}/ ({names})"
                          + ("  [interrupted]" if summary.get("interrupted") else ""))
            for note in summary.get("input", {}).get("notes", []):
                console.print(f"note: {note}")
        problem = error or "; ".join(summary.get("errors") or [])
        if problem:
            raise click.ClickException(f"stopped after {summary['signal_s']:.1f} s of output "
                                       f"(kept in {out}/): {problem}")
        return summary
    finally:  # nothing produced (an error, or none written): the earlier files come back
        if previous is not None:
            if recorder is not None and recorder.csv.reconstructed_rows > 0:
                previous.settle()
            else:
                previous.restore()


_common = [
    click.option("--bundle", default=None, help="bundle folder (default: the shipped one)"),
    click.option("--profile", default=None, callback=_not_empty,
                 help="profile file (JSON/TOML: age, sex, axes)"),
    click.option("--mc-samples", type=Number(int, 0, MAX_MC_SAMPLES), default=None,
                 help=f"MC-dropout samples T (0-{MAX_MC_SAMPLES}; default: the bundle's)"),
    click.option("--seed", type=Number(int, 0, 2**32 - 1), default=0, show_default=True),
    click.option("--events", default=None, help="NDJSON events: '-' = stdout, or a file "
                 "(default OUT/events.ndjson)"),
    click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True,
                 help="csv streams and survives Ctrl-C; wfdb adds WFDB records at the end"),
    click.option("--quiet", is_flag=True, help="no status line"),
    click.option("--status-every", type=Number(float, 0), default=10.0, show_default=True,
                 help="when stdout is not a terminal: a status line every S seconds "
                      "(0 = none)"),
    click.option("--report", type=click.Choice(("png", "pdf")), default="png",
                 show_default=True, help="report.png always; pdf adds report.pdf"),
    click.option("--report-at", type=Number(float, 0), default=None,
                 help="start (s since the first sample) of the 10 s the report shows "
                      "[default: the last 10 s]"),
]


def _with_common(f: Any) -> Any:
    for opt in reversed(_common):
        f = opt(f)
    return f


@click.command()
@click.option("--source", "source_uri", default="sim:", show_default=True,
              help="sim:?seed=1&hr=70 | serial:PORT?baud=&format=ecg12|ascii&fs= | "
                   "polar:[ADDR] | ble:ADDR | file:PATH?speed=1&lead=I&channel=&fs=")
@click.option("--out", type=OutPath(path_type=Path, file_okay=False), default=None,
              help="output folder (default out/stream-<time>)")
@click.option("--duration", type=Number(float, 0, lo_open=True), default=None,
              help="stop after S seconds of signal (device time: gaps count, so the output "
                   "spans S s whatever was lost)")
@_with_common
@stream_options
def stream(source_uri: str, out: Path | None, **kw: Any) -> None:
    """Stream a source to 12 leads with uncertainty (Ctrl-C or SIGTERM stops cleanly);
    --view shows it live in a browser, --publish sends it to an MQTT broker."""
    out = out or Path("out") / time.strftime("stream-%Y%m%d-%H%M%S")
    taps = build_taps(kw)
    run_cli(source_uri, out=out, taps=taps, **kw)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--lead", default=None, help="name of the channel to use as Lead I [default: I]")
@click.option("--channel", type=Number(int, 0), default=None,
              help="index (0-based) of the channel to use as Lead I, instead of --lead")
@click.option("--fs", type=Number(float, MIN_FS_HZ, MAX_FS_HZ), default=None,
              help="sampling rate in Hz, for a file that carries none (e.g. CSV without time)")
@click.option("--units", type=click.Choice(["mV", "uV", "V"], case_sensitive=False),
              default=None, help="units of the channel, overriding the file's or detected ones")
@click.option("--out", type=OutPath(path_type=Path, file_okay=False), default=None,
              help="output folder (default out/<file name>)")
@_with_common
def reconstruct(file: str, lead: str | None, channel: int | None, fs: float | None,
                units: str | None, out: Path | None, **kw: Any) -> None:
    """Reconstruct a recording (WFDB, EDF/EDF+/BDF, CSV/TSV) offline."""
    if lead is not None and channel is not None:
        raise click.UsageError("give --lead or --channel, not both")
    out = out or Path("out") / Path(file).stem
    run_cli(f"file:{file}", out=out, duration=None, speed=0.0, lead=lead, channel=channel,
            fs=fs, units=units, **kw)


@click.command()
@click.option("--out", type=OutPath(path_type=Path, file_okay=False),
              default=Path("out/demo"), show_default=True)
@click.option("--seconds", type=Number(float, 0, 7 * 86400, lo_open=True), default=30.0,
              show_default=True, help="seconds of simulated signal (at least one model window)")
@click.option("--speed", type=Number(float, 0), default=0.0, show_default=True,
              help="x real time (0 = as fast as possible)")
@_with_common
def demo(out: Path, seconds: float, speed: float, **kw: Any) -> None:
    """Main job with no hardware: simulator -> shipped bundle -> out/demo/."""
    summary = run_cli(f"sim:?seed=1&hr=70&duration={seconds!r}&speed={speed!r}", out=out,
                      duration=None, title="ecg12 demo (simulated Lead I)", **kw)
    if not kw.get("quiet"):
        click.echo(f"demo: {summary['signal_s']:.1f} s of 12-lead ECG in {summary['wall_s']:.1f}"
                   f" s; flags {summary['flags'] or 'none'}; gaps {summary['gaps']}",
                   file=sys.stderr)
