"""Throughput of the whole streaming path (sim source -> StreamingReconstructor -> CSV sink).

Real-time factor (RTF) = seconds of signal processed per second of wall time, one LiteRT
thread, the process pinned to one CPU core, through ``edge.commands.run_session`` (what
``ecg12 stream`` runs). The same run times ``Bundle.run_window`` (the model), the rest of
``push``/``flush`` (the pipeline) and the recorder (CSV, events, live Lead-I features):
``pipeline_overhead_share`` = share of the wall time spent outside the model.

Concurrent devices: N simulated 130 Hz devices paced in real time (speed 1), started over a
short ramp, in one asyncio process with one worker thread on one core. N keeps up when every
device's last chunk is processed within ``LAG_OK_S`` of the time it was due and the process
used at most ``1 / MARGIN`` of the core; N is stepped from the single-device estimate by the
measured CPU share until the largest N that keeps up is found.
"""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FS_HZ = 130.0
CHUNK_S = 0.2  # simulated device notifications (the sim source's default)
MARGIN = 1.25  # headroom required over real time for "keeps up"
LAG_OK_S = 0.5  # a device keeps up when its last chunk is done within this of being due
METHOD = (f"N simulated {FS_HZ:g} Hz devices (sim: source paced in real time -> "
          f"StreamingReconstructor -> CSV sink, started over a ramp) run concurrently in one "
          f"asyncio process, one worker thread, one core; N keeps up when every device's last "
          f"chunk is processed within {LAG_OK_S:g} s of being due and the process used <= "
          f"{1 / MARGIN:.0%} of the core (margin {MARGIN:g}x)")
_MISSING = object()


