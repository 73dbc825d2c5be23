"""StreamingReconstructor: chunk invariance, seeds, quality gate, flags, gaps, timing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bundle_fixture import synthetic_lead_i, write_tiny_bundle
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.bundle import Bundle
from edge.chunk import Chunk
from edge.errors import InputInvalid, InputTooShort
from edge.pipeline import Block, StreamingReconstructor


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return Bundle.load(write_tiny_bundle(tmp_path_factory.mktemp("tiny")))


def run(bundle: Bundle, x: np.ndarray, fs: float, sizes: list[int] | None = None,
        gaps: dict[int, float] | None = None, status: dict[int, frozenset] | None = None,
        **kw: object) -> list[Block]:
    """Push ``x`` in chunks of ``sizes`` (cycled); ``gaps`` keyed by start index; ``status``
    keyed by the index from which it holds (until the next key)."""
    rec = StreamingReconstructor(bundle, fs, **kw)
    sizes = sizes or [len(x)]
    gaps, status = gaps or {}, status or {}
    cuts = sorted(set(gaps) | set(status))
    out, i, c, t, st = [], 0, 0, 0.0, frozenset()
    while i < len(x):
        m = sizes[c % len(sizes)]
        c += 1
        nxt = [k for k in cuts if i < k < i + m]
        m = nxt[0] - i if nxt else m
        g = gaps.get(i, 0.0)
        t = i / fs + sum(v for k, v in gaps.items() if k <= i)
        st = status.get(i, st)
        out += rec.push(Chunk(x[i:i + m], t0_s=t, fs_hz=fs, seq=c, gap_before_s=g, status=st))
        i += m
    return out + rec.flush()


def cat(blocks: list[Block]) -> tuple[np.ndarray, np.ndarray, list]:
    return (np.concatenate([b.leads for b in blocks]), np.concatenate([b.std for b in blocks]),
            [f for b in blocks for f in b.flags])


@pytest.mark.parametrize(("fs", "seed"), [(130.0, 1), (100.0, 2), (250.0, 3)])
def test_chunk_invariance_with_gaps(bundle: Bundle, fs: float, seed: int) -> None:
    n = int(fs * 11)
    x = synthetic_lead_i(n, fs, seed)
    x[int(fs * 8):int(fs * 9.5)] = 0.3  # flat stretch after the gap
    gaps = {int(fs * 6.5): 1.25}
    status = {int(fs * 2): frozenset({"lead_off"}), int(fs * 3): frozenset()}
    whole = cat(run(bundle, x, fs, gaps=gaps, status=status, mc_samples=3, seed=7))
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(1, int(fs * 1.5), size=40)]
    parts = cat(run(bundle, x, fs, sizes=sizes, gaps=gaps, status=status, mc_samples=3,
                    seed=7))
    assert whole[0].shape == (n, 12)
    np.testing.assert_array_equal(whole[0], parts[0])
    np.testing.assert_array_equal(whole[1], parts[1])
    assert whole[2] == parts[2]
    assert {f.kind for f in whole[2]} == {"gap", "poor_quality"}
    gap_flags = [f for f in whole[2] if f.kind == "gap"]
    assert len(gap_flags) == 1
    assert gap_flags[0].start_s == pytest.approx(6.5 * fs // 1 / fs)
    assert gap_flags[0].end_s - gap_flags[0].start_s == pytest.approx(1.25)


def test_block_times_and_lead_consistency(bundle: Bundle) -> None:
    fs = 130.0
    x = synthetic_lead_i(int(fs * 8), fs)
    blocks = run(bundle, x, fs, sizes=[97], gaps={int(fs * 5): 2.0}, mc_samples=2)
    t = 0.0
    for b in blocks:
        if b.n:
            assert b.fs_hz == fs and b.t0_s == pytest.approx(t if b.t0_s < 5 else b.t0_s)
            t = b.t0_s + b.n / fs
    after = [b for b in blocks if b.n and b.t0_s >= 5.0]
    assert after[0].t0_s == pytest.approx(7.0)  # 5 s of data, then a 2 s gap
    leads, std, _ = cat(blocks)
    ok = ~np.isnan(leads[:, 1])
    np.testing.assert_allclose(leads[ok, 2], leads[ok, 1] - leads[ok, 0], atol=1e-5)  # III
    np.testing.assert_allclose(std[ok, 2], std[ok, 1])
    assert np.all(std[:, 0] == 0)


def test_seed_determinism(bundle: Bundle) -> None:
    x = synthetic_lead_i(500, 100.0)
    a = cat(run(bundle, x, 100.0, mc_samples=4, seed=1))
    b = cat(run(bundle, x, 100.0, mc_samples=4, seed=1))
    c = cat(run(bundle, x, 100.0, mc_samples=4, seed=2))
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_deterministic_mode(bundle: Bundle) -> None:
    x = synthetic_lead_i(600, 100.0)
    leads, std, _ = cat(run(bundle, x, 100.0, sizes=[33], mc_samples=0))
    assert np.isfinite(leads).all()
    assert np.all(std == 0)


def test_lead_i_is_conditioned_input(bundle: Bundle) -> None:
    from edge.conditioning import ConditioningConfig, condition

    fs = 250.0
    x = synthetic_lead_i(int(fs * 4), fs)
    leads, _, _ = cat(run(bundle, x, fs, sizes=[64], mc_samples=0))
    ref = condition(x, fs, fs, ConditioningConfig(highpass_hz=0.5, lowpass_hz=40.0))
    np.testing.assert_allclose(leads[:, 0], ref, atol=1e-5)


@pytest.mark.parametrize("fs", [130.0, 250.0, 500.0, 1000.0])
def test_output_lead_i_is_input_band_passed_zero_phase_lag_0(bundle: Bundle, fs: float
                                                             ) -> None:
    """Truth from scipy (forward-backward Butterworth 0.5-40 Hz), not from edge code."""
    from scipy import signal

    x = synthetic_lead_i(int(fs * 20), fs)
    leads, _, _ = cat(run(bundle, x, fs, sizes=[97], mc_samples=0))
    assert leads.shape == (len(x), 12)
    ref = signal.sosfiltfilt(signal.butter(2, [0.5, 40], "bandpass", fs=fs, output="sos"), x)
    s = int(3 * fs)
    a, b = leads[s:-s, 0] - leads[s:-s, 0].mean(), ref[s:-s] - ref[s:-s].mean()
    assert np.corrcoef(a, b)[0, 1] >= 0.99
    lags = list(range(-5, 6))
    c = [np.dot(a[5 + k: len(a) - 5 + k], b[5: len(b) - 5]) for k in lags]
    assert lags[int(np.argmax(c))] == 0


def test_predicted_leads_are_the_window_output_at_the_same_time(bundle: Bundle) -> None:
    """One window, model rate = input rate, deterministic: output row k is the model's output
    for model sample k (no shift, no held tail), via the bundle directly."""
    from edge.conditioning import condition
    from edge.leads import LEAD_INDEX, PREDICTED
    from edge.metadata import encode_metadata

    L = bundle.window
    x = synthetic_lead_i(L, 100.0)
    leads, _, _ = cat(run(bundle, x, 100.0, sizes=[37], mc_samples=0,
                          metadata={"age": 50, "sex": "F", "ventricular_rate": 70,
                                    "qrs_count": 10, "qrs_duration": 90}))
    xm = condition(x, 100.0, 100.0)
    meta = encode_metadata({"age": 50, "sex": "F", "ventricular_rate": 70, "qrs_count": 10,
                            "qrs_duration": 90})
    mean, _ = bundle.predict_window(xm, meta, 0)
    cols = [LEAD_INDEX[n] for n in PREDICTED]
    np.testing.assert_allclose(leads[:, cols], mean, atol=1e-5)
    assert np.ptp(leads[-20:, cols], axis=0).min() > 0  # the tail is not held flat


def test_two_windows_stitched_with_the_taper(bundle: Bundle) -> None:
    """Two overlapping windows: rows covered by one are that window's output; the overlap is
    the taper-weighted mean (taper 0.05 + sin^2, written out here)."""
    from edge.conditioning import condition
    from edge.leads import LEAD_INDEX, PREDICTED
    from edge.metadata import encode_metadata

    L, hop = bundle.window, bundle.hop
    md = {"age": 60, "sex": "M", "ventricular_rate": 80, "qrs_count": 10, "qrs_duration": 100}
    x = synthetic_lead_i(L + hop, 100.0, seed=3)
    leads, _, _ = cat(run(bundle, x, 100.0, sizes=[41], mc_samples=0, metadata=md))
    xm = condition(x, 100.0, 100.0)
    m1, _ = bundle.predict_window(xm[:L], encode_metadata(md), 0)
    m2, _ = bundle.predict_window(xm[hop:hop + L], encode_metadata(md), 0)
    tw = 0.05 + np.sin(np.pi * (np.arange(L) + 0.5) / L) ** 2
    w1 = np.concatenate([tw, np.zeros(hop)])[:, None]
    w2 = np.concatenate([np.zeros(hop), tw])[:, None]
    p1 = np.concatenate([m1, np.zeros((hop, m1.shape[1]))])
    p2 = np.concatenate([np.zeros((hop, m2.shape[1])), m2])
    expected = (w1 * p1 + w2 * p2) / (w1 + w2)
    cols = [LEAD_INDEX[n] for n in PREDICTED]
    np.testing.assert_allclose(leads[:, cols], expected, atol=1e-5)


def test_flat_stretch_not_reconstructed(bundle: Bundle) -> None:
    fs = 100.0
    x = synthetic_lead_i(int(fs * 24), fs)
    x[1000:1400] = 0.0  # 4 s flat (electrode off)
    leads, std, flags = cat(run(bundle, x, fs, sizes=[50], mc_samples=2))
    poor = [f for f in flags if f.kind == "poor_quality"]
    rows = [f for f in poor if "not reconstructed" in f.detail]
    assert [(f.start_s, f.end_s) for f in rows] == [(10.0, 14.0)]  # exactly the flat samples
    assert "flat" in rows[0].detail
    # windows with over 20 % of it are not used; those before 3.6 s and after 12.4 s cover
    # every good row
    assert any("flat or lead-off" in f.detail and "window not used" in f.detail for f in poor)
    assert np.isnan(leads[1000:1400]).all() and np.isnan(std[1000:1400]).all()
    # (the last row before it sits between the last model sample a used window covers and
    # the first it does not: the stitch reads NaN there)
    assert np.isfinite(leads[:999]).all() and np.isfinite(leads[1400:]).all()
    assert np.isfinite(leads[:1000, 0]).all()


@pytest.mark.parametrize("fs", [100.0, 500.0])
def test_flat_input_rows_are_nan_exactly_and_whatever_the_chunking(bundle: Bundle, fs: float
                                                                   ) -> None:
    """A lead-off stretch (the raw input constant at an offset) is NaN row for row, where the
    conditioning filter's ringing at its edges would hide it from a test on the conditioned
    signal, and nowhere else; the same for every chunking."""
    x = synthetic_lead_i(int(fs * 30), fs, seed=4)
    a, b = int(10 * fs), int(13 * fs)
    x[a:b] = 0.7  # 3 s at a DC offset: no window has more than 20 % of it... some do
    want_nan = np.zeros(len(x), bool)
    want_nan[a:b] = True
    edge = np.zeros(len(x), bool)  # rows after the last model sample a used window covers
    edge[a - int(fs / bundle.fs_hz):a] = True
    outs = []
    for sizes in ([len(x)], [37], [int(fs) + 3, 5, 211]):
        leads, std, flags = cat(run(bundle, x, fs, sizes=sizes, mc_samples=2))
        assert (np.isnan(leads).all(axis=1) == want_nan).all()  # Lead I too: exactly
        assert np.isnan(std[a:b]).all() and np.isfinite(leads[~want_nan & ~edge]).all()
        assert np.isfinite(leads[:, 0][~want_nan]).all()
        spans = [(f.start_s, f.end_s) for f in flags if "not reconstructed" in f.detail]
        assert spans == [(a / fs, b / fs)]
        outs.append((leads, flags))
    for leads, flags in outs[1:]:
        np.testing.assert_array_equal(leads, outs[0][0])
        assert flags == outs[0][1]


def test_good_rows_only_unused_windows_cover_are_not_reconstructed(bundle: Bundle) -> None:
    """0.5 s of ECG between two flat stretches: every window over it is mostly flat and not
    used, so those rows are NaN under the "window not used" flag (not made from them)."""
    fs = 100.0
    assert bundle.window / bundle.fs_hz == 2.0  # the tiny bundle: 2 s windows
    x = synthetic_lead_i(int(fs * 24), fs)
    x[1000:1150] = 0.0
    x[1200:1400] = 0.0
    leads, _, flags = cat(run(bundle, x, fs, sizes=[70], mc_samples=0))
    assert np.isnan(leads[1150:1200, 1:]).all() and np.isfinite(leads[1150:1200, 0]).all()
    unused = [f for f in flags if f.detail.endswith("window not used")]
    assert any(f.start_s <= 11.5 and f.end_s >= 12.0 for f in unused)
    assert np.isfinite(leads[:900]).all() and np.isfinite(leads[1500:]).all()


def test_short_flat_stretch_is_reconstructed(bundle: Bundle) -> None:
    """Under ``min_flat_s`` (1 s) of flat input is ECG (a long TP segment), not lead-off."""
    fs = 100.0
    x = synthetic_lead_i(int(fs * 20), fs)
    x[900:990] = x[899]  # 0.9 s constant
    leads, _, flags = cat(run(bundle, x, fs, sizes=[64], mc_samples=0))
    assert np.isfinite(leads).all()
    assert not [f for f in flags if "not reconstructed" in f.detail]


def test_saturated_sample_is_nan_and_does_not_ring_into_its_neighbours(bundle: Bundle) -> None:
    """One absurd sample (1e6 mV) is one NaN row; clipped at the saturation level before the
    conditioning, it leaves its neighbours' Lead I within a few mV."""
    fs = 500.0
    x = synthetic_lead_i(int(fs * 20), fs)
    x[5000] = 1e6
    leads, _, flags = cat(run(bundle, x, fs, sizes=[333], mc_samples=0))
    nan = np.isnan(leads).all(axis=1)
    assert nan.tolist().count(True) == 1 and nan[5000]
    assert np.abs(leads[~nan]).max() < 10.0
    sat = [f for f in flags if f.detail.startswith("saturated")]
    assert [(f.start_s, f.end_s) for f in sat] == [(10.0, 10.002)]


