"""Footprint: model size per bundle, import time, start-up time and peak RSS of an edge process.

The edge process is a fresh ``python`` child (base install: it must not import TensorFlow)
that imports ``edge``, loads the bundle and reconstructs ``seconds`` of 130 Hz Lead I; it
reports its phase times, peak RSS (VmHWM, else ``ru_maxrss``) and whether TensorFlow loaded.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
phases["pipeline_import_scipy"] = rss()
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


def footprint(bundle_dir: str | Path | None, seconds: float = 30.0, repeats: int = 3
              ) -> dict[str, Any]:
    """Model size, import time and the edge process (median over ``repeats`` children)."""
    runs = [edge_process(bundle_dir, seconds) for _ in range(repeats)]
    keys = ("import_s", "load_s", "reconstruct_s", "startup_s", "peak_rss_mb")
    proc = {k: statistics.median(r[k] for r in runs) for k in keys}
    proc["peak_rss_mb_max"] = max(r["peak_rss_mb"] for r in runs)
    proc["peak_rss_mb_after"] = {k: round(statistics.median(r["peak_rss_mb_after"][k]
                                                            for r in runs), 1)
                                 for k in runs[0]["peak_rss_mb_after"]}
    proc.update(tensorflow_imported=any(r["tensorflow_imported"] for r in runs),
                signal_s=seconds, repeats=repeats)
    return {"model": model_size(bundle_dir), "import_edge_s": import_time("edge", repeats),
            "edge_process": proc}


if __name__ == "__main__":
    print(json.dumps(footprint(sys.argv[1] if len(sys.argv) > 1 else None), indent=2))
