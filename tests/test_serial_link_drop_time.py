"""ecg12 over serial: a silent link drop after frames that waited in a buffer must not move
the samples after it (QA: every sample after the drop 50 samples early, t_s off the grid).

The device is written from SPEC.md, not from the decoder: `seq` +1 per frame, also for the
frames it samples while the link is down (never sent); `timestamp_us` is the device time of
a frame's first sample; sample k of a frame is at `timestamp_us + k * 1e6 / fs_hz`. Consumers
(pipeline, CSV sink) place a chunk after a gap by its `t0_s`, so `t0_s - t0_s of the first
chunk` must be the device time of the chunk's first sample, on the `fs_hz` grid.
"""

from __future__ import annotations

import asyncio
import types

import numpy as np
import pytest

from edge.chunk import Chunk
from edge.sources import open_source
from firmware_bridge.protocol import FrameEncoder

FS = 500
PER = 50  # samples per frame (the virtual device's default at 500 Hz: fs / 10)
N_FRAMES = 260
OFFLINE = (range(100, 116), range(200, 216))  # frames sampled while the link was down
LATE = 10  # the first frames wait in the port's buffer and arrive together (reader late)


def _device() -> tuple[np.ndarray, list[tuple[float, bytes]]]:
    """(signal in µV by device sample index, [(device time the frame is sent, bytes)])."""
    k = np.arange(N_FRAMES * PER)
    x = np.rint(800 * np.sin(2 * np.pi * k / 437) + 300 * np.sin(2 * np.pi * k / 61)).astype(int)
    enc = FrameEncoder(FS)
    wire = []
    for i in range(N_FRAMES):
        frame = enc.encode(x[i * PER:(i + 1) * PER], timestamp_us=round(i * PER * 1e6 / FS))
        if not any(i in r for r in OFFLINE):
            wire.append(((i + 1) * PER / FS, frame))
    return x, wire


def _ecg12_reads(wire: list[tuple[float, bytes]], seed: int) -> list[tuple[float, bytes]]:
    """Reads of random size, each at its host arrival time: the first LATE frames at once,
    the rest as sent plus a jittered latency of 5-25 ms."""
    rng = np.random.default_rng(seed)
    t_late = wire[LATE - 1][0]
    reads = []
    for t, frame in wire:
        arrival = 1000.0 + max(t, t_late) + rng.uniform(0.005, 0.025)
        cut = sorted(rng.integers(1, len(frame), size=int(rng.integers(0, 3))).tolist())
        for a, b in zip([0, *cut], [*cut, len(frame)], strict=True):
            if b > a:
                reads.append((arrival, frame[a:b]))
    return reads


class _Port:
    """Byte transport: hands out `reads` [(host arrival time, bytes)] in order; `now` (read
    by the source as time.monotonic()) is the arrival time of the last read."""

    def __init__(self, reads: list[tuple[float, bytes]]) -> None:
        self.reads = list(reads)
        self.now = 1000.0

    def __call__(self, port: str, baud: int) -> _Port:
        return self

    def open(self) -> None:
        pass

    def read(self, max_bytes: int = 4096) -> bytes | None:
        if not self.reads:
            return None
        self.now, data = self.reads.pop(0)
        return data

    def close(self) -> None:
        pass


def _read_all(monkeypatch: pytest.MonkeyPatch, port: _Port, uri: str
              ) -> tuple[list[Chunk], object]:
    """Every chunk of the serial source ``uri`` over ``port``, on the port's clock."""
    monkeypatch.setattr("edge.sources.serial.time", types.SimpleNamespace(
        monotonic=lambda: port.now))
    src = open_source(uri, transport_factory=port)

    async def run() -> list[Chunk]:
        out = []
        try:
            async with asyncio.timeout(30):
                async for c in src:
                    out.append(c)
        finally:
            await src.aclose()
        return out

    return asyncio.run(run()), src


def _stream(monkeypatch: pytest.MonkeyPatch, seed: int) -> tuple[list[Chunk], object]:
    _, wire = _device()
    return _read_all(monkeypatch, _Port(_ecg12_reads(wire, seed)), f"serial:/dev/fake?fs={FS}")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_link_drop_after_buffered_frames_keeps_every_sample_at_its_device_time(
        monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    x, _ = _device()
    chunks, src = _stream(monkeypatch, seed)
    offline = np.zeros(len(x), bool)
    for r in OFFLINE:
        offline[r.start * PER:r.stop * PER] = True
    origin = chunks[0].t0_s
    rows = np.full(len(x), np.nan)  # by device sample index, placed by host t0_s only
    for c in chunks:
        pos = (c.t0_s - origin) * FS
        k0 = round(pos)
        assert abs(pos - k0) < 1e-6, f"chunk {c.seq} t0_s off the {FS} Hz grid by {pos - k0}"
        assert np.all(np.isnan(rows[k0:k0 + c.n])), f"chunk {c.seq} overlaps an earlier one"
        rows[k0:k0 + c.n] = c.samples[:, 0].astype(np.float64) * 1000  # mV -> µV
    # one row per device sample over the whole span, NaN exactly while the link was down
    last = chunks[-1]
    assert round((last.t_end_s - origin) * FS) == len(x)
    assert np.array_equal(np.isnan(rows), offline)
    # every real sample is the device's sample at that device time (nothing shifted)
    np.testing.assert_allclose(rows[~offline], x[~offline], atol=0.01)
    # gaps as the sequence numbers say, and consistent with the chunks' host times
    n_off = sum(len(r) for r in OFFLINE) * PER
    assert src.stats.lost_samples == n_off and src.stats.lost_frames == n_off // PER
    assert sum(round(c.gap_before_s * FS) for c in chunks) == n_off
    for prev, c in zip(chunks, chunks[1:], strict=False):
        assert c.t0_s - prev.t_end_s == pytest.approx(c.gap_before_s, abs=1e-6)


def test_ascii_millis_silent_link_after_buffered_lines_keeps_the_device_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same for the AD8232 sketch's `T,V` lines (SPEC.md: lines are placed by millis(),
    which runs on while the link is down): lines 300-449 (0.6 s) never arrive."""
    from firmware_bridge.ascii import AdcScale

    fs, n, lost = 250, 800, range(300, 450)
    rng = np.random.default_rng(4)
    reads = []
    for i in range(0, n, 10):  # 10 lines per read; the first 100 lines wait in a buffer
        lines = [b"%d,%d\r\n" % (5000 + 4 * j, 100 + j)
                 for j in range(i, i + 10) if j not in lost]
        if lines:
            reads.append((1000.0 + max(i + 10, 100) / fs + rng.uniform(0.005, 0.025),
                          b"".join(lines)))
    chunks, src = _read_all(monkeypatch, _Port(reads), f"serial:/dev/fake?format=ascii&fs={fs}")
    origin = chunks[0].t0_s
    named = np.full(n, -1)  # by device sample index: the line number each value names
    for c in chunks:
        pos = (c.t0_s - origin) * fs
        k0 = round(pos)
        assert abs(pos - k0) < 1e-6 and np.all(named[k0:k0 + c.n] == -1)
        v = np.rint(c.samples[:, 0] * AdcScale().counts_per_mv + 512).astype(int) - 100
        named[k0:k0 + c.n] = v
    k = np.arange(n)
    expect = np.where(np.isin(k, lost), -1, k)
    assert round((chunks[-1].t_end_s - origin) * fs) == n
    assert np.array_equal(named, expect)
    assert src.stats.lost_samples == len(lost)
