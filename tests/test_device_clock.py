"""The device time line, sample by sample: clock drift, replays, time-stamp corruption,
reconnects and clock restarts, on the fake H10 and on ecg12 frames."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from edge.chunk import Chunk
from edge.sources import open_source
from edge.sources.deviceclock import DeviceTimeline, StepFilter, TimedChunker
from firmware_bridge.fake_polar import FakePolarH10
from firmware_bridge.faults import Faults
from firmware_bridge.protocol import FrameDecoder, FrameEncoder
from firmware_bridge.virtual_serial import reseal_ecg12

N = 73  # samples per H10 frame
# mV, whole µV as the H10 sends them; smooth, so resampling error is tiny
SINE = np.rint(np.sin(2 * np.pi * np.arange(20_000) / 130 / 0.9) * 1000) / 1000


def grid(chunks: list[Chunk]) -> tuple[np.ndarray, np.ndarray]:
    """(grid index of every delivered sample, value in mV); gaps advance the index."""
    idx, vals, k = [], [], 0
    for c in chunks:
        k += round(c.gap_before_s * c.fs_hz)
        idx.append(k + np.arange(c.n))
        vals.append(c.samples[:, 0])
        k += c.n
    return np.concatenate(idx), np.concatenate(vals).astype(np.float64)


def polar(faults: Faults, n_samples: int, seed: int = 3) -> tuple[list[Chunk], object, object]:
    dev = FakePolarH10(signal_mv=SINE, speed=0, seed=seed, faults=faults)

    def factory(addr, disconnected_callback=None):  # noqa: ANN001, ANN202
        dev.disconnected_callback = disconnected_callback
        return dev

    src = open_source("polar:C0:FF:EE:00:10:10", client_factory=factory, backoff_base_s=0.001)

    async def run() -> list[Chunk]:
        out: list[Chunk] = []
        try:
            async with asyncio.timeout(20):
                async for c in src:
                    out.append(c)
                    if sum(x.n for x in out) >= n_samples:
                        break
        finally:
            await src.aclose()
        return out

    return asyncio.run(run()), src, dev


def truth(k: np.ndarray, rate_error: float = 0.0) -> np.ndarray:
    """The fake's signal at grid index k (130 Hz grid from the first sample), in mV."""
    pos = k * (1 + rate_error)  # device sample position of grid point k
    return np.interp(pos, np.arange(len(SINE)), SINE)


@pytest.mark.parametrize("rate_error", [-0.05, -0.021, 0.021, 0.05])
def test_polar_drift_gives_no_gaps_and_nominal_rate(rate_error: float) -> None:
    chunks, src, _ = polar(Faults(rate_error=rate_error), 40 * N)
    k, x = grid(chunks)
    assert all(c.gap_before_s == 0 and c.fs_hz == 130 for c in chunks)
    assert src.stats.measured_fs_hz == pytest.approx(130 * (1 + rate_error), rel=1e-4)
    # resampled onto 130 Hz of device time: each output sample is the signal at k / 130 s
    assert np.abs(x - truth(k, rate_error)).max() < 2e-3  # mV (cubic interpolation error)
    assert np.array_equal(k, np.arange(len(k)))


def test_polar_replays_are_dropped_without_duplicates_or_loss() -> None:
    chunks, src, dev = polar(Faults(replay_prob=0.3), 60 * N)
    k, x = grid(chunks)
    assert dev.stats.replayed > 5 and src.stats.duplicates == dev.stats.replayed
    assert np.array_equal(k, np.arange(len(k))) and src.stats.lost_samples == 0
    assert np.allclose(x, truth(k), atol=1e-6)


def test_polar_timestamp_bit_flips_are_corrupt_not_gaps() -> None:
    chunks, src, dev = polar(Faults(timestamp_corrupt_prob=0.15), 80 * N, seed=5)
    k, x = grid(chunks)
    assert dev.stats.timestamps_corrupted > 5
    # every delivered sample is the right one at the right place: a sample shifted by one
    # would be >= 50 µV off on this sine; an accepted low-bit flip (< 1 sample of time)
    # moves the phase lock by a tenth of that ...
    assert np.abs(x - truth(k)).max() < 0.015
    # ... and what is missing is whole frames that were damaged, never an invented gap
    gaps = np.diff(k) - 1
    gaps = gaps[gaps > 0]  # whole frames (+- the grid points next to a gap's edges)
    assert np.all(np.abs(gaps - N * np.round(gaps / N)) <= 2) and gaps.max() <= 3 * N + 2
    assert gaps.sum() // N <= dev.stats.timestamps_corrupted
    assert src.stats.resets == 0 and src.stats.corrupt >= 1


