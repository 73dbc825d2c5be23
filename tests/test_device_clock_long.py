"""The ecg12 device time line over a long stream (200,000 frames: the sequence number and
the µs clock wrap several times) with damaged time stamps, sample by sample (slow; kept out
of test_device_clock.py so that the mutation check's runs of that file stay short)."""

from __future__ import annotations

import numpy as np
import pytest
from test_device_clock import _ecg12_run, _flip_ts, grid

from firmware_bridge.protocol import FrameEncoder


@pytest.mark.slow
def test_ecg12_200k_frames_with_bad_stamps_across_seq_and_clock_wraps() -> None:
    """200,000 frames (the 16-bit sequence number wraps 3 times, the 32-bit µs clock 4
    times): half of them after the first 10 damaged: a time-stamp bit flipped (valid CRC),
    an older frame resent after it, or dropped. Every sample of a frame that arrived lands
    exactly at its device time, a dropped frame is an explicit gap, nothing else is lost."""
    fs, per, n = 250, 25, 200_000
    rng = np.random.default_rng(13)
    x = rng.integers(-3000, 3000, n * per)
    enc = FrameEncoder(fs)
    wire: list[bytes] = []
    arrival: list[float] = []
    frames: list[bytes] = []
    dropped = np.zeros(n, bool)
    for i in range(n):
        fr = enc.encode(x[i * per:(i + 1) * per], timestamp_us=i * 100_000)
        frames.append(fr)
        sent = [fr]
        if i >= 10 and rng.random() < 0.5:
            kind = int(rng.integers(4))
            if kind < 2:
                sent = [_flip_ts(fr, int(rng.integers(32)))]
            elif kind == 2:
                sent = [fr, frames[max(0, i - 1 - int(rng.integers(50)))]]
            else:
                sent, dropped[i] = [], True
        wire += sent
        arrival += [i * 0.1 + 0.02] * len(sent)
    chunks, stats = _ecg12_run(wire, arrival)
    k, got = grid(chunks)
    expect = np.flatnonzero(np.repeat(~dropped, per))  # every sample of an arrived frame
    assert np.array_equal(k, expect)
    assert np.abs(got * 1000 - x[k]).max() < 1e-3  # exact: on the device's grid
    lost = dropped[:np.flatnonzero(~dropped)[-1]].sum()  # (none after the last arrival)
    assert stats.lost_samples == lost * per and stats.resets == 0
    # ~50,000 stamps damaged; those off by more than a sample (bits 12-31) are overruled
    assert stats.bad_timestamps > 25_000 and stats.clock_steps == 0
