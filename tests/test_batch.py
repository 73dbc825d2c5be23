"""ChunkBatcher + StreamingReconstructor.quiet_samples: held chunks change neither the output
nor the chunk at which it appears, and most chunks are held."""

from __future__ import annotations

import numpy as np
import pytest
from bundle_fixture import synthetic_lead_i, write_tiny_bundle

from edge.batch import ChunkBatcher, push_batch
from edge.bundle import Bundle
from edge.chunk import Chunk
from edge.conditioning import StreamConditioner
from edge.pipeline import StreamingReconstructor


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return Bundle.load(write_tiny_bundle(tmp_path_factory.mktemp("tiny")))


def chunks(fs: float, seed: int, seconds: float = 40.0) -> list[Chunk]:
    """Random sizes (1..0.4 s), a bridged and a restarting gap, a lead-off stretch."""
    rng = np.random.default_rng(seed)
    x = synthetic_lead_i(int(fs * seconds), fs, seed).astype(np.float32)
    out, i, t = [], 0, 0.0
    while i < len(x):
        m = int(rng.integers(1, int(0.4 * fs)))
        k = len(out)
        gap = 0.3 if k == 40 else 2.5 if k == 90 else 0.0
        status = frozenset({"lead_off"}) if 60 <= k < 64 else frozenset()
        t += gap
        out.append(Chunk(x[i:i + m], t, fs, k, gap, status))
        t += m / fs
        i += m
    return out


def flat(blocks: list) -> tuple[np.ndarray, np.ndarray, list]:
    b = [b for b in blocks if b.n]
    return (np.concatenate([x.leads for x in b]), np.concatenate([x.std for x in b]),
            [(f.kind, round(f.start_s, 6), round(f.end_s, 6)) for x in blocks for f in x.flags])


@pytest.mark.parametrize(("fs", "seed", "min_emit_s"),
                         [(130.0, 1, 0.5), (500.0, 2, 0.5), (100.0, 3, 0.0), (250.0, 4, 1.0)])
def test_held_chunks_change_neither_output_nor_when(bundle: Bundle, fs: float, seed: int,
                                                    min_emit_s: float) -> None:
    cs = chunks(fs, seed)
    one = StreamingReconstructor(bundle, fs, mc_samples=3, seed=5, min_emit_s=min_emit_s)
    ref, ref_runs = [], []
    for c in cs:
        ref.append(one.push(c))
        ref_runs.append(one.model.windows_run)
    ref_end = one.flush()

    rec = StreamingReconstructor(bundle, fs, mc_samples=3, seed=5, min_emit_s=min_emit_s)
    batcher, got, runs, pushes, light = ChunkBatcher(), [], [], 0, 0
    for c in cs:
        batch = batcher.add(c)
        blocks: list = []
        if batch:
            before = rec.model.windows_run
            blocks, quiet = push_batch(rec, batch)
            # a batch said to be light (pushed on the event loop) runs the model at most once
            assert batcher.heavy or rec.model.windows_run - before <= 1
            light += not batcher.heavy
            batcher.pushed(quiet)
            pushes += 1
        got.append(blocks)
        runs.append(rec.model.windows_run)
    got_end = rec.push_many(batcher.drain()) + rec.flush()

    # output appears, and each window runs, at the same chunk as when every chunk is pushed
    assert ref_runs == runs
    assert [i for i, b in enumerate(ref) if b] == [i for i, b in enumerate(got) if b]
    a = flat([b for r in ref for b in r] + ref_end)
    g = flat([b for r in got for b in r] + got_end)
    np.testing.assert_array_equal(a[0], g[0])
    np.testing.assert_array_equal(a[1], g[1])
    assert a[2] == g[2]
    # a push only where output appears, a window runs or a gap comes (and the first chunk)
    emits = sum(1 for b in ref if b)
    gaps = sum(1 for c in cs if c.gap_before_s > 0)
    assert pushes <= emits + rec.model.windows_run + gaps + 1
    # and only those that run two windows or more (or bring a gap) go to the worker thread
    assert pushes - light <= rec.model.windows_run // 2 + gaps + 1
    if min_emit_s >= 0.5:
        assert pushes < 0.6 * len(cs), f"{pushes} pushes for {len(cs)} chunks"



@pytest.mark.parametrize(("fs_in", "fs_out"), [(130, 100), (500, 100), (128, 100), (100, 100),
                                               (130, 130)])
def test_final_after_counts_what_process_returned(fs_in: int, fs_out: int) -> None:
    sc = StreamConditioner(fs_in, fs_out)
    rng = np.random.default_rng(fs_in)
    n = 0
    for _ in range(200):
        k = int(rng.integers(0, 50))
        sc.process(rng.normal(size=k))
        n += k
        assert sc.n_out == sc.final_after(n)


def test_a_gap_releases_the_held_chunks_at_once() -> None:
    b = ChunkBatcher()
    b.pushed((1000, 1000, 1000))
    x = np.zeros((10, 1), np.float32)
    assert b.add(Chunk(x, 0.0, 100.0, 0)) == []
    out = b.add(Chunk(x, 0.3, 100.0, 1, gap_before_s=0.2))
    assert [c.seq for c in out] == [0, 1] and b.heavy and b.drain() == []


@pytest.mark.parametrize(("fs_in", "fs_out"), [(130, 100), (500, 100), (128, 100), (100, 100),
                                               (1000, 100), (130, 130)])
def test_inputs_for_is_the_fewest_inputs_that_give_n_outputs(fs_in: int, fs_out: int) -> None:
    sc = StreamConditioner(fs_in, fs_out)
    for j in range(0, 2000, 7):
        n = sc.inputs_for(j)
        assert sc.final_after(n) >= j and (n == 0 or sc.final_after(n - 1) < j), (j, n)


@pytest.mark.parametrize("fs", [130.0, 250.0])
def test_quiet_counts_of_model_windows_are_exact(bundle: Bundle, fs: float) -> None:
    """``quiet_samples()[1]`` more samples run no window and one more runs one;
    ``quiet_samples()[2]`` more run at most one and one more runs two (a batch within it is
    pushed on the event loop, one beyond it goes to the worker thread)."""
    x = synthetic_lead_i(int(fs * 30), fs, 7).astype(np.float32)
    rng = np.random.default_rng(int(fs))

    def after(n: int) -> StreamingReconstructor:
        rec = StreamingReconstructor(bundle, fs, mc_samples=0)
        rec.push(Chunk(x[:n], 0.0, fs, 0))
        return rec

    for n in [int(fs * 3), *rng.integers(int(fs * 9), int(fs * 20), 3).tolist()]:
        quiet = after(n).quiet_samples()
        for k, runs in ((1, 0), (2, 1)):
            for extra, want in ((quiet[k], runs), (quiet[k] + 1, runs + 1)):
                rec = after(n)
                before = rec.model.windows_run
                rec.push(Chunk(x[n:n + extra], n / fs, fs, 1))
                assert rec.model.windows_run - before == want, (n, k, extra)