def test_polar_reconnect_gaps_are_placed_by_device_time() -> None:
    faults = Faults(disconnect_every=10, offline_s=1.5)
    chunks, src, dev = polar(faults, 45 * N)
    k, x = grid(chunks)
    lost = round(1.5 * 130)
    gaps = np.diff(k) - 1
    assert src.stats.reconnects >= 3
    assert sorted(set(gaps[gaps > 0])) == [lost]
    assert np.flatnonzero(gaps).tolist()[:3] == [10 * N - 1, 20 * N - 1, 30 * N - 1]
    # the value at each grid index is the device's sample at that device time
    assert np.allclose(x, truth(k), atol=1e-6)


def test_polar_clock_restart_is_a_new_segment() -> None:
    chunks, src, _ = polar(Faults(clock_reset_after=15), 30 * N)
    assert src.stats.resets == 1
    assert sum(c.n for c in chunks) >= 30 * N and all(c.n for c in chunks)
    x = np.concatenate([c.samples[:, 0] for c in chunks]).astype(np.float64)
    assert np.allclose(x, SINE[:len(x)], atol=1e-6)  # nothing lost, doubled or shifted


def test_timeline_jitter_makes_no_gaps_and_a_huge_jump_is_corrupt() -> None:
    rng = np.random.default_rng(0)
    tl = DeviceTimeline(130.0)
    placed = []
    for f in range(200):
        t = (f + 1) * N / 132.0 + rng.normal(0, 0.002)  # 2 ms time-stamp jitter, +1.5 % rate
        if f == 100:
            t += 9.2e9  # one flipped high bit
        placed += tl.place(t, N, arrival_s=t if f != 100 else t - 9.2e9)
    placed += tl.finish()
    c = tl.counters
    assert c.corrupt == 1 and c.resets == 0 and abs(c.lost_samples - N) <= 1
    assert sum(p.gap for p in placed) == 1 and len(placed) == 199
    assert tl.rate_hz == pytest.approx(132.0, rel=1e-3)


def test_ecg12_replayed_old_frame_is_not_a_restart() -> None:
    enc = FrameEncoder(250)
    frames = [enc.encode(np.full(25, i), timestamp_us=i * 100_000) for i in range(120)]
    dec = FrameDecoder()
    got = [f.seq for f in dec.feed(b"".join(frames[:100] + [frames[50]] + frames[100:]))]
    assert got == list(range(120))
    assert (dec.duplicates, dec.seq_resets, dec.lost_frames) == (1, 0, 0)
    reboot = FrameEncoder(250)  # seq 0, time 0: the device restarted ...
    restart = [reboot.encode(np.zeros(25), timestamp_us=7 + i * 100_000) for i in range(2)]
    assert dec.feed(restart[0]) == []  # ... confirmed only by the next frame
    assert [f.seq for f in dec.feed(restart[1])] == [0, 1] and dec.seq_resets == 1


def _ecg12_chunks(wire: list[bytes], arrival: list[float], fs: int = 250) -> list[Chunk]:
    return _ecg12_run(wire, arrival)[0]


def _ecg12_run(wire: list[bytes], arrival: list[float]) -> tuple[list[Chunk], object]:
    """(chunks, SourceStats) of ecg12 wire frames fed one by one through a FrameChunker."""
    from edge.sources.frames import FrameChunker

    class Sink:
        def __init__(self) -> None:
            from edge.sources.base import SourceStats

            self.stats, self.out = SourceStats(), []

        def _put(self, x, t0, fs_hz, *, gap_s=0.0, status=frozenset(),  # noqa: ANN001
                 new_segment=False) -> None:
            self.out.append(Chunk(x, t0, fs_hz, gap_before_s=gap_s, status=status))

    sink = Sink()
    fc = FrameChunker(sink)  # type: ignore[arg-type]
    for w, a in zip(wire, arrival, strict=True):
        fc.feed(w, a)
    fc.finish(arrival[-1])
    return sink.out, sink.stats


@pytest.mark.parametrize("rate_error", [-0.05, 0.03])
def test_ecg12_drift_is_resampled_and_loss_is_exact(rate_error: float) -> None:
    fs, per = 250, 25
    x = np.rint(np.sin(2 * np.pi * np.arange(5000) / fs / 0.7) * 1000)
    enc = FrameEncoder(fs)
    true_fs = fs * (1 + rate_error)
    wire, arrival = [], []
    for i in range(150):
        fr = enc.encode(x[i * per:(i + 1) * per], timestamp_us=round(i * per * 1e6 / true_fs))
        if i not in (40, 41, 90):
            wire.append(fr)
            arrival.append(i * per / true_fs + 0.01)
    k, got = grid(_ecg12_chunks(wire, arrival))
    gaps = np.diff(k) - 1
    lost = gaps[gaps > 0]
    # grid points strictly between the samples around the loss (never interpolated across)
    assert len(lost) == 2 and abs(lost[0] - (2 * per + 1) / (1 + rate_error)) <= 1
    ref = np.interp(k * (1 + rate_error), np.arange(len(x)), x) / 1000
    assert np.abs(got - ref).max() < 0.01  # mV, interpolation only; nothing shifted


