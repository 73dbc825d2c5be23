"""Mutation check of the core: does the test suite notice when the product breaks?

Each mutation is one semantic breakage (file, exact old text, new text) and the pytest
selection that should kill it (fail). The repository's tracked files are copied to a temporary
folder; every mutation is applied there (never in the working tree), its selection is run with
this interpreter (cwd and ``PYTHONPATH`` = the copy, so the copy's modules are imported, not the
editable install's), and the file is restored. Prints a kill table and the kill rate.

    python benchmarks/mutations.py            # all mutations (~10 min)
    python benchmarks/mutations.py --short    # the CI subset (< 60 s)
    python benchmarks/mutations.py --only stitch-taper-floor,quality-no-saturation

Exit status 0 when the kill rate reaches ``--min-rate`` (default 0.9; 1.0 with ``--short``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    """One breakage: replace ``old`` (exactly once in ``path``) by ``new``; ``tests`` kill it."""

    id: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


M = Mutation
T_COND = "tests/test_conditioning.py"
T_ST = "tests/test_stages.py"
T_PIPE = "tests/test_pipeline.py"
T_CORE = "tests/test_core_values.py"

MUTATIONS: tuple[Mutation, ...] = (
    # conditioning
    M("cond-highpass-dc-leak", "edge/conditioning.py", "h[n // 2] += 1.0", "h[n // 2] += 0.99",
      (T_COND,)),
    M("cond-fir-delay-off-by-one", "edge/conditioning.py", "self.D = (len(h) - 1) // 2",
      "self.D = (len(h) - 1) // 2 + 1", (T_COND,)),
    M("cond-resampler-phase", "edge/conditioning.py", "q = j[s: s + step] * self.down + self.half",
      "q = j[s: s + step] * self.down + self.half + 1", (T_COND,)),
    M("cond-resampler-gain", "edge/conditioning.py",
      "1.0 / max(up, down), cfg.kaiser_beta) * up",
      "1.0 / max(up, down), cfg.kaiser_beta) * max(up, down)", (T_COND,)),
    M("cond-lowpass-halved", "edge/conditioning.py",
      "firwin_lowpass(n, cfg.lowpass_hz / nyq, beta)",
      "firwin_lowpass(n, cfg.lowpass_hz / 2 / nyq, beta)", (T_COND,)),
    M("cond-even-highpass", "edge/conditioning.py", "n += 1 - n % 2  # odd: a type-I high-pass",
      "n += n % 2", (T_COND,)),
    M("cond-lookahead-no-fir", "edge/conditioning.py", "s += self._fir.D / self.fs_out_hz",
      "s += 0.0", (T_COND,)),
    M("cond-edge-padding", "edge/conditioning.py",
      'mode = "reflect" if len(x) > 1 else "edge"', 'mode = "edge"', (T_COND, T_CORE)),
    # stitching
    M("stitch-taper-floor", "edge/stages/stitch.py", "return 0.05 + np.sin", "return 0.5 + np.sin",
      (T_ST,)),
    M("stitch-std-not-var", "edge/stages/stitch.py",
      "np.square(std, out=one[:, 1 + nl:], dtype=np.float64)", "one[:, 1 + nl:] = std",
      (T_ST,)),
    M("stitch-no-interpolation", "edge/stages/stitch.py", "np.minimum(j0 + 1, n_model - 1)",
      "np.minimum(j0, n_model - 1)", (T_ST, T_CORE)),
    # flags
    M("flags-min-run-strict", "edge/stages/flags.py", "if k0 + e - start >= self.min_n:",
      "if k0 + e - start > self.min_n:", (T_ST, T_CORE)),
    M("flags-peak-is-last", "edge/stages/flags.py",
      "peak = max(peak, float(sd[a:e, lead].max()))", "peak = float(sd[e - 1, lead])",
      (T_ST, T_CORE)),
    M("flags-lost-at-close", "edge/stages/flags.py",
      "(ready if closed or e < n_emitted else keep)", "(ready if e < n_emitted else keep)",
      (T_ST, T_CORE)),
    M("flags-merge-forgets-start", "edge/stages/flags.py", "f0.kind, f0.start_s, flag.end_s",
      "f0.kind, flag.start_s, flag.end_s", (T_ST,)),
    # quality
    M("quality-no-saturation", "edge/stages/quality.py",
      "sat_frac = float(np.count_nonzero(saturated)) / n", "sat_frac = 0.0", (T_ST,)),
    M("quality-lead-off-ignored", "edge/stages/quality.py", "    if bad.any():",
      "    if False:", (T_ST, T_CORE)),
    M("quality-bad-counted-inside-flat", "edge/stages/quality.py",
      "bad[:n_full].reshape(-1, block)[~flat]", "bad[:n_full].reshape(-1, block)", (T_ST,)),
    M("quality-noisy-is-good", "edge/stages/quality.py",
      'return Verdict(True, "noisy", ratio, cfg.noise_ratio)',
      "return Verdict(True, None, ratio, cfg.noise_ratio)", (T_ST,)),
    M("quality-negative-rail-missed", "edge/stages/quality.py",
      "return np.abs(raw_mv) >= cfg.saturation_mv", "return raw_mv >= cfg.saturation_mv",
      (T_ST, T_CORE)),
    M("quality-flat-threshold", "edge/stages/quality.py",
      "blocks.min(axis=1)) < cfg.flat_ptp_mv",
      "blocks.min(axis=1)) < cfg.flat_ptp_mv / 100", (T_ST, T_CORE)),
    # uncertainty limits (training.uncertainty_limits)
    M("limits-quantile-of-every-record", "training/uncertainty_limits.py",
      "np.quantile(score_fit[r_fit > GOOD]", "np.quantile(score_fit",
      ("tests/test_uncertainty_limits.py",)),
    M("limits-axis-ignores-the-chest", "training/uncertainty_limits.py",
      "return which & inv & chest_ok", "return which & inv",
      ("tests/test_uncertainty_limits.py",)),
    # fidelity (expected r) and its flag
    M("fidelity-ignores-std", "edge/fidelity.py", "den = np.sqrt(var + s2)",
      "den = np.sqrt(var + 0 * s2)", ("tests/test_fidelity.py",)),
    M("fidelity-flag-inverted", "edge/pipeline.py", "if er < thr:", "if er > thr:",
      ("tests/test_pipeline.py::test_low_expected_r_windows_are_flagged_whatever_the_chunking",)),
    # MC dropout (edge.Bundle)
    M("mc-no-inverted-scaling", "edge/bundle.py", "(keep / (1.0 - rate))", "(keep * 1.0)",
      ("tests/test_converters.py::test_gateway_bundle_mc_matches_keras_mc_and_the_dropout_"
       "expectation", T_CORE)),
    M("mc-keep-probability-swapped", "edge/bundle.py", "keep = rng.random((n, size)) >= rate",
      "keep = rng.random((n, size)) >= 1.0 - rate", (T_CORE,)),
    M("mc-var-divides-by-t-minus-1", "edge/bundle.py", "/ np.float32(t)",
      "/ np.float32(max(t - 1, 1))", (T_CORE,)),
    M("mc-mean-from-the-samples", "edge/bundle.py", "res_mean = res[-1]",
      "res_mean = res[:-1].mean(axis=0) if t else res[-1]", ("tests/test_bundle.py", T_CORE)),
    M("mc-calibration-not-applied", "edge/bundle.py", "std = np.sqrt(total) * scale",
      "std = np.sqrt(total) * 1.0", ("tests/test_bundle.py",)),
    M("mc-clinical-scale-ignored", "edge/bundle.py",
      "scale = self.scale_clinical if is_clinical(meta) else self.scale",
      "scale = self.scale", ("tests/test_bundle.py", T_CORE)),
    M("mc-input-scale-ignored", "edge/bundle.py", "(x * self.manifest.model.input_scale)",
      "(x * 1.0)", ("tests/test_bundle.py", T_CORE)),
    # the moments-form MC head (converters.export) and its use (edge.Bundle)
    M("mc-moments-var-summed", "converters/export.py",
      "tf.reduce_mean(dev * dev, axis=1)", "tf.reduce_sum(dev * dev, axis=1)",
      ("tests/test_converters.py::test_window_mean_and_std_equal_the_keras_mc_model_on_the_"
       "same_masks",)),
    M("mc-moments-deviation-from-zero", "converters/export.py", "tf.matmul((mask - 1.0)[None]",
      "tf.matmul(mask[None]", ("tests/test_converters.py::test_window_mean_and_std_equal_the_"
                               "keras_mc_model_on_the_same_masks",)),
    M("mc-moments-gain-not-on-deviation", "converters/export.py",
      "mean, dev = mean * g4[:, None], dev * g4[:, None]", "mean = mean * g4[:, None]",
      ("tests/test_converters.py::test_window_mean_and_std_equal_the_keras_mc_model_on_the_"
       "same_masks",)),
    M("mc-moments-variance-ignored", "edge/bundle.py",
      'total = head["mc_var"][0] if t else np.zeros_like(mean)', "total = np.zeros_like(mean)",
      ("tests/test_converters.py::test_window_mean_and_std_equal_the_keras_mc_model_on_the_"
       "same_masks",)),
    # the low-rank BiLSTM input (converters.export --lstm-rank)
    M("lowrank-bias-without-mean", "converters/export.py",
      "out[name] = (w @ v, -(mu @ w) @ v, v.T, b + mu @ w, resid)",
      "out[name] = (w @ v, -(mu @ w) @ v, v.T, b, resid)",
      ("tests/test_fused_bundle.py::test_low_rank_lstm_input_is_exact_when_the_inputs_span_"
       "that_rank",)),
    M("lowrank-backward-not-reversed", "converters/export.py",
      "fb = L.Lambda(lambda t: tf.reverse(t, axis=[1]), name=\"lstm_backward_order\")(fb)",
      "fb = L.Lambda(lambda t: t, name=\"lstm_backward_order\")(fb)",
      ("tests/test_fused_bundle.py::test_low_rank_lstm_input_is_exact_when_the_inputs_span_"
       "that_rank",)),
    # input checks added with them
    M("wfdb-checksum-not-checked", "edge/sources/formats_wfdb.py",
      "    if total % 65536 != int(want) % 65536:", "    if False:",
      ("tests/test_file_formats.py::test_a_signal_file_that_does_not_match_its_checksum_is_"
       "refused",)),
    M("flat-reach-not-checked", "edge/pipeline.py", "        if reach_s >= lead_s:",
      "        if reach_s >= 10 * lead_s:",
      ("tests/test_pipeline.py::test_a_flat_run_longer_than_the_look_ahead_is_refused_and_one_"
       "within_it_streams_exactly",)),
    M("previous-outputs-not-restored", "edge/outputs.py",
      "        for p, aside in self.moved:\n            try:\n"
      "                os.replace(aside, p)",
      "        for p, aside in self.moved[:0]:\n            try:\n"
      "                os.replace(aside, p)",
      ("tests/test_commands.py::test_a_failed_rerun_keeps_the_earlier_results_and_a_good_one_"
       "replaces_them",)),
    M("ascii-rate-not-checked", "edge/sources/serial.py",
      "        if not RATE_LOW * self.fs_hz <= rate <= RATE_HIGH * self.fs_hz:",
      "        if not RATE_LOW * self.fs_hz <= rate <= 1e9 * self.fs_hz:",
      ("tests/test_sources.py::test_ascii_millis_rate_far_from_the_given_fs_is_refused",)),
    M("file-start-gap-not-kept", "edge/sinks/recorder.py",
      "            if start is None or start > chunk.t0_s:",
      "            if True:",
      ("tests/test_commands.py::test_missing_samples_at_a_files_start_or_end_are_a_gap_on_"
       "its_own_time_line",)),
    M("nan-only-run-kept", "edge/commands.py",
      'if summary["rows_out"] == 0 or summary["rows_reconstructed"] == 0:',
      'if summary["rows_out"] == 0:',
      ("tests/test_bad_inputs.py::test_bad_input_suite",)),
    M("ecg12-fs-not-checked", "edge/sources/frames.py",
      "            if self.nominal_fs_hz is not None and abs(fs - self.nominal_fs_hz) > 1e-6 * fs:",
      "            if False:",
      ("tests/test_sources.py::test_serial_ecg12_frames_at_another_rate_than_the_fs_given_are_"
       "refused",)),
    # metadata encoding
    M("meta-sex-swapped", "edge/metadata.py", 'values.append(1.0 if md[key] == "F" else -1.0)',
      'values.append(1.0 if md[key] == "M" else -1.0)', (T_CORE,)),
    M("meta-axis-sin-cos-swapped", "edge/metadata.py",
      "values.extend([math.sin(rad), math.cos(rad)])",
      "values.extend([math.cos(rad), math.sin(rad)])", (T_CORE,)),
    M("meta-age-scale", "edge/metadata.py", '"age": (50.0, 20.0)', '"age": (50.0, 25.0)',
      (T_CORE,)),
    M("meta-flags-always-present", "edge/metadata.py",
      "flags.append(1.0 if present else 0.0)", "flags.append(1.0)", (T_CORE,)),
    # codecs
    M("proto-no-sign-extension", "firmware_bridge/protocol.py",
      "np.where(a[:, width - 1:width] & 0x80, 0xFF, 0x00)",
      "np.where(a[:, width - 1:width] & 0x80, 0x00, 0x00)", ("tests/test_firmware_protocol.py",)),
    M("proto-big-endian-header", "firmware_bridge/protocol.py",
      'HEADER = struct.Struct("<2sBBBBHHIB")', 'HEADER = struct.Struct(">2sBBBBHHIB")',
      ("tests/test_firmware_protocol.py",)),
    M("proto-seq-wrap", "firmware_bridge/protocol.py", "gap = (seq - last - 1) % SEQ_MOD",
      "gap = abs(seq - last - 1)", ("tests/test_firmware_protocol.py",)),
    M("proto-reserved-flags-accepted", "firmware_bridge/protocol.py",
      "if ver != VERSION or flags & _FLAG_RESERVED or", "if ver != VERSION or",
      ("tests/test_firmware_protocol.py", T_CORE)),
    M("polar-sign-bit", "firmware_bridge/polar.py", "samples - (1 << 24), samples)",
      "samples - (1 << 23), samples)", ("tests/test_firmware_polar.py", "tests/test_polar_sdk.py")),
    M("polar-timestamp-endianness", "firmware_bridge/polar.py",
      'struct.unpack_from("<Q", data, 1)', 'struct.unpack_from(">Q", data, 1)',
      ("tests/test_firmware_polar.py", "tests/test_polar_sdk.py")),
    M("polar-data-uuid", "firmware_bridge/polar.py",
      'PMD_DATA_UUID = "fb005c82-', 'PMD_DATA_UUID = "fb005c83-', ("tests/test_polar_sdk.py",)),
    M("polar-start-rate-endianness", "firmware_bridge/polar.py",
      'PmdSetting.SAMPLE_RATE, 1]) + struct.pack("<H", sample_rate_hz)',
      'PmdSetting.SAMPLE_RATE, 1]) + struct.pack(">H", sample_rate_hz)',
      ("tests/test_firmware_polar.py", "tests/test_polar_sdk.py")),
    M("polar-response-op-type-swapped", "firmware_bridge/polar.py",
      "ControlResponse(data[1], data[2], data[3], data[4:])",
      "ControlResponse(data[2], data[1], data[3], data[4:])",
      ("tests/test_firmware_polar.py", "tests/test_polar_sdk.py")),
    # device clock
    M("clock-snap-5-percent", "edge/sources/deviceclock.py", "SNAP_RATE = 50e-6",
      "SNAP_RATE = 0.05", ("tests/test_device_clock.py",)),
    M("clock-sample-times-shifted", "edge/sources/deviceclock.py",
      "(np.arange(f.n, dtype=np.float64) - f.ref) / rate",
      "(np.arange(f.n, dtype=np.float64) - f.ref - 1) / rate",
      ("tests/test_device_clock.py", T_CORE)),
    M("clock-no-replay-check", "edge/sources/deviceclock.py",
      "if any(abs(f.t_last - r) * rate < 0.25 for r in self._recent):",
      "if any(abs(f.t_last - r) * rate < 0.0 for r in self._recent):",
      ("tests/test_device_clock.py",)),
    M("clock-lost-not-counted", "edge/sources/deviceclock.py",
      "self.counters.lost_samples += lost\n", "self.counters.lost_samples += 0\n",
      ("tests/test_device_clock.py",)),
    # features
    M("feat-search-back-threshold", "edge/features.py", "(h >= 0.5 * thr)", "(h >= 2.0 * thr)",
      ("tests/test_features.py",)),
    M("feat-refine-signed", "edge/features.py", "np.abs(xb), np.full(w, -1.0)",
      "xb, np.full(w, -1.0)", ("tests/test_features.py",)),
    M("feat-bank-no-steady-start", "edge/features.py", "self.run(u, self.steady * ext[0])",
      "self.run(u, 0.0 * self.steady)", ("tests/test_features.py",)),
    M("feat-qrs-count-fixed-rate", "edge/features.py", "len(peaks) * 10.0 * fs / n",
      "len(peaks) * 10.0 * 100.0 / n", ("tests/test_features.py",)),
    M("feat-rate-mean-rr", "edge/features.py", "60.0 * fs / np.median(np.diff(peaks))",
      "60.0 * fs / np.mean(np.diff(peaks))", ("tests/test_features.py", T_CORE)),
    # training losses and the ensemble comparison
    M("loss-correlation-sign", "training/model.py",
      "out = out + correlation * ops.mean(1.0 - r, axis=-1)",
      "out = out + correlation * ops.mean(1.0 + r, axis=-1)",
      ("tests/test_losses.py",)),
    M("loss-derived-avl-sign", "training/model.py",
      "lead_i - ii / 2, ii - lead_i / 2],", "lead_i + ii / 2, ii - lead_i / 2],",
      ("tests/test_losses.py",)),
    M("unet-loss-drops-correlation", "training/model.py",
      "return out + correlation * ops.mean(1.0 - r, axis=-1)[:, None]", "return out",
      ("tests/test_losses.py",)),
    M("selection-loss-sign", "training/train.py",
      "val_mse + correlation_weight * (1.0 - val_r)", "val_mse + correlation_weight * val_r",
      ("tests/test_losses.py",)),
    M("weight-average-counts-wrong", "training/train.py",
      "a + (b - a) / self.n for a, b", "a + (b - a) / (self.n + 1) for a, b",
      ("tests/test_train_path.py",)),
    M("weight-average-resume-double-counts", "training/train.py",
      "epoch < self.first or epoch <= self.last", "epoch < self.first",
      ("tests/test_train_path.py",)),
    M("window-features-off", "training/dataset.py",
      'if regime == "wearable" and d.window_features:',
      'if regime == "clinical" and d.window_features:', ("tests/test_window_features.py",)),
    M("window-features-on-the-clean-window", "training/dataset.py",
      "lead_i_features(x[i, :, 0].astype(np.float64), d.fs_hz)",
      "lead_i_features(w[:, 0].astype(np.float64), d.fs_hz)", ("tests/test_window_features.py",)),
    M("ensemble-mixture-no-spread", "training/ensemble.py",
      "s.astype(np.float64) ** 2 + mu.astype(np.float64) ** 2",
      "s.astype(np.float64) ** 2 + m.astype(np.float64) ** 2", ("tests/test_ensemble.py",)),
    # calibration
    M("cal-one-sided-z", "training/calibration.py", "stats.norm.ppf(0.5 + nominal / 2.0)",
      "stats.norm.ppf(nominal)", ("tests/test_calibration.py",)),
    M("cal-median-not-quantile", "training/calibration.py",
      "np.quantile(ratio, nominal, axis=0) / z", "np.median(ratio, axis=0) / z",
      ("tests/test_calibration.py",)),
    M("cal-flags-uncalibrated", "training/calibration.py", "np.quantile(s * sc, quantile, axis=0)",
      "np.quantile(s, quantile, axis=0)", ("tests/test_calibration.py",)),
    # pipeline
    M("pipe-output-time-shift", "edge/pipeline.py", "p = np.minimum(k / fs_in * fs_m,",
      "p = np.minimum(k / fs_in * fs_m + 0.5,", (T_PIPE,)),
    M("pipe-gap-not-nan", "edge/pipeline.py", "            leads[bad] = np.nan",
      "            leads[bad] = leads[bad]", (T_PIPE,)),
    M("pipe-raw-flat-not-marked", "edge/pipeline.py",
      "        self._mark_flat(seg, seg.flat.push(x))", "        seg.flat.push(x)", (T_PIPE,)),
    M("pipe-saturated-not-clipped", "edge/pipeline.py",
      "seg.cond.push(np.clip(x, -sat, sat))", "seg.cond.push(x)", (T_PIPE,)),
    M("flat-run-marks-only-its-last-block", "edge/stages/quality.py",
      "out.append((k - (self.need - 1) * self.block, k + self.block))",
      "out.append((k, k + self.block))", (T_PIPE,)),
    M("outputs-overwrite-not-checked", "edge/outputs.py", "            if _same(out, inp):",
      "            if False:", ("tests/test_outputs.py",)),
    M("pipe-bad-windows-reconstructed", "edge/pipeline.py", "        if verdict.reconstruct:\n",
      "        if True:\n", (T_PIPE,)),
    M("pipe-quality-codes-wrong-rate", "edge/pipeline.py",
      "idx = np.clip(np.round(j / fs_m * fs_in), 0", "idx = np.clip(np.round(j * 1.0), 0",
      (T_PIPE, T_CORE)),
    # session batching
    M("batch-holds-one-too-many", "edge/pipeline.py",
      "return min(n_window, n_block) - n - 1, n_window - n - 1",
      "return min(n_window, n_block) - n, n_window - n - 1", ("tests/test_batch.py",)),
    M("batch-window-late", "edge/pipeline.py", "n_window = to_model.inputs_for(need_m)",
      "n_window = to_model.inputs_for(need_m) + 1", ("tests/test_batch.py",)),
    M("batch-inverse-lookahead", "edge/conditioning.py",
      "by_lookahead = -(-((n_out - 1) * down + 1 + self.half) // up)",
      "by_lookahead = -(-((n_out - 1) * down + 1) // up)", ("tests/test_batch.py",)),
    M("batch-fir-lookahead-ignored", "edge/conditioning.py",
      "return n_in - self.D if n_in > self.D else 0", "return n_in",
      ("tests/test_batch.py",)),
    M("batch-inline-two-windows", "edge/pipeline.py",
      "n_two = to_model.inputs_for(need_m + self.bundle.hop)",
      "n_two = to_model.inputs_for(need_m + 2 * self.bundle.hop)", ("tests/test_batch.py",)),
    M("fidelity-var-not-centred", "edge/fidelity.py",
      'var = np.maximum(np.einsum("...ij,...ij->...j", mean, mean) / n - mu * mu, 0.0)',
      'var = np.maximum(np.einsum("...ij,...ij->...j", mean, mean) / n, 0.0)',
      ("tests/test_fidelity.py",)),
    M("pool-std-not-centred", "edge/atypicality.py",
      "var = np.maximum(w @ (f * f) - mu * mu, 0.0)",
      "var = np.maximum(w @ (f * f), 0.0)", ("tests/test_atypicality.py",)),
    M("batch-gap-held", "edge/batch.py",
      "if chunk.gap_before_s == 0 and self._n <= self._quiet:", "if self._n <= self._quiet:",
      ("tests/test_batch.py",)),
    # numeric helpers and corpus-robust calibration
    M("quantile-plain-lerp", "edge/quantile.py",
      "return vb - d * (1.0 - gamma) if gamma >= 0.5 else va + d * gamma",
      "return va + d * gamma", ("tests/test_quantile.py",)),
    M("cal-balanced-per-sample", "training/calibration.py",
      "w = np.repeat(1.0 / (counts[inverse] * len(labels)), per)",
      "w = np.repeat(np.ones(len(inverse)), per)", ("tests/test_calibration.py",)),
    # atypicality of Lead I (trunk-feature distance) and the flag risk
    M("atyp-no-residual", "edge/atypicality.py",
      "d2 = float(np.sum(p * p / self.variances) + resid @ resid / self.residual_var)",
      "d2 = float(np.sum(p * p / self.variances))", ("tests/test_atypicality.py",)),
    M("atyp-risk-sign", "edge/atypicality.py",
      "return (w * (self.er_ref - expected_r) / self.er_spread",
      "return (w * (expected_r - self.er_ref) / self.er_spread", ("tests/test_atypicality.py",)),
    M("atyp-threshold-per-window", "training/calibration.py",
      "rec_risk = np.array([risk[rec == i].max() for i in ids])",
      "rec_risk = np.array([risk[rec == i].min() for i in ids])", ("tests/test_atypicality.py",)),
    M("atyp-flag-ignored", "edge/pipeline.py", "if risk > a.threshold:", "if risk > 1e9:",
      ("tests/test_atypicality.py",)),
    # the Lead-I feature refresh (one computation per FEATURE_REFRESH_S of window starts)
    M("features-stale-group", "edge/stages/reconstruct.py",
      "key = (segment, start // self.refresh)", "key = (segment, start // (2 * self.refresh))",
      (T_PIPE,)),
    M("features-group-ignores-segment", "edge/stages/reconstruct.py",
      "key = (segment, start // self.refresh)", "key = (0, start // self.refresh)", (T_PIPE,)),
)

#: the CI subset: fast selections, one per area that has no TensorFlow-built fixture
SHORT = ("stitch-taper-floor", "quality-no-saturation", "polar-sign-bit",
         "proto-seq-wrap", "cal-one-sided-z", "meta-sex-swapped")


def copy_repo(dst: Path) -> None:
    """Copy the working tree's files (tracked and untracked, not ignored) into ``dst``."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, names):
        src = ROOT / name
        if src.is_file():
            out = dst / name
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out)


