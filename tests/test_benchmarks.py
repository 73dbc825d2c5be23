"""The benchmark code runs end to end on the tiny bundle (never checks timings)."""

from __future__ import annotations

import json

import pytest
from bundle_fixture import tiny_bundle_dir
from click.testing import CliRunner

from benchmarks import NAIVE_NA, footprint, latency, throughput
from benchmarks.machine import describe, machine_info


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    return tiny_bundle_dir(tmp_path_factory, "bench")


def test_machine_info() -> None:
    info = machine_info()
    assert info["cores"] and info["python"] and "numpy" in info["libraries"]
    assert info["cpu_model"] in describe(info)


def test_simd_class_from_cpuinfo_text() -> None:
    """The class is read from the flags line (text in /proc/cpuinfo's format)."""
    from benchmarks.machine import cpu_flags, simd_class

    zen2 = "processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu sse2 avx avx2 fma\n"
    zen4 = zen2.replace("avx2 fma", "avx2 fma avx512f avx512bw avx512_vnni")
    assert simd_class(cpu_flags(zen2)) == "AVX2, no AVX-512"
    assert simd_class(cpu_flags(zen4)) == "AVX-512 (VNNI)"
    assert simd_class(cpu_flags(zen2.replace("avx2", "avx512f avx2"))) == "AVX-512"
    assert simd_class(cpu_flags("Features\t: fp asimd\n")) == "unknown"
    info = {**machine_info(), "simd": "AVX2, no AVX-512"}
    assert "AVX2, no AVX-512, " in describe(info)


def test_latency_rows(tiny) -> None:
    rows = latency.bundle_latency(tiny, (1, 3), threads=1, warmup=1, repeats=2, n_windows=2)
    assert [r["mc_samples"] for r in rows] == [1, 3]
    assert all(0 < r["median_ms"] <= r["p95_ms"] for r in rows)


def test_stats_ms_by_hand() -> None:
    """1..100 ms: median 50.5, p95 95.05 (linear interpolation at rank 0.95 * 99), mean 50.5;
    a 5th percentile (5.95) or the max would fail."""
    s = latency.stats_ms([i / 1000.0 for i in range(1, 101)])
    assert s["median"] == pytest.approx(50.5) and s["mean"] == pytest.approx(50.5)
    assert s["p95"] == pytest.approx(95.05) and s["n"] == 100


def test_naive_without_run_is_na(tmp_path) -> None:
    assert latency.naive_latency(None, (3,)) == NAIVE_NA
    assert latency.naive_latency(tmp_path, (3,)) == NAIVE_NA


def test_throughput_and_footprint(tiny) -> None:
    one = throughput.pipeline_rtf(tiny, seconds=4.0)
    assert one["rtf"] > 0 and one["devices"] == 1
    dev = throughput.max_devices(tiny, 5.2, seconds=4.0, verify=True, tries=1)
    assert dev["estimate"] == 4  # int(5.2 / MARGIN 1.25)
    assert len(dev["trials"]) == 1 and dev["trials"][0]["devices"] == 2  # half the estimate
    t = dev["trials"][0]
    a, b = t["steady_s"]  # after the ramp (one hop, 0.5 s), a window (2 s) + look-ahead
    assert a > 0.5 + 2.0 and b - a == pytest.approx(0.5) and t["signal_s_each"] == b
    assert dev["max_devices"] == (2 if t["keeps_up"] else 0) and dev["verified"] == t["keeps_up"]
    fp = footprint.footprint(tiny, seconds=4.0, repeats=1)
    assert fp["model"]["total_kb"] > 0
    assert fp["edge_process"]["peak_rss_mb"] > 0
    assert fp["edge_process"]["tensorflow_imported"] is False


