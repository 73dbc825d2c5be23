"""Per-window latency: shipped bundle (trunk once, head once on T masks) vs the naive Keras way.

Bundle: ``Bundle.predict_window`` (mask sampling and the MC mean/std included), plus the
trunk alone and the head (with its T masks) alone. Naive: the full Keras model with dropout
active, ``model([x, m], training=True)`` called T times on one window (batch 1): eagerly
(what the brief calls naive) and inside a ``tf.function`` (graph mode, the stronger
baseline). Same warm-up and repeats for all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import NAIVE_NA, REPO


def stats_ms(times_s: list[float]) -> dict[str, float]:
    """Median / p95 / mean in ms of a list of durations in seconds."""
    a = np.asarray(times_s) * 1000.0
    return {"median": float(np.median(a)), "p95": float(np.percentile(a, 95)),
            "mean": float(a.mean()), "n": len(a)}


def timeit(fn: Callable[[int], Any], warmup: int, repeats: int) -> list[float]:
    """Call ``fn(i)`` ``warmup`` times untimed, then ``repeats`` times timed (seconds)."""
    for i in range(warmup):
        fn(i)
    out = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(warmup + i)
        out.append(time.perf_counter() - t0)
    return out


def test_windows(n: int, window: int, fs_hz: float, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` conditioned synthetic Lead-I windows ``(n, L)`` and metadata vectors ``(n, M)``."""
    from edge.conditioning import condition
    from edge.features import lead_i_features
    from edge.metadata import encode_metadata
    from firmware_bridge.synth import synthetic_ecg

    xs, ms = [], []
    for i in range(n):
        hr = 50.0 + (i * 37) % 70
        raw = synthetic_ecg(window / fs_hz + 2.0, fs_hz, seed=seed + i, heart_rate_bpm=hr,
                            noise_mv=0.02)
        x = condition(raw, fs_hz)[-window:].astype(np.float32)
        feats = {k: v for k, v in lead_i_features(x, fs_hz).items()}
        try:
            m = encode_metadata({"age": 40 + i % 40, "sex": "F" if i % 2 else "M", **feats})
        except Exception:  # noqa: BLE001 - implausible feature: fall back to age/sex only
            m = encode_metadata({"age": 40 + i % 40, "sex": "F" if i % 2 else "M"})
        xs.append(x)
        ms.append(np.asarray(m, np.float32))
    return np.stack(xs), np.stack(ms)


def bundle_latency(bundle_dir: str | Path | None, samples: Iterable[int], threads: int,
                   warmup: int = 5, repeats: int = 50, variant: str = "default",
                   n_windows: int = 16) -> list[dict[str, Any]]:
    """Rows of per-window latency (ms) of one bundle for each T, at ``threads`` threads."""
    from edge.bundle import Bundle

    b = Bundle.load(bundle_dir, num_threads=threads)
    xs, ms = test_windows(n_windows, b.window, b.fs_hz)
    rng = np.random.default_rng(0)
    feats = b.trunk.run({"lead_i": xs[0][None, :, None] * b.manifest.model.input_scale})
    site = b.manifest.mc.masks[0].name
    trunk_t = timeit(lambda i: b.trunk.run({"lead_i": xs[i % len(xs)][None, :, None]}),
                     warmup, repeats)
    rows = []
    for T in samples:
        def full(i: int, T: int = T) -> None:
            b.predict_window(xs[i % len(xs)], ms[i % len(ms)], T, rng)

        def head(i: int, T: int = T) -> None:
            b.head.run({"features": feats["features"], "meta": ms[i % len(ms)][None],
                        site: b.masks(max(T, 1), rng)})

        total = stats_ms(timeit(full, warmup, repeats))
        h = stats_ms(timeit(head, warmup, repeats))
        rows.append({"variant": variant, "mc_samples": T, "threads": threads,
                     "window_s": b.window / b.fs_hz, "median_ms": total["median"],
                     "p95_ms": total["p95"], "trunk_ms_median": stats_ms(trunk_t)["median"],
                     "head_ms_median": h["median"], "repeats": repeats, "warmup": warmup})
    return rows


def default_run(bundle_dir: str | Path | None) -> Path | None:
    """The Keras run folder named by the bundle's ``provenance.run``, if it exists here."""
    from edge.bundle import DEFAULT_BUNDLE

    man = Path(bundle_dir or DEFAULT_BUNDLE) / "manifest.json"
    try:
        run = json.loads(man.read_text()).get("provenance", {}).get("run")
    except (OSError, json.JSONDecodeError):
        return None
    if not run:
        return None
    for p in (Path(run), REPO / run):
        if (p / "config.json").is_file() and (p / "best.weights.h5").is_file():
            return p
    return None