def test_lead_off_status(bundle: Bundle) -> None:
    fs = 100.0
    x = synthetic_lead_i(int(fs * 10), fs)
    off = frozenset({"lead_off"})
    status = {400: off, 600: frozenset()}
    leads, _, flags = cat(run(bundle, x, fs, sizes=[100], status=status, mc_samples=0))
    assert any(f.kind == "poor_quality" and "lead-off" in f.detail for f in flags)
    assert np.isnan(leads[450:550, 1]).all()


def test_noisy_window_reconstructed_and_flagged(bundle: Bundle) -> None:
    fs = 100.0
    x = np.random.default_rng(0).standard_normal(int(fs * 5)).astype(np.float32)
    leads, _, flags = cat(run(bundle, x, fs, mc_samples=0))
    assert np.isfinite(leads).all()
    assert [f.detail for f in flags if f.kind == "poor_quality"] == ["noisy"]


def test_high_uncertainty_flags(tmp_path: Path) -> None:
    fs = 100.0
    x = synthetic_lead_i(int(fs * 6), fs)
    low = Bundle.load(write_tiny_bundle(tmp_path / "low", flag_std_mv=[0.0] * 7))
    _, _, flags = cat(run(low, x, fs, sizes=[41], mc_samples=3))
    hu = [f for f in flags if f.kind == "high_uncertainty"]
    assert {f.leads[0] for f in hu} == {"II", "V1", "V2", "V3", "V4", "V5", "V6"}
    assert all(f.end_s - f.start_s >= 0.2 - 1e-9 and f.value > f.threshold for f in hu)
    high = Bundle.load(write_tiny_bundle(tmp_path / "high", flag_std_mv=[1e3] * 7))
    _, _, flags = cat(run(high, x, fs, mc_samples=3))
    assert not [f for f in flags if f.kind == "high_uncertainty"]


