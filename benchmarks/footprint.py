"""Footprint: model size per bundle, import time, start-up time and peak RSS of an edge process.

The edge process is a fresh ``python`` child (base install: it must not import TensorFlow)
that imports ``edge``, loads the bundle and reconstructs ``seconds`` of 130 Hz Lead I; it
reports its phase times, peak RSS (VmHWM, else ``ru_maxrss``) and whether TensorFlow loaded.

``cli_peak_rss`` measures the command line itself (issue #16: <= 150 MB, target 120 MB):
``ecg12 stream`` of the simulator for 30 s and ``ecg12 reconstruct`` of a long 130 Hz CSV
(24 h in the full bench, 1 h with ``--quick``), each a fresh process whose peak RSS is its
VmHWM at exit (not ``ru_maxrss``: that keeps the forking parent's peak), report included.
``gateway_modules`` lists the heavy packages (scipy, pandas, matplotlib, wfdb, TensorFlow) a
stream imports before its report.

    python -m benchmarks.footprint [BUNDLE] [--cli-hours H]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: packages that must stay off the gateway path (the report may import matplotlib)
HEAVY = ("scipy", "pandas", "matplotlib", "wfdb", "tensorflow", "keras", "sklearn")

_CHILD = r"""
import json, resource, sys, time
def rss():  # VmHWM: peak of this image (ru_maxrss can keep the forking parent's peak)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
import edge
t1 = time.perf_counter()
import numpy as np
phases = {"import_edge": rss()}
bundle, seconds, fs = sys.argv[1] or None, float(sys.argv[2]), 130.0
model = edge.load_bundle(bundle, num_threads=1)
t2 = time.perf_counter()
phases["load_bundle"] = rss()
b = model.bundle
b.predict_window(np.zeros(b.window, np.float32),
                 np.zeros(b.manifest.metadata.encoded_size, np.float32),
                 b.manifest.mc.default_samples, np.random.default_rng(0))
phases["first_window_T"] = rss()
import edge.pipeline
phases["pipeline_import"] = rss()
t2b = time.perf_counter()
t = np.arange(int(seconds * fs)) / fs
ph = (t * 1.2) % 1.0
x = np.exp(-((ph - 0.3) / 0.012) ** 2) + 0.2 * np.exp(-((ph - 0.6) / 0.05) ** 2)
rec = model.reconstruct(x.astype(np.float32), fs=fs)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "reconstruct_s": t3 - t2b,
                  "peak_rss_mb": rss(),
                  "tensorflow_imported": "tensorflow" in sys.modules,
                  "rows": int(rec.leads.shape[0]), "peak_rss_mb_after": phases}))
"""


def model_size(bundle_dir: str | Path | None) -> dict[str, Any]:
    """Sizes in KB of the bundle's .tflite files and their total."""
    from edge.bundle import DEFAULT_BUNDLE

    d = Path(bundle_dir or DEFAULT_BUNDLE)
    files = {p.name: round(p.stat().st_size / 1024, 1) for p in sorted(d.glob("*.tflite"))}
    return {"files_kb": files, "total_kb": round(sum(files.values()), 1)}


def import_time(module: str = "edge", repeats: int = 3) -> float:
    """Median wall seconds of ``import module`` in a fresh interpreter (in-process timer)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.strip().splitlines()[-1])
           for _ in range(repeats)]
    return statistics.median(out)


def edge_process(bundle_dir: str | Path | None, seconds: float = 30.0) -> dict[str, Any]:
    """Run the edge child once; adds ``startup_s`` = spawn to first result (wall)."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _CHILD, str(bundle_dir or ""), str(seconds)],
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"edge process failed: {res.stderr.strip()[-500:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out.update(startup_s=wall, signal_s=seconds)
    return out


