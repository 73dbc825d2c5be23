"""From corpora to model arrays: conditioning, windows, metadata per regime, augmentation.

Every record goes through `edge.conditioning.condition` (the gateway's own zero-phase code) at
the model rate, all 12 leads alike, so training sees exactly what the device will produce;
evaluation arrays score against `training.truth` (the recording band-passed zero-phase by
scipy), not against our conditioning. A record
yields one window for evaluation (the last `L` samples, clear of the filter start-up) and
random crops for training.

Metadata regimes (`edge.metadata.REGIMES`):
* none — nothing;
* wearable — age and sex from the record, rate / QRS count / QRS duration computed from the
  conditioned Lead I by `edge.features.lead_i_features`, as on the gateway;
* clinical — the corpus' machine measurements (Chapman: ventricular rate, QRS count, QRS
  duration, R axis, T axis); where a corpus has none (PTB-XL, LUDB, CinC) they are computed
  from the 12-lead ground truth by `training.measurements.twelve_lead_measurements`
  (training/evaluation only: a gateway never sees the 12 leads).
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

from edge.conditioning import condition
from edge.features import lead_i_features
from edge.leads import LEAD_INDEX, PREDICTED, RECONSTRUCTED
from edge.metadata import FIELDS, LEAD_I_FIELDS, MetadataError, clean_metadata, encode_metadata
from training.config import TrainConfig
from training.data import MISSING, Recording, dedupe_prefer_rate, load_corpus
from training.data.loaders import cache_dir, write_pickle_atomic
from training.data.splits import load_splits, split_hash
from training.paper_meta import encode_paper_metadata
from training.truth import truth_signal

#: samples dropped at the start of each conditioned record (filter/resampler settling), s
SETTLE_S = 0.5


@dataclass
class Prepared:
    """One conditioned record at the model rate with its metadata per regime."""

    key: str
    source: str
    leads12: np.ndarray  # (n, 12) float32 mV, after settling: our conditioning (training)
    truth12: np.ndarray  # (n, 12) float32 mV, same samples: the scoring truth (training.truth)
    meta: dict[str, dict[str, Any]]  # regime -> metadata dict
    rhythm: str


@dataclass
class WindowArrays:
    lead_i: np.ndarray  # (N, L, 1)
    meta: np.ndarray  # (N, M)
    target: np.ndarray  # (N, L, n_out)
    leads12: np.ndarray  # (N, L, 12)
    keys: list[str]
    sources: list[str]
    rhythms: list[str]


def target_indices(outputs: str) -> list[int]:
    names = PREDICTED if outputs == "independent" else RECONSTRUCTED
    return [LEAD_INDEX[n] for n in names]


def plausible(metadata: dict[str, Any]) -> dict[str, Any]:
    """Keep the fields with plausible values; a measurement outside the range (e.g. a
    delineator's 340 ms QRS) is treated as absent, never clipped."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        try:
            out.update(clean_metadata({key: value}))
        except MetadataError:
            continue
    return out


def _machine_meta(rec: Recording) -> dict[str, Any]:
    return {k: v for k, v in rec.metadata.items() if k in FIELDS and v is not MISSING}


def prepare_record(rec: Recording, fs_hz: float) -> Prepared:
    """Condition a record and compute its metadata for each regime."""
    from training.measurements import twelve_lead_measurements

    settle = int(round(SETTLE_S * fs_hz))
    sig = condition(rec.signal_mv, rec.fs_hz, fs_hz)[settle:]
    truth = truth_signal(rec.signal_mv, rec.fs_hz, fs_hz)[settle:]
    base = _machine_meta(rec)
    profile = {k: base[k] for k in ("age", "sex") if k in base}
    lead_feats = lead_i_features(sig[:, 0], fs_hz)
    wearable = {**profile, **{k: v for k, v in lead_feats.items() if k in LEAD_I_FIELDS}}
    clinical = dict(base)
    missing = [k for k in FIELDS if k not in clinical and k not in ("age", "sex")]
    if missing:
        try:
            measured = twelve_lead_measurements(sig, fs_hz)
        except Exception:  # noqa: BLE001 - a record without measurable beats keeps gaps
            measured = {}
        clinical.update({k: v for k, v in measured.items() if k in missing and v is not None})
    rhythm = str(rec.metadata.get("rhythm", "") or "")
    return Prepared(rec.key, rec.source, sig.astype(np.float32), truth.astype(np.float32),
                    {"none": {}, "wearable": plausible(wearable),
                     "clinical": plausible(clinical)}, rhythm)


def _cache_key(cfg: TrainConfig, limit: int | None) -> str:
    import edge.conditioning
    import edge.features
    import edge.measurements12
    import training.truth

    h = hashlib.sha256()
    for mod in (edge.conditioning, edge.features, edge.measurements12, training.truth):
        h.update(Path(mod.__file__).read_bytes())
    h.update(Path(__file__).read_bytes())
    h.update(repr((cfg.data.fs_hz, cfg.data.sources, cfg.data.limit_per_source, limit)).encode())
    h.update(split_hash().encode())
    return h.hexdigest()[:16]


def prepare_corpora(cfg: TrainConfig, limit: int | None = None, progress: bool = True
                    ) -> dict[str, list[Prepared]]:
    """All records of cfg's sources, conditioned, grouped by split. Cached on disk."""
    limit = limit if limit is not None else cfg.data.limit_per_source
    cache_file = cache_dir() / f"prepared-{_cache_key(cfg, limit)}.pkl"
    if cache_file.is_file():
        with cache_file.open("rb") as f:
            return pickle.load(f)
    splits = load_splits()
    records: list[Recording] = []
    for source in cfg.data.sources:
        rep = load_corpus(source, progress=progress, limit=limit)
        records.extend(rep.records)
    records = dedupe_prefer_rate(records)
    out: dict[str, list[Prepared]] = {"train": [], "val": [], "test": []}
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("conditioning records", total=len(records))
        for rec in records:
            bar.advance(task)
            split = splits.get(rec.key)
            if split is None:
                continue  # not in the versioned split file (e.g. a newer download)
            prep = prepare_record(rec, cfg.data.fs_hz)
            if prep.leads12.shape[0] >= cfg.window:
                out[split].append(prep)
    write_pickle_atomic(cache_file, out)
    return out


def encode_for(cfg: TrainConfig, metadata: dict[str, Any]) -> np.ndarray:
    if cfg.model.kind == "paper":
        return encode_paper_metadata(metadata)
    return encode_metadata(metadata)


def eval_arrays(cfg: TrainConfig, preps: list[Prepared], regime: str) -> WindowArrays:
    """One window per record: its last L samples; metadata of `regime` (Lead-I features are
    recomputed on that window, as the gateway does). Lead I is our conditioning of the
    record (the model's input); ``target`` and ``leads12`` are the scoring truth
    (`training.truth`), never our own filters' rendering of it."""
    return _window_arrays(cfg, [(p, len(p.leads12) - cfg.window) for p in preps], regime)


def gateway_starts(n: int, window: int, hop: int) -> list[int]:
    """Window starts the gateway runs on ``n`` samples: every ``hop``, plus the end-aligned
    one when the grid does not reach the end (``edge.stages.window.WindowGrid``)."""
    if n < window:
        return []
    starts = list(range(0, n - window + 1, hop))
    if starts[-1] + window < n:
        starts.append(n - window)
    return starts


def gateway_arrays(cfg: TrainConfig, preps: list[Prepared], regime: str
                   ) -> tuple[WindowArrays, np.ndarray]:
    """Every window the gateway runs on each record (``gateway_starts`` at the bundle's hop),
    as ``eval_arrays`` builds them, and the record index of each window."""
    pairs = [(i, p, s) for i, p in enumerate(preps)
             for s in gateway_starts(len(p.leads12), cfg.window, cfg.hop)]
    arr = _window_arrays(cfg, [(p, s) for _, p, s in pairs], regime)
    return arr, np.array([i for i, _, _ in pairs], dtype=int)


def _window_arrays(cfg: TrainConfig, windows: list[tuple[Prepared, int]], regime: str
                   ) -> WindowArrays:
    L = cfg.window
    idx = target_indices(cfg.model.outputs)
    cond = (np.stack([p.leads12[s:s + L] for p, s in windows]) if windows
            else np.zeros((0, L, 12)))
    leads = (np.stack([p.truth12[s:s + L] for p, s in windows]) if windows
             else np.zeros((0, L, 12)))
    metas = []
    for (p, _), w in zip(windows, cond, strict=True):
        md = dict(p.meta[regime])
        if regime == "wearable":
            for k in LEAD_I_FIELDS:
                md.pop(k, None)
            md.update(plausible(lead_i_features(w[:, 0], cfg.data.fs_hz)))
        metas.append(encode_for(cfg, md))
    meta = np.stack(metas) if metas else np.zeros((0, 1), np.float32)
    return WindowArrays(cond[:, :, :1].astype(np.float32), meta.astype(np.float32),
                        leads[:, :, idx].astype(np.float32), leads.astype(np.float32),
                        [p.key for p, _ in windows], [p.source for p, _ in windows],
                        [p.rhythm for p, _ in windows])


def load_split_arrays(cfg: TrainConfig, split: str, regime: str = "wearable",
                      limit: int | None = None, progress: bool = True) -> WindowArrays:
    """Evaluation arrays for one split ('train', 'val', 'test') under a metadata regime."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, not {split!r}")
    preps = prepare_corpora(cfg, limit=limit, progress=progress)[split]
    return eval_arrays(cfg, preps, regime)


REGIME_PROBS = {"none": 0.2, "wearable": 0.4, "clinical": 0.4}


def _emg_taps(fs_hz: float) -> np.ndarray:
    from scipy.signal import firwin

    hi = min(40.0, 0.45 * fs_hz)
    return firwin(31, [20.0, hi], pass_zero=False, fs=fs_hz)


def augment_lead_i(w: np.ndarray, d: Any, rng: np.random.Generator, fs_hz: float
                   ) -> np.ndarray:
    """Lead I of a conditioned 12-lead window ``w`` (L, 12) as a wearable might record it:
    placement (frontal axis rotated toward aVF), gain, white + EMG noise, motion bumps,
    baseline wander, a short dropout bridged by a line (as the gateway bridges gaps)."""
    L = w.shape[0]
    t = np.arange(L) / fs_hz
    lead_i = w[:, 0].astype(np.float64)
    if d.aug_rotate_deg > 0:  # L(theta) = I cos(theta) + (2 / sqrt 3) aVF sin(theta)
        th = np.deg2rad(rng.uniform(-d.aug_rotate_deg, d.aug_rotate_deg))
        lead_i = lead_i * np.cos(th) + 2 / np.sqrt(3) * w[:, 5] * np.sin(th)
    lead_i = lead_i + rng.normal(0, d.aug_noise_mv * rng.uniform(0, 2), L)
    if d.aug_emg_mv > 0 and rng.random() < 0.5:
        e = np.convolve(rng.normal(0, 1, L + 30), _emg_taps(fs_hz), mode="valid")
        lead_i = lead_i + e / max(float(np.std(e)), 1e-9) * d.aug_emg_mv * rng.uniform(0, 1)
    if d.aug_motion_mv > 0 and rng.random() < 0.5:
        for _ in range(int(rng.integers(1, 4))):
            c, width = rng.uniform(0, L / fs_hz), rng.uniform(0.2, 0.6) / 2.355
            lead_i = lead_i + d.aug_motion_mv * rng.uniform(-1, 1) * np.exp(
                -0.5 * ((t - c) / width) ** 2)
    if d.aug_wander_mv > 0:
        f = rng.uniform(0.05, 0.4)
        lead_i = lead_i + d.aug_wander_mv * rng.uniform(0, 1) * np.sin(
            2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    if d.aug_dropout_prob > 0 and rng.random() < d.aug_dropout_prob:
        n = int(rng.uniform(0.1, 0.5) * fs_hz)
        a = int(rng.integers(1, L - n - 1))
        lead_i[a:a + n] = np.linspace(lead_i[a - 1], lead_i[a + n], n + 2)[1:-1]
    return lead_i


def _warp(p: Prepared, L: int, warp: float, rng: np.random.Generator
          ) -> tuple[np.ndarray, float]:
    """A random crop of ``p`` resampled to L samples: heart rate scaled by the returned f."""
    n = p.leads12.shape[0]
    f = rng.uniform(max(1 - warp, 0.5), min(1 + warp, n / L)) if warp > 0 else 1.0
    m = int(round(L * f))
    start = int(rng.integers(0, n - m + 1))
    seg = p.leads12[start:start + m]
    if m == L:
        return seg, 1.0
    x = np.linspace(0, m - 1, L)
    out = np.stack([np.interp(x, np.arange(m), seg[:, j]) for j in range(12)], axis=1)
    return out.astype(np.float32), m / L


def _warp_meta(md: dict[str, Any], f: float) -> dict[str, Any]:
    """Metadata of a window whose heart rate was scaled by ``f``."""
    if f == 1.0:
        return md
    out = dict(md)
    for key in ("ventricular_rate", "qrs_count"):
        if key in out:
            out[key] = out[key] * f
    if "qrs_duration" in out:
        out["qrs_duration"] = out["qrs_duration"] / f
    return plausible(out)


def fit_target(cfg: TrainConfig, target: np.ndarray, lead_i: np.ndarray) -> np.ndarray:
    """What the loss compares against: the targets, plus (for a correlation term over all
    11 leads, ``model.correlation_leads == "all11"``) the clean Lead I ``(N, L)`` as a last
    channel, from which the loss derives III, aVR, aVL and aVF."""
    if cfg.model.correlation_leads != "all11":
        return target
    return np.concatenate([target, np.asarray(lead_i, target.dtype)[..., None]], axis=-1)


def training_batch_arrays(cfg: TrainConfig, preps: list[Prepared], rng: np.random.Generator
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch of augmented training examples: random crop (and time warp), gain, Lead-I
    corruptions a wearable has (``augment_lead_i``), metadata masking. ``y`` is
    ``fit_target`` of the targets (the clean, gained Lead I: what the corruptions hide)."""
    L = cfg.window
    idx = target_indices(cfg.model.outputs)
    d = cfg.data
    n = len(preps)
    x = np.empty((n, L, 1), np.float32)
    y = np.empty((n, L, len(idx)), np.float32)
    clean = np.empty((n, L), np.float32)
    metas = []
    regimes = list(REGIME_PROBS)
    probs = np.array(list(REGIME_PROBS.values()))
    for i, p in enumerate(preps):
        w, f = _warp(p, L, d.aug_warp, rng)
        gain = 1.0 + rng.uniform(-d.aug_amplitude, d.aug_amplitude)
        x[i, :, 0] = augment_lead_i(w, d, rng, d.fs_hz) * gain
        y[i] = w[:, idx] * gain
        clean[i] = w[:, 0] * gain
        if cfg.regime == "mixed":
            regime = regimes[int(rng.choice(len(regimes), p=probs))]
        else:
            regime = cfg.regime
        if regime == "wearable" and d.window_features:  # measured here, as the gateway does
            md = {k: v for k, v in p.meta[regime].items() if k not in LEAD_I_FIELDS}
            md.update(plausible(lead_i_features(x[i, :, 0].astype(np.float64), d.fs_hz)))
        else:
            md = _warp_meta(p.meta[regime], f)
        md = {k: v for k, v in md.items()
              if rng.random() >= d.meta_mask_prob * (regime != "none")}
        metas.append(encode_for(cfg, md))
    return x, np.stack(metas).astype(np.float32), fit_target(cfg, y, clean)