def test_low_expected_r_windows_are_flagged_whatever_the_chunking(tmp_path: Path) -> None:
    """A window whose expected r (edge.fidelity) is below the manifest's threshold flags its
    span high_uncertainty on the 11 reconstructed leads; consecutive windows merge; none
    below a threshold no window reaches; the same flags however the stream is chunked."""
    fs = 100.0
    x = synthetic_lead_i(int(fs * 6), fs)
    detail = "expected r (from the window's calibrated std) below"
    every = Bundle.load(write_tiny_bundle(tmp_path / "every", flag_expected_r=0.99999))
    one = [f for f in cat(run(every, x, fs, mc_samples=4))[2] if f.detail.startswith(detail)]
    assert len(one) == 1 and one[0].leads == ("II", "III", "aVR", "aVL", "aVF", "V1", "V2",
                                               "V3", "V4", "V5", "V6")
    assert one[0].start_s == 0.0 and one[0].end_s == pytest.approx(6.0)
    assert 0.0 <= one[0].value < one[0].threshold == 0.99999
    chunked = [f for f in cat(run(every, x, fs, sizes=[37, 5], mc_samples=4))[2]
               if f.detail.startswith(detail)]
    assert chunked == one
    never = Bundle.load(write_tiny_bundle(tmp_path / "never", flag_expected_r=1e-9))
    assert not [f for f in cat(run(never, x, fs, mc_samples=4))[2]
                if f.detail.startswith(detail)]


