"""Training configuration: one frozen dataclass, read from / written to JSON."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A config file is unreadable or has an unknown or invalid field."""


def _check_type(f: dataclasses.Field, value: Any, source: str, name: str) -> None:
    """Refuse a config value whose JSON type differs from the field's default (true/false
    for a switch, a whole number for a count, a number for a rate, text for a choice)."""
    default = f.default
    if default is dataclasses.MISSING or default is None:
        return
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true/false"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, float):
        ok = (isinstance(value, int | float) and not isinstance(value, bool)
              and math.isfinite(value))
        kind = "a finite number"
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "a string"
    elif isinstance(default, tuple):
        ok, kind = isinstance(value, list | tuple), "a list"
    else:
        return
    if not ok:
        raise ConfigError(f"{source}: {name} {value!r} must be {kind}")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture. `kind`: 'edge' (our default), 'paper' (Hirata et al. 2026), 'unet'."""

    kind: str = "edge"
    outputs: str = "independent"  # 'independent' (II, V1-V6) or 'all11'
    conv_filters: int = 32
    conv_kernel: int = 7
    down_filters: int = 64
    lstm_units: int = 64
    meta_units: tuple[int, ...] = (32, 16)
    head_filters: int = 64
    dropout_lstm: float = 0.2
    dropout_meta: float = 0.1
    dropout_head: float = 0.3
    # leaky: with plain ReLU the head's units all died early in training (measured: every
    # head_conv activation 0, MC std 0, the model collapsed to its linear skip path)
    activation: str = "leaky_relu"
    # a deterministic full-rate linear path from Lead I to the output (folded into the trunk)
    skip: bool = True
    # heteroscedastic head: also predict a per-sample log-variance (aleatoric uncertainty),
    # trained with beta-NLL; total std = sqrt(MC variance of the mean + mean predicted variance)
    aleatoric: bool = False
    nll_beta: float = 0.5
    # metadata conditions the head (FiLM: per-channel scale and shift of head_conv from the
    # metadata branch) and scales each output lead (a learned per-lead gain), so it can change
    # the output instead of being one more input the head may ignore
    film: bool = False
    # train the mean by plain MSE and the log-variance by Gaussian NLL around the
    # stop-gradient mean, so the variance head cannot absorb what the mean should learn
    # (with beta-NLL the metadata went unused)
    decoupled_variance: bool = False
    # weight of a per-lead amplitude term in the loss: (std(pred) - std(true))^2 over the
    # window, against regression to the mean of the amplitudes
    amplitude_loss: float = 0.0
    # hidden convs of the head after the fusion; each one after the first sees the metadata
    # features again (concatenated), so the metadata can act through a deeper non-linearity
    head_layers: int = 1
    # weight of a per-lead correlation term in the loss: 1 - Pearson r(pred, true) over the
    # window, the accuracy measure itself (scale-free, so it does not pull amplitudes in)
    correlation_loss: float = 0.0
    # which leads that term averages over: "predicted" (the model's outputs: II, V1-V6) or
    # "all11" (the 11 reconstructed leads, III/aVR/aVL/aVF derived from II and Lead I as the
    # gateway derives them: 4 of the 11 leads the accuracy is scored on)
    correlation_leads: str = "predicted"


@dataclass(frozen=True)
class DataConfig:
    fs_hz: float = 100.0
    window_s: float = 8.0
    hop_s: float = 2.0  # gateway hop between windows (stored in the bundle)
    sources: tuple[str, ...] = ("ptbxl", "ludb", "chapman", "cinc2021")
    limit_per_source: int | None = None  # for tests / quick runs
    # training-time augmentation (wearable reality)
    aug_amplitude: float = 0.15  # +/- relative gain on all leads
    aug_noise_mv: float = 0.02  # white noise added to Lead I only
    aug_wander_mv: float = 0.1  # baseline wander added to Lead I before conditioning
    meta_mask_prob: float = 0.5  # probability to drop each metadata field
    # wearable-reality augmentations of Lead I (0 = off); each applied to a random share
    aug_rotate_deg: float = 0.0  # electrode placement: frontal lead axis rotated +/- this
    aug_emg_mv: float = 0.0  # EMG: band-limited (20-40 Hz) noise, up to this rms
    aug_motion_mv: float = 0.0  # motion: smooth bumps (0.2-0.6 s), up to this amplitude
    aug_warp: float = 0.0  # heart-rate time warping of the window (input and targets), +/-
    aug_dropout_prob: float = 0.0  # probability of a short (0.1-0.5 s) bridged dropout
    # the wearable regime's Lead-I fields (ventricular_rate, qrs_count, qrs_duration)
    # measured on each training window as the model sees it (after warp and corruptions),
    # as the gateway measures them on its window; False: once per record (older runs)
    window_features: bool = False


@dataclass(frozen=True)
class TrainConfig:
    name: str = "default"
    seed: int = 0
    epochs: int = 60
    batch_size: int = 32
    learning_rate: float = 1e-3
    # 'constant', or 'cosine': the rate decays per epoch from learning_rate to
    # lr_min_factor * learning_rate over `epochs` (resumable: it depends on the epoch only)
    lr_schedule: str = "constant"
    lr_min_factor: float = 0.02
    patience: int = 8
    regime: str = "mixed"  # metadata during training: 'mixed' (random masking), or a regime
    # stochastic weight averaging (Izmailov et al. 2018): 0 = off; f in (0, 1): the
    # end-of-epoch weights of the epochs after f * epochs are averaged, and the average
    # replaces the best epoch's weights when it scores better on validation (same rule)
    weight_average_from: float = 0.0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def learning_rate_at(self, epoch: int) -> float:
        """The learning rate of (0-based) `epoch` under `lr_schedule`."""
        if self.lr_schedule == "constant" or self.epochs <= 1:
            return self.learning_rate
        lo = self.learning_rate * self.lr_min_factor
        frac = min(epoch, self.epochs - 1) / (self.epochs - 1)
        return lo + 0.5 * (self.learning_rate - lo) * (1.0 + math.cos(math.pi * frac))

    @property
    def window(self) -> int:
        return int(round(self.data.fs_hz * self.data.window_s))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def sha256(self) -> str:
        """Hash of the settings (the `name` label excluded, so a renamed run keeps its hash)."""
        d = self.to_dict()
        d.pop("name")
        if d["lr_schedule"] == "constant":  # added later: older runs keep their hash
            d.pop("lr_schedule")
            d.pop("lr_min_factor")
        if d["weight_average_from"] == 0.0:  # likewise
            d.pop("weight_average_from")
        d["data"]["hop_s"] = 2.0  # the gateway's hop: the weights do not depend on it
        if not d["data"]["window_features"]:  # likewise
            d["data"].pop("window_features")
        for key, default in (("head_layers", 1), ("correlation_loss", 0.0),  # likewise
                             ("correlation_leads", "predicted")):
            if d["model"][key] == default:
                d["model"].pop(key)
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "<dict>") -> TrainConfig:
        def build(kls: type, data: dict[str, Any], where: str) -> Any:
            names = {f.name: f for f in dataclasses.fields(kls)}
            unknown = sorted(set(data) - set(names))
            if unknown:
                raise ConfigError(f"{source}: unknown field(s) {unknown} in {where}; "
                                  f"known: {sorted(names)}")
            kwargs: dict[str, Any] = {}
            for key, value in data.items():
                if key == "model":
                    value = build(ModelConfig, value, "model")
                elif key == "data":
                    value = build(DataConfig, value, "data")
                else:
                    _check_type(names[key], value, source,
                                key if where == "top level" else f"{where}.{key}")
                    if isinstance(value, list):
                        value = tuple(value)
                kwargs[key] = value
            return kls(**kwargs)

        cfg = build(cls, raw, "top level")
        if cfg.model.kind not in {"edge", "paper", "unet"}:
            raise ConfigError(f"{source}: model.kind {cfg.model.kind!r} is not edge/paper/unet")
        if cfg.model.outputs not in {"independent", "all11"}:
            raise ConfigError(f"{source}: model.outputs {cfg.model.outputs!r} is not "
                              "'independent' or 'all11'")
        if not 0.0 <= cfg.model.correlation_loss <= 10.0:
            raise ConfigError(f"{source}: model.correlation_loss {cfg.model.correlation_loss} "
                              "must be within 0..10")
        if cfg.model.correlation_leads not in {"predicted", "all11"}:
            raise ConfigError(f"{source}: model.correlation_leads "
                              f"{cfg.model.correlation_leads!r} is not 'predicted' or 'all11'")
        if cfg.model.correlation_leads == "all11" and not (
                cfg.model.outputs == "independent" and cfg.model.correlation_loss > 0):
            raise ConfigError(f"{source}: model.correlation_leads 'all11' needs outputs "
                              "'independent' and correlation_loss > 0")
        if cfg.model.head_layers < 1:
            raise ConfigError(f"{source}: model.head_layers {cfg.model.head_layers} must be >= 1")
        if cfg.lr_schedule not in {"constant", "cosine"}:
            raise ConfigError(f"{source}: lr_schedule {cfg.lr_schedule!r} is not "
                              "'constant' or 'cosine'")
        if not 0.0 <= cfg.weight_average_from < 1.0:
            raise ConfigError(f"{source}: weight_average_from {cfg.weight_average_from} must "
                              "lie in [0, 1) (0 = no weight averaging)")
        from edge.metadata import REGIMES

        for name, value in (("epochs", cfg.epochs), ("batch_size", cfg.batch_size)):
            if value < 1:
                raise ConfigError(f"{source}: {name} {value} must be >= 1")
        if cfg.patience < 0:
            raise ConfigError(f"{source}: patience {cfg.patience} must be >= 0")
        if not (math.isfinite(cfg.learning_rate) and cfg.learning_rate > 0):
            raise ConfigError(f"{source}: learning_rate {cfg.learning_rate} must be > 0")
        if cfg.regime != "mixed" and cfg.regime not in REGIMES:
            raise ConfigError(f"{source}: regime {cfg.regime!r} is not 'mixed' or one of "
                              f"{sorted(REGIMES)}")
        if cfg.data.limit_per_source is not None and cfg.data.limit_per_source < 1:
            raise ConfigError(f"{source}: data.limit_per_source {cfg.data.limit_per_source} "
                              "must be >= 1 (or null: every record)")
        for name in ("fs_hz", "window_s"):
            value = getattr(cfg.data, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{source}: data.{name} {value} must be > 0")
        if cfg.window % 4:
            raise ConfigError(f"{source}: window of {cfg.window} samples must be a multiple of 4")
        check_hop(cfg, source)
        return cfg

    @property
    def hop(self) -> int:
        """The gateway's hop between windows, in model samples."""
        return int(round(self.data.fs_hz * self.data.hop_s))

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
        return cls.from_dict(raw, source=str(path))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def check_hop(cfg: TrainConfig, source: str) -> None:
    """``data.hop_s`` must round to 1 .. window model samples (the hop the bundle stores)."""
    hop_s, fs = cfg.data.hop_s, cfg.data.fs_hz
    n = hop_s * fs
    if not (math.isfinite(n) and 1 <= round(n) <= cfg.window):
        raise ConfigError(f"{source}: data.hop_s {hop_s:g} must give 1 to {cfg.window} samples "
                          f"at {fs:g} Hz ({1 / fs:g} s to the window, {cfg.data.window_s:g} s)")
