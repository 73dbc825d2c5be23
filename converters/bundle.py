"""``convert_run``: a training run folder -> a gateway bundle (trunk, head, manifest.json)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from converters.errors import ConversionError
from converters.export import (
    LSTMS,
    QUANTS,
    Representative,
    convert_head,
    convert_trunk,
    lstm_input_factors,
)
from converters.run import Run, load_run
from edge.bundle import dropout_masks
from edge.conditioning import ConditioningConfig
from edge.leads import DERIVED, LEADS, PREDICTED
from edge.manifest import MAX_MC_SAMPLES, SCHEMA_VERSION
from edge.metadata import ENCODED_SIZE, ENCODING_VERSION, FIELDS, LEAD_I_FIELDS
from training.model import DOWNSAMPLE, build_trunk, copy_weights, mc_site

REP_WINDOWS = 100  # representative windows for full-integer calibration


@dataclass
class Calib:
    """Representative inputs for int8 calibration: training windows and their metadata."""

    lead_i: np.ndarray  # (N, L, 1)
    meta: np.ndarray  # (N, M)


def split_arrays(run: Run, split: str, limit: int | None = None) -> Any:
    """``training.dataset.load_split_arrays`` for the run's config (wearable regime)."""
    try:
        from training.dataset import load_split_arrays
    except ImportError as exc:
        raise ConversionError(f"cannot load the {split} split: {exc}") from None
    arrays = load_split_arrays(run.cfg, split, "wearable", limit=limit)
    if len(arrays.lead_i) == 0:
        raise ConversionError(f"the {split} split of {run.path} has no windows")
    return arrays


def representative(run: Run, calib: Calib, seed: int = 0) -> tuple[Representative, ...]:
    """Representative-dataset generators for the trunk and the head."""
    n = min(len(calib.lead_i), REP_WINDOWS)
    x, meta = calib.lead_i[:n].astype(np.float32), calib.meta[:n].astype(np.float32)
    trunk = build_trunk(run.cfg.model, run.cfg.window)
    copy_weights(run.model, trunk)
    feats = np.asarray(trunk.predict(x, verbose=0)[0], np.float32)

    def trunk_rep():  # dicts keyed by signature input name (list order is not guaranteed)
        for i in range(n):
            yield {"lead_i": x[i:i + 1]}

    site = mc_site(run.cfg.model)
    masks = dropout_masks(n, site.size, site.rate, np.random.default_rng(seed))

    def head_rep():
        for i in range(n):
            yield {"features": feats[i:i + 1], "meta": meta[i:i + 1],
                   site.name: masks[i:i + 1]}

    return trunk_rep, head_rep