def test_input_too_short(bundle: Bundle) -> None:
    with pytest.raises(InputTooShort, match=r"input has 150 samples at 130 Hz.*needs 200"):
        run(bundle, synthetic_lead_i(150, 130.0), 130.0)


def test_short_segment_between_gaps_is_flagged(bundle: Bundle) -> None:
    fs = 100.0
    x = synthetic_lead_i(700, fs)
    leads, _, flags = cat(run(bundle, x, fs, gaps={300: 1.5, 400: 1.5}, mc_samples=0))
    assert np.isnan(leads[300:400, 1:]).all() and np.isfinite(leads[:300]).all()
    assert any("shorter than one window" in f.detail for f in flags)


def test_bad_chunks(bundle: Bundle) -> None:
    rec = StreamingReconstructor(bundle, 130.0)
    with pytest.raises(InputInvalid, match="fs_hz=100 differs"):
        rec.push(Chunk(np.zeros(10), 0.0, 100.0))
    with pytest.raises(InputInvalid, match="non-finite"):
        rec.push(Chunk(np.array([0.0, np.nan]), 0.0, 130.0))
    with pytest.raises(InputInvalid, match="1 channel"):
        rec.push(Chunk(np.zeros((10, 2)), 0.0, 130.0))


def test_long_stream_buffers_trimmed(bundle: Bundle) -> None:
    """Long enough that internal buffers are trimmed; still identical to one-shot."""
    fs = 130.0
    x = synthetic_lead_i(int(fs * 75), fs, seed=4)
    rec = StreamingReconstructor(bundle, fs, mc_samples=2)
    blocks = []
    for i in range(0, len(x), 509):
        blocks += rec.push(Chunk(x[i:i + 509], t0_s=i / fs, fs_hz=fs))
    seg = rec._seg
    for buf in (seg.grid.x, seg.stitch.sums, seg.xi, seg.code):
        assert len(buf.data) < 4096 + 2000  # bounded memory
    blocks += rec.flush()
    whole = cat(run(bundle, x, fs, mc_samples=2))
    np.testing.assert_array_equal(cat(blocks)[0], whole[0])
    np.testing.assert_array_equal(cat(blocks)[1], whole[1])