def load_keras(run_dir: str | Path, threads: int = 1) -> tuple[Any, Any]:
    """(TrainConfig, Keras model with the run's best weights); TF limited to ``threads``."""
    import warnings

    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TF already initialised in this process: keep its settings
    from training.config import TrainConfig
    from training.model import build_model

    run = Path(run_dir)
    cfg = TrainConfig.load(run / "config.json")
    model = build_model(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.load_weights(run / "best.weights.h5")
    return cfg, model


def _naive(run_dir: str | Path | None, threads: int, graph: bool) -> tuple | str:
    """(config, the naive call, its 8 input windows as tensors (lead_i, meta), the same as
    numpy), or the reason it is n/a: the Keras model with dropout active, eager or graph."""
    if run_dir is None or not (Path(run_dir) / "best.weights.h5").is_file():
        return NAIVE_NA
    try:
        import tensorflow as tf

        cfg, model = load_keras(run_dir, threads)
    except ImportError:
        return NAIVE_NA
    xs, ms = test_windows(8, cfg.window, cfg.data.fs_hz)
    xt = [tf.constant(x[None, :, None]) for x in xs]
    mt = [tf.constant(m[None]) for m in ms]
    call = (tf.function(lambda a, b: model([a, b], training=True)) if graph
            else (lambda a, b: model([a, b], training=True)))
    return cfg, call, xt, mt, (xs, ms)


def naive_latency(run_dir: str | Path | None, samples: Iterable[int], warmup: int = 3,
                  repeats: int = 5, graph: bool = False, threads: int = 1
                  ) -> list[dict[str, Any]] | str:
    """Rows of naive per-window latency (T full-model calls), or the reason it is n/a."""
    naive = _naive(run_dir, threads, graph)
    if isinstance(naive, str):
        return naive
    cfg, call, xt, mt, _ = naive
    for i in range(max(1, warmup)):  # call-level warm-up (tracing, allocation)
        np.asarray(call(xt[i % 8], mt[i % 8]))
    rows = []
    for T in samples:
        def window(i: int, T: int = T) -> None:
            for _ in range(T):
                np.asarray(call(xt[i % 8], mt[i % 8]))

        s = stats_ms(timeit(window, 0, repeats))
        rows.append({"variant": "naive-keras-" + ("graph" if graph else "eager"),
                     "mc_samples": T, "threads": threads, "window_s": cfg.window / cfg.data.fs_hz,
                     "median_ms": s["median"], "p95_ms": s["p95"], "repeats": repeats,
                     "warmup_calls": max(1, warmup)})
    return rows


def paired_graph_speedup(bundle_dir: str | Path | None, run_dir: str | Path | None,
                         T: int = 30, rounds: int = 8, per_round: int = 20,
                         threads: int = 1) -> dict[str, Any] | str:
    """Speed-up vs the naive graph from interleaved rounds, or the reason it is n/a.

    Each round times one naive window (T calls of the Keras model in ``tf.function``) and
    then ``per_round`` bundle windows (``predict_window``, median); the speed-up is the median
    over rounds of their ratio. Both sides see the same machine state, so a host that slows
    down or speeds up during the run (a noisy neighbour, frequency changes) moves both
    instead of whichever happened to be measured then.
    """
    naive = _naive(run_dir, threads, graph=True)
    if isinstance(naive, str):
        return naive
    from edge.bundle import Bundle

    _, call, xt, mt, (xs, ms) = naive
    b = Bundle.load(bundle_dir, num_threads=threads)
    rng = np.random.default_rng(0)
    for i in range(3):  # warm-up: tracing, allocation
        np.asarray(call(xt[i], mt[i]))
        b.predict_window(xs[i], ms[i], T, rng)
    naive, ours = [], []
    for r in range(rounds):
        t0 = time.perf_counter()
        for _ in range(T):
            np.asarray(call(xt[r % 8], mt[r % 8]))
        naive.append(time.perf_counter() - t0)
        ours.append(float(np.median(timeit(
            lambda i: b.predict_window(xs[i % 8], ms[i % 8], T, rng), 1, per_round))))
    ratios = np.asarray(naive) / np.asarray(ours)
    return {"mc_samples": T, "threads": threads, "rounds": rounds, "bundle_windows": per_round,
            "naive_graph_ms": [round(1e3 * v, 2) for v in naive],
            "bundle_ms": [round(1e3 * v, 3) for v in ours],
            "ratios": [round(float(v), 1) for v in ratios],
            "speedup_median": float(np.median(ratios)),
            "speedup_min": float(ratios.min()), "speedup_max": float(ratios.max())}


def main() -> None:
    """``python -m benchmarks.latency [BUNDLE]``: default bundle, T in 1/10/30/100, 1 thread."""
    import sys

    bundle = sys.argv[1] if len(sys.argv) > 1 else None
    for row in bundle_latency(bundle, (1, 10, 30, 100), threads=1, repeats=30):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