def write_long_csv(path: str | Path, hours: float, fs_hz: float = 130.0, seed: int = 0
                   ) -> Path:
    """A ``hours``-long synthetic Lead-I CSV (``t_s,I``; 130 Hz), written an hour at a time."""
    import numpy as np

    from firmware_bridge.synth import synthetic_ecg

    p = Path(path)
    n = int(round(hours * 3600 * fs_hz))
    step = int(3600 * fs_hz)
    with p.open("w") as f:
        f.write("t_s,I\n")
        for a in range(0, n, step):
            b = min(n, a + step)
            x = synthetic_ecg((b - a) / fs_hz, fs_hz, seed=seed + a // step)[: b - a]
            np.savetxt(f, np.column_stack([np.arange(a, a + len(x)) / fs_hz, x]),
                       fmt=("%.6f", "%.4f"), delimiter=",")
    return p


_CLI_CHILD = r"""
import atexit, resource, sys
OUT = sys.argv[1]
def hwm():  # VmHWM: this image's own peak (ru_maxrss keeps the forking parent's)
    try:
        kb = next(int(ln.split()[1]) for ln in open("/proc/self/status")
                  if ln.startswith("VmHWM:"))
    except (OSError, StopIteration):
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(OUT, "w") as f:
        f.write(str(kb))
atexit.register(hwm)
from edge.cli import main
sys.argv = ["ecg12", *sys.argv[2:]]
sys.exit(main())
"""


def _cli_rss(args: list[str], timeout_s: float | None = None) -> dict[str, Any]:
    """Run ``ecg12 ARGS`` (as the console script does) in a fresh process: exit code, wall
    seconds, peak RSS (MB, the process's VmHWM at exit) and the end of its stderr."""
    with tempfile.TemporaryDirectory(prefix="ecg12-rss-") as tmp:
        hwm = Path(tmp) / "hwm"
        t0 = time.perf_counter()
        try:
            res = subprocess.run([sys.executable, "-c", _CLI_CHILD, str(hwm), *args],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                 timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"ecg12 {' '.join(args[:2])}: timed out after {timeout_s} s"
                               ) from None
        wall = time.perf_counter() - t0
        rss = int(hwm.read_text()) / 1024 if hwm.is_file() else float("nan")
    return {"rc": res.returncode, "wall_s": wall, "peak_rss_mb": rss,
            "stderr": res.stderr[-2000:]}


def cli_peak_rss(bundle_dir: str | Path | None = None, *, stream_s: float = 30.0,
                 file_hours: float | None = 1.0, csv_path: str | Path | None = None,
                 timeout_s: float = 3600.0) -> dict[str, Any]:
    """Peak RSS (MB) and wall time (s) of ``ecg12 stream`` (simulator, ``stream_s`` s, as fast
    as possible) and of ``ecg12 reconstruct`` of a ``file_hours``-long 130 Hz CSV (written to
    a temporary folder unless ``csv_path`` names one; None = skip), default outputs (CSV,
    events, report.png, summary)."""
    bundle = ["--bundle", str(bundle_dir)] if bundle_dir else []
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ecg12-fp-") as tmp:
        r = _cli_rss(["stream", "--source", f"sim:?duration={stream_s:g}&speed=0", "--out",
                      f"{tmp}/stream", "--quiet", *bundle], timeout_s)
        if r["rc"] != 0:
            raise RuntimeError(f"ecg12 stream failed: {r['stderr'].strip()[-500:]}")
        out["stream"] = {"signal_s": stream_s, "peak_rss_mb": round(r["peak_rss_mb"], 1),
                         "wall_s": round(r["wall_s"], 2)}
        if file_hours or csv_path:
            path = Path(csv_path) if csv_path else write_long_csv(f"{tmp}/long.csv",
                                                                  float(file_hours or 1.0))
            r = _cli_rss(["reconstruct", str(path), "--out", f"{tmp}/rec", "--quiet",
                          *bundle], timeout_s)
            if r["rc"] != 0:
                raise RuntimeError(f"ecg12 reconstruct failed: {r['stderr'].strip()[-500:]}")
            rows = sum(1 for _ in open(f"{tmp}/rec/leads.csv")) - 1
            out["reconstruct"] = {"file_hours": file_hours, "file_mb": round(
                path.stat().st_size / 2**20, 1), "rows_out": rows,
                "peak_rss_mb": round(r["peak_rss_mb"], 1), "wall_s": round(r["wall_s"], 1)}
    out["peak_rss_mb"] = max(v["peak_rss_mb"] for v in out.values())
    return out


def cli_goal(cli: dict[str, Any] | None, limit_mb: float) -> dict[str, Any]:
    """The bench goal row for ``cli_peak_rss``'s result (issue #16)."""
    goal = f"ecg12 stream / reconstruct peak RSS <= {limit_mb:g} MB"
    if not cli:
        return {"goal": goal, "met": None, "value": "n/a"}
    s, r = cli["stream"], cli.get("reconstruct")
    value = f"stream {s['signal_s']:g} s: {s['peak_rss_mb']:.0f} MB"
    if r:
        value += (f"; reconstruct {r['file_hours']:g} h file: {r['peak_rss_mb']:.0f} MB, "
                  f"{r['wall_s']:.0f} s")
    return {"goal": goal, "met": cli["peak_rss_mb"] <= limit_mb, "value": value}


_MODULES_CHILD = r"""
import json, sys
import numpy as np
import edge
from edge.chunk import Chunk
from edge.sinks.recorder import Recorder
from firmware_bridge.synth import synthetic_ecg
model = edge.load_bundle(sys.argv[1] or None)
rec = model.streaming(130.0)
recorder = Recorder(sys.argv[2], figure=False)
x = synthetic_ecg(30.0, 130.0).astype(np.float32)
for a in range(0, len(x), 26):
    c = Chunk(x[a:a + 26], t0_s=a / 130.0, fs_hz=130.0)
    recorder.on_chunk(c)
    recorder.on_blocks(rec.push(c))
recorder.on_blocks(rec.flush())
recorder.close()
heavy = sys.argv[3].split(",")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


def gateway_modules(bundle_dir: str | Path | None = None) -> list[str]:
    """Heavy modules (``HEAVY``) imported by a fresh process that streams 30 s through the
    pipeline into a Recorder (CSV, events, summary; no report): should be none."""
    with tempfile.TemporaryDirectory(prefix="ecg12-mods-") as tmp:
        res = subprocess.run([sys.executable, "-c", _MODULES_CHILD, str(bundle_dir or ""),
                              f"{tmp}/out", ",".join(HEAVY)], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"gateway module check failed: {res.stderr.strip()[-500:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def footprint(bundle_dir: str | Path | None, seconds: float = 30.0, repeats: int = 3,
              cli_hours: float | None = None) -> dict[str, Any]:
    """Model size, import time and the edge process (median over ``repeats`` children);
    with ``cli_hours``, also ``cli_peak_rss`` (30 s stream, ``cli_hours`` file)."""
    runs = [edge_process(bundle_dir, seconds) for _ in range(repeats)]
    keys = ("import_s", "load_s", "reconstruct_s", "startup_s", "peak_rss_mb")
    proc = {k: statistics.median(r[k] for r in runs) for k in keys}
    proc["peak_rss_mb_max"] = max(r["peak_rss_mb"] for r in runs)
    proc["peak_rss_mb_after"] = {k: round(statistics.median(r["peak_rss_mb_after"][k]
                                                            for r in runs), 1)
                                 for k in runs[0]["peak_rss_mb_after"]}
    proc.update(tensorflow_imported=any(r["tensorflow_imported"] for r in runs),
                signal_s=seconds, repeats=repeats)
    out = {"model": model_size(bundle_dir), "import_edge_s": import_time("edge", repeats),
           "edge_process": proc}
    if cli_hours is not None:
        out["cli"] = cli_peak_rss(bundle_dir, file_hours=cli_hours)
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", default=None)
    ap.add_argument("--cli-hours", type=float, default=None,
                    help="also measure the CLI: 30 s stream and an H-hour file")
    a = ap.parse_args()
    print(json.dumps(footprint(a.bundle, cli_hours=a.cli_hours), indent=2))