@pytest.mark.parametrize("fs", [130.0, 250.0])
def test_short_gaps_are_bridged_not_shifted(bundle: Bundle, fs: float) -> None:
    """A short gap keeps the segment: its samples are inserted (NaN out), nothing shifts."""
    n = int(fs * 12)
    x = synthetic_lead_i(n, fs, 5)
    k_gap, gap_s = int(fs * 4), 0.3
    gaps = {k_gap: gap_s}
    whole = cat(run(bundle, x, fs, gaps=gaps, mc_samples=3, seed=2))
    sizes = [int(s) for s in np.random.default_rng(4).integers(1, int(fs), size=50)]
    parts = cat(run(bundle, x, fs, sizes=sizes, gaps=gaps, mc_samples=3, seed=2))
    np.testing.assert_array_equal(whole[0], parts[0])
    np.testing.assert_array_equal(whole[1], parts[1])
    n_gap = int(round(gap_s * fs))
    leads = whole[0]
    assert leads.shape == (n + n_gap, 12)  # the gap keeps its true duration
    assert np.isnan(leads[k_gap:k_gap + n_gap]).all()  # nothing invented in the output
    assert np.isfinite(leads[:k_gap]).all() and np.isfinite(leads[k_gap + n_gap:]).all()
    gap_flags = [f for f in whole[2] if f.kind == "gap"]
    assert len(gap_flags) == 1 and "bridged" in gap_flags[0].detail
    assert gap_flags[0].start_s == pytest.approx(k_gap / fs)
    assert gap_flags[0].end_s == pytest.approx(k_gap / fs + n_gap / fs)


