"""The machine a benchmark ran on: CPU model, cores, OS, Python and library versions."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

LIBRARIES = ("numpy", "scipy", "ai-edge-litert", "tflite-runtime", "tensorflow", "keras")


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags(text: str | None = None) -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (or ``text`` in its format); empty when
    unknown."""
    if text is None:
        try:
            with open("/proc/cpuinfo") as f:
                text = f.read()
        except OSError:
            return set()
    for line in text.splitlines():
        if line.lower().startswith(("flags", "features")):
            return set(line.split(":", 1)[1].split())
    return set()


def simd_class(flags: set[str]) -> str:
    """The machine class for the benchmarks (the vector extensions decide which LiteRT/XNNPACK
    and oneDNN kernels run): "AVX-512 (VNNI)", "AVX-512", "AVX2, no AVX-512", or "unknown"
    (another architecture or no flags)."""
    if "avx512_vnni" in flags or "avx512vnni" in flags:
        return "AVX-512 (VNNI)"
    if "avx512f" in flags:
        return "AVX-512"
    if "avx2" in flags:
        return "AVX2, no AVX-512"
    return "unknown"


def lib_version(name: str) -> str | None:
    """Installed distribution version (without importing it), None when absent."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU, cores (total and usable by this process), load, OS, Python, library versions."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu_model": cpu_model(), "arch": platform.machine(), "cores": os.cpu_count(),
        "simd": simd_class(cpu_flags()),
        "cores_usable": usable, "load_avg_1m": round(load[0], 2) if load else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(), "python_impl": sys.implementation.name,
        "libraries": {n: lib_version(n) for n in LIBRARIES},
    }


def describe(info: dict[str, Any]) -> str:
    """One line naming the machine (for tables and the README)."""
    libs = ", ".join(f"{k} {v}" for k, v in info["libraries"].items() if v)
    simd = f"{info['simd']}, " if info.get("simd", "unknown") != "unknown" else ""
    return (f"{info['cpu_model']} ({info['arch']}, {simd}{info['cores']} cores, load "
            f"{info['load_avg_1m']}), {info['os']}, Python {info['python']}; {libs}")


if __name__ == "__main__":
    import json

    print(json.dumps(machine_info(), indent=2))
