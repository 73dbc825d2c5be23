"""Core values against expected values from outside the code under test (numpy references and
hand-computed small cases). Each test here kills at least one mutation of
``benchmarks/mutations.py`` that the rest of the suite let survive."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from edge.conditioning import ConditioningConfig, bandpass_taps, condition
from edge.stages.flags import Flag, FlagQueue, UncertaintyRuns
from edge.stages.quality import QualityConfig, assess


def test_same_rate_conditioning_is_the_reflect_padded_convolution() -> None:
    """No resampling: output = numpy convolution of the signal mirrored at both ends
    (``numpy.pad(mode='reflect')``, as filtfilt pads), taken with the FIR's delay removed."""
    fs = 100.0
    h = bandpass_taps(fs, ConditioningConfig())
    assert h is not None and len(h) % 2 == 1 and np.allclose(h, h[::-1])
    d = (len(h) - 1) // 2
    rng = np.random.default_rng(4)
    x = np.cumsum(rng.standard_normal(3 * len(h))) * 0.05 + 0.7  # wandering baseline
    ref = np.convolve(np.pad(x, d, mode="reflect"), h, mode="valid")
    y = condition(x, fs, fs)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, ref, atol=1e-5)


def _runs(sd: np.ndarray, min_n: int, thr: float = 1.0) -> list[tuple[int, Flag]]:
    return UncertaintyRuns(("II",), np.array([thr]), min_n, 100.0, 0.0).push(
        sd[:, None], 0, True)


def test_uncertainty_run_of_exactly_min_n_samples_is_flagged_with_its_peak() -> None:
    sd = np.zeros(30)
    sd[10:15] = [2.0, 5.0, 3.0, 2.5, 1.5]  # 5 samples above 1 mV, peak 5 in the middle
    ((end, f),) = _runs(sd, min_n=5)
    assert end == 15 and (f.start_s, f.end_s) == (0.10, 0.15)
    assert f.value == 5.0 and f.threshold == 1.0 and f.leads == ("II",)
    assert _runs(sd, min_n=6) == []  # one sample short


def test_flags_still_pending_are_all_released_at_close() -> None:
    q = FlagQueue()
    f = Flag("gap", 0.0, 1.0, ("I",), 1.0, 1.0, "no data")
    q.add(100, f)
    assert q.release(50, False, []) == []
    assert q.release(50, True, []) == [f]  # closed: everything goes, emitted or not
    assert q.pending == []


def test_lead_off_samples_stop_reconstruction() -> None:
    fs, n = 100.0, 800
    ecg = np.sin(2 * np.pi * 1.2 * np.arange(n) / fs) ** 15
    none = np.zeros(n, bool)
    off = none.copy()
    off[:200] = True  # 25 % lead-off > 20 %
    v = assess(ecg, off, none, fs, QualityConfig())
    assert (v.reconstruct, v.problem, v.value) == (False, "flat or lead-off", 0.25)


def test_flat_threshold_is_peak_to_peak_per_second() -> None:
    """A 1-s block with 0.01 mV peak-to-peak is flat (< 0.02 mV); 0.04 mV is not."""
    fs, n = 100.0, 800
    t = np.arange(n) / fs
    ecg = np.sin(2 * np.pi * 1.2 * t) ** 15
    none = np.zeros(n, bool)
    x = ecg.copy()
    x[:300] = 0.005 * np.sin(2 * np.pi * 5 * t[:300])  # ptp 0.01 mV: flat
    v = assess(x, none, none, fs, QualityConfig())
    assert (v.reconstruct, v.problem, v.value) == (False, "flat or lead-off", 0.375)
    x[:300] = 0.02 * np.sin(2 * np.pi * 5 * t[:300])  # ptp 0.04 mV: not flat
    assert assess(x, none, none, fs, QualityConfig()).reconstruct




def test_metadata_encoding_by_hand() -> None:
    """(value - offset) / scale, F = +1 / M = -1, axes as (sin, cos), then presence flags."""
    from edge.metadata import ENCODED_SIZE, encode_metadata

    got = encode_metadata({"age": 70, "sex": "F", "ventricular_rate": 100, "r_axis": 30})
    want = [1.0, 1.0, 1.0, 0.0, 0.0, 0.5, math.sqrt(3) / 2, 0.0, 0.0,  # values
            1, 1, 1, 0, 0, 1, 0]  # flags: age sex rate count duration r_axis t_axis
    assert ENCODED_SIZE == 16
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert encode_metadata({"sex": "M"})[1] == -1.0
    np.testing.assert_array_equal(encode_metadata({}), np.zeros(16))