def lstm_inputs(run: Run, calib: Calib) -> np.ndarray:
    """The BiLSTM's inputs ``(N * L/4, C)`` on ``REP_WINDOWS`` training windows (the fit of
    ``converters.export.lstm_input_factors``)."""
    n = min(len(calib.lead_i), REP_WINDOWS)
    sub = keras.Model(run.model.inputs[0], run.model.get_layer("bilstm").input)
    x = np.asarray(sub.predict(calib.lead_i[:n].astype(np.float32), verbose=0))
    return x.reshape(-1, x.shape[-1])


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_manifest(run: Run, files: dict[str, Path], quant: str, lstm: str, mc_samples: int,
                   name: str, metrics: dict[str, Any] | None = None,
                   head_quant: str | None = None,
                   lstm_rank: dict[str, Any] | None = None) -> dict[str, Any]:
    """Manifest dict per docs/CONTRACTS.md (validated with ``edge.manifest`` before writing)."""
    cfg, L = run.cfg, run.cfg.window
    F = 2 * cfg.model.lstm_units
    site = mc_site(cfg.model)

    def t(name: str, *shape: int) -> dict[str, Any]:
        return {"name": name, "shape": list(shape), "dtype": "float32"}

    head_inputs = [t("features", 1, L // DOWNSAMPLE, F), t("meta", 1, ENCODED_SIZE),
                   t(site.name, -1, site.size)]
    return {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {"fs_hz": cfg.data.fs_hz, "window": L,
                  "hop": cfg.hop, "input_scale": 1.0,
                  "lead_order": list(LEADS), "predicted_leads": list(PREDICTED),
                  "derived_leads": list(DERIVED), "output_units": "mV"},
        "files": {
            "trunk": {"path": files["trunk"].name, "sha256": sha256(files["trunk"]),
                      "inputs": [t("lead_i", 1, L, 1)],
                      "outputs": [t("features", 1, L // DOWNSAMPLE, F), t("skip", 1, L, 7)],
                      "batch": 1, "lstm": lstm, "reset_state": lstm == "fused"},
            "head": {"path": files["head"].name, "sha256": sha256(files["head"]),
                     "inputs": head_inputs,
                     "outputs": [t("residual_mean", 1, L, 7), t("mc_var", 1, L, 7),
                                 t("deviation", L // DOWNSAMPLE, -1, DOWNSAMPLE * 7)]
                     + ([t("log_var", 1, L, 7)] if cfg.model.aleatoric else []),
                     "batch": None},
        },
        "metadata": {"fields": list(FIELDS), "encoding_version": ENCODING_VERSION,
                     "encoded_size": ENCODED_SIZE, "derive_from_lead_i": list(LEAD_I_FIELDS)},
        "conditioning": ConditioningConfig().to_dict(),
        "mc": {"default_samples": mc_samples, "scheme": "last_site",
               "masks": [{"name": site.name, "size": site.size, "rate": site.rate}]},
        "uncertainty": {"aleatoric": bool(cfg.model.aleatoric),
                        "calibration": {"method": run.calibration.get("method", "scale"),
                                        **{k: [float(v) for v in run.calibration[k]]
                                           for k in ("scale", "scale_clinical")
                                           if run.calibration.get(k) is not None}},
                        "flag_std_mv": [float(v) for v in run.calibration["flag_std_mv"]],
                        **({"flag_expected_r": float(run.calibration["flag_expected_r"])}
                           if run.calibration.get("flag_expected_r") is not None else {}),
                        **({"atypicality": run.calibration["atypicality"]}
                           if run.calibration.get("atypicality") is not None else {})},
        "quantization": quant,
        "head_quantization": head_quant or quant,
        "provenance": {"config_sha256": run.info.get("config_sha256", cfg.sha256()),
                       "split_sha256": run.info.get("split_sha256"), "run": str(run.path),
                       "keras_version": keras.__version__, "tf_version": tf.__version__,
                       "lstm": lstm, **({"lstm_input_rank": lstm_rank} if lstm_rank else {})},
        "metrics": {"best_val_loss": run.info.get("best_val_loss"), **headline_metrics(run.path),
                    **(metrics or {})},
    }


def headline_metrics(run_dir: Path) -> dict[str, Any]:
    """Test-split headline numbers of the Keras run (from `ecg12 evaluate`'s metrics.json)."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        return {}
    m = json.loads(path.read_text())
    weights = Path(run_dir) / "best.weights.h5"
    if weights.is_file() and m.get("weights_sha256") != hashlib.sha256(
            weights.read_bytes()).hexdigest():
        return {"source": "none: metrics.json was not computed from these weights "
                          "(run `ecg12 evaluate` on the run first)"}
    out: dict[str, Any] = {"source": "ecg12 evaluate (Keras float model, test split)"}
    for regime, res in m.get("regimes", {}).items():
        whole = res.get("overall", {}).get("whole", {})
        for key, name in (("pearson", "r"), ("rmse", "rmse_mv")):
            mean = whole.get(key, {}).get("mean", {})
            if isinstance(mean, dict) and "mean" in mean:
                out[f"{regime}_{name}_mean11"] = round(float(mean["mean"]), 4)
    unc = m.get("uncertainty", {})
    if isinstance(unc.get("spearman_record"), dict):
        out["spearman_record_mean"] = round(float(unc["spearman_record"].get("mean", 0)), 4)
    return out


def write_bundle(run: Run, out_dir: str | Path, quant: str = "float32", lstm: str = "unrolled",
                 mc_samples: int = 30, calib: Calib | None = None,
                 metrics: dict[str, Any] | None = None, head_quant: str | None = None,
                 lstm_rank: int | None = None) -> Path:
    """Convert a loaded run and write ``trunk.tflite``, ``head.tflite``, ``manifest.json``;
    ``quant`` for the trunk and (unless ``head_quant`` is given) the head; ``lstm_rank``
    (fused only): each BiLSTM direction reads a rank-``lstm_rank`` projection of its input,
    fitted on training windows (``converters.export.lstm_input_factors``)."""
    head_quant = head_quant or quant
    for q in (quant, head_quant):
        if q not in QUANTS:
            raise ConversionError(f"unknown quantization {q!r}; use one of {list(QUANTS)}")
    if lstm not in LSTMS:
        raise ConversionError(f"unknown LSTM option {lstm!r}; use one of {list(LSTMS)}")
    if not 1 <= mc_samples <= MAX_MC_SAMPLES:
        raise ConversionError(f"mc_samples must be in 1..{MAX_MC_SAMPLES}, got {mc_samples}")
    if lstm_rank is not None and lstm != "fused":
        raise ConversionError("--lstm-rank needs --lstm fused")
    reps: tuple[Representative | None, ...] = (None, None)
    if calib is None and ("int8" in (quant, head_quant) or lstm_rank is not None):
        train = split_arrays(run, "train", limit=None)
        calib = Calib(train.lead_i, train.meta)
    if "int8" in (quant, head_quant):
        reps = representative(run, calib)
    factors, rank_info = None, None
    if lstm_rank is not None:
        factors = lstm_input_factors(run.model, lstm_inputs(run, calib), lstm_rank)
        rank_info = {"rank": lstm_rank, "fitted_on": f"{min(len(calib.lead_i), REP_WINDOWS)} "
                     "training windows",
                     "unexplained_energy": {k: round(v[4], 6) for k, v in factors.items()}}
    mc = run.cfg.model
    trunk = convert_trunk(run.model, mc, run.cfg.window, lstm, quant, reps[0], factors)
    head = convert_head(run.model, mc, run.cfg.window, head_quant, reps[1])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"trunk": out / "trunk.tflite", "head": out / "head.tflite"}
    files["trunk"].write_bytes(trunk)
    files["head"].write_bytes(head)
    label = quant if head_quant == quant else f"{quant}-{head_quant}_head"
    manifest = build_manifest(run, files, quant, lstm, mc_samples,
                              name=f"{run.cfg.name}-{label}-{lstm}"
                              + (f"-r{lstm_rank}" if lstm_rank else ""), metrics=metrics,
                              head_quant=head_quant, lstm_rank=rank_info)
    from edge.manifest import validate_manifest

    validate_manifest(manifest, out, where=f"{out}/manifest.json (as written)")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def convert_run(run_dir: str | Path, out_dir: str | Path, quant: str = "float32",
                lstm: str = "unrolled", mc_samples: int = 30,
                calib: Calib | None = None, head_quant: str | None = None,
                lstm_rank: int | None = None) -> Path:
    """Convert the run folder's best model into a bundle folder; returns ``out_dir``.

    ``calib`` (int8 only) defaults to windows of the training split; ``head_quant``
    (default ``quant``) quantizes the head apart from the trunk.
    """
    return write_bundle(load_run(run_dir), out_dir, quant, lstm, mc_samples, calib,
                        head_quant=head_quant, lstm_rank=lstm_rank)