@contextmanager
def one_core() -> Any:
    """Pin this thread (and threads it starts) to one usable CPU; restored afterwards."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    cpu = max(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


class Timers:
    """Wall time spent inside wrapped methods, per key; ``wrap`` shadows a method on one
    instance, ``restore`` undoes every wrap."""

    def __init__(self) -> None:
        self.s: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, obj: Any, attr: str, key: str) -> None:
        fn: Callable[..., Any] = getattr(obj, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.s[key] += time.perf_counter() - t0
                self.calls[key] += 1

        self._undo.append((obj, attr, vars(obj).get(attr, _MISSING)))
        setattr(obj, attr, timed)

    def restore(self) -> None:
        while self._undo:
            obj, attr, before = self._undo.pop()
            if before is _MISSING:
                delattr(obj, attr)
            else:
                setattr(obj, attr, before)


def overhead_share(wall_s: float, model_s: float) -> float:
    """Share of ``wall_s`` spent outside the model (clipped to [0, 1]; 0 for no wall time)."""
    if not wall_s > 0:
        return 0.0
    return min(1.0, max(0.0, (wall_s - model_s) / wall_s))


def _timed_model(model: Any, timers: Timers) -> None:
    """Time ``Bundle.run_window`` and every reconstructor's ``push``/``push_many``/
    ``flush``."""
    timers.wrap(model.bundle, "run_window", "model")
    make = model.streaming

    def streaming(*args: Any, **kwargs: Any) -> Any:
        rec = make(*args, **kwargs)
        for attr in ("push", "push_many", "flush"):  # push_many does not call push
            timers.wrap(rec, attr, "push")
        return rec

    timers._undo.append((model, "streaming", vars(model).get("streaming", _MISSING)))
    model.streaming = streaming


async def _devices(model: Any, n: int, seconds: float, out: Path, *, speed: float = 0.0,
                   ramp_s: float = 0.0, timers: Timers | None = None,
                   steady: tuple[float, float] | None = None) -> dict[str, Any]:
    """Stream ``n`` devices concurrently (device ``i`` starts at ``i / n * ramp_s``).

    Returns the wall time (s), the recorders (each with ``lag``: how late its last blocks
    were written, ``steady_lag``: the worst lag of chunks done inside ``steady`` (seconds
    after the start) and due in it), ``behind_s`` (at the end of ``steady``, how far the
    furthest-behind device's processing was from real time) and the process CPU and wall
    time over ``steady``, at whose end the sessions are stopped (as by Ctrl-C: each flushes
    and closes; that shutdown is not part of any lag)."""
    from concurrent.futures import ThreadPoolExecutor

    from edge.commands import run_session
    from edge.sinks.recorder import Recorder
    from edge.sources.sim import SimSource

    start = time.monotonic()
    a, b = (start + steady[0], start + steady[1]) if steady else (math.inf, -math.inf)

    measuring = [False]  # inside the steady phase (before the sessions are stopped)

    class LagRecorder(Recorder):
        due = lag = steady_lag = 0.0

        def on_chunk(self, chunk: Any) -> None:
            super().on_chunk(chunk)
            self.due = chunk.t_end_s  # host-clock time its last sample was due (speed 1)

        def on_blocks(self, blocks: list[Any]) -> None:
            super().on_blocks(blocks)
            self.lag = time.monotonic() - self.due
            if measuring[0] and self.due >= a:
                self.steady_lag = max(self.steady_lag, self.lag)

    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
    recorders: list[Any] = []
    clock: dict[str, float] = {}

    async def one(i: int) -> dict[str, Any]:
        if ramp_s > 0:
            await asyncio.sleep(ramp_s * i / n)
        src = SimSource(seed=i + 1, hr=60.0 + (i * 13) % 50, duration=seconds, speed=speed,
                        fs=FS_HZ, chunk=CHUNK_S)
        rec = LagRecorder(out / f"dev{i}", figure=False, events=out / f"dev{i}.ndjson")
        recorders.append(rec)
        if timers is not None:
            timers.wrap(rec, "on_chunk", "sinks")
            timers.wrap(rec, "on_blocks", "sinks")
        return await run_session(src, model, rec)

    t0 = time.perf_counter()
    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    if steady:  # sample the clocks at both ends; then stop (sessions flush and close)
        for key, at in (("a", a), ("b", b)):
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            clock[f"cpu_{key}"], clock[f"wall_{key}"] = time.process_time(), time.monotonic()
            measuring[0] = key == "a"
        # how far each device's processing is behind at the end (its next chunk is not due
        # until one chunk after the last one done)
        behind = max(clock["wall_b"] - r.due - CHUNK_S for r in recorders)
        for task in tasks:
            task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    wall = time.perf_counter() - t0
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
            raise r
    errors = [e for r in results if isinstance(r, dict) for e in r["errors"]]
    if errors:
        raise RuntimeError(f"streaming failed: {errors[:3]}")
    out_: dict[str, Any] = {"wall_s": wall, "recorders": recorders}
    if steady:
        out_["steady_cpu_s"] = clock["cpu_b"] - clock["cpu_a"]
        out_["steady_wall_s"] = clock["wall_b"] - clock["wall_a"]
        out_["behind_s"] = max(0.0, behind)
    return out_


def _warm(model: Any, tmp: str) -> None:
    """Imports, allocation, delegate: two windows of one device, untimed."""
    warm = 2 * model.bundle.window / model.bundle.fs_hz
    asyncio.run(_devices(model, 1, warm, Path(tmp) / "warmup"))


def run_devices(bundle_dir: str | Path | None, n: int, seconds: float) -> dict[str, Any]:
    """Aggregate RTF of ``n`` concurrent devices of ``seconds`` each at full speed, one core."""
    from edge import load_bundle

    with one_core() as cpu, tempfile.TemporaryDirectory() as tmp:
        model = load_bundle(bundle_dir, num_threads=1)
        _warm(model, tmp)
        wall = asyncio.run(_devices(model, n, seconds, Path(tmp) / "timed"))["wall_s"]
    rtf = n * seconds / wall
    return {"devices": n, "signal_s_each": seconds, "wall_s": wall, "rtf": rtf,
            "keeps_up": rtf >= MARGIN * n, "cpu": cpu}


def pipeline_rtf(bundle_dir: str | Path | None, seconds: float = 60.0, repeats: int = 3
                 ) -> dict[str, Any]:
    """One device's whole streaming path at full speed (one core, one thread), ``repeats``
    runs; the fastest gives the RTF and, from that same run, the time inside the model,
    ``pipeline_overhead_share`` and the breakdown (CPU seconds too: less than the wall time
    when the machine is busy)."""
    from edge import load_bundle

    runs = []
    with one_core() as cpu, tempfile.TemporaryDirectory() as tmp:
        model = load_bundle(bundle_dir, num_threads=1)
        _warm(model, tmp)
        for i in range(max(1, repeats)):
            timers = Timers()
            _timed_model(model, timers)
            try:
                cpu0 = time.process_time()
                wall = asyncio.run(_devices(model, 1, seconds, Path(tmp) / f"timed{i}",
                                            timers=timers))["wall_s"]
                runs.append((wall, time.process_time() - cpu0, timers))
            finally:
                timers.restore()
    wall, cpu_s, timers = min(runs, key=lambda r: r[0])
    model_s, push_s, sinks_s = timers.s["model"], timers.s["push"], timers.s["sinks"]
    return {"devices": 1, "signal_s_each": seconds, "wall_s": wall, "cpu_s": cpu_s,
            "rtf": seconds / wall, "keeps_up": seconds / wall >= MARGIN, "cpu": cpu,
            "runs_wall_s": [r[0] for r in runs], "windows": timers.calls["model"],
            "model_s": model_s, "pipeline_overhead_share": overhead_share(wall, model_s),
            "breakdown_s": {"model": model_s, "pipeline": max(0.0, push_s - model_s),
                            "sinks": sinks_s,
                            "source_and_loop": max(0.0, wall - push_s - sinks_s)},
            "measured": "Bundle.run_window (model: trunk, MC head, atypicality score), the "
                        "rest of StreamingReconstructor."
                        "push/push_many/flush (pipeline), Recorder.on_chunk/on_blocks (sinks: CSV, "
                        "events, live Lead-I features) timed by wrappers in the same run; "
                        "source_and_loop = the rest (sim source, asyncio, worker thread hop)"}


def first_window_s(model: Any) -> float:
    """Seconds of input before a device's first model window runs: one window plus the
    conditioning's look-ahead at ``FS_HZ``."""
    from edge.conditioning import ConditioningConfig, StreamConditioner

    b = model.bundle
    cfg = ConditioningConfig.from_dict(b.manifest.conditioning)
    look = max(StreamConditioner(FS_HZ, b.fs_hz, 1, cfg).lookahead_s(),
               StreamConditioner(FS_HZ, FS_HZ, 1, cfg).lookahead_s())
    return b.window / b.fs_hz + look


def paced_trial(model: Any, n: int, seconds: float, out: Path, ramp_s: float
                ) -> dict[str, Any]:
    """``n`` devices in real time, started over ``ramp_s`` (one hop spreads their windows
    evenly). Steady phase: from the last start plus its first window (``first_window_s``) to
    the first device's end, at least one hop, so every device runs its windows there; its
    worst chunk lag (s) and the process CPU share of the core decide "keeps up"."""
    hop_s = model.bundle.hop / model.bundle.fs_hz
    steady = (ramp_s + first_window_s(model), seconds)
    if steady[1] - steady[0] < hop_s:
        raise ValueError(f"a paced trial of {seconds:g} s leaves less than one hop "
                         f"({hop_s:g} s) after the {ramp_s:g} s ramp and the first window "
                         f"({steady[0] - ramp_s:.2f} s)")
    res = asyncio.run(_devices(model, n, seconds, out, speed=1.0, ramp_s=ramp_s,
                               steady=steady))
    recs = res["recorders"]
    lag = max(max(r.steady_lag for r in recs), res["behind_s"])
    util = res["steady_cpu_s"] / res["steady_wall_s"] if res["steady_wall_s"] > 0 else 1.0
    return {"devices": n, "signal_s_each": seconds, "ramp_s": ramp_s, "steady_s": steady,
            "wall_s": res["wall_s"], "steady_max_lag_s": lag,
            "behind_s": res["behind_s"], "cpu_share": util,
            "keeps_up": lag <= LAG_OK_S and util <= 1 / MARGIN}


def _next_n(n: int, trial: dict[str, Any], best: int, fail: int | None) -> int | None:
    """The next N to try (None when the search is done): after a pass, N scaled by the CPU
    share towards ``1 / MARGIN`` (at most doubled), or halfway to the lowest failing N; after
    a failure, halfway down to the best passing N (or half of N)."""
    if trial["keeps_up"]:
        guess = min(int(n / (MARGIN * max(trial["cpu_share"], 1e-3))), 2 * n)
        nxt = guess if fail is None else min(guess, (n + fail) // 2)
    else:
        nxt = (best + n) // 2 if best else n // 2
    if nxt <= max(best, 0) * 1.05 or nxt < 1 or (fail is not None and nxt >= fail):
        return None
    return nxt


def max_devices(bundle_dir: str | Path | None, single_rtf: float, seconds: float,
                verify: bool = True, tries: int = 4) -> dict[str, Any]:
    """Largest N that keeps up: estimated from the single-device RTF, then (``verify``) found
    by running N devices concurrently in real time for ``seconds`` (at least the ramp, the
    first window and one hop), from half the estimate, stepped by the measured CPU share
    after a pass and bisected after a failure (``tries`` trials)."""
    from edge import load_bundle

    estimate = max(1, int(single_rtf / MARGIN))
    result: dict[str, Any] = {"estimate": estimate, "method": METHOD, "verified": False,
                              "trials": []}
    if not verify:
        result["max_devices"] = estimate
        result["method"] += " (estimated from the single-device RTF, not verified)"
        return result
    n = max(1, estimate // 2)  # paced sessions cost more than the full-speed estimate
    best, fail = 0, None
    with one_core() as cpu, tempfile.TemporaryDirectory() as tmp:
        model = load_bundle(bundle_dir, num_threads=1)
        _warm(model, tmp)
        ramp = model.bundle.hop / model.bundle.fs_hz
        seconds = max(seconds, ramp + first_window_s(model) + ramp)  # a steady hop at least
        for i in range(tries):
            trial = paced_trial(model, n, seconds, Path(tmp) / f"trial{i}", ramp)
            result["trials"].append(trial)
            if trial["keeps_up"]:
                best = max(best, n)
            else:
                fail = n if fail is None else min(fail, n)
            nxt = _next_n(n, trial, best, fail)
            if nxt is None:
                break
            n = nxt
    result.update(max_devices=best, verified=best > 0, cpu=cpu)
    return result


def main() -> None:
    """``python -m benchmarks.throughput [BUNDLE]``: single-device RTF + verified devices."""
    import json
    import sys

    bundle = sys.argv[1] if len(sys.argv) > 1 else None
    one = pipeline_rtf(bundle, 60.0)
    print(json.dumps({"pipeline": one, "devices": max_devices(bundle, one["rtf"], 20.0)},
                     indent=2))


if __name__ == "__main__":
    main()