def test_bench_cli_quick(tiny, tmp_path, monkeypatch) -> None:
    from benchmarks import cli

    monkeypatch.setitem(cli.QUICK, "repeats", 2)
    monkeypatch.setitem(cli.QUICK, "warmup", 1)
    monkeypatch.setitem(cli.QUICK, "pipeline_s", 4.0)
    out, md = tmp_path / "b.json", tmp_path / "b.md"
    # no --run: the tiny bundle's provenance names no run here, so the naive rows are n/a
    res = CliRunner().invoke(cli.bench, ["--quick", "--bundle", str(tiny), "--json", str(out),
                                         "--markdown", str(md)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    for key in ("machine", "default", "latency", "throughput", "footprint", "variants"):
        assert key in data
    d = data["default"]
    assert d["mc_samples"] == 30 and d["threads"] == 1 and d["latency_ms_median"] > 0
    assert d["speedup_vs_naive"] is None and NAIVE_NA in d["naive_note"]
    assert "| variant |" in md.read_text()


def test_overhead_share_by_hand() -> None:
    assert throughput.overhead_share(2.0, 0.5) == 0.75
    assert throughput.overhead_share(1.0, 1.0) == 0.0
    assert throughput.overhead_share(1.0, 1.5) == 0.0  # clipped (timer skew), not negative
    assert throughput.overhead_share(0.0, 0.0) == 0.0


def test_timers_count_wrapped_time_and_restore() -> None:
    import time

    class Thing:
        def work(self, s: float) -> float:
            time.sleep(s)
            return s

    thing, timers = Thing(), throughput.Timers()
    timers.wrap(thing, "work", "w")
    assert thing.work(0.02) == 0.02 and thing.work(0.01) == 0.01
    assert timers.calls["w"] == 2 and timers.s["w"] >= 0.03
    timers.restore()
    assert "work" not in vars(thing)  # the class method again
    thing.work(0.0)
    assert timers.calls["w"] == 2


def test_pipeline_share_counts_the_model_through_the_wrapper(tiny, monkeypatch) -> None:
    """4 s at 130 Hz = 400 samples at 100 Hz = windows at 0, 50, .., 200 (tiny bundle:
    200 long, hop 50) = 5 model calls per run; a model made 30 ms slower is counted as model
    time, so the share is (wall - model) / wall with model >= 5 x 30 ms."""
    import time

    from edge.bundle import Bundle

    one = throughput.pipeline_rtf(tiny, seconds=4.0, repeats=1)
    assert one["windows"] == 5 and 0.0 <= one["pipeline_overhead_share"] <= 1.0
    assert 0 < one["model_s"] < one["wall_s"]
    assert sum(one["breakdown_s"].values()) == pytest.approx(one["wall_s"], rel=1e-6)
    original = Bundle.run_window

    def slow(self, *args, **kwargs):
        time.sleep(0.03)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Bundle, "run_window", slow)
    s = throughput.pipeline_rtf(tiny, seconds=4.0, repeats=1)
    assert s["windows"] == 5 and s["model_s"] >= 5 * 0.03
    assert s["pipeline_overhead_share"] == pytest.approx(1 - s["model_s"] / s["wall_s"])
    assert s["pipeline_overhead_share"] < one["pipeline_overhead_share"]


def test_device_search_steps() -> None:
    """Pass at 40 % CPU: N scaled towards 80 % (x2 here), at most doubled, or halfway to a
    failing N; failure: halfway down to the best pass (or half); done within 5 % of it."""
    ok = {"keeps_up": True, "cpu_share": 0.4}
    assert throughput._next_n(100, ok, 100, None) == 200
    assert throughput._next_n(100, dict(ok, cpu_share=0.1), 100, None) == 200
    assert throughput._next_n(100, ok, 100, 160) == 130
    bad = {"keeps_up": False, "cpu_share": 0.5}
    assert throughput._next_n(200, bad, 100, 200) == 150
    assert throughput._next_n(200, bad, 0, 200) == 100
    assert throughput._next_n(104, dict(ok, cpu_share=0.79), 104, 160) is None
    assert throughput._next_n(1, bad, 0, 1) is None


def test_paced_trial_catches_a_device_falling_behind(tiny, monkeypatch, tmp_path) -> None:
    """Two real-time devices whose model takes 0.4 s a window (tiny bundle: a window every
    0.5 s each) need 1.6 s of work per second: the trial must not call that keeping up."""
    import time

    from edge import load_bundle
    from edge.bundle import Bundle

    original = Bundle.run_window

    def slow(self, *args, **kwargs):
        time.sleep(0.4)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Bundle, "run_window", slow)
    t = throughput.paced_trial(load_bundle(tiny), 2, 6.0, tmp_path, 0.5)
    assert not t["keeps_up"]
    assert t["steady_max_lag_s"] > throughput.LAG_OK_S


@pytest.mark.parametrize("args, names", [
    (["--threads", "0"], "--threads"),
    (["--threads", "-1"], "--threads"),
    (["--run", "/nonexistent/run"], "--run"),
    (["--json", "/nonexistent/dir/b.json"], "--json"),
    (["--markdown", "/nonexistent/dir/b.md"], "--markdown"),
])
def test_bench_refuses_bad_options_before_running(args: list[str], names: str) -> None:
    """A bad flag is named in one line, at once (not after the whole benchmark, and not
    blamed on the bundle)."""
    from benchmarks import cli

    res = CliRunner().invoke(cli.bench, ["--quick", *args])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip().startswith("Error")]
    assert len(lines) == 1 and names in lines[0], res.output
    assert "bundle" not in lines[0].lower()


def test_paired_speedup_is_the_median_of_per_round_ratios(tmp_path) -> None:
    """Interleaved rounds on a tiny trained run and its bundle: each round's ratio is its
    naive window over its bundle median, the headline is their median; the goal uses it."""
    pytest.importorskip("tensorflow", reason="the naive baseline needs TensorFlow")
    import numpy as np
    from test_converters import make_run

    from benchmarks.cli import _headline
    from converters import convert_run

    assert latency.paired_graph_speedup(None, None) == NAIVE_NA
    run = make_run(tmp_path / "run")
    bundle = convert_run(run, tmp_path / "b", "float32", "unrolled")
    res = latency.paired_graph_speedup(bundle, run, T=2, rounds=3, per_round=2)
    assert len(res["ratios"]) == len(res["naive_graph_ms"]) == len(res["bundle_ms"]) == 3
    by_hand = np.asarray(res["naive_graph_ms"]) / np.asarray(res["bundle_ms"])
    np.testing.assert_allclose(res["ratios"], by_hand, rtol=0.01)
    assert res["speedup_median"] == pytest.approx(float(np.median(by_hand)), rel=0.01)
    assert res["speedup_min"] <= res["speedup_median"] <= res["speedup_max"]
    row = {"variant": "default", "threads": 1, "median_ms": 2.0, "p95_ms": 2.5,
           "trunk_ms_median": 1.0, "head_ms_median": 0.5, "window_s": 8.0}
    naive = {"variant": "naive-keras-graph", "mc_samples": 30, "threads": 1, "median_ms": 300.0}
    d = _headline({"latency": [{**row, "mc_samples": 30}, {**row, "mc_samples": 1}],
                   "naive": [naive], "paired": {**res, "speedup_median": 97.0}})
    assert d["speedup_vs_naive_graph"] == 97.0  # the interleaved figure, not 300 / 2
    assert d["speedup_vs_naive_graph_sequential"] == 150.0