def test_frequent_small_drops_still_reconstruct(bundle: Bundle) -> None:
    """5 % of 0.1 s frames lost (a typical BLE link): output survives between the holes."""
    fs = 130.0
    x = synthetic_lead_i(int(fs * 30), fs, 8)
    rng = np.random.default_rng(0)
    frame = int(fs * 0.1)
    gaps = {k: 0.1 for k in range(frame, len(x), frame) if rng.random() < 0.05}
    leads, _, flags = cat(run(bundle, x, fs, sizes=[frame], gaps=gaps, mc_samples=2))
    assert len(gaps) > 3 and sum(f.kind == "gap" for f in flags) == len(gaps)
    assert np.isfinite(leads[:, 1]).mean() > 0.9


def test_negative_bridge_limit_is_refused(bundle: Bundle) -> None:
    with pytest.raises(InputInvalid, match="max_bridge_s=-1"):
        StreamingReconstructor(bundle, 130.0, max_bridge_s=-1)


@settings(max_examples=4, deadline=None)
@given(fs=st.sampled_from([130.0, 250.0]), seed=st.integers(0, 10_000),
       sizes=st.lists(st.integers(1, 700), min_size=1, max_size=20),
       short_gap=st.floats(0.05, 1.0), long_gap=st.floats(1.05, 4.0))
def test_streaming_equals_offline_random_chunks_bridged_and_restarting_gaps(
        bundle: Bundle, fs: float, seed: int, sizes: list[int], short_gap: float,
        long_gap: float) -> None:
    n = int(fs * 20)
    x = synthetic_lead_i(n, fs, seed % 7)
    gaps = {int(fs * 5): round(short_gap, 3), int(fs * 10): round(long_gap, 3)}
    whole = cat(run(bundle, x, fs, gaps=gaps, mc_samples=2, seed=seed))
    parts = cat(run(bundle, x, fs, sizes=sizes, gaps=gaps, mc_samples=2, seed=seed))
    np.testing.assert_allclose(whole[0], parts[0], atol=1e-5, equal_nan=True)
    np.testing.assert_allclose(whole[1], parts[1], atol=1e-5, equal_nan=True)
    assert [(f.kind, f.leads) for f in whole[2]] == [(f.kind, f.leads) for f in parts[2]]
    n_gap = int(round(round(short_gap, 3) * fs))  # bridged: its samples are NaN rows
    assert whole[0].shape[0] == n + n_gap


def test_lead_off_is_placed_by_input_time_at_another_input_rate(bundle: Bundle) -> None:
    """250 Hz input, model at 100 Hz: lead-off during 4-6 s (input samples 1000-1500) stops
    reconstruction there (NaN at 5 s) and is flagged there, not at input-index model times."""
    fs = 250.0
    x = synthetic_lead_i(int(fs * 16), fs)
    status = {1000: frozenset({"lead_off"}), 1500: frozenset()}
    leads, _, flags = cat(run(bundle, x, fs, sizes=[125], status=status, mc_samples=0))
    assert np.isnan(leads[1200:1300, 1]).all()
    assert np.isfinite(leads[3000:3500, 1]).all()  # 12-14 s: clean
    off = [f for f in flags if f.kind == "poor_quality" and "lead-off" in f.detail]
    assert off and all(f.start_s >= 2.0 and f.end_s <= 8.0 for f in off)


