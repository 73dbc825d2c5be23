"""The pipeline's stages, one by one: each fed random chunkings equals one-shot, and each
checked against values computed here by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.conditioning import ConditioningConfig, condition
from edge.stages.condition import ConditionStage
from edge.stages.flags import Flag, FlagQueue, UncertaintyRuns
from edge.stages.quality import GAP, GOOD, LEAD_OFF, SATURATED, QualityConfig, sample_codes
from edge.stages.stitch import Stitcher
from edge.stages.window import WindowGrid

CHUNKS = st.lists(st.integers(0, 400), min_size=1, max_size=15)


def _split(n: int, sizes: list[int]) -> list[slice]:
    out, i, c = [], 0, 0
    while i < n:
        m = sizes[c % len(sizes)] or 1
        out.append(slice(i, min(n, i + m)))
        i += m
        c += 1
    return out


def _signal(fs: float, seconds: float) -> np.ndarray:
    t = np.arange(int(fs * seconds)) / fs
    return (np.sin(2 * np.pi * 1.1 * t) + 0.3 * np.sin(2 * np.pi * 0.1 * t)
            + (np.mod(t, 0.8) < 0.03) * 1.5)


@settings(max_examples=20, deadline=None)
@given(fs=st.sampled_from([100.0, 130.0, 250.0, 500.0]), sizes=CHUNKS)
def test_condition_stage_any_chunking(fs: float, sizes: list[int]) -> None:
    x = _signal(fs, 9.0)
    stage = ConditionStage(fs, 100.0, ConditioningConfig())
    ym, yi = [], []
    for sl in _split(len(x), sizes):
        a, b = stage.push(x[sl])
        ym.append(a)
        yi.append(b)
    a, b = stage.flush()
    ym, yi = np.concatenate([*ym, a]), np.concatenate([*yi, b])
    np.testing.assert_allclose(ym, condition(x, fs, 100.0), atol=1e-6)
    np.testing.assert_allclose(yi, condition(x, fs, fs), atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 3000), sizes=CHUNKS)
def test_window_grid_any_chunking(n: int, sizes: list[int]) -> None:
    L, hop = 800, 200
    y = np.arange(n, dtype=float)
    grid = WindowGrid(L, hop)
    got = [w for sl in _split(n, sizes) for w in grid.push(y[sl])] + grid.close()
    starts = list(range(0, n - L + 1, hop))  # the grid, by hand
    if n >= L and (not starts or starts[-1] + L < n):
        starts.append(n - L)  # the end-aligned window
    assert [w.start for w in got] == starts
    assert [w.index for w in got] == list(range(len(starts)))
    for w in got:
        np.testing.assert_array_equal(w.samples, y[w.start:w.start + L])


def test_stitcher_by_hand() -> None:
    """Two windows: the taper formula, and variances (std²) averaged, not stds."""
    L = 8
    st_ = Stitcher(L, 1)
    st_.extend_to(12)
    st_.add(0, np.full((L, 1), 1.0), np.full((L, 1), 1.0))
    st_.add(4, np.full((L, 1), 3.0), np.full((L, 1), 3.0))
    tw = 0.05 + np.sin(np.pi * (np.arange(L) + 0.5) / L) ** 2
    mu, var = st_.at(np.arange(12.0), 12)
    for j in range(12):
        w1 = tw[j] if j < L else 0.0
        w2 = tw[j - 4] if j >= 4 else 0.0
        assert mu[j, 0] == pytest.approx((w1 * 1 + w2 * 3) / (w1 + w2))
        assert var[j, 0] == pytest.approx((w1 * 1 + w2 * 9) / (w1 + w2))
    mid, _ = st_.at(np.array([5.5]), 12)
    assert mid[0, 0] == pytest.approx((mu[5, 0] + mu[6, 0]) / 2)  # linear interpolation


def test_stitcher_no_window_is_nan() -> None:
    st_ = Stitcher(4, 2)
    st_.extend_to(10)
    st_.add(0, np.ones((4, 2)), np.ones((4, 2)))
    mu, var = st_.at(np.array([2.0, 6.0]), 10)
    assert np.isfinite(mu[0]).all() and np.isnan(mu[1]).all() and np.isnan(var[1]).all()


@settings(max_examples=30, deadline=None)
@given(sizes=CHUNKS, seed=st.integers(0, 1000))
def test_uncertainty_runs_any_blocking(sizes: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 600
    sd = np.zeros((n, 2))
    for _ in range(4):  # runs of random length, some shorter than min_n
        a = int(rng.integers(0, n - 50))
        sd[a:a + int(rng.integers(1, 50)), int(rng.integers(0, 2))] = 2.0
    thr = np.array([1.0, 1.0])
    whole = UncertaintyRuns(("II", "V1"), thr, 10, 100.0, 0.0).push(sd, 0, True)
    runs = UncertaintyRuns(("II", "V1"), thr, 10, 100.0, 0.0)
    parts: list[tuple[int, Flag]] = []
    blocks = _split(n, sizes)
    for i, sl in enumerate(blocks):
        parts += runs.push(sd[sl], sl.start, closed=i == len(blocks) - 1)
    assert sorted(parts, key=str) == sorted(whole, key=str)
    for _, f in whole:  # by hand: every flagged run is >= 10 samples above threshold
        col = ("II", "V1").index(f.leads[0])
        a, b = round(f.start_s * 100), round(f.end_s * 100)
        assert b - a >= 10 and (sd[a:b, col] > 1).all()
        assert (a == 0 or sd[a - 1, col] <= 1) and (b == n or sd[b, col] <= 1)


def test_flag_queue_merges_and_releases_in_order() -> None:
    q = FlagQueue()
    f = Flag("poor_quality", 1.0, 2.0, ("I",), 0.5, 0.2, "noisy")
    q.add_merging(100, 200, f)
    q.add_merging(150, 300, Flag("poor_quality", 1.5, 3.0, ("I",), 0.7, 0.2, "noisy"))
    q.add(120, Flag("gap", 1.1, 1.2, ("I",), 0.1, 1.0, "no data"))
    assert [x.kind for x in q.release(150, False, [])] == ["gap"]
    assert q.release(250, False, []) == []
    (merged,) = q.release(301, False, [])
    assert (merged.start_s, merged.end_s, merged.value) == (1.0, 3.0, 0.7)


def test_sample_codes() -> None:
    cfg = QualityConfig(saturation_mv=5.0)
    codes = sample_codes(np.array([0.0, 5.0, -6.0, 1.0]), False, cfg)
    assert codes.tolist() == [GOOD, SATURATED, SATURATED, GOOD]
    assert sample_codes(np.zeros(3), True, cfg).tolist() == [LEAD_OFF] * 3
    assert GAP not in (GOOD, LEAD_OFF, SATURATED)


def test_quality_verdicts_by_hand() -> None:
    """Saturated / flat / noisy / good windows, built by hand (1 s blocks at 100 Hz)."""
    from edge.stages.quality import assess

    fs, n = 100.0, 800
    t = np.arange(n) / fs
    ecg = np.sin(2 * np.pi * 1.2 * t) ** 15  # peaky, clean
    none = np.zeros(n, bool)
    cfg = QualityConfig()
    good = assess(ecg, none, none, fs, cfg)
    assert good.reconstruct and good.problem is None
    sat = none.copy()
    sat[:200] = True  # 25 % saturated > 20 %
    v = assess(ecg, none, sat, fs, cfg)
    assert (v.reconstruct, v.problem, v.value) == (False, "saturated", 0.25)
    sat[:200], sat[:150] = False, True  # 18.75 %: still reconstructed
    assert assess(ecg, none, sat, fs, cfg).problem is None
    flat = ecg.copy()
    flat[:300] = 0.0  # 3 of 8 one-second blocks flat
    v = assess(flat, none, none, fs, cfg)
    assert (v.reconstruct, v.problem) == (False, "flat or lead-off")
    noisy = ecg + np.random.default_rng(0).normal(0, 0.3, n)
    v = assess(noisy, none, none, fs, cfg)
    assert v.reconstruct and v.problem == "noisy"


def test_flat_blocks_by_hand_with_a_partial_last_block() -> None:
    """250 samples at 100 Hz = blocks of 100, 100 and 50: the flat fraction counts samples of
    flat blocks, the 50-sample tail being one block of its own."""
    from edge.stages.quality import assess

    fs, none, cfg = 100.0, np.zeros(250, bool), QualityConfig()
    x = np.sin(np.arange(250) * 0.05)
    x[100:200] = 1.0  # block 2 flat: 100 / 250 = 0.4
    v = assess(x, none, none, fs, cfg)
    assert (v.problem, v.value) == ("flat or lead-off", 0.4)
    x = np.sin(np.arange(250) * 0.05)
    x[200:] = -0.5  # only the tail flat: 50 / 250 = 0.2, not above 0.2
    assert assess(x, none, none, fs, cfg).problem is None
    x[:200] = 0.25  # blocks 1 and 2 flat too: 1.0
    assert assess(x, none, none, fs, cfg).value == 1.0


def test_lead_off_samples_and_flat_blocks_count_once() -> None:
    """Bad (lead-off) samples inside a flat block are not counted twice, those outside it
    are, and so are those in a partial last block (counts by hand, 100 Hz, 250 samples)."""
    from edge.stages.quality import assess

    fs, cfg = 100.0, QualityConfig()
    x = np.sin(np.arange(250) * 0.05)
    x[100:200] = 1.0  # block 2 flat: 100 samples
    bad = np.zeros(250, bool)
    bad[150:170] = True  # inside the flat block: adds nothing
    assert assess(x, bad, np.zeros(250, bool), fs, cfg).value == 100 / 250
    bad[10:15] = True  # 5 in block 1, 7 in the tail
    bad[240:247] = True
    assert assess(x, bad, np.zeros(250, bool), fs, cfg).value == 112 / 250
    x[200:] = -0.5  # the tail flat too: its bad samples are inside it
    assert assess(x, bad, np.zeros(250, bool), fs, cfg).value == 155 / 250


class _ListBuffer:
    """Reference for Buffer: a plain list, head dropped the same lazy way."""

    def __init__(self) -> None:
        self.items: list[float] = []
        self.base = 0

    def append(self, x) -> None:
        self.items += list(x)

    def drop_before(self, i: int) -> None:
        if i - self.base > 4096:
            self.items = self.items[i - self.base:]
            self.base = i


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["append", "grow", "drop"]), st.integers(0, 3000)),
                min_size=1, max_size=40))
def test_buffer_against_a_list(ops: list[tuple[str, int]]) -> None:
    """Appends, zero growth and lazy drops (past the end too): end, views and reads agree."""
    from edge.stages.buffer import Buffer

    buf, ref, k = Buffer(capacity=8), _ListBuffer(), 0
    for op, n in ops:
        if op == "append":
            vals = np.arange(k, k + n, dtype=np.float64)
            k += n
            buf.append(vals)
            ref.append(vals)
        elif op == "grow":
            buf.grow(n)
            ref.append([0.0] * n)
        else:
            i = ref.base + 2 * n + 4000
            buf.drop_before(i)
            ref.drop_before(i)
        assert (buf.base, buf.end) == (ref.base, ref.base + len(ref.items))
        np.testing.assert_array_equal(buf.data, ref.items)
        if ref.items:
            a, b = ref.base, ref.base + len(ref.items)
            mid = (a + b) // 2
            np.testing.assert_array_equal(buf.view(mid, b), ref.items[mid - a:])
            np.testing.assert_array_equal(buf.at([a, b - 1, mid]),
                                          [ref.items[0], ref.items[-1], ref.items[mid - a]])


def test_buffer_view_writes_through_and_survives_regrowth() -> None:
    from edge.stages.buffer import Buffer

    buf = Buffer((2,), capacity=4)
    buf.grow(3)
    buf.view(1, 3)[:] += 1.0
    before = buf.view(0, 3)
    buf.append(np.full((100, 2), 7.0))  # storage regrown: the old view keeps its values
    np.testing.assert_array_equal(before, [[0, 0], [1, 1], [1, 1]])
    np.testing.assert_array_equal(buf.view(0, 4), [[0, 0], [1, 1], [1, 1], [7, 7]])


def _runs_loop(sd: np.ndarray, thr: np.ndarray, min_n: int, blocks: list[slice],
               ) -> list[tuple[int, int, int, float]]:
    """Reference: the per-sample state machine (lead, start, end, peak) over the blocks."""
    out, state = [], {}
    for bi, sl in enumerate(blocks):
        closed = bi == len(blocks) - 1
        for lead in range(sd.shape[1]):
            start, peak = state.get(lead, (-1, 0.0))
            col = sd[sl, lead]
            for i in range(len(col) + closed):
                on = i < len(col) and bool(col[i] > thr[lead])
                k = sl.start + i
                if on:
                    if start < 0:
                        start, peak = k, 0.0
                    peak = max(peak, float(col[i]))
                elif start >= 0:
                    if k - start >= min_n:
                        out.append((lead, start, k, peak))
                    start = -1
            state[lead] = (start, peak)
    return out


@settings(max_examples=40, deadline=None)
@given(sizes=CHUNKS, seed=st.integers(0, 1000))
def test_uncertainty_runs_equal_the_per_sample_loop(sizes: list[int], seed: int) -> None:
    """Runs crossing block ends, NaN (never above), runs open at the end (closed by flush):
    flags, their order per block and their peaks equal the loop's."""
    rng = np.random.default_rng(seed)
    n = 500
    sd = np.abs(rng.normal(0.8, 0.5, (n, 3)))
    sd[rng.random((n, 3)) < 0.05] = np.nan
    sd[-30:, 1] = 5.0  # open until the end
    thr = np.array([1.0, 1.2, 0.9])
    blocks = _split(n, sizes)
    runs = UncertaintyRuns(("II", "V1", "V2"), thr, 7, 100.0, 2.0)
    got = []
    for i, sl in enumerate(blocks):
        got += [(("II", "V1", "V2").index(f.leads[0]), round((f.start_s - 2.0) * 100),
                 round((f.end_s - 2.0) * 100), f.value)
                for _, f in runs.push(sd[sl], sl.start, closed=i == len(blocks) - 1)]
    assert got == _runs_loop(sd, thr, 7, blocks)