def test_ecg12_firmware_time_jump_is_a_clock_step_not_a_gap() -> None:
    enc = FrameEncoder(250)
    x = np.arange(100 * 25) % 500
    wire = [enc.encode(x[i * 25:(i + 1) * 25], timestamp_us=i * 100_000 + (10**9 if i >= 50
                                                                              else 0))
            for i in range(100)]
    chunks = _ecg12_chunks(wire, [i * 0.1 for i in range(100)])
    k, got = grid(chunks)
    assert np.array_equal(k, np.arange(2500)) and np.allclose(got * 1000, x, atol=1e-3)


def test_step_filter_rejects_a_damaged_digit_but_follows_a_real_step() -> None:
    f = StepFilter(50)
    x = np.array([500, 510, 520, 920, 530, 540, 900, 905, 910, 915], float)
    assert f.ok(x).tolist() == [True, True, True, False, True, True, False, False, True, True]


def test_timed_chunker_keeps_device_time_across_a_reconnect() -> None:
    out: list[tuple[int, float]] = []
    tc = TimedChunker(lambda x, t0, fs, gap_s=0.0, status=None, new_segment=False:
                      out.append((len(x), gap_s)), 130.0)
    for f in range(10):
        tc.add((f + 1) * N / 130, np.zeros(N), arrival_s=f)
    tc.timeline.reconnected()
    for f in range(10, 20):  # device was offline for 2.3 s: not a whole number of frames
        tc.add((f + 1) * N / 130 + 2.3, np.zeros(N), arrival_s=f + 3)
    tc.flush()
    assert [round(g * 130) for _, g in out if g] == [round(2.3 * 130)]
    assert sum(n for n, _ in out) == 20 * N


def test_polar_reconnect_without_lost_time_makes_no_gap() -> None:
    """The H10's clock places a reconnect gap: when no device time passed offline there is
    none (a source that fell back on the host clock, keeps_device_time=False, makes one)."""
    chunks, src, _ = polar(Faults(disconnect_every=8, offline_s=0.0), 30 * N)
    k, x = grid(chunks)
    assert src.stats.reconnects >= 2
    assert all(c.gap_before_s == 0 for c in chunks)
    assert np.array_equal(k, np.arange(len(k))) and np.allclose(x, truth(k), atol=1e-6)


def _flip_ts(frame: bytes, bit: int) -> bytes:
    """An ecg12 frame with bit `bit` of its µs time stamp flipped and a valid CRC (a firmware
    clock bug, not line noise: the CRC cannot catch it)."""
    b = bytearray(frame)
    b[10 + bit // 8] ^= 1 << (bit % 8)
    return reseal_ecg12(bytes(b))


def test_ecg12_bit31_flip_and_a_pair_damaged_alike_are_bad_stamps_not_clock_steps() -> None:
    """Bit 31 moves a stamp by half the 32-bit wrap; unwrapped against the previous raw stamp
    the next good one came out 2**32 µs early, and so did every later one (a false clock
    step, and with two stamps damaged alike after it, a line off the device's grid). Two
    consecutive stamps damaged alike are not a clock step either."""
    fs, per, n = 250, 25, 200
    x = np.random.default_rng(4).integers(-3000, 3000, n * per)  # µV; white, so a sample
    enc = FrameEncoder(fs)  # placed even a fraction of a sample off its time would show
    wire = [enc.encode(x[i * per:(i + 1) * per], timestamp_us=i * 100_000) for i in range(n)]
    wire[60] = _flip_ts(wire[60], 31)
    pair = next(i for i in range(100, 150)
                if (i * 100_000 >> 13) & 1 == ((i + 1) * 100_000 >> 13) & 1)
    wire[pair], wire[pair + 1] = _flip_ts(wire[pair], 13), _flip_ts(wire[pair + 1], 13)
    chunks, stats = _ecg12_run(wire, [i * 0.1 + 0.02 for i in range(n)])
    k, got = grid(chunks)
    assert np.array_equal(k, np.arange(n * per))  # the numbers place every frame
    assert np.abs(got * 1000 - x).max() < 1e-3
    assert (stats.clock_steps, stats.bad_timestamps, stats.resets) == (0, 3, 0)


def test_line_stays_on_the_device_grid_over_a_long_session_at_large_clock_values() -> None:
    """Exact stamps far from 0 (an H10 counts ns from 2000: ~7.6e8 s) over 20,000 frames:
    each placed sample stays on the device's grid. Adding each frame's duration to the
    line let float rounding walk it off the grid (interpolated, not delivered, samples)."""
    tl = DeviceTimeline(130.0)
    t0 = 757_382_400.0
    k = np.arange(20_000)
    first = None
    worst = 0.0
    for i in k:
        for p in tl.place(t0 + ((i + 1) * N - 1) / 130.0, N, arrival_s=float(i)):
            first = p.times_s[0] if first is None else first
            pos = (p.times_s - first) * 130.0
            worst = max(worst, float(np.abs(pos - np.rint(pos)).max()))
    assert tl.counters.frames == len(k) and worst < 1e-4