@pytest.mark.parametrize("min_emit_s", [0.0, 0.5, 1.7])
def test_min_emit_batches_blocks_not_content(bundle: Bundle, min_emit_s: float) -> None:
    """Blocks hold at least min_emit_s of samples (the segment's last one may hold fewer);
    concatenated they equal the per-chunk output, flags included."""
    fs = 130.0
    x = synthetic_lead_i(int(fs * 12), fs, seed=8)
    sizes = [13, 26, 3]
    per_chunk = run(bundle, x, fs, sizes=sizes, mc_samples=2, min_emit_s=0.0)
    batched = run(bundle, x, fs, sizes=sizes, mc_samples=2, min_emit_s=min_emit_s)
    (la, sa, fa), (lb, sb, fb) = cat(per_chunk), cat(batched)
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(sa, sb)
    assert fa == fb
    rows = [b.n for b in batched if b.n]
    n_min = max(1, round(min_emit_s * fs))
    assert all(n >= n_min for n in rows[:-1]) and sum(rows) == len(x)
    if min_emit_s == 0.0:
        assert min(rows) < 13  # per chunk: blocks as small as the newly final samples
    with pytest.raises(InputInvalid, match="min_emit_s"):
        StreamingReconstructor(bundle, fs, min_emit_s=-1.0)