def _env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(copy), env.get("PYTHONPATH", "")]))
    env.setdefault("ECG12_DATA", str(ROOT.parent / "shared" / "data"))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def check_imports_from(copy: Path) -> None:
    """Fail unless the copy's packages (not the editable install's) are the ones imported."""
    code = ("import benchmarks, converters, edge, firmware_bridge, training\n"
            "print('\\n'.join(m.__file__ for m in (benchmarks, converters, edge, "
            "firmware_bridge, training)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=copy, env=_env(copy), check=True,
                         capture_output=True, text=True).stdout.split()
    wrong = [p for p in out if not Path(p).resolve().is_relative_to(copy.resolve())]
    if wrong:
        raise SystemExit(f"mutations: modules imported from outside the copy {copy}: {wrong}")


def run_tests(copy: Path, tests: tuple[str, ...], timeout_s: float
              ) -> tuple[int, float, str]:
    """(pytest exit status, seconds, first failing test) of ``tests`` in ``copy``; status 124
    on timeout."""
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    try:
        r = subprocess.run(cmd, cwd=copy, env=_env(copy), capture_output=True, text=True,
                           timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return 124, time.monotonic() - t0, "(timeout)"
    failed = [ln.split()[1] for ln in r.stdout.splitlines()
              if ln.startswith(("FAILED ", "ERROR ")) and len(ln.split()) > 1]
    return r.returncode, time.monotonic() - t0, failed[0] if failed else ""


def apply(copy: Path, m: Mutation) -> str:
    """Apply ``m`` in ``copy``; returns the original text (to restore)."""
    path = copy / m.path
    text = path.read_text()
    if text.count(m.old) != 1:
        raise SystemExit(f"mutation {m.id}: old text found {text.count(m.old)} times in "
                         f"{m.path} (must be exactly once; update the mutation)")
    path.write_text(text.replace(m.old, m.new))
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", action="store_true", help="the CI subset only")
    ap.add_argument("--only", help="comma-separated mutation ids")
    ap.add_argument("--min-rate", type=float, default=None, help="required kill rate")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per selection run")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    a = ap.parse_args(argv)
    chosen = list(MUTATIONS)
    if a.short:
        chosen = [m for m in chosen if m.id in SHORT]
    if a.only:
        want = set(a.only.split(","))
        unknown = want - {m.id for m in MUTATIONS}
        if unknown:
            raise SystemExit(f"unknown mutation id(s): {sorted(unknown)}")
        chosen = [m for m in chosen if m.id in want]
    if a.list:
        for m in chosen:
            print(f"{m.id:34s} {m.path:30s} {' '.join(m.tests)}")
        return 0
    min_rate = a.min_rate if a.min_rate is not None else (1.0 if a.short else 0.9)
    with tempfile.TemporaryDirectory(prefix="ecg12-mutations-") as tmp:
        copy = Path(tmp) / "repo"
        copy_repo(copy)
        check_imports_from(copy)
        selections = sorted({t for m in chosen for t in m.tests})
        rc, sec, _ = run_tests(copy, tuple(selections), a.timeout)
        if rc != 0:
            raise SystemExit(f"mutations: the unmutated selections fail (pytest status {rc}); "
                             f"fix the suite first: {' '.join(selections)}")
        print(f"baseline: {len(selections)} selection(s) pass unmutated ({sec:.1f} s)")
        rows = []
        print(f"{'mutation':34s} {'killed':6s} {'s':>6s}  file  killed by")
        for m in chosen:
            original = apply(copy, m)
            try:
                rc, sec, by = run_tests(copy, m.tests, a.timeout)
            finally:
                (copy / m.path).write_text(original)
            if rc == 5:
                raise SystemExit(f"mutation {m.id}: its selection collected no tests")
            killed = rc != 0
            rows.append({"id": m.id, "path": m.path, "killed": killed, "rc": rc, "by": by,
                         "seconds": round(sec, 1), "tests": list(m.tests)})
            print(f"{m.id:34s} {'yes' if killed else 'NO':6s} {sec:6.1f}  {m.path}  {by}",
                  flush=True)
    n_killed = sum(r["killed"] for r in rows)
    rate = n_killed / len(rows) if rows else 1.0
    print(f"kill rate: {n_killed}/{len(rows)} = {rate:.1%}")
    survivors = [r["id"] for r in rows if not r["killed"]]
    if survivors:
        print("survivors: " + ", ".join(survivors))
    if a.json:
        a.json.write_text(json.dumps({"kill_rate": rate, "rows": rows}, indent=1) + "\n")
    return 0 if rate >= min_rate else 1


if __name__ == "__main__":
    sys.exit(main())