class _Stub:
    """A LiteRT session stand-in: ``run(feed)`` computes outputs with plain numpy."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def run(self, feed: dict[str, np.ndarray], views: bool = False) -> dict[str, np.ndarray]:
        return self.fn(feed)


def _fake_bundle(window: int, rate: float, input_scale: float, scale: float) -> object:
    """A Bundle whose trunk passes its (scaled) input through and whose head outputs
    residual[b, l, k] = mask[b, 0] * input[l]: MC statistics can be computed by hand."""
    from types import SimpleNamespace as NS

    from edge.bundle import Bundle

    b = Bundle.__new__(Bundle)
    b.manifest = NS(model=NS(window=window, input_scale=input_scale),
                    metadata=NS(encoded_size=16), head=NS(batch=None),
                    mc=NS(masks=[NS(name="mask_a", size=3, rate=rate)]),
                    uncertainty=NS(aleatoric=False, atypicality=None))
    b.scale = np.full(7, scale, np.float32)
    b.scale_clinical = np.full(7, 2 * scale, np.float32)  # metadata with an R/T axis
    b.trunk = _Stub(lambda feed: {"features": feed["lead_i"][:, :, 0],
                                  "skip": np.zeros((1, window, 7), np.float32)})
    b.head = _Stub(lambda feed: {"residual": feed["mask_a"][:, :1, None]
                                 * feed["features"][:, :, None] * np.ones(7)})
    return b


def test_mc_mean_and_std_by_hand() -> None:
    """MC over T masks: the mean is the mask-of-ones pass (the masks' expectation), the std
    the root mean squared deviation of the T samples from it times the calibration scale
    (the clinical one for metadata with an R axis); masks are keep = U >= rate scaled by
    1 / (1 - rate), U drawn from the caller's generator."""
    from edge.metadata import encode_metadata

    L, T, rate = 5, 6, 0.4
    b = _fake_bundle(L, rate, input_scale=2.0, scale=1.5)
    x = np.arange(1.0, L + 1)
    u = np.random.default_rng(7).random((T, 3))[:, 0]
    m = (u >= rate) / (1 - rate)  # first mask unit, per MC sample
    pred = m[:, None] * (2.0 * x)[None, :]  # (T, L)
    rms = np.sqrt(((pred - 2.0 * x) ** 2).mean(axis=0))
    for meta, scale in ((np.zeros(16), 1.5), (encode_metadata({"r_axis": 60}), 3.0)):
        mean, std = b.predict_window(x, meta, T, np.random.default_rng(7))
        np.testing.assert_allclose(mean[:, 0], 2.0 * x, rtol=1e-6)
        np.testing.assert_allclose(std[:, 3], scale * rms, rtol=1e-5)


def _ecg12_frame(flags: int, samples: list[int], seq: int = 1) -> bytes:
    """An ecg12 frame built from the SPEC.md byte table (struct + zlib), not our encoder."""
    import struct
    import zlib

    body = (b"\xec\x12" + bytes([1, flags, 0, 0]) + struct.pack("<HHIB", seq, 250, 1000,
                                                                  len(samples))
            + b"".join(struct.pack("<h", s) for s in samples))
    return body + struct.pack("<I", zlib.crc32(body))


def test_ecg12_reserved_flag_bits_refuse_a_frame_even_with_a_good_crc() -> None:
    from firmware_bridge.protocol import FrameDecoder

    (f,) = FrameDecoder().feed(_ecg12_frame(0x00, [5, -7, 300]))
    assert f.samples_uv.tolist() == [5, -7, 300] and f.seq == 1
    for bit in (0x04, 0x80):
        dec = FrameDecoder()
        assert dec.feed(_ecg12_frame(bit, [5, -7, 300])) == []
        assert dec.stats.bad_headers >= 1


def test_device_timeline_places_the_stamped_sample_at_its_time_stamp() -> None:
    """Polar-style frames (time stamp = last sample): frame samples sit at t_last - (n-1-i)/fs."""
    from edge.sources.deviceclock import DeviceTimeline

    fs, n = 130.0, 73
    tl = DeviceTimeline(fs)
    t1 = 10.0
    assert tl.place(t1, n, 0.0) == []
    a, b = tl.place(t1 + n / fs, n, 1.0)
    np.testing.assert_allclose(a.times_s, t1 - (n - 1 - np.arange(n)) / fs, atol=1e-9)
    np.testing.assert_allclose(b.times_s, t1 + (np.arange(n) + 1) / fs, atol=1e-9)
    assert not a.gap and not b.gap


def test_rhythm_features_use_the_median_rr() -> None:
    """R peaks at 0, 1, 2, 4 s (one beat missed): median RR 1 s -> 60 bpm (the mean, 1.33 s,
    would say 45); 4 beats in 5 s -> 8 per 10 s."""
    from edge.features import rhythm_features

    got = rhythm_features(np.array([0, 100, 200, 400]), 500, 100.0)
    assert got == {"qrs_count": pytest.approx(8.0), "ventricular_rate": pytest.approx(60.0)}