def test_one_bundle_many_threads_model_calls_serialised(bundle: Bundle) -> None:
    """Reconstructors sharing a bundle in several threads (a gateway's devices; a flush on
    the event loop while a worker pushes) never run its interpreters at the same time, and
    each output equals its single-threaded one."""
    import threading
    import time

    fs = 130.0
    xs = [synthetic_lead_i(int(fs * 6), fs, seed=s) for s in (1, 2, 3)]
    alone = [cat(run(bundle, x, fs, sizes=[40], mc_samples=2))[0] for x in xs]
    inside, overlaps = [0], [0]
    original = bundle.predict_window

    def slow(*args, **kwargs):
        inside[0] += 1
        overlaps[0] += inside[0] > 1
        time.sleep(0.002)  # wide enough for another thread to enter, were it allowed
        try:
            return original(*args, **kwargs)
        finally:
            inside[0] -= 1

    bundle.predict_window = slow
    out: dict[int, np.ndarray] = {}
    try:
        threads = [threading.Thread(target=lambda i=i: out.__setitem__(
            i, cat(run(bundle, xs[i], fs, sizes=[40], mc_samples=2))[0])) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        del bundle.predict_window
    assert overlaps[0] == 0 and sorted(out) == [0, 1, 2]
    for i in range(3):
        np.testing.assert_array_equal(out[i], alone[i])


def test_lead_i_features_refresh_once_per_group_of_window_starts(bundle: Bundle) -> None:
    """Windows every 0.5 s (tiny bundle: hop 50 at 100 Hz): the Lead-I metadata of each window
    is that of the first window starting in the same 4 s (``FEATURE_REFRESH_S``), computed by
    hand here from ``edge.features`` on that window's conditioned samples."""
    from edge.conditioning import condition
    from edge.features import lead_i_features
    from edge.leads import LEAD_INDEX, PREDICTED
    from edge.metadata import clean_metadata, encode_metadata
    from edge.stages.reconstruct import FEATURE_REFRESH_S
    from edge.stages.stitch import taper

    assert FEATURE_REFRESH_S == 4.0  # chosen on validation (reconstruct's docstring)
    L, hop = bundle.window, bundle.hop
    fs = 100.0
    group = 400  # 4 s at 100 Hz
    x = synthetic_lead_i(L + 9 * hop, fs, seed=5)
    x[L:] = synthetic_lead_i(9 * hop, fs / 1.5, seed=6)  # ~108 bpm: the rate changes late
    md = {"age": 60, "sex": "M"}
    leads, _, _ = cat(run(bundle, x, fs, sizes=[29], mc_samples=0, metadata=md))
    xm = condition(x, fs, fs)
    starts = [k * hop for k in range(10)]  # groups: 0..350 -> 0, 400, 450 -> 400
    first = {s: (s // group) * group for s in starts}
    outs = []
    for s in starts:
        f = lead_i_features(xm[first[s]:first[s] + L], fs)
        meta = {**md, **clean_metadata({k: f[k] for k in ("ventricular_rate", "qrs_count",
                                                          "qrs_duration") if k in f})}
        outs.append(bundle.predict_window(xm[s:s + L], encode_metadata(meta), 0)[0])
    acc = np.zeros((len(x), len(PREDICTED)))
    w = np.zeros((len(x), 1))
    for s, m in zip(starts, outs, strict=True):
        acc[s:s + L] += taper(L)[:, None] * m
        w[s:s + L] += taper(L)[:, None]
    cols = [LEAD_INDEX[n] for n in PREDICTED]
    np.testing.assert_allclose(leads[:, cols], acc / w, atol=1e-5)


def test_lead_i_features_are_not_carried_across_segments(bundle: Bundle) -> None:
    """A gap longer than the bridge starts a new segment: its first window computes its own
    Lead-I features even when the last segment's feature group has the same number."""
    from edge.conditioning import condition
    from edge.features import lead_i_features
    from edge.leads import LEAD_INDEX, PREDICTED
    from edge.metadata import clean_metadata, encode_metadata
    from edge.stages.stitch import taper

    L, hop, fs = bundle.window, bundle.hop, 100.0
    n = L + hop  # windows at 0 and hop: one feature group per segment
    x0 = synthetic_lead_i(n, fs, seed=7)
    x1 = synthetic_lead_i(n, fs / 1.6, seed=8)  # another rate after the gap
    md = {"age": 40, "sex": "F"}
    leads, _, flags = cat(run(bundle, np.concatenate([x0, x1]), fs, sizes=[33],
                              gaps={n: 3.0}, mc_samples=0, metadata=md))
    assert [f.kind for f in flags if f.kind == "gap"] == ["gap"]
    xm = condition(x1, fs, fs)
    f = lead_i_features(xm[:L], fs)
    meta = encode_metadata({**md, **clean_metadata(
        {k: f[k] for k in ("ventricular_rate", "qrs_count", "qrs_duration") if k in f})})
    outs = [bundle.predict_window(xm[s:s + L], meta, 0)[0] for s in (0, hop)]
    tw = taper(L)[:, None]
    acc, w = np.zeros((n, len(PREDICTED))), np.zeros((n, 1))
    for s, m in zip((0, hop), outs, strict=True):
        acc[s:s + L] += tw * m
        w[s:s + L] += tw
    cols = [LEAD_INDEX[c] for c in PREDICTED]
    np.testing.assert_allclose(leads[n:, cols], acc / w, atol=1e-5)


def test_a_flat_run_longer_than_the_look_ahead_is_refused_and_one_within_it_streams_exactly(
        bundle: Bundle) -> None:
    """Flat runs are marked up to ``min_flat_s`` + a block back; that is safe only while the
    conditioning look-ahead (~2.35 s) holds rows back longer. A longer ``min_flat_s`` is
    refused up front; one just within it gives the same rows for every chunking."""
    from edge.stages.quality import QualityConfig

    with pytest.raises(InputInvalid, match=r"min_flat_s=3 s .* 3\.25 s back, beyond the "
                                           r"conditioning look-ahead \(2\.36 s\)"):
        StreamingReconstructor(bundle, 100.0, quality=QualityConfig(min_flat_s=3.0))
    fs, q = 100.0, QualityConfig(min_flat_s=1.8)  # marks 2.25 s back
    x = synthetic_lead_i(int(fs * 30), fs, seed=4)
    x[1000:1225] = 0.7  # 2.25 s (9 blocks of 0.25 s): flat (>= 1.8 s)
    x[2000:2150] = 0.7  # 1.5 s: ECG
    outs = [cat(run(bundle, x, fs, sizes=sizes, mc_samples=2, quality=q))
            for sizes in ([len(x)], [7], [101, 3])]
    assert np.isnan(outs[0][0][1000:1225]).all() and np.isfinite(outs[0][0][2000:2150]).all()
    for leads, _, flags in outs[1:]:
        np.testing.assert_array_equal(leads, outs[0][0])
        assert flags == outs[0][2]
