"""Throughput of the whole streaming path (sim source -> StreamingReconstructor -> CSV sink).

Real-time factor (RTF) = seconds of signal processed per second of wall time, one LiteRT
thread, the process pinned to one CPU core. Concurrent devices: N simulated 130 Hz devices
streamed by one asyncio process at full speed through one worker thread (the simulated
equivalent of real-time pacing); N keeps up when the aggregate RTF >= MARGIN * N.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FS_HZ = 130.0
MARGIN = 1.25  # headroom required over real time for "keeps up"
METHOD = (f"N simulated {FS_HZ:g} Hz devices (sim: source at speed 0 -> StreamingReconstructor "
          f"-> CSV sink) run concurrently in one asyncio process, one worker thread, one "
          f"core; N keeps up when aggregate RTF (N x signal s / wall s) >= {MARGIN:g} x N")


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


async def _devices(model: Any, n: int, seconds: float, out: Path) -> float:
    """Stream ``n`` devices concurrently; returns the wall time in seconds."""
    from concurrent.futures import ThreadPoolExecutor

    from edge.commands import run_session
    from edge.sinks.recorder import Recorder
    from edge.sources.sim import SimSource

    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
    sessions = []
    for i in range(n):
        src = SimSource(seed=i + 1, hr=60.0 + (i * 13) % 50, duration=seconds, speed=0.0,
                        fs=FS_HZ)
        rec = Recorder(out / f"dev{i}", figure=False, events=out / f"dev{i}.ndjson")
        sessions.append(run_session(src, model, rec))
    t0 = time.perf_counter()
    summaries = await asyncio.gather(*sessions)
    wall = time.perf_counter() - t0
    errors = [e for s in summaries for e in s["errors"]]
    if errors:
        raise RuntimeError(f"streaming failed: {errors[:3]}")
    return wall


def run_devices(bundle_dir: str | Path | None, n: int, seconds: float) -> dict[str, Any]:
    """Aggregate RTF of ``n`` concurrent devices of ``seconds`` each, on one core."""
    from edge import load_bundle

    with one_core() as cpu, tempfile.TemporaryDirectory() as tmp:
        model = load_bundle(bundle_dir, num_threads=1)
        warm = 2 * model.bundle.window / model.bundle.fs_hz  # imports, allocation, delegate
        asyncio.run(_devices(model, 1, warm, Path(tmp) / "warmup"))
        wall = asyncio.run(_devices(model, n, seconds, Path(tmp) / "timed"))
    rtf = n * seconds / wall
    return {"devices": n, "signal_s_each": seconds, "wall_s": wall, "rtf": rtf,
            "keeps_up": rtf >= MARGIN * n, "cpu": cpu}


def pipeline_rtf(bundle_dir: str | Path | None, seconds: float = 60.0) -> dict[str, Any]:
    """RTF of one device's whole streaming path (one core, one thread)."""
    return run_devices(bundle_dir, 1, seconds)


def max_devices(bundle_dir: str | Path | None, single_rtf: float, seconds: float,
                verify: bool = True, tries: int = 4) -> dict[str, Any]:
    """Largest N that keeps up: estimate from the single-device RTF, then verify by running
    N devices concurrently (shrinking N by 20 % while it falls behind)."""
    n = max(1, int(single_rtf / MARGIN))
    result: dict[str, Any] = {"estimate": n, "method": METHOD, "verified": False, "trials": []}
    if not verify:
        result["max_devices"] = n
        result["method"] += " (quick: estimated from the single-device RTF, not verified)"
        return result
    for _ in range(tries):
        trial = run_devices(bundle_dir, n, seconds)
        result["trials"].append(trial)
        if trial["keeps_up"]:
            result.update(max_devices=n, verified=True)
            return result
        n = max(1, int(n * 0.8))
    result["max_devices"] = 0
    return result


def main() -> None:
    """``python -m benchmarks.throughput [BUNDLE]``: single-device RTF + device estimate."""
    import json
    import sys

    bundle = sys.argv[1] if len(sys.argv) > 1 else None
    one = pipeline_rtf(bundle, 60.0)
    print(json.dumps({"pipeline": one, "devices": max_devices(bundle, one["rtf"], 20.0)},
                     indent=2))


if __name__ == "__main__":
    main()
